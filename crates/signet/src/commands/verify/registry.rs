//! `signet verify REFERENCE…` against registries: builds a [`signet_engine::Engine`] from the
//! flags and verifies every reference concurrently, each under its own deadline (`--timeout`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use signet_engine::{Engine, EngineConfig, TrustSnapshot};
use signet_registry::{DockerConfig, RegistryConfig};

use super::{inputs, Args, Inputs};
use crate::commands::Status;
use crate::input;
use crate::output;
use crate::verification::{self, PolicyKind};

/// Largest `--registry-ca` file read.
const MAX_CA_BYTES: u64 = 1024 * 1024;

pub(super) fn run(args: &Args) -> anyhow::Result<Status> {
    if args.scope.is_some() {
        eprintln!("warning: --scope only applies with --oci-layout; registry references are matched by their own registry/repository");
    }
    let Inputs {
        trust_policy: policy_path,
        trust_store: store_root,
        engine: from_config,
    } = inputs(args)?;
    let policy = verification::load_policy(&policy_path, PolicyKind::Oci)?;
    if !store_root.is_dir() {
        bail!(
            "trust store root {} is not a readable directory",
            store_root.display()
        );
    }
    let trust = TrustSnapshot::from_document(policy.doc, &store_root, 1);
    for (statement, e) in trust.load_errors() {
        eprintln!(
            "warning: trust policy statement {statement:?}: {e}; signatures that need this store will fail"
        );
    }

    let mut config = match from_config {
        Some(settings) => settings.engine_config()?,
        None => EngineConfig {
            registry: registry_from_flags(args)?,
            // Online revocation checking, as `notation verify` does.
            revocation: Some(signet_engine::revocation::RevocationConfig::default()),
            ..EngineConfig::default()
        },
    };
    for host in &config.registry.plain_http {
        eprintln!("warning: INSECURE: plain HTTP (no TLS) to registry {host}: credentials and answers can be read and altered in transit");
    }
    config.fixed_time = args.at;
    config.user_metadata = args.user_metadata.iter().cloned().collect();
    let engine = Engine::new(config, trust).context("cannot set up registry verification")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let timeout = Duration::from_secs(args.timeout);
    let verdicts = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + timeout;
        futures_util::future::join_all(
            args.references
                .iter()
                .map(|reference| engine.verify(reference, deadline)),
        )
        .await
    });
    let results: Vec<_> = verdicts.iter().map(verification::from_engine).collect();
    output::print_results(&results, args.output)?;
    Ok(Status::from_verified(output::all_verified(&results)))
}

/// Registry settings from `--docker-config` (default: Docker's own `config.json`),
/// `--registry-ca` and `--plain-http`; for ACR registries the Docker config names nothing
/// for, the Azure CLI's login.
fn registry_from_flags(args: &Args) -> anyhow::Result<RegistryConfig> {
    let mut registry = RegistryConfig::default();
    let docker_path = args.docker_config.clone().or_else(default_docker_config);
    let docker = match &docker_path {
        Some(path) => DockerConfig::from_file(path)
            .with_context(|| format!("docker config {}", path.display()))?,
        None => DockerConfig::default(),
    };
    let acr_hosts: BTreeSet<String> = args
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
            std::sync::Arc::new(signet_registry::NoCredentials),
        );
        std::sync::Arc::new(DockerThenAzureCli {
            docker,
            acr,
            announce: args.output == crate::output::OutputFormat::Text,
        })
    };
    if let Some(path) = &args.registry_ca {
        let pem = input::read_file(path, MAX_CA_BYTES, "registry CA")?;
        registry
            .add_ca_pem(&pem)
            .with_context(|| format!("registry CA file {}", path.display()))?;
    }
    for host in &args.plain_http {
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
    docker: std::sync::Arc<dyn signet_registry::TokenSource>,
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
