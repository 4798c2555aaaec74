//! The service configuration file (YAML), shared by `signet serve` and `signet verify`.
//!
//! Unknown keys are rejected; every value is checked once at start ([`Config::validate`])
//! with a message naming the key; command-line flags override the file.
//!
//! ```yaml
//! listen: 0.0.0.0:8443            # TLS listener (default 0.0.0.0:8443)
//! metricsListen: 0.0.0.0:9090     # optional plain-HTTP /healthz /readyz /metrics
//! tls:
//!   certFile: /etc/signet/tls/tls.crt
//!   keyFile: /etc/signet/tls/tls.key
//!   clientCAFile: /etc/signet/gatekeeper-ca/ca.crt
//!   insecureNoClientAuth: false   # true: no client certificates (logged every minute)
//! trust:
//!   policyFile: /etc/signet/policy/trustpolicy.json
//!   storeRoot: /etc/signet/truststore
//! registry:
//!   dockerConfig: /etc/signet/docker/config.json
//!   caFiles: [/etc/signet/registry-ca/ca.crt]
//!   plainHttp: [localhost:5000]
//!   maxSignatures: 100
//!   maxRetries: 4
//!   concurrency: 8
//!   hosts:
//!     myregistry.example:5000:
//!       caFile: /etc/signet/registry-ca/myregistry.crt
//!       plainHttp: false
//!       username: puller
//!       passwordFile: /etc/signet/registry-auth/password
//!       tokenRealms: [auth.myregistry.example]   # token services allowed to see the credentials
//! limits:
//!   requestDeadline: 4s
//!   maxKeysPerRequest: 1000
//!   maxBodyBytes: 1048576
//!   keyConcurrency: 64
//!   maxConcurrentVerifications: 32
//!   headerReadTimeout: 5s
//!   bodyReadTimeout: 10s
//!   handshakeTimeout: 5s
//!   maxConnections: 1024
//!   shutdownGrace: 20s
//! cache:
//!   successTTL: 5m
//!   failureTTL: 30s
//!   tagTTL: 30s
//! admission:
//!   excludeNamespaces: [kube-system, gatekeeper-system]
//!   excludeImages: ["registry.k8s.io/*"]
//! reload:
//!   debounce: 500ms
//!   pollInterval: 30s
//! log:
//!   level: info                   # error, warn, info, debug, trace
//! azure:                          # optional: Entra ID sign-in to ACR, Key Vault trust anchors
//!   workloadIdentity: true        # AZURE_* variables of the Workload Identity webhook
//!   # clientId / tenantId override AZURE_CLIENT_ID / AZURE_TENANT_ID (workload identity)
//!   # managedIdentityClientId: ... # without workloadIdentity: IMDS (user-assigned if set)
//!   # servicePrincipal: {tenantId: ..., clientId: ..., clientSecretFile: /path}
//!   acrRegistries: [myregistry.azurecr.io]   # only these get Azure tokens
//!   keyVault:
//!     url: https://myvault.vault.azure.net
//!     refreshInterval: 1h
//!     certificates:
//!       - name: wabbit-networks-io  # certificate name in the vault
//!         version: ""               # optional: pin a version (default: the latest)
//!         store: ca:wabbit-networks # the trust store the policy names
//! ```
//!
//! [`Config::validate`] also checks that every file named exists; [`Config::validate_schema`]
//! checks everything else (for configurations rendered for another machine, e.g. the Helm
//! chart's, whose files exist only in the pod).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A duration written `500ms`, `4s`, `5m`, `1h` (or a bare number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Dur(Duration::from_secs(n))),
            Raw::S(s) => parse_duration(&s)
                .map(Dur)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `500ms`, `4s`, `1.5s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 4s, 5m, 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unit must be ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("invalid duration {s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The whole file. Every field is optional here; [`Config::validate`] applies defaults
/// and requirements.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub trust: TrustConfig,
    #[serde(default)]
    pub registry: RegistryFileConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub admission: AdmissionConfig,
    #[serde(default)]
    pub reload: ReloadConfig,
    #[serde(default)]
    pub log: LogConfig,
    pub azure: Option<AzureConfig>,
}

/// `azure:` — see the module docs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureConfig {
    #[serde(default)]
    pub workload_identity: bool,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub managed_identity_client_id: Option<String>,
    pub service_principal: Option<ServicePrincipalConfig>,
    #[serde(default)]
    pub acr_registries: Vec<String>,
    pub key_vault: Option<KeyVaultConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret_file: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVaultConfig {
    pub url: String,
    #[serde(default)]
    pub certificates: Vec<KeyVaultCertificateConfig>,
    pub refresh_interval: Option<Dur>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVaultCertificateConfig {
    pub name: String,
    pub version: Option<String>,
    pub store: String,
}

/// The Azure identity, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureIdentity {
    /// Workload identity; `None` fields come from the webhook's environment variables.
    WorkloadIdentity {
        client_id: Option<String>,
        tenant_id: Option<String>,
    },
    ManagedIdentity {
        client_id: Option<String>,
    },
    ServicePrincipal {
        tenant_id: String,
        client_id: String,
        client_secret_file: PathBuf,
    },
}

/// `azure:`, validated.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    pub identity: AzureIdentity,
    /// Lower-case ACR login servers.
    pub acr_registries: Vec<String>,
    pub key_vault: Option<KeyVaultSettings>,
}

#[derive(Debug, Clone)]
pub struct KeyVaultSettings {
    pub url: String,
    pub certificates: Vec<signet_azure::KeyVaultCertificate>,
    pub refresh_interval: Duration,
}

impl AzureSettings {
    /// The Entra ID credential (reads the environment / secret file; fetches nothing).
    pub fn credential(
        &self,
        transport: &signet_azure::HttpTransport,
    ) -> anyhow::Result<signet_azure::EntraCredential> {
        use anyhow::Context as _;
        let config = match &self.identity {
            AzureIdentity::WorkloadIdentity {
                client_id,
                tenant_id,
            } => signet_azure::CredentialConfig::workload_identity_from_env(
                client_id.clone(),
                tenant_id.clone(),
            )
            .context("azure.workloadIdentity")?,
            AzureIdentity::ManagedIdentity { client_id } => {
                signet_azure::CredentialConfig::ManagedIdentity {
                    client_id: client_id.clone(),
                }
            }
            AzureIdentity::ServicePrincipal {
                tenant_id,
                client_id,
                client_secret_file,
            } => {
                let secret = std::fs::read_to_string(client_secret_file).with_context(|| {
                    format!(
                        "azure.servicePrincipal.clientSecretFile {}",
                        client_secret_file.display()
                    )
                })?;
                signet_azure::CredentialConfig::ServicePrincipal {
                    tenant_id: tenant_id.clone(),
                    client_id: client_id.clone(),
                    secret: secret.trim_end_matches(['\n', '\r']).to_owned(),
                    authority_host: std::env::var("AZURE_AUTHORITY_HOST").ok(),
                }
            }
        };
        signet_azure::EntraCredential::new(config, transport).map_err(anyhow::Error::msg)
    }
}

/// "This file must exist" (a no-op for [`Config::validate_schema`]).
type ExistCheck<'a> = dyn Fn(&mut Vec<String>, &str, &Path, bool) + 'a;

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl AzureConfig {
    fn validate(&self, errors: &mut Vec<String>, exist: &ExistCheck<'_>) -> Option<AzureSettings> {
        let n = errors.len();
        let guid = |errors: &mut Vec<String>, key: &str, v: &str| {
            if !is_guid(v) {
                errors.push(format!(
                    "{key}: {v:?} is not a GUID like 00000000-0000-0000-0000-000000000000"
                ));
            }
        };
        let others = [
            (
                "azure.managedIdentityClientId",
                self.managed_identity_client_id.is_some(),
            ),
            ("azure.servicePrincipal", self.service_principal.is_some()),
        ];
        let identity = if self.workload_identity {
            for (k, set) in others {
                if set {
                    errors.push(format!(
                        "{k} and azure.workloadIdentity exclude each other: choose one identity"
                    ));
                }
            }
            for (k, v) in [
                ("azure.clientId", &self.client_id),
                ("azure.tenantId", &self.tenant_id),
            ] {
                if let Some(v) = v {
                    guid(errors, k, v);
                }
            }
            AzureIdentity::WorkloadIdentity {
                client_id: self.client_id.clone(),
                tenant_id: self.tenant_id.clone(),
            }
        } else {
            for (k, v) in [
                ("azure.clientId", &self.client_id),
                ("azure.tenantId", &self.tenant_id),
            ] {
                if v.is_some() {
                    errors.push(format!(
                        "{k} is for workload identity (azure.workloadIdentity: true); a service \
                         principal names its own in azure.servicePrincipal"
                    ));
                }
            }
            match (&self.service_principal, &self.managed_identity_client_id) {
                (Some(_), Some(_)) => {
                    errors.push(
                        "azure.servicePrincipal and azure.managedIdentityClientId exclude each \
                         other: choose one identity"
                            .into(),
                    );
                    AzureIdentity::ManagedIdentity { client_id: None }
                }
                (Some(sp), None) => {
                    guid(errors, "azure.servicePrincipal.tenantId", &sp.tenant_id);
                    guid(errors, "azure.servicePrincipal.clientId", &sp.client_id);
                    exist(
                        errors,
                        "azure.servicePrincipal.clientSecretFile",
                        &sp.client_secret_file,
                        false,
                    );
                    AzureIdentity::ServicePrincipal {
                        tenant_id: sp.tenant_id.clone(),
                        client_id: sp.client_id.clone(),
                        client_secret_file: sp.client_secret_file.clone(),
                    }
                }
                (None, id) => {
                    if let Some(id) = id {
                        guid(errors, "azure.managedIdentityClientId", id);
                    }
                    AzureIdentity::ManagedIdentity {
                        client_id: id.clone(),
                    }
                }
            }
        };

        let mut acr = Vec::new();
        for r in &self.acr_registries {
            if signet_azure::is_acr_host(r) {
                acr.push(r.to_ascii_lowercase());
            } else {
                errors.push(format!(
                    "azure.acrRegistries: {r:?} is not an Azure Container Registry login server \
                     (NAME.azurecr.io, no scheme, port or path); Azure tokens go to listed ACRs \
                     only, other registries take credentials from registry.dockerConfig"
                ));
            }
        }

        let key_vault = self.key_vault.as_ref().map(|kv| {
            if !signet_azure::is_key_vault_url(&kv.url) {
                errors.push(format!(
                    "azure.keyVault.url: {:?} is not a Key Vault URL like https://NAME.vault.azure.net",
                    kv.url
                ));
            }
            if kv.certificates.is_empty() {
                errors.push(
                    "azure.keyVault.certificates: name at least one certificate ({name, store})"
                        .into(),
                );
            }
            let mut certificates = Vec::new();
            for (i, c) in kv.certificates.iter().enumerate() {
                let key = format!("azure.keyVault.certificates[{i}]");
                let name_ok = |s: &str| {
                    (1..=127).contains(&s.len())
                        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                };
                if !name_ok(&c.name) {
                    errors.push(format!(
                        "{key}.name: {:?} is not a Key Vault object name (1-127 letters, digits, -)",
                        c.name
                    ));
                }
                let version = c.version.clone().filter(|v| !v.is_empty());
                if let Some(v) = &version {
                    if !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        errors.push(format!("{key}.version: {v:?} is not a Key Vault version id"));
                    }
                }
                let parsed = c.store.split_once(':').and_then(|(t, n)| {
                    let t = signet_notation::truststore::StoreType::parse(t)?;
                    let valid = !n.is_empty()
                        && n != "."
                        && n != ".."
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                    valid.then(|| (t, n.to_owned()))
                });
                match parsed {
                    Some((store_type, store_name)) => {
                        certificates.push(signet_azure::KeyVaultCertificate {
                            name: c.name.clone(),
                            version,
                            store_type,
                            store_name,
                        })
                    }
                    None => errors.push(format!(
                        "{key}.store: {:?} must be TYPE:NAME as the trust policy writes it \
                         (ca:NAME, signingAuthority:NAME or tsa:NAME)",
                        c.store
                    )),
                }
            }
            let refresh_interval = kv.refresh_interval.map(|d| d.0).unwrap_or(Duration::from_secs(3600));
            if !(Duration::from_secs(60)..=Duration::from_secs(86_400)).contains(&refresh_interval) {
                errors.push(format!(
                    "azure.keyVault.refreshInterval: {refresh_interval:?} is out of range [1m, 24h]"
                ));
            }
            KeyVaultSettings {
                url: kv.url.trim_end_matches('/').to_owned(),
                certificates,
                refresh_interval,
            }
        });

        if acr.is_empty() && key_vault.is_none() {
            errors.push(
                "azure: nothing to do: list azure.acrRegistries and/or configure azure.keyVault \
                 (or remove the section)"
                    .into(),
            );
        }
        (errors.len() == n).then_some(AzureSettings {
            identity,
            acr_registries: acr,
            key_vault,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_no_client_auth: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustConfig {
    pub policy_file: Option<PathBuf>,
    pub store_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryFileConfig {
    pub docker_config: Option<PathBuf>,
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    #[serde(default)]
    pub plain_http: Vec<String>,
    pub max_signatures: Option<usize>,
    pub max_retries: Option<u32>,
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub hosts: BTreeMap<String, HostConfig>,
}

/// Per-registry settings (`host[:port]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostConfig {
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub plain_http: bool,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Token services (`host[:port]`) other than the registry itself that may receive its
    /// credentials in the bearer-token flow.
    #[serde(default)]
    pub token_realms: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsConfig {
    pub request_deadline: Option<Dur>,
    pub max_keys_per_request: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub key_concurrency: Option<usize>,
    pub max_concurrent_verifications: Option<usize>,
    pub header_read_timeout: Option<Dur>,
    pub body_read_timeout: Option<Dur>,
    pub handshake_timeout: Option<Dur>,
    pub max_connections: Option<usize>,
    pub shutdown_grace: Option<Dur>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(rename = "successTTL")]
    pub success_ttl: Option<Dur>,
    #[serde(rename = "failureTTL")]
    pub failure_ttl: Option<Dur>,
    #[serde(rename = "tagTTL")]
    pub tag_ttl: Option<Dur>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionConfig {
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    #[serde(default)]
    pub exclude_images: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReloadConfig {
    pub debounce: Option<Dur>,
    pub poll_interval: Option<Dur>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogConfig {
    pub level: Option<String>,
}

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub server: signet_server::ServerSettings,
    pub tls: signet_server::TlsSettings,
    pub trust_policy: PathBuf,
    pub trust_store: PathBuf,
    pub engine: EngineSettings,
    pub log_level: String,
    /// `azure:`, when configured (the ACR part is also in [`EngineSettings::azure`]).
    pub azure: Option<AzureSettings>,
}

/// The engine's settings before the registry credentials are read.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub registry: RegistryFileConfig,
    pub max_concurrent_verifications: usize,
    pub success_ttl: Duration,
    pub failure_ttl: Duration,
    pub tag_ttl: Duration,
    pub azure: Option<AzureSettings>,
}

/// Reads and parses a configuration file (unknown keys are errors).
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let bytes = crate::input::read_file(path, 1024 * 1024, "configuration")?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Config::default());
    }
    serde_yaml::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("configuration file {}: {e}", path.display()))
}

fn must_exist(errors: &mut Vec<String>, key: &str, path: &Path, dir: bool) {
    match std::fs::metadata(path) {
        Ok(m) if dir && !m.is_dir() => {
            errors.push(format!("{key}: {} is not a directory", path.display()))
        }
        Ok(m) if !dir && m.is_dir() => errors.push(format!(
            "{key}: {} is a directory, not a file",
            path.display()
        )),
        Ok(_) => {}
        Err(e) => errors.push(format!("{key}: {}: {e}", path.display())),
    }
}

impl Config {
    /// Checks everything and applies defaults; the error lists every problem, one a line.
    pub fn validate(&self) -> anyhow::Result<ServeSettings> {
        self.validate_with(true, Purpose::Serve)
    }

    /// For `signet verify --config`: the trust material and registry settings, checked like
    /// [`Config::validate`] but without the server's parts (TLS, listeners), which a
    /// command-line verification does not use.
    pub fn validate_for_verify(&self) -> anyhow::Result<VerifySettings> {
        let settings = self.validate_with(true, Purpose::Verify)?;
        Ok(VerifySettings {
            trust_policy: settings.trust_policy,
            trust_store: settings.trust_store,
            engine: settings.engine,
        })
    }

    /// [`Config::validate`] without looking at the file system: every check but "the named
    /// file exists". For configurations made for another machine (the Helm chart's).
    pub fn validate_schema(&self) -> anyhow::Result<ServeSettings> {
        self.validate_with(false, Purpose::Serve)
    }

    fn validate_with(&self, check_files: bool, purpose: Purpose) -> anyhow::Result<ServeSettings> {
        let serving = purpose == Purpose::Serve;
        let exist = move |errors: &mut Vec<String>, key: &str, path: &Path, dir: bool| {
            if check_files {
                must_exist(errors, key, path, dir)
            }
        };
        let mut errors: Vec<String> = Vec::new();
        let addr = |key: &str, v: Option<&str>, default: Option<&str>, errors: &mut Vec<String>| {
            let v = v.or(default)?;
            match v.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    errors.push(format!("{key}: {v:?} is not an address like 0.0.0.0:8443"));
                    None
                }
            }
        };
        let listen = addr(
            "listen",
            self.listen.as_deref(),
            Some("0.0.0.0:8443"),
            &mut errors,
        );
        let metrics_listen = addr(
            "metricsListen",
            self.metrics_listen.as_deref(),
            None,
            &mut errors,
        );

        let t = &self.tls;
        let (cert, key) = if serving {
            (t.cert_file.clone(), t.key_file.clone())
        } else {
            // Never read: `validate_for_verify` keeps only the trust and registry parts.
            (Some(PathBuf::new()), Some(PathBuf::new()))
        };
        if cert.is_none() {
            errors.push("tls.certFile (--tls-cert) is required: TLS is not optional".into());
        }
        if key.is_none() {
            errors.push("tls.keyFile (--tls-key) is required: TLS is not optional".into());
        }
        match (&t.client_ca_file, t.insecure_no_client_auth) {
            (None, false) if serving => errors.push(
                "tls.clientCAFile (--client-ca) is required: the CA that issued Gatekeeper's \
                 client certificate; set tls.insecureNoClientAuth: true \
                 (--insecure-no-client-auth) to serve anyone who can reach the port"
                    .into(),
            ),
            (Some(_), true) => errors
                .push("tls.clientCAFile and tls.insecureNoClientAuth exclude each other".into()),
            _ => {}
        }
        for (k, p) in [
            ("tls.certFile", &t.cert_file),
            ("tls.keyFile", &t.key_file),
            ("tls.clientCAFile", &t.client_ca_file),
        ] {
            if let (true, Some(p)) = (serving, p) {
                exist(&mut errors, k, p, false);
            }
        }

        let policy = self.trust.policy_file.clone();
        let store = self.trust.store_root.clone();
        match &policy {
            None => errors.push("trust.policyFile (--trust-policy) is required".into()),
            Some(p) => exist(&mut errors, "trust.policyFile", p, false),
        }
        match &store {
            None => errors.push("trust.storeRoot (--trust-store) is required".into()),
            Some(p) => exist(&mut errors, "trust.storeRoot", p, true),
        }

        let r = &self.registry;
        if let Some(p) = &r.docker_config {
            exist(&mut errors, "registry.dockerConfig", p, false);
        }
        for p in &r.ca_files {
            exist(&mut errors, "registry.caFiles", p, false);
        }
        for h in &r.plain_http {
            if h.is_empty() || h.contains('/') || h.contains("://") {
                errors.push(format!("registry.plainHttp: {h:?} must be host[:port]"));
            }
        }
        for (host, hc) in &r.hosts {
            if host.is_empty() || host.contains('/') {
                errors.push(format!("registry.hosts: {host:?} must be host[:port]"));
            }
            if let Some(p) = &hc.ca_file {
                exist(
                    &mut errors,
                    &format!("registry.hosts.{host}.caFile"),
                    p,
                    false,
                );
            }
            match (&hc.username, &hc.password_file) {
                (Some(_), None) | (None, Some(_)) => errors.push(format!(
                    "registry.hosts.{host}: username and passwordFile go together"
                )),
                (Some(_), Some(p)) => exist(
                    &mut errors,
                    &format!("registry.hosts.{host}.passwordFile"),
                    p,
                    false,
                ),
                _ => {}
            }
        }
        for (k, v) in [
            ("registry.maxSignatures", r.max_signatures),
            ("registry.concurrency", r.concurrency),
        ] {
            if v == Some(0) {
                errors.push(format!("{k}: must be at least 1"));
            }
        }

        let l = &self.limits;
        let d = signet_server::Limits::default();
        let dur = |key: &str,
                   v: Option<Dur>,
                   default: Duration,
                   min: Duration,
                   max: Duration,
                   errors: &mut Vec<String>| {
            let v = v.map(|d| d.0).unwrap_or(default);
            if v < min || v > max {
                errors.push(format!("{key}: {v:?} is out of range [{min:?}, {max:?}]"));
            }
            v
        };
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let request_deadline = dur(
            "limits.requestDeadline",
            l.request_deadline,
            d.request_deadline,
            ms(100),
            s(29),
            &mut errors,
        );
        let header_read_timeout = dur(
            "limits.headerReadTimeout",
            l.header_read_timeout,
            d.header_read_timeout,
            ms(100),
            s(300),
            &mut errors,
        );
        let body_read_timeout = dur(
            "limits.bodyReadTimeout",
            l.body_read_timeout,
            d.body_read_timeout,
            ms(100),
            s(300),
            &mut errors,
        );
        let handshake_timeout = dur(
            "limits.handshakeTimeout",
            l.handshake_timeout,
            d.handshake_timeout,
            ms(100),
            s(300),
            &mut errors,
        );
        let shutdown_grace = dur(
            "limits.shutdownGrace",
            l.shutdown_grace,
            d.shutdown_grace,
            s(0),
            s(3600),
            &mut errors,
        );
        let count = |key: &str,
                     v: Option<usize>,
                     default: usize,
                     min: usize,
                     max: usize,
                     errors: &mut Vec<String>| {
            let v = v.unwrap_or(default);
            if v < min || v > max {
                errors.push(format!("{key}: {v} is out of range [{min}, {max}]"));
            }
            v
        };
        let max_keys = count(
            "limits.maxKeysPerRequest",
            l.max_keys_per_request,
            d.max_keys,
            1,
            100_000,
            &mut errors,
        );
        let max_body_bytes = count(
            "limits.maxBodyBytes",
            l.max_body_bytes,
            d.max_body_bytes,
            1024,
            64 << 20,
            &mut errors,
        );
        let key_concurrency = count(
            "limits.keyConcurrency",
            l.key_concurrency,
            d.key_concurrency,
            1,
            10_000,
            &mut errors,
        );
        let max_connections = count(
            "limits.maxConnections",
            l.max_connections,
            d.max_connections,
            1,
            100_000,
            &mut errors,
        );
        let max_concurrent_verifications = count(
            "limits.maxConcurrentVerifications",
            l.max_concurrent_verifications,
            32,
            1,
            10_000,
            &mut errors,
        );

        let c = &self.cache;
        let success_ttl = dur(
            "cache.successTTL",
            c.success_ttl,
            s(300),
            s(0),
            s(86_400),
            &mut errors,
        );
        let failure_ttl = dur(
            "cache.failureTTL",
            c.failure_ttl,
            s(30),
            s(0),
            s(86_400),
            &mut errors,
        );
        let tag_ttl = dur(
            "cache.tagTTL",
            c.tag_ttl,
            s(30),
            s(0),
            s(86_400),
            &mut errors,
        );

        let rd = signet_server::ReloadSettings::default();
        let debounce = dur(
            "reload.debounce",
            self.reload.debounce,
            rd.debounce,
            ms(0),
            s(60),
            &mut errors,
        );
        let poll_interval = dur(
            "reload.pollInterval",
            self.reload.poll_interval,
            rd.poll_interval,
            ms(100),
            s(86_400),
            &mut errors,
        );

        for (k, list) in [
            (
                "admission.excludeNamespaces",
                &self.admission.exclude_namespaces,
            ),
            ("admission.excludeImages", &self.admission.exclude_images),
        ] {
            if list.iter().any(|p| p.trim().is_empty()) {
                errors.push(format!("{k}: empty pattern"));
            }
        }

        let azure = self
            .azure
            .as_ref()
            .and_then(|a| a.validate(&mut errors, &exist));

        let log_level = self.log.level.clone().unwrap_or_else(|| "info".into());
        if !matches!(
            log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            errors.push(format!(
                "log.level: {log_level:?} is not one of error, warn, info, debug, trace"
            ));
        }

        match (listen, cert, key, policy, store) {
            (Some(listen), Some(cert), Some(key), Some(policy), Some(store))
                if errors.is_empty() =>
            {
                Ok(ServeSettings {
                    server: signet_server::ServerSettings {
                        listen,
                        metrics_listen,
                        limits: signet_server::Limits {
                            request_deadline,
                            max_keys,
                            max_body_bytes,
                            key_concurrency,
                            header_read_timeout,
                            body_read_timeout,
                            handshake_timeout,
                            max_connections,
                            shutdown_grace,
                        },
                        admission: signet_server::AdmissionSettings {
                            exclude_namespaces: self.admission.exclude_namespaces.clone(),
                            exclude_images: self.admission.exclude_images.clone(),
                        },
                        reload: signet_server::ReloadSettings {
                            debounce,
                            poll_interval,
                        },
                    },
                    tls: signet_server::TlsSettings {
                        cert,
                        key,
                        client_ca: self.tls.client_ca_file.clone(),
                    },
                    trust_policy: policy,
                    trust_store: store,
                    engine: EngineSettings {
                        registry: self.registry.clone(),
                        max_concurrent_verifications,
                        success_ttl,
                        failure_ttl,
                        tag_ttl,
                        azure: azure.clone(),
                    },
                    log_level,
                    azure,
                })
            }
            _ => anyhow::bail!("invalid configuration:\n  {}", errors.join("\n  ")),
        }
    }
}

/// What a configuration is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Serve,
    Verify,
}

/// The parts of the configuration `signet verify --config` uses.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub trust_policy: PathBuf,
    pub trust_store: PathBuf,
    pub engine: EngineSettings,
}

impl EngineSettings {
    /// Reads the credentials and CA files and builds the engine configuration.
    pub fn engine_config(&self) -> anyhow::Result<signet_engine::EngineConfig> {
        use anyhow::Context as _;
        let r = &self.registry;
        let mut registry = signet_registry::RegistryConfig::default();
        let mut docker = match &r.docker_config {
            Some(p) => signet_registry::DockerConfig::from_file(p)
                .with_context(|| format!("registry.dockerConfig {}", p.display()))?,
            None => signet_registry::DockerConfig::default(),
        };
        for p in &r.ca_files {
            let pem =
                std::fs::read(p).with_context(|| format!("registry.caFiles {}", p.display()))?;
            registry
                .add_ca_pem(&pem)
                .with_context(|| format!("registry.caFiles {}", p.display()))?;
        }
        for h in &r.plain_http {
            registry.allow_plain_http(h);
        }
        for (host, hc) in &r.hosts {
            if let Some(p) = &hc.ca_file {
                let pem = std::fs::read(p)
                    .with_context(|| format!("registry.hosts.{host}.caFile {}", p.display()))?;
                registry
                    .add_host_ca_pem(host, &pem)
                    .with_context(|| format!("registry.hosts.{host}.caFile {}", p.display()))?;
            }
            if hc.plain_http {
                registry.allow_plain_http(host);
            }
            if !hc.token_realms.is_empty() {
                registry
                    .token_realms
                    .entry(host.clone())
                    .or_default()
                    .extend(hc.token_realms.iter().cloned());
            }
            if let (Some(user), Some(pf)) = (&hc.username, &hc.password_file) {
                let password = std::fs::read_to_string(pf).with_context(|| {
                    format!("registry.hosts.{host}.passwordFile {}", pf.display())
                })?;
                docker.insert(
                    host,
                    signet_registry::Credential::Basic {
                        username: user.clone(),
                        password: password.trim_end_matches(['\n', '\r']).to_owned(),
                    },
                );
            }
        }
        registry.credentials = docker.into_source();
        if let Some(azure) = self.azure.as_ref().filter(|a| !a.acr_registries.is_empty()) {
            // ACR hosts sign in with Entra ID; every other registry keeps the Docker config.
            let transport = signet_azure::HttpTransport::new();
            let credential = azure.credential(&transport)?;
            registry.credentials = signet_azure::AcrTokenSource::new(
                &azure.acr_registries,
                credential,
                transport,
                registry.credentials.clone(),
            )
            .into_source();
        }
        if let Some(n) = r.max_signatures {
            registry.max_signatures = n;
        }
        if let Some(n) = r.max_retries {
            registry.max_retries = n;
        }
        if let Some(n) = r.concurrency {
            registry.concurrency = n;
        }
        Ok(signet_engine::EngineConfig {
            registry,
            max_concurrent_verifications: self.max_concurrent_verifications,
            success_ttl: self.success_ttl,
            failure_ttl: self.failure_ttl,
            tag_ttl: self.tag_ttl,
            fixed_time: None,
            ..signet_engine::EngineConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("4s"), Ok(Duration::from_secs(4)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_place() {
        let e = serde_yaml::from_str::<Config>("limits:\n  requestDeadlin: 4s\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `requestDeadlin`"), "{e}");
        assert!(e.contains("limits"), "{e}");
        let e = serde_yaml::from_str::<Config>("limits:\n  requestDeadline: 4 parsecs\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid duration"), "{e}");
    }

    #[test]
    fn validation_names_every_problem() {
        let c: Config = serde_yaml::from_str(
            "listen: nowhere\nlimits:\n  requestDeadline: 60s\n  maxKeysPerRequest: 0\nlog:\n  level: loud\n",
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        for needle in [
            "listen: \"nowhere\"",
            "tls.certFile",
            "tls.clientCAFile",
            "trust.policyFile",
            "limits.requestDeadline: 60s",
            "limits.maxKeysPerRequest: 0",
            "log.level",
        ] {
            assert!(e.contains(needle), "{needle} not in {e}");
        }
    }

    const BASE: &str =
        "tls: {certFile: /x/tls.crt, keyFile: /x/tls.key, clientCAFile: /x/ca.crt}\n\
                        trust: {policyFile: /x/trustpolicy.json, storeRoot: /x/store}\n";

    #[test]
    fn azure_section_is_validated_with_precise_messages() {
        let ok: Config = serde_yaml::from_str(&format!(
            "{BASE}azure:\n  workloadIdentity: true\n  acrRegistries: [MyRegistry.azurecr.io]\n  \
             keyVault:\n    url: https://signetkv.vault.azure.net/\n    refreshInterval: 30m\n    \
             certificates:\n      - {{name: wabbit-networks-io, store: \"ca:wabbit-networks\"}}\n      \
             - {{name: tsa-root, version: 0123abcd, store: \"tsa:tsa\"}}\n"
        ))
        .unwrap();
        let settings = ok.validate_schema().unwrap();
        let azure = settings.azure.unwrap();
        assert_eq!(
            azure.acr_registries,
            vec!["myregistry.azurecr.io".to_owned()]
        );
        assert_eq!(
            azure.identity,
            AzureIdentity::WorkloadIdentity {
                client_id: None,
                tenant_id: None
            }
        );
        let kv = azure.key_vault.unwrap();
        assert_eq!(kv.url, "https://signetkv.vault.azure.net");
        assert_eq!(kv.refresh_interval, Duration::from_secs(1800));
        assert_eq!(kv.certificates[0].store_name, "wabbit-networks");
        assert_eq!(kv.certificates[1].version.as_deref(), Some("0123abcd"));
        assert!(settings.engine.azure.is_some());
        // Files are checked by validate(), not by validate_schema().
        assert!(ok
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tls.certFile: /x/tls.crt"));

        let bad: Config = serde_yaml::from_str(&format!(
            "{BASE}azure:\n  workloadIdentity: true\n  managedIdentityClientId: nope\n  \
             acrRegistries: [docker.io, https://x.azurecr.io]\n  keyVault:\n    \
             url: http://kv.example\n    refreshInterval: 5s\n    \
             certificates: [{{name: bad_name, store: \"root:x\"}}]\n"
        ))
        .unwrap();
        let e = bad.validate_schema().unwrap_err().to_string();
        for needle in [
            "azure.managedIdentityClientId and azure.workloadIdentity exclude each other",
            "azure.acrRegistries: \"docker.io\" is not an Azure Container Registry",
            "azure.acrRegistries: \"https://x.azurecr.io\"",
            "azure.keyVault.url: \"http://kv.example\"",
            "azure.keyVault.refreshInterval",
            "azure.keyVault.certificates[0].name: \"bad_name\"",
            "azure.keyVault.certificates[0].store: \"root:x\" must be TYPE:NAME",
        ] {
            assert!(e.contains(needle), "{needle} not in {e}");
        }
        let empty: Config = serde_yaml::from_str(&format!("{BASE}azure: {{}}\n")).unwrap();
        let e = empty.validate_schema().unwrap_err().to_string();
        assert!(e.contains("azure: nothing to do"), "{e}");
        let e = serde_yaml::from_str::<Config>("azure:\n  acrRegistry: [x]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `acrRegistry`"), "{e}");
    }
}
