use super::*;
use crate::test_support::{cases, vector};
use base64::Engine;
use serde_json::{json, Value};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(vector(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Every verification case whose envelope is a real file: parse + verify must agree with
/// what the case says about integrity.
#[test]
fn corpus_verification_cases() {
    let mut checked = 0;
    for kind in ["oci-verify", "blob-verify", "oci-verify-plugin"] {
        for case in cases(kind) {
            let id = case["id"].as_str().unwrap_or_default().to_owned();
            let media_type = case["inputs"]["signatureMediaType"].as_str();
            let envelope = case["inputs"]["envelope"].as_str();
            let bytes = match envelope {
                Some(p) if !p.starts_with('(') => read(p),
                Some(_) => Vec::new(), // "(empty bytes)"
                None => Vec::new(),
            };
            let media_type = media_type.unwrap_or("application/jose+json");
            let result = Envelope::parse_media_type(media_type, &bytes)
                .and_then(|e| e.verify_signature().map(|()| e));
            let expected = &case["expected_signet"];
            let integrity_failure =
                case["expected"]["validationType"] == "integrity" && expected["verified"] == false;
            let codes: Vec<&str> = expected["code"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if integrity_failure || id == "ng-blob-malformed-envelope" {
                let err = match result {
                    Err(e) => e,
                    Ok(_) => panic!("{id}: expected an integrity failure"),
                };
                assert!(
                    codes.contains(&err.code().as_str()),
                    "{id}: {err} has code {}, expected one of {codes:?}",
                    err.code()
                );
            } else if bytes.is_empty() {
                continue;
            } else {
                // Every other case has an envelope whose signature is intact (its failure,
                // if any, is later: authenticity, identity, expiry, plugin).
                let env = result.unwrap_or_else(|e| panic!("{id}: {e}"));
                if kind == "oci-verify-plugin" {
                    assert!(env.signed.verification_plugin.is_some(), "{id}");
                    assert!(env.signed.has_unsupported_critical(), "{id}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} cases checked");
}

/// Signature envelopes of the notation e2e OCI layouts (found by their manifests).
#[test]
fn oci_layout_envelopes() {
    let root = vector("notation/test/e2e/testdata/registry/oci_layout");
    let mut found = 0;
    for layout in std::fs::read_dir(&root).expect("layouts") {
        let blobs = layout.expect("entry").path().join("blobs/sha256");
        let Ok(entries) = std::fs::read_dir(&blobs) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            let Ok(manifest) =
                serde_json::from_slice::<Value>(&std::fs::read(&path).expect("read"))
            else {
                continue;
            };
            let Some(layers) = manifest["layers"].as_array() else {
                continue;
            };
            for layer in layers {
                let mt = layer["mediaType"].as_str().unwrap_or_default();
                let Some(format) = EnvelopeFormat::from_media_type(mt) else {
                    continue;
                };
                let digest = layer["digest"].as_str().expect("digest");
                let hex = digest.trim_start_matches("sha256:");
                let bytes = std::fs::read(blobs.join(hex)).expect("envelope blob");
                let env = Envelope::parse(format, &bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                env.verify_signature()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!env.certificate_chain.is_empty());
                found += 1;
            }
        }
    }
    assert!(found >= 5, "found {found} envelopes");
}

#[test]
fn e2e_blob_signatures() {
    for (file, format) in [
        ("blob.jws.sig", EnvelopeFormat::Jws),
        ("blob.cose.sig", EnvelopeFormat::Cose),
    ] {
        let bytes = read(&format!("notation/test/e2e/testdata/signatures/{file}"));
        let env = Envelope::parse(format, &bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        env.verify_signature()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(env.signed.content_type, PAYLOAD_CONTENT_TYPE);
        assert!(env.signed.signing_time.is_some());
        assert!(!env.signed.has_unsupported_critical());
    }
}

#[test]
fn envelope_parse_case_fails() {
    for case in cases("envelope-parse") {
        let path = case["inputs"]["envelope"].as_str().expect("envelope");
        let parses = case["expected_signet"]["parses"].as_bool().expect("parses");
        let bytes = read(path);
        let result = Envelope::parse(EnvelopeFormat::Jws, &bytes);
        assert_eq!(result.is_ok(), parses, "{path}: {result:?}");
        if let Err(e) = result {
            assert_eq!(e.code(), ErrorCode::SignatureInvalid);
        }
    }
}

fn encoding_vector(kind: &str) -> (Envelope, Value) {
    let case = cases(kind).into_iter().next().expect("case");
    let file = case["inputs"]["file"].as_str().expect("file");
    assert_eq!(case["expected_signet"]["decodes"], true);
    let doc: Value = serde_json::from_slice(&read(file)).expect("json");
    let env = if kind == "cose-encoding" {
        let hex = doc["expectedOutput"]["cborHex"].as_str().expect("cborHex");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        Envelope::parse(EnvelopeFormat::Cose, &bytes)
    } else {
        Envelope::parse(EnvelopeFormat::Jws, &read(file))
    }
    .unwrap_or_else(|e| panic!("{kind}: {e}"));
    (env, case)
}

#[test]
fn encoding_vectors_decode() {
    for kind in ["cose-encoding", "jws-encoding"] {
        let (env, case) = encoding_vector(kind);
        let crit = env
            .signed
            .extended
            .iter()
            .find(|a| a.key == "signedCritKey1")
            .unwrap_or_else(|| panic!("{kind}: signedCritKey1 missing"));
        assert!(crit.critical, "{kind}");
        let plain = env
            .signed
            .extended
            .iter()
            .find(|a| a.key == "signedKey1")
            .expect("signedKey1");
        assert!(!plain.critical, "{kind}");
        assert!(env.signed.has_unsupported_critical());
        assert_eq!(env.signed.signing_scheme, SigningScheme::X509);
        assert!(env.signed.expiry.is_some() && env.signed.signing_time.is_some());
        assert_eq!(
            env.unsigned.signing_agent.as_deref(),
            Some("NotationConformanceTest/1.0.0")
        );
        // No chain in these vectors: the signature cannot be checked.
        let err = env.verify_signature().expect_err("no chain");
        let codes = case["expected_signet"]["code"].as_array().expect("codes");
        assert!(
            codes.iter().any(|c| c == err.code().as_str()),
            "{kind}: {err}"
        );
    }
    let (cose, _) = encoding_vector("cose-encoding");
    assert_eq!(cose.algorithm, SignatureAlgorithm::RsaPssSha384);
    assert_eq!(cose.payload, b"hello COSE");
    assert_eq!(
        cose.signed.signing_time.map(|t| t.unix_timestamp()),
        Some(1661321924)
    );
}

// ---- negative tests -------------------------------------------------------------------

const JWS_VALID: &str = "notation-go/internal/mock/testdata/ca_valid_sig_env.json";

fn jws_doc() -> Value {
    serde_json::from_slice(&read(JWS_VALID)).expect("json")
}

fn protected_of(doc: &Value) -> serde_json::Map<String, Value> {
    let b = B64URL
        .decode(doc["protected"].as_str().expect("protected"))
        .expect("b64");
    serde_json::from_slice(&b).expect("protected json")
}

/// The valid JWS envelope with its protected header edited by `f`.
fn jws_with_protected(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let mut doc = jws_doc();
    let mut protected = protected_of(&doc);
    f(&mut protected);
    doc["protected"] = json!(B64URL.encode(serde_json::to_vec(&protected).expect("ser")));
    serde_json::to_vec(&doc).expect("ser")
}

fn parse_jws(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    Envelope::parse(EnvelopeFormat::Jws, bytes)
}

#[test]
fn jws_valid_then_tampered_payload() {
    let env = parse_jws(&read(JWS_VALID)).expect("parse");
    env.verify_signature().expect("verify");
    assert_eq!(env.algorithm, SignatureAlgorithm::RsaPssSha384);
    assert_eq!(
        env.unsigned.signing_agent.as_deref(),
        Some("Notation/1.0.0")
    );
    let mut doc = jws_doc();
    doc["payload"] = json!(B64URL.encode(br#"{"targetArtifact":{}}"#));
    let env = parse_jws(&serde_json::to_vec(&doc).expect("ser")).expect("parse");
    assert_eq!(env.verify_signature(), Err(EnvelopeError::BadSignature));
}

#[test]
fn jws_padded_base64_is_refused() {
    for field in ["payload", "protected", "signature"] {
        let mut doc = jws_doc();
        let s = doc[field].as_str().expect("field").to_owned();
        let padded = match s.len() % 4 {
            2 => format!("{s}=="),
            3 => format!("{s}="),
            _ => format!("{s}===="),
        };
        doc[field] = json!(padded);
        let err = parse_jws(&serde_json::to_vec(&doc).expect("ser")).expect_err(field);
        assert_eq!(err.code(), ErrorCode::SignatureInvalid, "{field}: {err}");
    }
}

#[test]
fn jws_invalid_sig_env_fails() {
    let err = parse_jws(&read(
        "notation-go/internal/mock/testdata/ca_invalid_sig_env.json",
    ))
    .and_then(|e| e.verify_signature())
    .expect_err("invalid");
    assert_eq!(err.code(), ErrorCode::SignatureInvalid);
}

#[test]
fn jws_alg_mismatch() {
    let env = parse_jws(&jws_with_protected(|p| {
        p.insert("alg".into(), json!("PS256"));
    }))
    .expect("parse");
    let err = env.verify_signature().expect_err("mismatch");
    assert_eq!(
        err,
        EnvelopeError::AlgorithmMismatch {
            header: "PS256",
            key: "PS384"
        }
    );
    assert_eq!(err.code(), ErrorCode::SignatureInvalid);
}

#[test]
fn jws_unsupported_alg() {
    let err = parse_jws(&jws_with_protected(|p| {
        p.insert("alg".into(), json!("RS256"));
    }))
    .expect_err("alg");
    assert_eq!(err.code(), ErrorCode::UnsupportedSignature, "{err}");
}

#[test]
fn jws_missing_signing_scheme() {
    let err = parse_jws(&jws_with_protected(|p| {
        p.remove(attr::SIGNING_SCHEME);
    }))
    .expect_err("scheme");
    assert_eq!(err, EnvelopeError::MissingAttribute(attr::SIGNING_SCHEME));
    assert_eq!(err.code(), ErrorCode::SignatureInvalid);
}

#[test]
fn jws_crit_mismatches() {
    // Required attribute not marked critical.
    let err = parse_jws(&jws_with_protected(|p| {
        p.insert("crit".into(), json!([attr::SIGNING_SCHEME]));
    }))
    .expect_err("expiry not critical");
    assert!(matches!(err, EnvelopeError::Critical(_)), "{err}");
    // Critical attribute absent.
    let err = parse_jws(&jws_with_protected(|p| {
        p.insert(
            "crit".into(),
            json!([attr::SIGNING_SCHEME, attr::EXPIRY, "absentKey"]),
        );
    }))
    .expect_err("absent");
    assert!(matches!(err, EnvelopeError::Critical(_)), "{err}");
    // No crit at all.
    let err = parse_jws(&jws_with_protected(|p| {
        p.remove("crit");
    }))
    .expect_err("no crit");
    assert!(matches!(err, EnvelopeError::Critical(_)), "{err}");
    // Extended critical attribute: decodes, flagged.
    let env = parse_jws(&jws_with_protected(|p| {
        p.insert("custom".into(), json!("x"));
        p.insert(
            "crit".into(),
            json!([attr::SIGNING_SCHEME, attr::EXPIRY, "custom"]),
        );
    }))
    .expect("extended critical decodes");
    assert_eq!(
        env.signed.extended,
        vec![ExtendedAttribute {
            key: "custom".into(),
            critical: true
        }]
    );
}

#[test]
fn jws_scheme_time_rules() {
    let err = parse_jws(&jws_with_protected(|p| {
        p.remove(attr::SIGNING_TIME);
    }))
    .expect_err("no signing time");
    assert_eq!(err, EnvelopeError::MissingAttribute(attr::SIGNING_TIME));
    let err = parse_jws(&jws_with_protected(|p| {
        p.insert(attr::EXPIRY.into(), json!("2020-11-09T07:00:00Z"));
    }))
    .expect_err("expiry == signing time");
    assert!(
        matches!(err, EnvelopeError::InvalidAttribute { .. }),
        "{err}"
    );
    let err = parse_jws(&jws_with_protected(|p| {
        p.insert(attr::SIGNING_SCHEME.into(), json!("notary.other"));
    }))
    .expect_err("unknown scheme");
    assert!(
        matches!(err, EnvelopeError::InvalidAttribute { .. }),
        "{err}"
    );
    let err = parse_jws(&jws_with_protected(|p| {
        p.insert("cty".into(), json!("application/json"));
    }))
    .expect_err("cty");
    assert!(
        matches!(err, EnvelopeError::InvalidAttribute { .. }),
        "{err}"
    );
}

#[test]
fn jws_structure_errors() {
    for bad in [
        &b"[]"[..],
        b"{",
        b"null",
        br#"{"payload":"e30","protected":"e30","signature":"AA","payload":"e30"}"#,
        br#"{"payload":1}"#,
    ] {
        let err = parse_jws(bad).expect_err("bad");
        assert_eq!(err.code(), ErrorCode::SignatureInvalid, "{err}");
    }
    // Duplicate key in the protected header.
    let mut doc = jws_doc();
    let p = B64URL
        .decode(doc["protected"].as_str().expect("p"))
        .expect("b64");
    let mut dup = p[..p.len() - 1].to_vec();
    dup.extend_from_slice(br#","alg":"PS384"}"#);
    doc["protected"] = json!(B64URL.encode(&dup));
    let err = parse_jws(&serde_json::to_vec(&doc).expect("ser")).expect_err("dup");
    assert!(err.to_string().contains("duplicate"), "{err}");
}

#[test]
fn jws_chain_limits() {
    let mut doc = jws_doc();
    let leaf = doc["header"]["x5c"][0].clone();
    doc["header"]["x5c"] = Value::Array(vec![leaf; crate::MAX_CHAIN_LENGTH + 1]);
    let err = parse_jws(&serde_json::to_vec(&doc).expect("ser")).expect_err("long");
    assert_eq!(err, EnvelopeError::ChainTooLong(11));
    let mut doc = jws_doc();
    doc["header"]["x5c"][1] = json!("AAAA");
    let err = parse_jws(&serde_json::to_vec(&doc).expect("ser")).expect_err("bad cert");
    assert!(
        matches!(err, EnvelopeError::BadCertificate { index: 1, .. }),
        "{err}"
    );
    let mut doc = jws_doc();
    doc["header"]["x5c"] = json!([]);
    let env = parse_jws(&serde_json::to_vec(&doc).expect("ser")).expect("parse");
    assert_eq!(
        env.verify_signature(),
        Err(EnvelopeError::MissingCertificateChain)
    );
}

#[test]
fn size_bound_and_empty() {
    let big = vec![b' '; crate::MAX_ENVELOPE_BYTES + 1];
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        assert_eq!(
            Envelope::parse(format, &big).expect_err("big"),
            EnvelopeError::TooLarge(crate::MAX_ENVELOPE_BYTES + 1)
        );
        assert_eq!(
            Envelope::parse(format, b"").expect_err("empty"),
            EnvelopeError::Empty
        );
    }
    let err = Envelope::parse_media_type("application/unsupported+json", b"{}").expect_err("mt");
    assert_eq!(err.code(), ErrorCode::UnsupportedSignature);
}

// ---- COSE negatives -------------------------------------------------------------------

use coset::cbor::value::Value as Cbor;
use coset::{CoseSign1, Label, TaggedCborSerializable};

const COSE_VALID: &str = "notation/test/e2e/testdata/signatures/blob.cose.sig";

fn cose_msg() -> CoseSign1 {
    CoseSign1::from_tagged_slice(&read(COSE_VALID)).expect("cose")
}

fn cose_bytes(msg: CoseSign1) -> Vec<u8> {
    msg.to_tagged_vec().expect("encode")
}

/// The valid COSE envelope with its protected header edited (and re-encoded).
fn cose_with_protected(f: impl FnOnce(&mut coset::Header)) -> Vec<u8> {
    let mut msg = cose_msg();
    msg.protected.original_data = None;
    f(&mut msg.protected.header);
    cose_bytes(msg)
}

fn parse_cose(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    Envelope::parse(EnvelopeFormat::Cose, bytes)
}

#[test]
fn cose_truncated_and_wrong_tag() {
    let bytes = read(COSE_VALID);
    for len in [1, 2, 10, bytes.len() / 2, bytes.len() - 1] {
        let err = parse_cose(&bytes[..len]).expect_err("truncated");
        assert_eq!(err.code(), ErrorCode::SignatureInvalid, "{err}");
    }
    let mut wrong = bytes.clone();
    wrong[0] = 0xd1; // tag 17 (COSE_Mac0)
    assert!(parse_cose(&wrong).is_err());
    // Untagged COSE_Sign1.
    assert!(parse_cose(&bytes[1..]).is_err());
    let mut trailing = bytes;
    trailing.push(0);
    assert!(parse_cose(&trailing).is_err());
}

#[test]
fn cose_reencoded_header_breaks_signature_only() {
    // Re-encoding the same protected header keeps the parse valid; the signature is over
    // the bytes as received, so it only verifies if the encoding is byte-identical.
    let env = parse_cose(&cose_with_protected(|_| {})).expect("parse");
    let original = parse_cose(&read(COSE_VALID)).expect("parse");
    assert_eq!(env.signed, original.signed);
}

#[test]
fn cose_alg_mismatch_and_unsupported() {
    let leaf_alg = parse_cose(&read(COSE_VALID)).expect("parse").algorithm;
    let other = if leaf_alg == SignatureAlgorithm::EcdsaP256Sha256 {
        coset::iana::Algorithm::PS256
    } else {
        coset::iana::Algorithm::ES256
    };
    let env = parse_cose(&cose_with_protected(|h| {
        h.alg = Some(coset::Algorithm::Assigned(other));
    }))
    .expect("parse");
    assert!(matches!(
        env.verify_signature(),
        Err(EnvelopeError::AlgorithmMismatch { .. })
    ));
    let err = parse_cose(&cose_with_protected(|h| {
        h.alg = Some(coset::Algorithm::Assigned(coset::iana::Algorithm::EdDSA));
    }))
    .expect_err("EdDSA");
    assert_eq!(err.code(), ErrorCode::UnsupportedSignature);
}

#[test]
fn cose_missing_scheme_and_crit() {
    let err = parse_cose(&cose_with_protected(|h| {
        h.rest
            .retain(|(l, _)| *l != Label::Text(attr::SIGNING_SCHEME.into()));
    }))
    .expect_err("scheme");
    assert_eq!(err, EnvelopeError::MissingAttribute(attr::SIGNING_SCHEME));
    let err = parse_cose(&cose_with_protected(|h| {
        h.crit
            .retain(|c| *c != coset::RegisteredLabelWithPrivate::Text(attr::SIGNING_SCHEME.into()));
        if h.crit.is_empty() {
            h.crit.push(coset::RegisteredLabelWithPrivate::Assigned(
                coset::iana::HeaderParameter::Alg,
            ));
        }
    }))
    .expect_err("crit");
    assert!(matches!(err, EnvelopeError::Critical(_)), "{err}");
    let err = parse_cose(&cose_with_protected(|h| {
        h.crit
            .push(coset::RegisteredLabelWithPrivate::Text("absent".into()));
    }))
    .expect_err("absent crit");
    assert!(matches!(err, EnvelopeError::Critical(_)), "{err}");
    let env = parse_cose(&cose_with_protected(|h| {
        h.rest
            .push((Label::Text("ext".into()), Cbor::Text("v".into())));
        h.crit
            .push(coset::RegisteredLabelWithPrivate::Text("ext".into()));
    }))
    .expect("extended");
    assert!(env
        .signed
        .extended
        .iter()
        .any(|a| a.key == "ext" && a.critical));
}

#[test]
fn cose_time_needs_tag_1() {
    let err = parse_cose(&cose_with_protected(|h| {
        for (l, v) in h.rest.iter_mut() {
            if *l == Label::Text(attr::SIGNING_TIME.into()) {
                *v = Cbor::Integer(1_700_000_000.into());
            }
        }
    }))
    .expect_err("untagged time");
    assert!(
        matches!(err, EnvelopeError::InvalidAttribute { .. }),
        "{err}"
    );
}

#[test]
fn cose_chain_forms() {
    let msg = cose_msg();
    let chain = msg
        .unprotected
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(33))
        .map(|(_, v)| v.clone())
        .expect("x5chain");
    let Cbor::Array(certs) = chain else {
        panic!("x5chain array")
    };
    // 11 certificates.
    let mut long = cose_msg();
    for (l, v) in long.unprotected.rest.iter_mut() {
        if *l == Label::Int(33) {
            *v = Cbor::Array(vec![certs[0].clone(); 11]);
        }
    }
    assert_eq!(
        parse_cose(&cose_bytes(long)).expect_err("long"),
        EnvelopeError::ChainTooLong(11)
    );
    // A single bstr, moved to the protected header: accepted, signature then fails only
    // because the protected bytes changed.
    let mut moved = cose_msg();
    moved.unprotected.rest.retain(|(l, _)| *l != Label::Int(33));
    moved.protected.original_data = None;
    moved
        .protected
        .header
        .rest
        .push((Label::Int(33), certs[0].clone()));
    let env = parse_cose(&cose_bytes(moved)).expect("protected x5chain");
    assert_eq!(env.certificate_chain.len(), 1);
    assert!(env.signed.extended.is_empty());
    // In both buckets: refused.
    let mut both = cose_msg();
    both.protected.original_data = None;
    both.protected
        .header
        .rest
        .push((Label::Int(33), certs[0].clone()));
    assert!(parse_cose(&cose_bytes(both)).is_err());
    // Garbage certificate.
    let mut bad = cose_msg();
    for (l, v) in bad.unprotected.rest.iter_mut() {
        if *l == Label::Int(33) {
            *v = Cbor::Array(vec![certs[0].clone(), Cbor::Bytes(vec![0x30, 0x00])]);
        }
    }
    assert!(matches!(
        parse_cose(&cose_bytes(bad)),
        Err(EnvelopeError::BadCertificate { index: 1, .. })
    ));
}

#[test]
fn cose_tampered_signature() {
    let mut msg = cose_msg();
    if let Some(b) = msg.signature.last_mut() {
        *b ^= 1;
    }
    let env = parse_cose(&cose_bytes(msg)).expect("parse");
    assert_eq!(env.verify_signature(), Err(EnvelopeError::BadSignature));
}
