//! `signet envelope verify`: one envelope against the descriptor of the artifact it must sign.

use std::path::PathBuf;

use anyhow::bail;
use signet_notation::Descriptor;

use super::Status;
use crate::input;
use crate::output::OutputFormat;
use crate::verification::{self, LocalVerifier, PolicyKind, Target};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The signature envelope file.
    #[arg(long, value_name = "FILE")]
    envelope: PathBuf,
    /// The envelope's media type: application/cose or application/jose+json.
    #[arg(long, value_name = "MT")]
    media_type: String,
    /// The signed artifact: REGISTRY/REPO@sha256:HEX.
    #[arg(long, value_name = "REGISTRY/REPO@sha256:HEX")]
    subject: String,
    /// The signed artifact's manifest media type.
    #[arg(long, value_name = "MT")]
    subject_media_type: String,
    /// The signed artifact's manifest size in bytes.
    #[arg(long, value_name = "N")]
    subject_size: i64,
    /// Notation trust policy document (trustpolicy.json / trustpolicy.oci.json).
    #[arg(long, value_name = "FILE")]
    trust_policy: PathBuf,
    /// Trust-store root in Notation's layout: DIR/x509/{ca,signingAuthority,tsa}/NAME/.
    #[arg(long, value_name = "DIR")]
    trust_store: PathBuf,
    #[command(flatten)]
    evaluation: super::Evaluation,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

pub(super) fn run(args: Args) -> anyhow::Result<Status> {
    let Some((_, digest)) = args.subject.rsplit_once('@') else {
        bail!(
            "--subject {:?} must name the artifact by digest: REGISTRY/REPO@sha256:HEX",
            args.subject
        );
    };
    if let Err(e) = verification::check_digest(digest) {
        bail!("--subject {:?}: {e}", args.subject);
    }
    if args.subject_size < 0 {
        bail!("--subject-size must not be negative");
    }
    let policy = verification::load_policy(&args.trust_policy, PolicyKind::Oci)?;
    let envelope = input::read_file(
        &args.envelope,
        verification::MAX_ENVELOPE_BYTES as u64,
        "signature envelope",
    )?;

    let subject = Descriptor {
        media_type: args.subject_media_type.clone(),
        digest: digest.to_owned(),
        size: args.subject_size,
        annotations: None,
        artifact_type: None,
    };
    let mut verifier = LocalVerifier::new(&args.trust_store, args.evaluation.local()?);
    let result = verifier.verify(
        &args.subject,
        Some(digest.to_owned()),
        policy.select_oci(&args.subject),
        Target::Oci(&subject),
        || {
            Ok(vec![verification::envelope_file(
                envelope,
                &args.media_type,
            )])
        },
    )?;
    super::print_verdicts(&[result], args.output)
}
