//! `signet verify REFERENCE…` against registries: builds a [`signet_engine::Engine`] from the
//! flags ([`crate::engine_setup`]) and verifies every reference concurrently, each under its
//! own deadline (`--timeout`).

use std::time::Duration;

use super::{inputs, Args, Inputs};
use crate::commands::Status;
use crate::engine_setup::{self, EngineOptions, RegistryFlags};

pub(super) fn run(args: &Args) -> anyhow::Result<Status> {
    if args.scope.is_some() {
        eprintln!("warning: --scope only applies with --oci-layout; registry references are matched by their own registry/repository");
    }
    let Inputs {
        trust_policy: policy_path,
        trust_store: store_root,
        engine: from_config,
    } = inputs(args)?;
    let engine = engine_setup::build(EngineOptions {
        trust_policy: &policy_path,
        trust_store: &store_root,
        settings: from_config.as_ref(),
        registry_flags: &RegistryFlags {
            docker_config: args.docker_config.clone(),
            registry_ca: args.registry_ca.clone(),
            plain_http: args.plain_http.clone(),
            references: args.references.clone(),
            announce: args.output == crate::output::OutputFormat::Text,
        },
        at: args.evaluation.at,
        user_metadata: args.evaluation.user_metadata.iter().cloned().collect(),
    })?
    .engine;

    let runtime = engine_setup::runtime()?;
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
    crate::commands::print_verdicts(&verdicts, args.output)
}
