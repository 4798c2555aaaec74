//! `signet envelope inspect FILE`: decodes an envelope (no verification) and prints it.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::{json, Value};
use signet_notation::envelope::{Envelope, EnvelopeFormat, SigningScheme};
use signet_notation::Instant;

use super::Status;
use crate::input;
use crate::output::OutputFormat;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The envelope file (JWS JSON or COSE_Sign1).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The envelope's media type; default: from the name (*.jws.sig, *.cose.sig) or content.
    #[arg(long, value_name = "MT")]
    media_type: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

fn format_of(
    path: &Path,
    media_type: Option<&str>,
    bytes: &[u8],
) -> anyhow::Result<EnvelopeFormat> {
    if let Some(mt) = media_type {
        return match EnvelopeFormat::from_media_type(mt) {
            Some(f) => Ok(f),
            None => bail!("unsupported envelope media type {mt:?}: application/cose or application/jose+json expected"),
        };
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".jws.sig") || name.ends_with(".json") || name.ends_with(".jws") {
        return Ok(EnvelopeFormat::Jws);
    }
    if name.ends_with(".cose.sig") || name.ends_with(".cose") {
        return Ok(EnvelopeFormat::Cose);
    }
    Ok(if bytes.trim_ascii_start().first() == Some(&b'{') {
        EnvelopeFormat::Jws
    } else {
        EnvelopeFormat::Cose
    })
}

fn time_text(t: Option<Instant>) -> Value {
    match t {
        Some(t) => Value::String(signet_notation::format_rfc3339(t)),
        None => Value::Null,
    }
}

/// The countersignature decoded (not verified: that needs the policy's tsa stores).
fn describe_timestamp(token: &[u8]) -> Value {
    match signet_notation::timestamp::inspect_timestamp(token) {
        Ok(t) => json!({
            "time": signet_notation::format_rfc3339(t.time),
            "accuracySeconds": t.accuracy.as_seconds_f64(),
            "hashAlgorithm": t.hash_algorithm,
            "tsaSubject": t.tsa_subject,
        }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn describe(envelope: &Envelope) -> Value {
    let s = &envelope.signed;
    let scheme = match s.signing_scheme {
        SigningScheme::X509 => "notary.x509",
        SigningScheme::X509SigningAuthority => "notary.x509.signingAuthority",
    };
    let payload = serde_json::from_slice::<Value>(&envelope.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&envelope.payload).into_owned()));
    json!({
        "mediaType": envelope.format.media_type(),
        "signatureAlgorithm": envelope.algorithm.jws_name(),
        "signedAttributes": {
            "contentType": s.content_type,
            "signingScheme": scheme,
            "signingTime": time_text(s.signing_time),
            "authenticSigningTime": time_text(s.authentic_signing_time),
            "expiry": time_text(s.expiry),
            "verificationPlugin": s.verification_plugin,
            "verificationPluginMinVersion": s.verification_plugin_min_version,
            "extended": s.extended.iter().map(|a| json!({"key": a.key, "critical": a.critical})).collect::<Vec<_>>(),
        },
        "unsignedAttributes": {
            "signingAgent": envelope.unsigned.signing_agent,
            "timestampSignatureBytes": envelope.unsigned.timestamp_token.as_ref().map(Vec::len),
            "timestamp": envelope.unsigned.timestamp_token.as_deref().map(describe_timestamp),
        },
        "certificateChain": envelope.certificate_chain.iter().map(|c| json!({
            "subject": c.subject(),
            "issuer": c.issuer(),
            "notBefore": time_text(Some(c.not_before())),
            "notAfter": time_text(Some(c.not_after())),
            "sha256Fingerprint": c.sha256_fingerprint(),
        })).collect::<Vec<_>>(),
        "payload": payload,
    })
}

fn print_text(v: &Value) {
    let str_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    println!("envelope:            {}", str_of(&v["mediaType"]));
    println!("signature algorithm: {}", str_of(&v["signatureAlgorithm"]));
    println!("signed attributes:");
    if let Some(m) = v["signedAttributes"].as_object() {
        for (k, val) in m {
            if k != "extended" {
                println!("  {k}: {}", str_of(val));
            }
        }
        for a in m
            .get("extended")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            println!(
                "  extended {}{}",
                str_of(&a["key"]),
                if a["critical"] == Value::Bool(true) {
                    " (critical)"
                } else {
                    ""
                }
            );
        }
    }
    println!("unsigned attributes:");
    println!(
        "  signingAgent: {}",
        str_of(&v["unsignedAttributes"]["signingAgent"])
    );
    match v["unsignedAttributes"]["timestampSignatureBytes"].as_u64() {
        Some(n) => {
            let t = &v["unsignedAttributes"]["timestamp"];
            match t["error"].as_str() {
                Some(e) => println!("  timestamp: RFC 3161 countersignature, {n} bytes, undecodable: {e}"),
                None => println!(
                    "  timestamp: RFC 3161 countersignature, {n} bytes: {} (±{} s, {}) by {} (not verified here)",
                    str_of(&t["time"]),
                    t["accuracySeconds"],
                    str_of(&t["hashAlgorithm"]),
                    str_of(&t["tsaSubject"])
                ),
            }
        }
        None => println!("  timestamp: none"),
    }
    println!("certificate chain (leaf first):");
    for (i, c) in v["certificateChain"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        println!("  [{i}] subject: {}", str_of(&c["subject"]));
        println!("      issuer:  {}", str_of(&c["issuer"]));
        println!(
            "      valid:   {} .. {}",
            str_of(&c["notBefore"]),
            str_of(&c["notAfter"])
        );
        println!("      sha256:  {}", str_of(&c["sha256Fingerprint"]));
    }
    println!("payload:");
    println!(
        "{}",
        serde_json::to_string_pretty(&v["payload"]).unwrap_or_default()
    );
}

pub(super) fn run(args: Args) -> anyhow::Result<Status> {
    let bytes = input::read_file(
        &args.file,
        signet_notation::MAX_ENVELOPE_BYTES as u64,
        "signature envelope",
    )?;
    let format = format_of(&args.file, args.media_type.as_deref(), &bytes)?;
    let envelope = match Envelope::parse(format, &bytes) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "error: {} is not a valid {} envelope: {e}",
                args.file.display(),
                format.media_type()
            );
            return Ok(Status::Failure);
        }
    };
    let v = describe(&envelope);
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        OutputFormat::Text => print_text(&v),
    }
    Ok(Status::Success)
}
