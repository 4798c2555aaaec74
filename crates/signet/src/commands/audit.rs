//! `signet audit`: which running workloads the admission webhook would deny.
//!
//! Reads a Kubernetes `List` ([`crate::workloads`]), leaves out what the webhook leaves out
//! (`admission.excludeNamespaces`, `admission.excludeImages` of `--config`, the same globs as
//! `/v1/admit`), verifies each distinct image once through the engine `serve` would build
//! (at most `limits.maxConcurrentVerifications` at a time, each within
//! `limits.requestDeadline`), and reports per namespace and workload.
//!
//! A namespace listed in the configuration's `namespaces:` has its images verified under its
//! own trust, as `/v1/admit` does: each distinct (trust configuration, image) pair once, by
//! one engine per trust configuration in use.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use serde::Serialize;
use signet_server::admission::{glob_match, image_pattern_matches};

use super::Status;
use crate::engine_setup::{self, EngineOptions, RegistryFlags};
use crate::output::OutputFormat;
use crate::workloads::{self, Inventory, Workload, MAX_INPUT_BYTES};
use signet_engine::VerdictError;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The JSON of `kubectl get pods,deployments,... -A -o json` (a List, or one object);
    /// `-` or nothing: standard input.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,
    /// Service configuration (as read by `serve`): trust, registry, limits and admission
    /// exclusions; the flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Notation trust policy document (trustpolicy.json / trustpolicy.oci.json).
    #[arg(long, value_name = "FILE")]
    trust_policy: Option<PathBuf>,
    /// Trust-store root in Notation's layout: DIR/x509/{ca,signingAuthority,tsa}/NAME/.
    #[arg(long, value_name = "DIR")]
    trust_store: Option<PathBuf>,
    /// Registry credentials in Docker's config.json format.
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Extra PEM CA certificates trusted for registry TLS.
    #[arg(long, value_name = "FILE")]
    registry_ca: Option<PathBuf>,
    /// Allow plain HTTP to this registry (repeatable).
    #[arg(long, value_name = "HOST[:PORT]")]
    plain_http: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

/// The parts of the configuration an audit uses.
struct Setup {
    trust_policy: PathBuf,
    trust_store: PathBuf,
    namespaces: BTreeMap<String, crate::config::NamespaceTrust>,
    engine: Option<crate::config::EngineSettings>,
    deadline: Duration,
    exclude_namespaces: Vec<String>,
    exclude_images: Vec<String>,
}

pub(super) fn run(args: Args) -> anyhow::Result<Status> {
    let setup = setup(&args)?;
    // The input is read and checked before any registry is asked.
    let inventory = read_input(args.input.as_deref())?;
    let plan = Plan::new(&inventory, &setup);

    let registry_flags = RegistryFlags {
        docker_config: args.docker_config.clone(),
        registry_ca: args.registry_ca.clone(),
        plain_http: args.plain_http.clone(),
        references: plan.images.iter().map(|(_, i)| i.clone()).collect(),
        announce: args.output == OutputFormat::Text,
    };
    let built = engine_setup::build(EngineOptions {
        trust_policy: &setup.trust_policy,
        trust_store: &setup.trust_store,
        settings: setup.engine.as_ref(),
        registry_flags: &registry_flags,
        at: None,
        user_metadata: BTreeMap::new(),
    })?;
    // The namespaces with trust of their own that have images to verify, each with an
    // engine sharing the cluster engine's registry client, tag cache and budgets. Key Vault
    // stores belong to the cluster's trust only (and are not fetched by an audit anyway).
    let namespace_settings = setup.engine.clone().map(|mut e| {
        if let Some(a) = e.azure.as_mut() {
            a.key_vault = None;
        }
        e
    });
    let mut namespace_engines = BTreeMap::new();
    for ns in plan.images.iter().filter_map(|(ns, _)| ns.as_deref()) {
        if namespace_engines.contains_key(ns) {
            continue;
        }
        let trust = &setup.namespaces[ns];
        let engine = engine_setup::build_sibling(
            &built.engine,
            EngineOptions {
                trust_policy: &trust.trust_policy,
                trust_store: &trust.trust_store,
                settings: namespace_settings.as_ref(),
                registry_flags: &RegistryFlags {
                    announce: false,
                    ..registry_flags.clone()
                },
                at: None,
                user_metadata: BTreeMap::new(),
            },
        )
        .with_context(|| format!("namespaces.{ns}.trust"))?;
        namespace_engines.insert(ns.to_owned(), engine);
    }
    let runtime = engine_setup::runtime()?;
    let progress = std::io::stderr().is_terminal();
    let total = plan.images.len();
    let engine_for = |ns: Option<&str>| {
        ns.and_then(|ns| namespace_engines.get(ns))
            .unwrap_or(&built.engine)
    };
    let per_image = setup.deadline;
    let verdicts = runtime.block_on(async {
        let mut done = 0usize;
        let mut verdicts = BTreeMap::new();
        let mut runs = futures_util::stream::iter(plan.images.iter())
            .map(|key| async move {
                // Each image gets the deadline an admission request would have, from when
                // its verification starts.
                let deadline = tokio::time::Instant::now() + per_image;
                let engine = engine_for(key.0.as_deref());
                (key, engine.verify(&key.1, deadline).await)
            })
            .buffer_unordered(built.max_concurrent_verifications.max(1));
        while let Some((key, verdict)) = runs.next().await {
            done += 1;
            if progress {
                eprint!("\rverified {done}/{total} images");
                let _ = std::io::stderr().flush();
            }
            verdicts.insert(key.clone(), verdict);
        }
        if progress && total > 0 {
            eprint!("\r\x1b[2K");
        }
        verdicts
    });

    let report = Report::new(&plan, &verdicts);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => write_text(&mut out, &report, &plan)?,
    }
    out.flush()?;
    Ok(Status::from_verified(report.denied_workloads() == 0))
}

/// `--config` with the flags applied over it, or the flags alone.
fn setup(args: &Args) -> anyhow::Result<Setup> {
    let Some(path) = &args.config else {
        return Ok(Setup {
            trust_policy: args
                .trust_policy
                .clone()
                .context("--trust-policy FILE is required (or --config FILE)")?,
            trust_store: args
                .trust_store
                .clone()
                .context("--trust-store DIR is required (or --config FILE)")?,
            namespaces: BTreeMap::new(),
            engine: None,
            deadline: signet_server::Limits::default().request_deadline,
            exclude_namespaces: Vec::new(),
            exclude_images: Vec::new(),
        });
    };
    let flags = crate::config::FlagOverrides {
        trust_policy: args.trust_policy.as_deref(),
        trust_store: args.trust_store.as_deref(),
        docker_config: args.docker_config.as_deref(),
        registry_ca: args.registry_ca.as_slice(),
        plain_http: &args.plain_http,
    };
    let (config, settings) = crate::config::load_for_verify(path, flags)?;
    Ok(Setup {
        trust_policy: settings.trust_policy,
        trust_store: settings.trust_store,
        namespaces: settings.namespaces,
        engine: Some(settings.engine),
        // In range: checked by the validation above.
        deadline: config
            .limits
            .request_deadline
            .map(|d| d.0)
            .unwrap_or(signet_server::Limits::default().request_deadline),
        exclude_namespaces: config.admission.exclude_namespaces,
        exclude_images: config.admission.exclude_images,
    })
}

fn read_input(path: Option<&std::path::Path>) -> anyhow::Result<Inventory> {
    let (bytes, what) = match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => (
            crate::input::read_file(p, MAX_INPUT_BYTES, "input")?,
            format!("input {}", p.display()),
        ),
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                anyhow::bail!(
                    "no input: give a FILE, or pipe `kubectl get pods,deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs -A -o json` into `signet audit`"
                );
            }
            let mut bytes = Vec::new();
            stdin
                .lock()
                .take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            if bytes.len() as u64 > MAX_INPUT_BYTES {
                anyhow::bail!("standard input is larger than the limit of {MAX_INPUT_BYTES} bytes");
            }
            (bytes, "standard input".to_owned())
        }
    };
    workloads::parse(&bytes).with_context(|| what)
}

/// An image and the namespace whose trust configuration verifies it (`None`: the cluster's).
type TrustedImage = (Option<String>, String);

/// What is verified and what is left out, as the admission webhook would.
struct Plan<'a> {
    /// Workloads outside excluded namespaces, with their non-excluded images.
    checked: Vec<Workload>,
    /// Distinct images to verify, sorted, each with the namespace whose trust applies
    /// (`None`: the cluster's).
    images: BTreeSet<TrustedImage>,
    excluded_namespaces: BTreeSet<&'a str>,
    excluded_images: BTreeSet<&'a str>,
    ignored: &'a BTreeMap<String, usize>,
    /// The namespaces checked whose own trust configuration applies.
    trust_scopes: BTreeSet<&'a str>,
}

impl<'a> Plan<'a> {
    fn new(inventory: &'a Inventory, setup: &Setup) -> Self {
        let mut plan = Plan {
            checked: Vec::new(),
            images: BTreeSet::new(),
            excluded_namespaces: BTreeSet::new(),
            excluded_images: BTreeSet::new(),
            ignored: &inventory.ignored,
            trust_scopes: BTreeSet::new(),
        };
        for w in &inventory.workloads {
            if setup
                .exclude_namespaces
                .iter()
                .any(|p| glob_match(p, &w.namespace))
            {
                plan.excluded_namespaces.insert(&w.namespace);
                continue;
            }
            let mut checked = Workload {
                images: Vec::new(),
                ..w.clone()
            };
            let scope = trust_scope(setup, &w.namespace);
            if scope.is_some() {
                plan.trust_scopes.insert(&w.namespace);
            }
            for image in &w.images {
                if setup
                    .exclude_images
                    .iter()
                    .any(|p| image_pattern_matches(p, image))
                {
                    plan.excluded_images.insert(image.as_str());
                } else {
                    plan.images.insert((scope.clone(), image.clone()));
                    checked.images.push(image.clone());
                }
            }
            plan.checked.push(checked);
        }
        plan
    }
}

/// The namespace whose trust configuration applies to a workload of `namespace`.
fn trust_scope(setup: &Setup, namespace: &str) -> Option<String> {
    setup
        .namespaces
        .contains_key(namespace)
        .then(|| namespace.to_owned())
}

/// The JSON document (CONTRACT.md "signet audit"), plus what was left out.
#[derive(Serialize)]
struct Report {
    images: Vec<ImageReport>,
    workloads: Vec<WorkloadReport>,
    excluded: Excluded,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageReport {
    image: String,
    /// The namespace whose own trust configuration verified it; absent: the cluster's.
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_namespace: Option<String>,
    verified: bool,
    error: Option<VerdictError>,
}

#[derive(Serialize)]
struct WorkloadReport {
    namespace: String,
    kind: String,
    name: String,
    denied: Vec<String>,
}

#[derive(Serialize)]
struct Excluded {
    namespaces: Vec<String>,
    images: Vec<String>,
}

impl Report {
    fn new(
        plan: &Plan<'_>,
        verdicts: &BTreeMap<TrustedImage, signet_engine::ImageVerdict>,
    ) -> Self {
        let images: Vec<ImageReport> = plan
            .images
            .iter()
            .map(|key| match verdicts.get(key) {
                Some(v) => ImageReport {
                    image: key.1.clone(),
                    trust_namespace: key.0.clone(),
                    verified: v.verified,
                    error: match (&v.error, v.verified) {
                        (Some(e), _) => Some(e.clone()),
                        (None, false) => Some(internal("not verified, no reason given")),
                        (None, true) => None,
                    },
                },
                None => ImageReport {
                    image: key.1.clone(),
                    trust_namespace: key.0.clone(),
                    verified: false,
                    error: Some(internal("not verified: the verification did not run")),
                },
            })
            .collect();
        let failed: BTreeSet<(Option<&str>, &str)> = images
            .iter()
            .filter(|i| !i.verified)
            .map(|i| (i.trust_namespace.as_deref(), i.image.as_str()))
            .collect();
        let workloads = plan
            .checked
            .iter()
            .map(|w| WorkloadReport {
                namespace: w.namespace.clone(),
                kind: w.kind.clone(),
                name: w.name.clone(),
                denied: w
                    .images
                    .iter()
                    .filter(|i| {
                        let scope = plan.trust_scopes.get(w.namespace.as_str()).copied();
                        failed.contains(&(scope, i.as_str()))
                    })
                    .cloned()
                    .collect(),
            })
            .collect();
        Report {
            images,
            workloads,
            excluded: Excluded {
                namespaces: plan
                    .excluded_namespaces
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                images: plan.excluded_images.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    fn denied_workloads(&self) -> usize {
        self.workloads
            .iter()
            .filter(|w| !w.denied.is_empty())
            .count()
    }
}

fn internal(message: &str) -> VerdictError {
    VerdictError::new(signet_notation::ErrorCode::Internal, message)
}

/// Denied workloads grouped by namespace, each denied image with its code and message, then
/// a summary.
fn write_text(
    out: &mut impl std::io::Write,
    report: &Report,
    plan: &Plan<'_>,
) -> std::io::Result<()> {
    let errors: BTreeMap<(Option<&str>, &str), &VerdictError> = report
        .images
        .iter()
        .filter_map(|i| {
            Some((
                (i.trust_namespace.as_deref(), i.image.as_str()),
                i.error.as_ref()?,
            ))
        })
        .collect();
    let mut namespace: Option<&str> = None;
    for w in report.workloads.iter().filter(|w| !w.denied.is_empty()) {
        if namespace != Some(w.namespace.as_str()) {
            writeln!(out, "namespace {}", w.namespace)?;
            namespace = Some(&w.namespace);
        }
        writeln!(out, "  {} {}: would be denied", w.kind, w.name)?;
        let scope = plan.trust_scopes.get(w.namespace.as_str()).copied();
        for image in &w.denied {
            match errors.get(&(scope, image.as_str())) {
                Some(e) => writeln!(out, "    {image}: {}: {}", e.code, e.message)?,
                None => writeln!(out, "    {image}")?,
            }
        }
    }
    let denied = report.denied_workloads();
    let failed = errors.len();
    let (workloads, images) = (report.workloads.len(), report.images.len());
    if denied == 0 {
        writeln!(
            out,
            "nothing would be denied: {workloads} workload(s), {images} image(s) verified"
        )?;
    } else {
        writeln!(
            out,
            "{denied} of {workloads} workload(s) would be denied; {failed} of {images} image(s) failed verification"
        )?;
    }
    if !report.excluded.namespaces.is_empty() {
        writeln!(
            out,
            "not checked (admission.excludeNamespaces): namespace(s) {}",
            report.excluded.namespaces.join(", ")
        )?;
    }
    if !report.excluded.images.is_empty() {
        writeln!(
            out,
            "not checked (admission.excludeImages): {}",
            report.excluded.images.join(", ")
        )?;
    }
    if !plan.ignored.is_empty() {
        let kinds: Vec<String> = plan
            .ignored
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        writeln!(out, "ignored (not workloads): {}", kinds.join(", "))?;
    }
    Ok(())
}
