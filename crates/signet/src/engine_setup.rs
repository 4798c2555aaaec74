//! Building a [`signet_engine::Engine`] from command-line options, for the commands that
//! verify images in registries (`verify REFERENCE…`, `audit`): trust material from the
//! policy file and store root, registry settings from the service configuration or, without
//! one, from the registry flags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use signet_engine::{Engine, EngineConfig, TrustSnapshot};
use signet_notation::Instant;
use signet_registry::{DockerConfig, RegistryConfig};

use crate::input;
use crate::verification::{self, PolicyKind};

/// Largest `--registry-ca` file read.
const MAX_CA_BYTES: u64 = 1024 * 1024;

/// `--docker-config`, `--registry-ca`, `--plain-http`: the registry settings used when no
/// service configuration is given (with one, the flags are merged into it beforehand).
#[derive(Debug, Clone, Default)]
pub struct RegistryFlags {
    pub docker_config: Option<PathBuf>,
    pub registry_ca: Option<PathBuf>,
    pub plain_http: Vec<String>,
    /// The references the command verifies: the ACR registries among them may use the Azure
    /// CLI's login when the Docker config has no credential for them (no other host gets it).
    pub references: Vec<String>,
    /// Say on stderr when the Azure CLI's login is used (text output only).
    pub announce: bool,
}

/// Everything an engine is built from.
#[derive(Debug, Clone)]
pub struct EngineOptions<'a> {
    pub trust_policy: &'a Path,
    pub trust_store: &'a Path,
    /// The registry, cache, revocation and Azure settings of `--config`, when given.
    pub settings: Option<&'a crate::config::EngineSettings>,
    /// Used only without `settings`.
    pub registry_flags: &'a RegistryFlags,
    /// `--at`.
    pub at: Option<Instant>,
    /// `--user-metadata`.
    pub user_metadata: BTreeMap<String, String>,
}

/// An engine and the number of verifications it runs at once.
pub struct BuiltEngine {
    pub engine: Engine,
    pub max_concurrent_verifications: usize,
}

impl std::fmt::Debug for BuiltEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltEngine")
            .field(
                "max_concurrent_verifications",
                &self.max_concurrent_verifications,
            )
            .finish_non_exhaustive()
    }
}

/// Loads the trust policy (an invalid one is an error), the trust stores (a store that does
/// not load is a warning on stderr, and the signatures that need it fail, as in notation),
/// and builds the engine. Insecure registry settings are announced on stderr.
pub fn build(options: EngineOptions<'_>) -> anyhow::Result<BuiltEngine> {
    let trust = load_trust(&options)?;
    let mut config = engine_config(&options)?;
    for host in &config.registry.plain_http {
        eprintln!("warning: INSECURE: plain HTTP (no TLS) to registry {host}: credentials and answers can be read and altered in transit");
    }
    config.fixed_time = options.at;
    config.user_metadata = options.user_metadata;
    let max_concurrent_verifications = config.max_concurrent_verifications;
    let engine = Engine::new(config, trust).context("cannot set up registry verification")?;
    Ok(BuiltEngine {
        engine,
        max_concurrent_verifications,
    })
}

/// An engine for another trust configuration (a namespace's) that shares `base`'s registry
/// client, tag cache, permits and budgets ([`Engine::sibling`]); `options` names its trust.
pub fn build_sibling(base: &Engine, options: EngineOptions<'_>) -> anyhow::Result<Engine> {
    let trust = load_trust(&options)?;
    let mut config = engine_config(&options)?;
    config.fixed_time = options.at;
    config.user_metadata = options.user_metadata;
    Ok(base.sibling(&config, trust))
}

fn engine_config(options: &EngineOptions<'_>) -> anyhow::Result<EngineConfig> {
    Ok(match options.settings {
        Some(settings) => settings.engine_config()?,
        None => EngineConfig {
            registry: registry_from_flags(options.registry_flags)?,
            // Online revocation checking, as `notation verify` does.
            revocation: Some(signet_engine::revocation::RevocationConfig::default()),
            ..EngineConfig::default()
        },
    })
}

/// The trust snapshot `options` names, with warnings for what it lacks.
fn load_trust(options: &EngineOptions<'_>) -> anyhow::Result<TrustSnapshot> {
    let policy = verification::load_policy(options.trust_policy, PolicyKind::Oci)?;
    if !options.trust_store.is_dir() {
        bail!(
            "trust store root {} is not a readable directory",
            options.trust_store.display()
        );
    }
    if let Some(kv) = options
        .settings
        .and_then(|s| s.azure.as_ref())
        .and_then(|a| a.key_vault.as_ref())
    {
        // Only `serve` fetches them (and keeps them fresh).
        eprintln!(
            "warning: azure.keyVault {}: its certificates are not fetched here; trust stores only it provides are missing",
            kv.url
        );
    }
    if let Some(settings) = options.settings {
        for name in policy.unknown_statements(settings.multi_arch.keys()) {
            eprintln!(
                "warning: multiArch.statements.{name}: the trust policy has no statement of that name; the option applies to nothing"
            );
        }
    }
    let trust = TrustSnapshot::from_document(policy.doc, options.trust_store, 1);
    for (statement, e) in trust.load_errors() {
        eprintln!(
            "warning: trust policy statement {statement:?}: {e}; signatures that need this store will fail"
        );
    }
    Ok(trust)
}

/// The async runtime the CLI's registry commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Registry settings from `--docker-config` (default: Docker's own `config.json`),
/// `--registry-ca` and `--plain-http`; for ACR registries the Docker config names nothing
/// for, the Azure CLI's login.
fn registry_from_flags(flags: &RegistryFlags) -> anyhow::Result<RegistryConfig> {
    let mut registry = RegistryConfig::default();
    let docker_path = flags.docker_config.clone().or_else(default_docker_config);
    let docker = match &docker_path {
        Some(path) => DockerConfig::from_file(path)
            .with_context(|| format!("docker config {}", path.display()))?,
        None => DockerConfig::default(),
    };
    let acr_hosts: BTreeSet<String> = flags
        .references
        .iter()
        .filter_map(|r| signet_registry::Reference::parse(r).ok())
        .map(|r| r.registry().to_ascii_lowercase())
        .filter(|host| signet_azure::is_acr_host(host))
        .collect();
    registry.credentials = if acr_hosts.is_empty() {
        docker.into_source()
    } else {
        let transport = signet_azure::HttpTransport::new();
        let credential = signet_azure::EntraCredential::new(
            signet_azure::CredentialConfig::AzureCli {
                tenant_id: None,
                search_path: None,
            },
            &transport,
        )
        .map_err(anyhow::Error::msg)?;
        let docker = docker.into_source();
        let acr = signet_azure::AcrTokenSource::new(
            acr_hosts,
            credential,
            transport,
            Arc::new(signet_registry::NoCredentials),
        );
        Arc::new(DockerThenAzureCli {
            docker,
            acr,
            announce: flags.announce,
        })
    };
    if let Some(path) = &flags.registry_ca {
        let pem = input::read_file(path, MAX_CA_BYTES, "registry CA")?;
        registry
            .add_ca_pem(&pem)
            .with_context(|| format!("registry CA file {}", path.display()))?;
    }
    for host in &flags.plain_http {
        registry.allow_plain_http(host);
    }
    Ok(registry)
}

/// Docker's own configuration, as `docker login` writes it: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`, when the file exists.
fn default_docker_config() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".docker"),
    };
    let file = dir.join("config.json");
    file.is_file().then_some(file)
}

/// The Docker config's credential; for an ACR registry it has none for, the Azure CLI's login
/// exchanged for an ACR refresh token (what `az acr login` does).
#[derive(Debug)]
struct DockerThenAzureCli {
    docker: Arc<dyn signet_registry::TokenSource>,
    acr: signet_azure::AcrTokenSource,
    announce: bool,
}

impl signet_registry::TokenSource for DockerThenAzureCli {
    fn credential<'a>(
        &'a self,
        registry: &'a str,
    ) -> signet_registry::BoxFuture<
        'a,
        Result<Option<signet_registry::Credential>, signet_registry::RegistryError>,
    > {
        Box::pin(async move {
            if let Some(found) = self.docker.credential(registry).await? {
                return Ok(Some(found));
            }
            if !signet_azure::is_acr_host(registry) {
                return Ok(None);
            }
            if self.announce {
                eprintln!(
                    "Using the Azure CLI's login (az login) for {registry}: the Docker config has no credential for it"
                );
            }
            self.acr.credential(registry).await
        })
    }
}
