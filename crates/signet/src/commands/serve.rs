//! `signet serve`: parse the configuration, build, run until SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::Status;
use crate::config::{self, Config, Dur};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The service configuration (YAML); the flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration (and the TLS and trust material it names), then exit:
    /// 0 valid, 2 invalid.
    #[arg(long)]
    check_config: bool,
    /// TLS listen address (default 0.0.0.0:8443).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Plain-HTTP listener for /healthz, /readyz and /metrics only.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Server certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// CA of the client certificates (Gatekeeper's ca.crt): clients must present one.
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Serve without client certificates (anyone reaching the port can call; logged loudly).
    #[arg(long)]
    insecure_no_client_auth: bool,
    /// Notation trust policy (trustpolicy.json).
    #[arg(long, value_name = "FILE")]
    trust_policy: Option<PathBuf>,
    /// Trust-store root (DIR/x509/{ca,signingAuthority,tsa}/NAME/*.crt).
    #[arg(long, value_name = "DIR")]
    trust_store: Option<PathBuf>,
    /// Registry credentials (Docker config.json).
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Extra PEM CA certificates trusted for registry TLS (repeatable).
    #[arg(long, value_name = "FILE")]
    registry_ca: Vec<PathBuf>,
    /// Allow plain HTTP to this registry (repeatable).
    #[arg(long, value_name = "HOST[:PORT]")]
    plain_http: Vec<String>,
    /// Per-request deadline, e.g. 4s (keep Gatekeeper's Provider timeout above it).
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    request_deadline: Option<std::time::Duration>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

impl Args {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => config::load(p)?,
            None => Config::default(),
        };
        if let Some(v) = &self.listen {
            c.listen = Some(v.clone());
        }
        if let Some(v) = &self.metrics_listen {
            c.metrics_listen = Some(v.clone());
        }
        if let Some(v) = &self.tls_cert {
            c.tls.cert_file = Some(v.clone());
        }
        if let Some(v) = &self.tls_key {
            c.tls.key_file = Some(v.clone());
        }
        if let Some(v) = &self.client_ca {
            c.tls.client_ca_file = Some(v.clone());
            c.tls.insecure_no_client_auth = false;
        }
        if self.insecure_no_client_auth {
            c.tls.insecure_no_client_auth = true;
            c.tls.client_ca_file = None;
        }
        c.apply(config::FlagOverrides {
            trust_policy: self.trust_policy.as_deref(),
            trust_store: self.trust_store.as_deref(),
            docker_config: self.docker_config.as_deref(),
            registry_ca: &self.registry_ca,
            plain_http: &self.plain_http,
        });
        if let Some(v) = self.request_deadline {
            c.limits.request_deadline = Some(Dur(v));
        }
        if let Some(v) = &self.log_level {
            c.log.level = Some(v.clone());
        }
        Ok(c)
    }
}

pub(super) fn run(args: Args) -> anyhow::Result<Status> {
    let settings = args.config()?.validate()?;
    if args.check_config {
        signet_server::tls::build_server_config(&settings.tls).map_err(anyhow::Error::msg)?;
        settings.engine.engine_config()?;
        let policy = crate::verification::load_policy(
            &settings.trust_policy,
            crate::verification::PolicyKind::Oci,
        )
        .context("trust.policyFile")?;
        let stores = policy
            .check_stores(&settings.trust_store)
            .context("trust.storeRoot")?;
        let unknown = policy.unknown_statements(settings.engine.multi_arch.keys());
        if !unknown.is_empty() {
            anyhow::bail!(
                "multiArch.statements: the trust policy has no statement named {}",
                unknown.join(", ")
            );
        }
        println!(
            "configuration valid: listen {}, trust policy {} ({} statement(s), {} trust store reference(s))",
            settings.server.listen,
            settings.trust_policy.display(),
            policy.statement_count(),
            stores
        );
        for (ns, trust) in &settings.namespaces {
            let policy = crate::verification::load_policy(
                &trust.trust_policy,
                crate::verification::PolicyKind::Oci,
            )
            .with_context(|| format!("namespaces.{ns}.trust.policyFile"))?;
            let stores = policy
                .check_stores(&trust.trust_store)
                .with_context(|| format!("namespaces.{ns}.trust.storeRoot"))?;
            println!(
                "namespace {ns}: trust policy {} ({} statement(s), {} trust store reference(s))",
                trust.trust_policy.display(),
                policy.statement_count(),
                stores
            );
        }
        return Ok(Status::Success);
    }

    init_logging(&settings.log_level);
    let engine_config = settings.engine.engine_config()?;
    if let Ok(policy) = crate::verification::load_policy(
        &settings.trust_policy,
        crate::verification::PolicyKind::Oci,
    ) {
        for name in policy.unknown_statements(settings.engine.multi_arch.keys()) {
            tracing::warn!(statement = %name, "multiArch.statements names a statement the trust policy does not have: its option applies to nothing");
        }
    }
    if let Some(dct) = &settings.engine.dct {
        match dct.migration_until {
            Some(until) => {
                tracing::info!(%until, "dct: Docker Content Trust admits tags Notation does not verify until the end of the migration window")
            }
            None => tracing::warn!(
                "dct: no migrationUntil: Docker Content Trust results are reported, never admit"
            ),
        }
    }
    for host in &engine_config.registry.plain_http {
        tracing::warn!(
            registry = %host,
            "INSECURE: plain HTTP (no TLS) to this registry: anyone on the path can read its \
             credentials and choose which manifests and signatures Signet sees; signatures are \
             still verified, but use TLS outside a lab"
        );
    }
    let tls = signet_server::LiveTls::load(settings.tls.clone()).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // One engine per trust configuration (the cluster's, each namespace's), sharing the
        // registry client, caches of trust-independent answers and the budgets.
        let scoped = Arc::new(
            signet_server::NamespacedVerifier::build(
                engine_config,
                settings.trust_policy.clone(),
                settings.trust_store.clone(),
                settings.namespaces.iter().map(|(ns, trust)| {
                    (
                        ns.clone(),
                        trust.trust_policy.clone(),
                        trust.trust_store.clone(),
                    )
                }),
            )
            .map_err(anyhow::Error::msg)?,
        );
        let verifier = scoped.cluster().clone();
        let mut key_vault_refresh = None;
        if let Some(kv) = settings
            .azure
            .as_ref()
            .and_then(|a| a.key_vault.as_ref().map(|kv| (a, kv)))
        {
            let (azure, kv) = kv;
            let transport = signet_azure::HttpTransport::new();
            let credential = azure.credential(&transport)?;
            let source = signet_azure::KeyVaultTrustSource::new(
                &kv.url,
                kv.certificates.clone(),
                &credential,
                &transport,
            )
            .map_err(anyhow::Error::msg)?;
            tracing::info!(vault = %kv.url, identity = %credential.describe(),
                certificates = kv.certificates.len(), "Key Vault trust source");
            key_vault_refresh = Some(
                signet_server::trust_refresh::start(
                    Arc::new(KeyVaultStores(source)),
                    verifier.clone(),
                    kv.refresh_interval,
                )
                .await,
            );
        }
        match verifier.last_error() {
            None => {
                tracing::info!(policy = %settings.trust_policy.display(), "trust material loaded")
            }
            Some(e) => tracing::error!(policy = %settings.trust_policy.display(), error = %e,
                "trust material not loaded: not ready until the files are fixed"),
        }
        for (ns, trust) in &settings.namespaces {
            match scoped.for_namespace(Some(ns)).last_error() {
                None => tracing::info!(namespace = %ns, policy = %trust.trust_policy.display(),
                    "namespace trust material loaded"),
                Some(e) => tracing::error!(namespace = %ns, policy = %trust.trust_policy.display(),
                    error = %e, "namespace trust material not loaded: not ready until the files are fixed"),
            }
        }
        let trust = {
            let v = scoped.clone();
            signet_server::Reloadable {
                name: "trust",
                watch: scoped.watched(),
                reload: Arc::new(move || v.reload_trust()),
            }
        };
        if !tls.client_auth() {
            tracing::warn!(
                "INSECURE: serving without client authentication (tls.insecureNoClientAuth); \
                 only for local testing"
            );
        }
        let server = signet_server::Server::bind(settings.server, tls, scoped, vec![trust])
            .await
            .context("binding the listeners")?;
        if let Some(outcomes) = key_vault_refresh {
            server.watch_trust_refresh("keyvault", outcomes);
        }
        server.run(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    Ok(Status::Success)
}

/// Key Vault as the server's remote trust-store source.
struct KeyVaultStores(signet_azure::KeyVaultTrustSource);

impl signet_server::TrustStoreSource for KeyVaultStores {
    fn describe(&self) -> &str {
        self.0.vault_url()
    }

    fn fetch(&self) -> signet_server::BoxFuture<'_, Result<signet_server::FetchedStores, String>> {
        Box::pin(async move {
            match self.0.fetch_detailed().await {
                Ok(signet_azure::KeyVaultFetch { stores, dropped }) => {
                    Ok(signet_server::FetchedStores {
                        stores,
                        dropped: dropped.into_iter().map(|d| (d.name, d.reason)).collect(),
                    })
                }
                Err(e) => Err(format!(
                    "{e} ({} failed fetches since start)",
                    self.0.failed_fetches()
                )),
            }
        })
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .try_init();
}
