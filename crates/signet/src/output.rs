//! Verification output: the engine's verdicts ([`ImageVerdict`]) as the JSON document of
//! CONTRACT.md and as text for people.

use std::io::{self, Write};

use serde::Serialize;
use signet_engine::{ImageVerdict, SignatureFormat};
use signet_notation::verifier::Check;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Serialize)]
struct Document<'a> {
    results: &'a [ImageVerdict],
}

/// Whether the exit status is 0 (all verified) or 1.
pub fn all_verified(results: &[ImageVerdict]) -> bool {
    results.iter().all(|r| r.verified)
}

/// Prints the results on stdout in the chosen format.
pub fn print_results(results: &[ImageVerdict], format: OutputFormat) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &Document { results })?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            for r in results {
                write_text(&mut out, r)?;
            }
        }
    }
    out.flush()
}

/// The JSON document for `results` (as printed with `--output json`).
pub fn to_json(results: &[ImageVerdict]) -> serde_json::Value {
    serde_json::to_value(Document { results }).unwrap_or(serde_json::Value::Null)
}

fn write_text(out: &mut impl Write, r: &ImageVerdict) -> io::Result<()> {
    let digest = r
        .digest
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let policy = match (&r.policy, &r.level) {
        (Some(p), Some(l)) => format!(" under trust policy statement {p:?} (level {l})"),
        _ => String::new(),
    };
    if r.verified {
        writeln!(out, "VERIFIED  {}{digest}{policy}", r.reference)?;
    } else {
        writeln!(out, "FAILED    {}{digest}{policy}", r.reference)?;
        // With one signature, its own line below says the same with the failed check.
        let repeated = r.signatures.len() == 1 && r.signatures[0].error == r.error;
        if let (Some(e), false) = (&r.error, repeated) {
            writeln!(out, "  {}: {}", e.code, e.message)?;
        }
    }
    if let Some(note) = &r.note {
        writeln!(out, "  note: {note}")?;
    }
    for (i, s) in r.signatures.iter().enumerate() {
        let signer = s
            .signer
            .as_deref()
            .map(|x| format!(", signed by {x}"))
            .unwrap_or_default();
        let state = if s.verified { "verified" } else { "failed" };
        let of = match (&s.manifest, s.format) {
            (_, SignatureFormat::Dct) => " (Docker Content Trust)".to_owned(),
            (Some(m), _) if r.digest.as_ref() != Some(m) => format!(" of platform manifest {m}"),
            _ => String::new(),
        };
        let about = format!("{}{signer}", s.media_type);
        let about = about.trim_start_matches(", ");
        writeln!(
            out,
            "  signature {} {}{of} ({about}): {state}",
            i + 1,
            s.digest,
        )?;
        if let Some(e) = &s.error {
            let check = s
                .failed_check
                .map(|c| format!("{} check failed: ", check_name(c)))
                .unwrap_or_default();
            writeln!(out, "    {check}{}: {}", e.code, e.message)?;
        }
        for (check, e) in &s.logged {
            writeln!(
                out,
                "    warning ({}, logged not enforced at this level): {}: {}",
                check_name(*check),
                e.code,
                e.message
            )?;
        }
    }
    Ok(())
}

fn check_name(check: Check) -> &'static str {
    match check {
        Check::Integrity => "integrity",
        Check::Authenticity => "authenticity",
        Check::TrustedIdentity => "trusted identity",
        Check::AuthenticTimestamp => "authentic timestamp",
        Check::Expiry => "expiry",
        Check::Revocation => "revocation",
        Check::UserMetadata => "user metadata",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use signet_engine::VerdictError;
    use signet_notation::ErrorCode;

    #[test]
    fn json_shape() {
        let r = ImageVerdict {
            reference: "r".into(),
            digest: Some("sha256:00".into()),
            verified: false,
            policy: Some("p".into()),
            level: Some("strict".into()),
            signatures: vec![signet_engine::SignatureSummary {
                format: SignatureFormat::Notation,
                digest: "sha256:11".into(),
                manifest: Some("sha256:00".into()),
                media_type: "application/cose".into(),
                verified: false,
                signer: None,
                error: Some(VerdictError::new(ErrorCode::UntrustedSigner, "m")),
                failed_check: Some(Check::Authenticity),
                logged: vec![],
            }],
            error: Some(VerdictError::new(ErrorCode::UntrustedSigner, "m")),
            note: None,
        };
        let v = to_json(&[r]);
        let r0 = &v["results"][0];
        assert_eq!(r0["verified"], false);
        assert_eq!(r0["error"]["code"], "UNTRUSTED_SIGNER");
        assert_eq!(r0["signatures"][0]["mediaType"], "application/cose");
        assert_eq!(r0["signatures"][0]["format"], "notation");
        assert!(r0["signatures"][0]["signer"].is_null());
        assert!(r0["signatures"][0].get("failedCheck").is_none());
        assert!(r0.get("note").is_none());
    }
}
