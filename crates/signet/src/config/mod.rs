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
//! namespaces:                     # optional: trust of their own for some namespaces
//!   team-a:                       # keys [team-a]IMAGE, and /v1/admit objects in team-a
//!     trust:
//!       policyFile: /etc/signet/namespaces/team-a/policy/trustpolicy.json
//!       storeRoot: /etc/signet/namespaces/team-a/truststore
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
//!   handshakeTimeout: 2s           # TLS handshake (client certificate included)
//!   maxHandshakes: 64              # handshakes in progress (not yet authenticated)
//!   maxHandshakesPerPeer: 16       # of them from one client IP
//!   maxConnections: 1024           # authenticated connections
//!   probeMaxConnections: 64        # plain-HTTP probe listener (a quarter per client IP)
//!   shutdownGrace: 20s
//! cache:
//!   successTTL: 5m
//!   failureTTL: 30s
//!   tagTTL: 30s
//! revocation:                 # online CRL/OCSP checking, as notation does (default: on)
//!   enabled: true
//!   fetchTimeout: 5s
//!   maxCrlAge: 1h
//!   allow: [crl.corp.example, 10.20.0.0/16]  # internal CRL/OCSP servers (private ranges are denied)
//!   deny: ["*.internal.example"]             # never fetched from, even when public
//! admission:
//!   excludeNamespaces: [kube-system, gatekeeper-system]
//!   excludeImages: ["registry.k8s.io/*"]   # host glob / path glob; never across the host
//!                                          # (`myreg.io*` = images of host myreg.io only)
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
//!     url: https://myvault.vault.azure.net  # any https:// vault host (sovereign, Azure Stack Hub)
//!     refreshInterval: 1h
//!     certificates:
//!       - name: wabbit-networks-io  # certificate name in the vault
//!         store: ca:wabbit-networks # the trust store the policy names
//!         # version: 0123abcd       # optional: one fixed version (trusted while enabled)
//!         # versions: 2             # optional: the newest N enabled versions (default 1)
//!         # chainFromSecret: true   # optional: anchors from the chain in the certificate's
//!         #                         # secret (PEM or PKCS#12; needs secret get permission)
//! multiArch:                      # image indexes: see `multiarch.rs` (not in trustpolicy.json,
//!   statements:                   # which must stay valid for notation)
//!     production:                 # trust-policy statement name
//!       mode: platforms           # index (default) | platforms | indexOrPlatforms
//!       platforms: [linux/amd64, linux/arm64]   # optional filter
//! dct:                            # Docker Content Trust while migrating to Notation
//!   migrationUntil: "2028-03-31T00:00:00Z"   # DCT alone admits only before this instant
//!   timeoutSeconds: 10            # per request to a Notary server
//!   repositories:
//!     - scope: myregistry.azurecr.io/team/*  # a repository, or a prefix ending in /*
//!       server: https://notary.example:4443
//!       rootKeys: ["<64-hex root key ID>"]   # and/or rootCertificates: [PEM]; no TOFU
//!       serverCa: "-----BEGIN CERTIFICATE-----..."   # optional
//! ```
//!
//! Namespaced trust: a provider key `[NAMESPACE]IMAGE` (and an object of NAMESPACE at
//! `/v1/admit`) is verified under `namespaces.NAMESPACE.trust` when the namespace is listed,
//! else under `trust`. Each namespace's policy and stores are files, reloaded like the
//! cluster's; Key Vault stores (`azure.keyVault`) apply to the cluster's trust only. At most
//! [`MAX_NAMESPACES`] namespaces.
//!
//! `dct`: a tag reference whose repository a `dct` scope covers and that Notation does not
//! verify is verified with Docker Content Trust; before `migrationUntil` that admits it
//! (answers carry a signature entry with `format: "dct"`), afterwards it does not, and the
//! answer says the window ended. The Notary server's credentials come from the Docker config
//! (`registry.dockerConfig`, entry for the server's host).
//!
//! Key Vault refresh: a certificate deleted or disabled in the vault leaves trust at the next
//! refresh; a vault that cannot be reached keeps the last good set (logged, counted).
//!
//! Outbound connections (registries, Entra ID, Key Vault, CRL/OCSP) honour `HTTPS_PROXY`,
//! `HTTP_PROXY`, `NO_PROXY` (either case) and trust the system roots, `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` besides the Mozilla roots and `registry.caFiles`.
//!
//! [`Config::validate`] also checks that every file named exists; [`Config::validate_schema`]
//! checks everything else (for configurations rendered for another machine, e.g. the Helm
//! chart's, whose files exist only in the pod).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod azure;
mod build;
mod multiarch;
mod validate;

pub use azure::{
    AzureConfig, AzureIdentity, AzureSettings, KeyVaultCertificateConfig, KeyVaultConfig,
    KeyVaultSettings, ServicePrincipalConfig,
};
pub use multiarch::{MultiArchConfig, MultiArchStatement};
pub use validate::VerifySettings;

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
    /// Namespaces with a trust configuration of their own.
    #[serde(default)]
    pub namespaces: BTreeMap<String, NamespaceConfig>,
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
    #[serde(default)]
    pub revocation: RevocationFileConfig,
    pub azure: Option<AzureConfig>,
    #[serde(default)]
    pub multi_arch: MultiArchConfig,
    /// Docker Content Trust (Notary v1) during a migration to Notation (`signet_dct`).
    pub dct: Option<signet_dct::DctConfig>,
}

/// `revocation:` — online certificate revocation checking (CRLs and OCSP over HTTP).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationFileConfig {
    /// Default true. When false, a chain that carries revocation information has an unknown
    /// status (`REVOCATION_UNKNOWN` where the trust policy enforces revocation).
    pub enabled: Option<bool>,
    pub fetch_timeout: Option<Dur>,
    pub max_crl_age: Option<Dur>,
    /// Host names, `*.domain` wildcards, addresses or CIDR ranges fetches may reach although
    /// they are loopback, private, link-local or otherwise internal (denied by default).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Host names, wildcards, addresses or ranges never fetched from (wins over `allow`).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `azure:` — see the module docs.
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

/// How many namespaces may have a trust configuration of their own: each has a verdict
/// cache of its own (up to the engine's `max_cache_entries`), so the number is bounded.
pub const MAX_NAMESPACES: usize = 64;

/// `namespaces.NAME:` — one namespace's own settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Its trust policy and stores (both required).
    #[serde(default)]
    pub trust: TrustConfig,
}

/// A namespace's trust configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceTrust {
    pub trust_policy: PathBuf,
    pub trust_store: PathBuf,
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
    pub max_handshakes: Option<usize>,
    pub max_handshakes_per_peer: Option<usize>,
    pub max_connections: Option<usize>,
    pub probe_max_connections: Option<usize>,
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
    /// Namespaces with a trust configuration of their own.
    pub namespaces: BTreeMap<String, NamespaceTrust>,
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
    pub revocation: Option<signet_engine::revocation::RevocationConfig>,
    pub azure: Option<AzureSettings>,
    /// `multiArch.statements`, by trust-policy statement name.
    pub multi_arch: BTreeMap<String, signet_engine::MultiArchPolicy>,
    /// `dct:`, validated (scopes, servers, pinned roots, migration window).
    pub dct: Option<signet_dct::Dct>,
}

/// The trust and registry flags `serve`, `verify` and `audit` share, which override the
/// configuration file.
#[derive(Debug, Clone, Copy)]
pub struct FlagOverrides<'a> {
    pub trust_policy: Option<&'a Path>,
    pub trust_store: Option<&'a Path>,
    pub docker_config: Option<&'a Path>,
    pub registry_ca: &'a [std::path::PathBuf],
    pub plain_http: &'a [String],
}

impl Config {
    /// Applies command-line flags over the file: given paths replace the file's, CA files
    /// and plain-HTTP hosts are added to its lists.
    pub fn apply(&mut self, flags: FlagOverrides<'_>) {
        if let Some(p) = flags.trust_policy {
            self.trust.policy_file = Some(p.to_owned());
        }
        if let Some(p) = flags.trust_store {
            self.trust.store_root = Some(p.to_owned());
        }
        if let Some(p) = flags.docker_config {
            self.registry.docker_config = Some(p.to_owned());
        }
        self.registry
            .ca_files
            .extend(flags.registry_ca.iter().cloned());
        self.registry
            .plain_http
            .extend(flags.plain_http.iter().cloned());
    }
}

/// The configuration of `verify --config` and `audit --config`: the file, the flags over it,
/// validated without the server's parts. Returns the configuration too (for the parts a
/// command reads itself, such as limits and admission exclusions).
pub fn load_for_verify(
    path: &Path,
    flags: FlagOverrides<'_>,
) -> anyhow::Result<(Config, VerifySettings)> {
    let mut config = load(path)?;
    config.apply(flags);
    let settings = config
        .validate_for_verify()
        .map_err(|e| e.context(format!("configuration {}", path.display())))?;
    Ok((config, settings))
}

/// Reads and parses a configuration file (unknown keys are errors).
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let bytes = crate::input::read_file(path, 1024 * 1024, "configuration")?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Config::default());
    }
    yaml_serde::from_slice(&bytes)
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

#[cfg(test)]
mod tests;
