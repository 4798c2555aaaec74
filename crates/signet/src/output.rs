//! Verification output: the JSON document of CONTRACT.md and the text form for people.

use std::io::{self, Write};

use serde::Serialize;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// `{"code": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

/// One examined signature.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureResult {
    /// The signature system (`"notation"`).
    pub format: signet_engine::SignatureFormat,
    pub digest: String,
    /// The digest whose signature this is (a platform manifest's, for a multi-arch image
    /// verified per platform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    pub media_type: String,
    pub verified: bool,
    pub signer: Option<String>,
    pub error: Option<ErrorInfo>,
    /// The check that failed (text output only).
    #[serde(skip)]
    pub failed_check: Option<String>,
    /// Failures of checks that are only logged at this level (text output only).
    #[serde(skip)]
    pub logged: Vec<(String, ErrorInfo)>,
}

/// The result for one reference.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactResult {
    pub reference: String,
    pub digest: Option<String>,
    pub verified: bool,
    pub policy: Option<String>,
    pub level: Option<String>,
    pub signatures: Vec<SignatureResult>,
    pub error: Option<ErrorInfo>,
    /// A remark for people (text output only).
    #[serde(skip)]
    pub note: Option<String>,
}

#[derive(Serialize)]
struct Document<'a> {
    results: &'a [ArtifactResult],
}

/// Whether the exit status is 0 (all verified) or 1.
pub fn all_verified(results: &[ArtifactResult]) -> bool {
    results.iter().all(|r| r.verified)
}

/// Prints the results on stdout in the chosen format.
pub fn print_results(results: &[ArtifactResult], format: OutputFormat) -> io::Result<()> {
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
pub fn to_json(results: &[ArtifactResult]) -> serde_json::Value {
    serde_json::to_value(Document { results }).unwrap_or(serde_json::Value::Null)
}

fn write_text(out: &mut impl Write, r: &ArtifactResult) -> io::Result<()> {
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
            (_, signet_engine::SignatureFormat::Dct) => " (Docker Content Trust)".to_owned(),
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
                .as_deref()
                .map(|c| format!("{c} check failed: "))
                .unwrap_or_default();
            writeln!(out, "    {check}{}: {}", e.code, e.message)?;
        }
        for (check, e) in &s.logged {
            writeln!(
                out,
                "    warning ({check}, logged not enforced at this level): {}: {}",
                e.code, e.message
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let r = ArtifactResult {
            reference: "r".into(),
            digest: Some("sha256:00".into()),
            verified: false,
            policy: Some("p".into()),
            level: Some("strict".into()),
            signatures: vec![SignatureResult {
                format: signet_engine::SignatureFormat::Notation,
                digest: "sha256:11".into(),
                manifest: Some("sha256:00".into()),
                media_type: "application/cose".into(),
                verified: false,
                signer: None,
                error: Some(ErrorInfo {
                    code: "UNTRUSTED_SIGNER".into(),
                    message: "m".into(),
                }),
                failed_check: Some("authenticity".into()),
                logged: vec![],
            }],
            error: Some(ErrorInfo {
                code: "UNTRUSTED_SIGNER".into(),
                message: "m".into(),
            }),
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
