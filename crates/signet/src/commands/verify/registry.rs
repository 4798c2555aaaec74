//! `signet verify REFERENCE…` against registries: builds a [`signet_engine::Engine`] from the
//! flags and verifies every reference concurrently, each under its own deadline (`--timeout`).

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

/// Registry settings from `--docker-config`, `--registry-ca` and `--plain-http` alone.
fn registry_from_flags(args: &Args) -> anyhow::Result<RegistryConfig> {
    let mut registry = RegistryConfig::default();
    if let Some(path) = &args.docker_config {
        let config = DockerConfig::from_file(path)
            .with_context(|| format!("docker config {}", path.display()))?;
        registry.credentials = config.into_source();
    }
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
