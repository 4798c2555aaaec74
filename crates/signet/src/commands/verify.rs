//! `signet verify`: the signatures of artifacts in registries (through `signet-engine`,
//! module [`registry`]) or, with `--oci-layout`, in local OCI image layouts.

use std::path::PathBuf;

use anyhow::bail;
use signet_engine::{ImageVerdict, VerdictError};
use signet_notation::{Descriptor, ErrorCode};

use super::Status;
use crate::oci_layout::{LayoutError, LayoutReference, OciLayout};
use crate::output::OutputFormat;
use crate::verification::{self, LocalVerifier, PolicyKind, SignatureInput, Target};

mod registry;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Artifacts to verify: image references (`registry/repo:tag`, `registry/repo@sha256:HEX`)
    /// or, with --oci-layout, `PATH:TAG` or `PATH@sha256:HEX`.
    #[arg(required = true, value_name = "REFERENCE")]
    references: Vec<String>,
    /// Notation trust policy document (trustpolicy.json / trustpolicy.oci.json, version 1.0).
    /// Default (without --config): notation's, `$XDG_CONFIG_HOME/notation` or
    /// `~/.config/notation`, `trustpolicy.oci.json` before `trustpolicy.json`.
    #[arg(long, value_name = "FILE")]
    trust_policy: Option<PathBuf>,
    /// Trust-store root in Notation's layout: DIR/x509/{ca,signingAuthority,tsa}/NAME/.
    /// Default (without --config): `truststore/` in notation's configuration directory.
    #[arg(long, value_name = "DIR")]
    trust_store: Option<PathBuf>,
    /// Service configuration (as read by `serve`); the flags above override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// REFERENCE is a local OCI image layout (`PATH:TAG` or `PATH@sha256:HEX`).
    #[arg(long)]
    oci_layout: bool,
    /// With --oci-layout: the repository name (`registry/repo`) trust-policy scopes are
    /// matched against; default: the layout's path as given.
    #[arg(long, value_name = "REPO")]
    scope: Option<String>,
    #[command(flatten)]
    evaluation: super::Evaluation,
    /// Registry credentials in Docker's config.json format (`auths`, and the credential
    /// helpers of `credsStore` / `credHelpers`). Default: `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json` when it exists; for `*.azurecr.io` registries it names
    /// nothing for, the Azure CLI's login (`az login`) is used.
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
    /// Registry mode: give up on a reference after this many seconds (TIMEOUT).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
}

pub(super) fn run(args: Args) -> anyhow::Result<Status> {
    if !args.oci_layout {
        return registry::run(&args);
    }
    let Inputs {
        trust_policy: policy_path,
        trust_store: store_root,
        ..
    } = inputs(&args)?;
    let policy = verification::load_policy(&policy_path, PolicyKind::Oci)?;
    let mut verifier = LocalVerifier::new(&store_root, args.evaluation.local()?);
    let mut results = Vec::with_capacity(args.references.len());
    for reference in &args.references {
        results.push(verify_layout(
            reference,
            args.scope.as_deref(),
            &policy,
            &mut verifier,
        )?);
    }
    super::print_verdicts(&results, args.output)
}

/// What a verification needs from the flags and, with `--config`, the service configuration
/// (each flag overriding the file).
struct Inputs {
    trust_policy: PathBuf,
    trust_store: PathBuf,
    /// The registry, cache and Azure settings of `--config`.
    engine: Option<crate::config::EngineSettings>,
}

fn inputs(args: &Args) -> anyhow::Result<Inputs> {
    let Some(path) = &args.config else {
        let (trust_policy, trust_store) = match (&args.trust_policy, &args.trust_store) {
            (Some(p), Some(s)) => (p.clone(), s.clone()),
            (policy, store) => {
                let defaults = NotationDefaults::locate()?;
                let trust_policy = match policy {
                    Some(p) => p.clone(),
                    None => defaults.trust_policy()?,
                };
                let trust_store = match store {
                    Some(s) => s.clone(),
                    None => defaults.trust_store(),
                };
                if args.output == OutputFormat::Text {
                    eprintln!(
                        "Using trust policy {} and trust store {} (notation's configuration directory {}; --trust-policy / --trust-store choose others)",
                        trust_policy.display(),
                        trust_store.display(),
                        defaults.dir.display()
                    );
                }
                (trust_policy, trust_store)
            }
        };
        return Ok(Inputs {
            trust_policy,
            trust_store,
            engine: None,
        });
    };
    let flags = crate::config::FlagOverrides {
        trust_policy: args.trust_policy.as_deref(),
        trust_store: args.trust_store.as_deref(),
        docker_config: args.docker_config.as_deref(),
        registry_ca: args.registry_ca.as_slice(),
        plain_http: &args.plain_http,
    };
    let (_, settings) = crate::config::load_for_verify(path, flags)?;
    Ok(Inputs {
        trust_policy: settings.trust_policy,
        trust_store: settings.trust_store,
        engine: Some(settings.engine),
    })
}

/// notation's configuration directory: `$XDG_CONFIG_HOME/notation`, else
/// `~/.config/notation` (as notation reads it on Linux).
struct NotationDefaults {
    dir: PathBuf,
}

impl NotationDefaults {
    fn locate() -> anyhow::Result<NotationDefaults> {
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(xdg) => PathBuf::from(xdg),
            None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                Some(home) => PathBuf::from(home).join(".config"),
                None => bail!(
                    "--trust-policy FILE and --trust-store DIR are required: neither XDG_CONFIG_HOME nor HOME is set, so notation's configuration directory is unknown (or use --config FILE)"
                ),
            },
        };
        Ok(NotationDefaults {
            dir: base.join("notation"),
        })
    }

    /// `trustpolicy.oci.json`, else `trustpolicy.json`, as notation prefers them.
    fn trust_policy(&self) -> anyhow::Result<PathBuf> {
        for name in ["trustpolicy.oci.json", "trustpolicy.json"] {
            let candidate = self.dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        bail!(
            "no trust policy: --trust-policy FILE was not given and notation's configuration directory {} has neither trustpolicy.oci.json nor trustpolicy.json (create one with `notation policy import`, or use --config FILE)",
            self.dir.display()
        )
    }

    fn trust_store(&self) -> PathBuf {
        self.dir.join("truststore")
    }
}

fn verify_layout(
    reference: &str,
    scope: Option<&str>,
    policy: &verification::LoadedPolicy,
    verifier: &mut LocalVerifier,
) -> anyhow::Result<ImageVerdict> {
    let parsed = match LayoutReference::parse(reference) {
        Ok(r) => r,
        Err(e) => {
            return Ok(ImageVerdict::failed(
                reference,
                None,
                VerdictError::new(ErrorCode::InvalidReference, e.to_string()),
            ))
        }
    };
    let layout = match OciLayout::open(&parsed.path) {
        Ok(l) => l,
        Err(e @ LayoutError::Unreadable { .. }) => bail!("{e}"),
        Err(e) => return Ok(layout_failure(reference, None, e)),
    };
    let target = match layout.resolve(&parsed.selector) {
        Ok(d) => d,
        Err(e) => return Ok(layout_failure(reference, None, e)),
    };
    let digest = Some(target.digest.clone());

    let repository = match scope {
        Some(s) => s.to_owned(),
        None => parsed.path.to_string_lossy().into_owned(),
    };
    let policy_reference = format!("{repository}@{}", target.digest);
    let subject = Descriptor {
        media_type: target.media_type.clone(),
        digest: target.digest.clone(),
        size: target.size,
        annotations: None,
        artifact_type: None,
    };
    verifier.verify(
        reference,
        digest.clone(),
        policy.select_oci(&policy_reference),
        Target::Oci(&subject),
        || {
            let candidates = layout
                .signatures(&target)
                .map_err(|e| Box::new(layout_failure(reference, digest, e)))?;
            Ok(candidates
                .into_iter()
                .map(|c| SignatureInput {
                    digest: c.manifest_digest,
                    media_type: c.envelope_media_type,
                    envelope: c
                        .envelope
                        .map_err(|e| verification::unreadable_envelope(e.to_string())),
                })
                .collect())
        },
    )
}

fn layout_failure(reference: &str, digest: Option<String>, e: LayoutError) -> ImageVerdict {
    let code = match &e {
        LayoutError::InvalidReference(_) => ErrorCode::InvalidReference,
        LayoutError::NotFound(_) => ErrorCode::ArtifactNotFound,
        LayoutError::Unreadable { .. } | LayoutError::Corrupt(_) => ErrorCode::RegistryError,
    };
    ImageVerdict::failed(reference, digest, VerdictError::new(code, e.to_string()))
}
