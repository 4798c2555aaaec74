//! `signet blob verify`: a detached blob signature under a blob trust policy.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::Status;
use crate::input;
use crate::output::OutputFormat;
use crate::verification::{self, LocalVerifier, PolicyKind, Target};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The blob whose signature is verified.
    #[arg(value_name = "BLOB")]
    blob: PathBuf,
    /// The signature file; its format comes from its name: *.jws.sig or *.cose.sig.
    #[arg(long, value_name = "FILE")]
    signature: PathBuf,
    /// Notation blob trust policy document (trustpolicy.blob.json).
    #[arg(long, value_name = "FILE")]
    trust_policy: PathBuf,
    /// Trust-store root in Notation's layout: DIR/x509/{ca,signingAuthority,tsa}/NAME/.
    #[arg(long, value_name = "DIR")]
    trust_store: PathBuf,
    /// The blob trust policy statement to use; default: the global statement.
    #[arg(long, value_name = "NAME")]
    policy_name: Option<String>,
    /// The blob's media type; when given, the signed payload must carry the same.
    #[arg(long, value_name = "MT")]
    media_type: Option<String>,
    #[command(flatten)]
    evaluation: super::Evaluation,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

/// The envelope media type a signature file's name implies (as `notation blob verify`).
fn signature_media_type(path: &Path) -> anyhow::Result<&'static str> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".jws.sig") {
        Ok("application/jose+json")
    } else if name.ends_with(".cose.sig") {
        Ok("application/cose")
    } else {
        bail!(
            "cannot tell the format of signature file {}: name it *.jws.sig (JWS) or *.cose.sig (COSE)",
            path.display()
        )
    }
}

pub(super) fn run(args: Args) -> anyhow::Result<Status> {
    let envelope_media_type = signature_media_type(&args.signature)?;
    let policy = verification::load_policy(&args.trust_policy, PolicyKind::Blob)?;
    let envelope = input::read_file(
        &args.signature,
        verification::MAX_ENVELOPE_BYTES as u64,
        "signature",
    )?;
    let content = input::read_file(&args.blob, input::MAX_BLOB_BYTES, "blob")?;
    let reference = args.blob.display().to_string();
    let digest = Some(verification::sha256(&content));

    let mut verifier = LocalVerifier::new(&args.trust_store, args.evaluation.local()?);
    let result = verifier.verify(
        &reference,
        digest,
        policy.select_blob(args.policy_name.as_deref()),
        Target::Blob {
            content: &content,
            media_type: args.media_type.as_deref(),
        },
        || {
            Ok(vec![verification::envelope_file(
                envelope,
                envelope_media_type,
            )])
        },
    )?;
    super::print_verdicts(&[result], args.output)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn format_from_name() {
        assert_eq!(
            signature_media_type(Path::new("x/blob.jws.sig")).unwrap(),
            "application/jose+json"
        );
        assert_eq!(
            signature_media_type(Path::new("blob.COSE.sig")).unwrap(),
            "application/cose"
        );
        assert!(signature_media_type(Path::new("blob.sig")).is_err());
    }
}
