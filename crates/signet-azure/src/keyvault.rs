//! Key Vault trust sources: named certificates of a vault become Notation trust stores.
//!
//! `azure_security_keyvault_certificates` does the request
//! (`GET {vault}/certificates/{name}[/{version}]?api-version=…`) and Key Vault's challenge
//! authentication: the first request goes out without a token, the vault answers 401 with
//! `WWW-Authenticate: Bearer authorization="https://login…/{tenant}", resource="https://vault.azure.net"`,
//! the client checks that the resource's domain is the vault's (no token for a look-alike
//! host), gets a token for `https://vault.azure.net/.default` and repeats the request.
//! The certificate's `cer` (base64 DER) is the trust anchor: the public certificate only,
//! never the secret or the key.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use azure_security_keyvault_certificates::models::CertificateClientGetCertificateOptions;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use signet_notation::cert::Certificate;
use signet_notation::truststore::{StoreType, TrustStore};

use crate::credential::EntraCredential;
use crate::error::AzureError;
use crate::http::HttpTransport;

/// One certificate to fetch, and the trust store it goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultCertificate {
    /// The certificate's name in the vault.
    pub name: String,
    /// A fixed version; the latest when `None`.
    pub version: Option<String>,
    /// The store it is added to (`ca:NAME` in the trust policy is `(Ca, "NAME")`).
    pub store_type: StoreType,
    pub store_name: String,
}

/// See the module docs.
pub struct KeyVaultTrustSource {
    vault_url: String,
    client: CertificateClient,
    certificates: Vec<KeyVaultCertificate>,
}

impl fmt::Debug for KeyVaultTrustSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultTrustSource")
            .field("vault_url", &self.vault_url)
            .field("certificates", &self.certificates)
            .finish_non_exhaustive()
    }
}

impl KeyVaultTrustSource {
    /// A source for `certificates` of the vault at `vault_url` (`https://NAME.vault.azure.net`).
    pub fn new(
        vault_url: &str,
        certificates: Vec<KeyVaultCertificate>,
        credential: &EntraCredential,
        http: &HttpTransport,
    ) -> Result<Self, AzureError> {
        let vault_url = vault_url.trim_end_matches('/').to_owned();
        let options = CertificateClientOptions {
            client_options: azure_core::http::ClientOptions {
                transport: Some(azure_core::http::Transport::new(Arc::new(http.clone()))),
                ..Default::default()
            },
            ..Default::default()
        };
        let client = CertificateClient::new(&vault_url, credential.sdk(), Some(options))
            .map_err(|e| AzureError::Config(format!("Key Vault {vault_url}: {e}")))?;
        Ok(KeyVaultTrustSource {
            vault_url,
            client,
            certificates,
        })
    }

    /// The vault's URL.
    pub fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// Fetches every certificate and groups them into trust stores (several certificates
    /// may go into one store). Any failure fails the whole fetch: a partial set of trust
    /// anchors is never returned.
    pub async fn fetch(&self) -> Result<Vec<TrustStore>, AzureError> {
        let mut stores: BTreeMap<(StoreType, String), Vec<Certificate>> = BTreeMap::new();
        for c in &self.certificates {
            let cert = self.fetch_one(c).await?;
            stores
                .entry((c.store_type, c.store_name.clone()))
                .or_default()
                .push(cert);
        }
        Ok(stores
            .into_iter()
            .map(|((store_type, name), certificates)| TrustStore {
                store_type,
                name,
                certificates,
            })
            .collect())
    }

    async fn fetch_one(&self, c: &KeyVaultCertificate) -> Result<Certificate, AzureError> {
        let failed = |message: String| AzureError::KeyVault {
            vault: self.vault_url.clone(),
            certificate: c.name.clone(),
            message,
        };
        let options = CertificateClientGetCertificateOptions {
            certificate_version: c.version.clone(),
            ..Default::default()
        };
        let response = self
            .client
            .get_certificate(&c.name, Some(options))
            .await
            .map_err(|e| failed(explain(&e)))?;
        let model = response
            .into_model()
            .map_err(|e| failed(format!("malformed answer: {e}")))?;
        let der = model
            .cer
            .filter(|d| !d.is_empty())
            .ok_or_else(|| failed("the answer has no certificate (cer)".into()))?;
        let bad = |message: String| AzureError::BadCertificate {
            vault: self.vault_url.clone(),
            certificate: c.name.clone(),
            message,
        };
        let cert = Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        check_anchor(&cert, c.store_type).map_err(bad)?;
        Ok(cert)
    }
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
fn explain(e: &azure_core::Error) -> String {
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
        Some(403) => {
            " — give the identity the role \"Key Vault Certificate User\" on the vault (RBAC), \
             or an access policy with certificate get permission"
        }
        Some(404) => " — check azure.keyVault.certificates[].name (and version) and the vault URL",
        _ => "",
    };
    match status {
        Some(s) => format!("HTTP {s}: {detail}{advice}"),
        None => format!("{detail}{advice}"),
    }
}
