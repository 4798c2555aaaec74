//! Key Vault trust sources: named certificates of a vault become Notation trust stores.
//!
//! `azure_security_keyvault_certificates` / `_secrets` do the requests and Key Vault's
//! challenge authentication: the first request goes out without a token, the vault answers
//! 401 with `WWW-Authenticate: Bearer authorization="https://login…/{tenant}", resource="…"`,
//! the client checks that the resource's domain is the vault's (no token for a look-alike
//! host), gets a token for that resource and repeats the request. Any `https://` vault URL
//! works (public cloud, sovereign clouds, Azure Stack Hub).
//!
//! Per certificate:
//! - **Versions**: `GET {vault}/certificates/{name}/versions` lists the versions with their
//!   `attributes`; the newest `versions` (default 1) *enabled* ones are trusted, so a rotated
//!   certificate and its predecessor can both be anchors while images are re-signed. A fixed
//!   `version` is trusted only while it is enabled.
//! - **Anchors**: the version's `cer` (public DER; must be a CA or self-signed), or with
//!   `chain_from_secret` the whole chain in the certificate's secret (`GET
//!   {vault}/secrets/{name}/{version}`; PEM (`application/x-pem-file`) or base64 PKCS#12
//!   (`application/x-pkcs12`), as Ratify reads it): every CA or self-signed certificate in it
//!   becomes an anchor, so a signing certificate issued by a CA is anchored at that CA. The
//!   private key in the secret is discarded as soon as the container is parsed.
//! - **Gone**: a certificate the vault says does not exist (404: deleted) after it was
//!   fetched once, or that has no enabled version (disabled), is dropped from trust by this
//!   fetch: its store is returned without it (possibly empty), so nothing it signed verifies.
//!   A name the vault never had is a configuration mistake and fails the fetch. Any other failure (unreachable vault, 401/403, 5xx, a bad
//!   certificate) fails the whole fetch, so the caller keeps its last good set; failed
//!   fetches are counted ([`KeyVaultTrustSource::failed_fetches`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use azure_security_keyvault_certificates::models::{
    CertificateClientGetCertificateOptions, CertificateProperties,
};
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures_util::TryStreamExt as _;
use signet_notation::cert::Certificate;
use signet_notation::truststore::{StoreType, TrustStore};

use crate::credential::EntraCredential;
use crate::error::AzureError;
use crate::http::HttpTransport;

/// Most versions of one certificate looked at (a vault keeps every version ever made).
const MAX_VERSIONS_LISTED: usize = 1000;
/// Most certificates taken from one secret.
const MAX_CHAIN_CERTIFICATES: usize = 16;

/// One certificate to fetch, and the trust store it goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultCertificate {
    /// The certificate's name in the vault.
    pub name: String,
    /// A fixed version; the newest enabled ones when `None`.
    pub version: Option<String>,
    /// The store it is added to (`ca:NAME` in the trust policy is `(Ca, "NAME")`).
    pub store_type: StoreType,
    pub store_name: String,
    /// How many of the newest enabled versions are trusted (at least 1; ignored with `version`).
    pub versions: usize,
    /// Anchors from the chain in the certificate's secret instead of `cer`.
    pub chain_from_secret: bool,
}

impl KeyVaultCertificate {
    /// The latest enabled version's `cer`, into store `store_type:store_name`.
    pub fn latest(name: &str, store_type: StoreType, store_name: &str) -> Self {
        KeyVaultCertificate {
            name: name.to_owned(),
            version: None,
            store_type,
            store_name: store_name.to_owned(),
            versions: 1,
            chain_from_secret: false,
        }
    }
}

/// A certificate that is no longer trusted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedCertificate {
    pub name: String,
    pub reason: String,
}

/// What one fetch found.
#[derive(Debug, Clone)]
pub struct KeyVaultFetch {
    /// Every configured store (possibly empty when all its certificates were dropped).
    pub stores: Vec<TrustStore>,
    /// Certificates that were deleted or disabled in the vault.
    pub dropped: Vec<DroppedCertificate>,
}

/// See the module docs.
pub struct KeyVaultTrustSource {
    vault_url: String,
    client: CertificateClient,
    secrets: SecretClient,
    certificates: Vec<KeyVaultCertificate>,
    failed_fetches: AtomicU64,
    /// Certificates that delivered anchors at least once: only those can be "deleted"; a
    /// name never found is a configuration mistake and fails the fetch.
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl fmt::Debug for KeyVaultTrustSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultTrustSource")
            .field("vault_url", &self.vault_url)
            .field("certificates", &self.certificates)
            .finish_non_exhaustive()
    }
}

enum Versions {
    Anchors(Vec<Certificate>),
    Dropped(String),
}

impl KeyVaultTrustSource {
    /// A source for `certificates` of the vault at `vault_url` (`https://NAME.vault.azure.net`,
    /// or any `https://` vault host).
    pub fn new(
        vault_url: &str,
        certificates: Vec<KeyVaultCertificate>,
        credential: &EntraCredential,
        http: &HttpTransport,
    ) -> Result<Self, AzureError> {
        let vault_url = vault_url.trim_end_matches('/').to_owned();
        if !vault_url.starts_with("https://") {
            return Err(AzureError::Config(format!(
                "Key Vault URL {vault_url:?} must start with https://"
            )));
        }
        let client_options = azure_core::http::ClientOptions {
            transport: Some(azure_core::http::Transport::new(Arc::new(http.clone()))),
            ..Default::default()
        };
        let options = CertificateClientOptions {
            client_options: client_options.clone(),
            ..Default::default()
        };
        let client = CertificateClient::new(&vault_url, credential.sdk(), Some(options))
            .map_err(|e| AzureError::Config(format!("Key Vault {vault_url}: {e}")))?;
        let secrets = SecretClient::new(
            &vault_url,
            credential.sdk(),
            Some(SecretClientOptions {
                client_options,
                ..Default::default()
            }),
        )
        .map_err(|e| AzureError::Config(format!("Key Vault {vault_url}: {e}")))?;
        Ok(KeyVaultTrustSource {
            vault_url,
            client,
            secrets,
            certificates,
            failed_fetches: AtomicU64::new(0),
            seen: Default::default(),
        })
    }

    /// The vault's URL.
    pub fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// Fetches that failed as a whole (the caller kept its last good set), since start.
    pub fn failed_fetches(&self) -> u64 {
        self.failed_fetches.load(Ordering::Relaxed)
    }

    /// Fetches every certificate and groups them into trust stores (several certificates
    /// may go into one store). Deleted or disabled certificates are dropped (see the module
    /// docs); any other failure fails the whole fetch: a partial set of trust anchors is
    /// never returned.
    pub async fn fetch(&self) -> Result<Vec<TrustStore>, AzureError> {
        self.fetch_detailed().await.map(|f| f.stores)
    }

    /// [`KeyVaultTrustSource::fetch`], saying which certificates were dropped.
    pub async fn fetch_detailed(&self) -> Result<KeyVaultFetch, AzureError> {
        let result = self.fetch_all().await;
        if result.is_err() {
            self.failed_fetches.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn fetch_all(&self) -> Result<KeyVaultFetch, AzureError> {
        let mut stores: BTreeMap<(StoreType, String), Vec<Certificate>> = BTreeMap::new();
        let mut dropped = Vec::new();
        for c in &self.certificates {
            let entry = stores
                .entry((c.store_type, c.store_name.clone()))
                .or_default();
            match self.fetch_one(c).await? {
                Versions::Anchors(certs) => {
                    self.seen
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(c.name.clone());
                    for cert in certs {
                        if !entry.iter().any(|e| e.der() == cert.der()) {
                            entry.push(cert);
                        }
                    }
                }
                Versions::Dropped(reason) => {
                    tracing::warn!(vault = %self.vault_url, certificate = %c.name, %reason,
                        "Key Vault certificate dropped from trust");
                    dropped.push(DroppedCertificate {
                        name: c.name.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(KeyVaultFetch {
            stores: stores
                .into_iter()
                .map(|((store_type, name), certificates)| TrustStore {
                    store_type,
                    name,
                    certificates,
                })
                .collect(),
            dropped,
        })
    }

    fn failed(&self, c: &KeyVaultCertificate, message: String) -> AzureError {
        AzureError::KeyVault {
            vault: self.vault_url.clone(),
            certificate: c.name.clone(),
            message,
        }
    }

    async fn fetch_one(&self, c: &KeyVaultCertificate) -> Result<Versions, AzureError> {
        let versions: Vec<String> = match &c.version {
            Some(v) => vec![v.clone()],
            None => {
                let listed = match self.list_versions(c).await {
                    Ok(l) => l,
                    Err(e) if is_not_found(&e) && self.was_seen(c) => {
                        return Ok(Versions::Dropped("not found in the vault (deleted)".into()))
                    }
                    Err(e) => return Err(self.failed(c, explain(&e, "certificate"))),
                };
                let mut enabled: Vec<(Option<time::OffsetDateTime>, String)> = listed
                    .into_iter()
                    .filter(|p| p.attributes.as_ref().and_then(|a| a.enabled) != Some(false))
                    .filter_map(|p| {
                        let version = p.id.as_deref().and_then(version_of)?;
                        Some((p.attributes.and_then(|a| a.created), version))
                    })
                    .collect();
                if enabled.is_empty() {
                    return Ok(Versions::Dropped("no enabled version (disabled)".into()));
                }
                // Newest first; a version without a creation time sorts last.
                enabled.sort_by_key(|e| std::cmp::Reverse(e.0));
                enabled
                    .into_iter()
                    .take(c.versions.max(1))
                    .map(|(_, v)| v)
                    .collect()
            }
        };
        let mut anchors = Vec::new();
        let mut enabled_versions = 0usize;
        for version in &versions {
            let options = CertificateClientGetCertificateOptions {
                certificate_version: Some(version.clone()),
                ..Default::default()
            };
            let model = match self.client.get_certificate(&c.name, Some(options)).await {
                Ok(r) => r
                    .into_model()
                    .map_err(|e| self.failed(c, format!("malformed answer: {e}")))?,
                Err(e) if is_not_found(&e) && (c.version.is_none() || self.was_seen(c)) => continue,
                Err(e) => return Err(self.failed(c, explain(&e, "certificate"))),
            };
            if model.attributes.as_ref().and_then(|a| a.enabled) == Some(false) {
                continue;
            }
            enabled_versions += 1;
            let found = if c.chain_from_secret {
                self.chain_from_secret(c, version).await?
            } else {
                let der = model
                    .cer
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| self.failed(c, "the answer has no certificate (cer)".into()))?;
                vec![Certificate::from_der(der).map_err(|e| self.bad(c, e.to_string()))?]
            };
            for cert in found {
                if c.chain_from_secret && check_anchor(&cert, c.store_type).is_err() {
                    // The chain's leaf (the signing certificate) is not an anchor.
                    continue;
                }
                check_anchor(&cert, c.store_type).map_err(|e| self.bad(c, e))?;
                anchors.push(cert);
            }
        }
        if enabled_versions == 0 {
            return Ok(Versions::Dropped(match &c.version {
                Some(v) => format!("version {v} is deleted or disabled"),
                None => "no enabled version (disabled or deleted)".into(),
            }));
        }
        if anchors.is_empty() {
            return Err(self.bad(
                c,
                "the certificate's secret holds no CA or self-signed certificate: import the whole chain (leaf, intermediates, root) into Key Vault".into(),
            ));
        }
        Ok(Versions::Anchors(anchors))
    }

    fn was_seen(&self, c: &KeyVaultCertificate) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&c.name)
    }

    fn bad(&self, c: &KeyVaultCertificate, message: String) -> AzureError {
        AzureError::BadCertificate {
            vault: self.vault_url.clone(),
            certificate: c.name.clone(),
            message,
        }
    }

    async fn list_versions(
        &self,
        c: &KeyVaultCertificate,
    ) -> azure_core::Result<Vec<CertificateProperties>> {
        let mut pager = self
            .client
            .list_certificate_properties_versions(&c.name, None)?;
        let mut out = Vec::new();
        while let Some(item) = pager.try_next().await? {
            out.push(item);
            if out.len() >= MAX_VERSIONS_LISTED {
                break;
            }
        }
        Ok(out)
    }

    /// The certificates of the version's secret (PEM or PKCS#12); keys are discarded.
    async fn chain_from_secret(
        &self,
        c: &KeyVaultCertificate,
        version: &str,
    ) -> Result<Vec<Certificate>, AzureError> {
        let options = SecretClientGetSecretOptions {
            secret_version: Some(version.to_owned()),
            ..Default::default()
        };
        let secret = self
            .secrets
            .get_secret(&c.name, Some(options))
            .await
            .map_err(|e| self.failed(c, format!("reading its secret: {}", explain(&e, "secret"))))?
            .into_model()
            .map_err(|e| self.failed(c, format!("malformed secret: {e}")))?;
        let value = secret
            .value
            .ok_or_else(|| self.failed(c, "the secret has no value".into()))?;
        let ders: Vec<Vec<u8>> = match secret.content_type.as_deref() {
            Some("application/x-pem-file") => {
                use rustls_pki_types::pem::PemObject as _;
                rustls_pki_types::CertificateDer::pem_slice_iter(value.as_bytes())
                    .map(|c| c.map(|c| c.to_vec()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.bad(c, format!("secret PEM: {e}")))?
            }
            Some("application/x-pkcs12") => {
                use base64::Engine as _;
                let pfx = base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .map_err(|e| self.bad(c, format!("secret PKCS#12 base64: {e}")))?;
                // Key Vault exports PKCS#12 without a password.
                let store = p12_keystore::KeyStore::from_pkcs12(&pfx, "")
                    .map_err(|e| self.bad(c, format!("secret PKCS#12: {e}")))?;
                let mut ders = Vec::new();
                for (_, entry) in store.entries() {
                    match entry {
                        p12_keystore::KeyStoreEntry::Certificate(cert) => {
                            ders.push(cert.as_der().to_vec())
                        }
                        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                            ders.extend(chain.chain().iter().map(|c| c.as_der().to_vec()))
                        }
                        _ => {}
                    }
                }
                ders
            }
            other => {
                return Err(self.bad(
                    c,
                    format!(
                        "the secret's content type is {other:?}; expected application/x-pem-file or application/x-pkcs12"
                    ),
                ))
            }
        };
        if ders.len() > MAX_CHAIN_CERTIFICATES {
            return Err(self.bad(
                c,
                format!("the secret holds more than {MAX_CHAIN_CERTIFICATES} certificates"),
            ));
        }
        ders.iter()
            .map(|d| Certificate::from_der(d.clone()).map_err(|e| self.bad(c, e.to_string())))
            .collect()
    }
}

/// `https://vault/certificates/{name}/{version}` → `{version}`.
fn version_of(id: &str) -> Option<String> {
    let v = id.trim_end_matches('/').rsplit('/').next()?;
    (!v.is_empty()).then(|| v.to_owned())
}

fn is_not_found(e: &azure_core::Error) -> bool {
    e.http_status().map(u16::from) == Some(404)
}

/// Notation's rule for trust-store certificates: a CA or a self-signed certificate; in a
/// `tsa` store a self-issued root CA.
fn check_anchor(cert: &Certificate, store_type: StoreType) -> Result<(), String> {
    let x = cert.x509();
    let is_ca = matches!(x.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let self_issued = x.subject().as_raw() == x.issuer().as_raw();
    let self_signed = self_issued && x.verify_signature(None).is_ok();
    if !is_ca && !self_signed {
        return Err(format!(
            "{} is neither a CA nor a self-signed certificate: a trust store holds the root \
             (or an intermediate CA) of the signing chain, not a leaf issued by a CA — name the \
             issuing CA's certificate instead",
            x.subject()
        ));
    }
    if store_type == StoreType::Tsa && !(is_ca && self_issued) {
        return Err(format!(
            "{} is not a root CA, as a tsa store requires",
            x.subject()
        ));
    }
    Ok(())
}

/// The vault's error (`{"error":{"code":…,"message":…}}`) with what to do.
fn explain(e: &azure_core::Error, what: &str) -> String {
    let status = e.http_status().map(u16::from);
    let mut detail = None;
    if let azure_core::error::ErrorKind::HttpResponse {
        raw_response: Some(raw),
        ..
    } = e.kind()
    {
        #[derive(serde::Deserialize)]
        struct Body {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        if let Ok(b) = serde_json::from_slice::<Body>(raw.body()) {
            let message = b.error.message.replace("\r\n", " ");
            detail = Some(format!("{}: {}", b.error.code, message.trim()));
        }
    }
    let detail = detail.unwrap_or_else(|| {
        let s = e.to_string();
        s.split("\nTo troubleshoot").next().unwrap_or(&s).to_owned()
    });
    let advice = match status {
        Some(401) => {
            " — the vault did not accept the token: the identity may belong to another tenant \
             than the vault"
        }
        Some(403) if what == "secret" => {
            " — reading the chain from the secret needs the role \"Key Vault Secrets User\" on \
             the vault (RBAC), or an access policy with secret get permission"
        }
        Some(403) => {
            " — give the identity the role \"Key Vault Certificate User\" on the vault (RBAC), \
             or an access policy with certificate get and list permissions"
        }
        Some(404) => " — check azure.keyVault.certificates[].name (and version) and the vault URL",
        _ => "",
    };
    match status {
        Some(s) => format!("HTTP {s}: {detail}{advice}"),
        None => format!("{detail}{advice}"),
    }
}
