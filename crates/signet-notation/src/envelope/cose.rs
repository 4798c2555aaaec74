//! COSE_Sign1 envelopes (`application/cose`): `COSE_Sign1_Tagged` (CBOR tag 18) as
//! notation-core-go writes it.
//!
//! - Protected header: `alg` (1; PS256 = -37, PS384 = -38, PS512 = -39, ES256 = -7,
//!   ES384 = -35, ES512 = -36), `crit` (2), content type (3), and the text labels
//!   `io.cncf.notary.signingScheme`, `io.cncf.notary.signingTime` /
//!   `io.cncf.notary.authenticSigningTime` / `io.cncf.notary.expiry` (CBOR tag 1 epoch times),
//!   the verification plugin attributes, and any extended attributes.
//! - Unprotected header: `x5chain` (33; a bstr or an array of bstr; also accepted from the
//!   protected header), `io.cncf.notary.signingAgent`, `io.cncf.notary.timestampSignature`
//!   (bstr, a DER `TimeStampToken`).
//! - The signature covers the `Sig_structure`
//!   `["Signature1", protected (bytes as received), h'' (no external AAD), payload]`.
//! - RFC 9052: a label may not appear in both buckets, and `crit` must be protected.

use coset::cbor::value::Value;
use coset::iana::EnumI64;
use coset::{
    CoseSign1, Header, Label, RegisteredLabel, RegisteredLabelWithPrivate, TaggedCborSerializable,
};

use super::{
    attr, decode_chain, Envelope, EnvelopeError, EnvelopeFormat, RawSigned, UnsignedAttributes,
};
use crate::crypto::SignatureAlgorithm;
use crate::Instant;

const FORMAT: &str = "COSE";

/// `x5chain` (RFC 9360).
const X5CHAIN: i64 = 33;

/// Header labels of the generic COSE parameters coset decodes into fields.
const ALG: i64 = 1;
const CRIT: i64 = 2;
const CONTENT_TYPE: i64 = 3;

/// A header label, comparable across buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Int(i64),
    Text(String),
}

impl Key {
    fn from_label(label: &Label) -> Self {
        match label {
            Label::Int(i) => Key::Int(*i),
            Label::Text(t) => Key::Text(t.clone()),
        }
    }

    /// The name used in `crit` matching and in extended attributes (integers in decimal).
    fn name(&self) -> String {
        match self {
            Key::Int(i) => i.to_string(),
            Key::Text(t) => t.clone(),
        }
    }
}

/// Every label present in a decoded header, in a stable order.
fn keys_of(h: &Header) -> Vec<Key> {
    let mut keys = Vec::new();
    if h.alg.is_some() {
        keys.push(Key::Int(ALG));
    }
    if !h.crit.is_empty() {
        keys.push(Key::Int(CRIT));
    }
    if h.content_type.is_some() {
        keys.push(Key::Int(CONTENT_TYPE));
    }
    if !h.key_id.is_empty() {
        keys.push(Key::Int(4));
    }
    if !h.iv.is_empty() {
        keys.push(Key::Int(5));
    }
    if !h.partial_iv.is_empty() {
        keys.push(Key::Int(6));
    }
    if !h.counter_signatures.is_empty() {
        keys.push(Key::Int(7));
    }
    keys.extend(h.rest.iter().map(|(l, _)| Key::from_label(l)));
    keys
}

fn malformed(reason: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Malformed {
        format: FORMAT,
        reason: reason.into(),
    }
}

fn rest_get<'h>(h: &'h Header, name: &str) -> Option<&'h Value> {
    h.rest.iter().find_map(|(l, v)| match l {
        Label::Text(t) if t == name => Some(v),
        _ => None,
    })
}

fn rest_get_int(h: &Header, label: i64) -> Option<&Value> {
    h.rest.iter().find_map(|(l, v)| match l {
        Label::Int(i) if *i == label => Some(v),
        _ => None,
    })
}

fn cbor_type(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "an integer",
        Value::Bytes(_) => "a byte string",
        Value::Float(_) => "a float",
        Value::Text(_) => "a text string",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Tag(_, _) => "a tagged value",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "an unexpected CBOR item",
    }
}

fn text_attr(h: &Header, name: &str) -> Result<Option<String>, EnvelopeError> {
    match rest_get(h, name) {
        None => Ok(None),
        Some(Value::Text(s)) => Ok(Some(s.clone())),
        Some(other) => Err(EnvelopeError::invalid(
            name,
            format!("{}, not a text string", cbor_type(other)),
        )),
    }
}

/// A time attribute: CBOR tag 1 over an integer or a float (seconds since the epoch).
fn time_attr(h: &Header, name: &str) -> Result<Option<Instant>, EnvelopeError> {
    let value = match rest_get(h, name) {
        None => return Ok(None),
        Some(v) => v,
    };
    let inner = match value {
        Value::Tag(1, inner) => inner.as_ref(),
        Value::Tag(t, _) => {
            return Err(EnvelopeError::invalid(
                name,
                format!("a time with CBOR tag {t}; only tag 1 (epoch time) is supported"),
            ))
        }
        other => {
            return Err(EnvelopeError::invalid(
                name,
                format!("{}, not a tag 1 epoch time", cbor_type(other)),
            ))
        }
    };
    let parsed = match inner {
        Value::Integer(i) => i64::try_from(i128::from(*i))
            .ok()
            .and_then(|s| Instant::from_unix_timestamp(s).ok()),
        Value::Float(f) if f.is_finite() => {
            let nanos = (f * 1e9).round();
            if nanos.abs() < 1e30 {
                // In range for i128; out-of-range instants are refused just below.
                Instant::from_unix_timestamp_nanos(nanos as i128).ok()
            } else {
                None
            }
        }
        other => {
            return Err(EnvelopeError::invalid(
                name,
                format!("tag 1 over {}, not a number", cbor_type(other)),
            ))
        }
    };
    parsed
        .map(Some)
        .ok_or_else(|| EnvelopeError::invalid(name, "the epoch time is out of range"))
}

/// `x5chain`: one bstr, or an array of bstr.
fn chain_ders(v: &Value) -> Result<Vec<Vec<u8>>, EnvelopeError> {
    match v {
        Value::Bytes(b) => Ok(vec![b.clone()]),
        Value::Array(items) => {
            if items.len() > crate::MAX_CHAIN_LENGTH {
                return Err(EnvelopeError::ChainTooLong(items.len()));
            }
            items
                .iter()
                .map(|i| match i {
                    Value::Bytes(b) => Ok(b.clone()),
                    other => Err(malformed(format!(
                        "an x5chain entry is {}, not a byte string",
                        cbor_type(other)
                    ))),
                })
                .collect()
        }
        other => Err(malformed(format!(
            "x5chain is {}, not a byte string or an array of byte strings",
            cbor_type(other)
        ))),
    }
}

/// Appends a CBOR head (major type `major`, argument `len`).
fn push_head(out: &mut Vec<u8>, major: u8, len: u64) {
    let m = major << 5;
    if len < 24 {
        out.push(m | len as u8);
    } else if len <= u64::from(u8::MAX) {
        out.push(m | 24);
        out.push(len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else if len <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// `Sig_structure` for COSE_Sign1 with empty external AAD (RFC 9052 §4.4).
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 32);
    push_head(&mut out, 4, 4);
    push_head(&mut out, 3, 10);
    out.extend_from_slice(b"Signature1");
    push_head(&mut out, 2, protected.len() as u64);
    out.extend_from_slice(protected);
    push_head(&mut out, 2, 0);
    push_head(&mut out, 2, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// Parses a COSE_Sign1_Tagged envelope. The caller has checked the size bound and
/// non-emptiness.
pub(crate) fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    // go-cose requires exactly this prefix: tag 18, then an array of 4 items.
    if !bytes.starts_with(&[0xd2, 0x84]) {
        return Err(malformed(
            "not a COSE_Sign1_Tagged message (CBOR tag 18 and a 4-item array expected first)",
        ));
    }
    let msg = CoseSign1::from_tagged_slice(bytes)
        .map_err(|e| malformed(format!("not a COSE_Sign1_Tagged message: {e}")))?;
    let protected_bytes = msg.protected.original_data.clone().unwrap_or_default();
    let p = &msg.protected.header;
    let u = &msg.unprotected;

    // RFC 9052 §3: crit is protected; no label in both buckets.
    if !u.crit.is_empty() {
        return Err(EnvelopeError::Critical(
            "crit appears in the unprotected header; it must be protected".into(),
        ));
    }
    let protected_keys = keys_of(p);
    let unprotected_keys = keys_of(u);
    if let Some(k) = protected_keys.iter().find(|k| unprotected_keys.contains(k)) {
        return Err(malformed(format!(
            "header parameter {} appears in both the protected and the unprotected header",
            k.name()
        )));
    }

    // alg
    let algorithm = match &p.alg {
        None => return Err(EnvelopeError::MissingAttribute("alg")),
        Some(RegisteredLabelWithPrivate::Assigned(a)) => {
            SignatureAlgorithm::from_cose_id(a.to_i64()).ok_or_else(|| {
                EnvelopeError::UnsupportedAlgorithm(format!("COSE algorithm {}", a.to_i64()))
            })?
        }
        Some(RegisteredLabelWithPrivate::PrivateUse(i)) => {
            return Err(EnvelopeError::UnsupportedAlgorithm(format!(
                "COSE algorithm {i}"
            )))
        }
        Some(RegisteredLabelWithPrivate::Text(t)) => {
            return Err(EnvelopeError::UnsupportedAlgorithm(format!(
                "COSE algorithm {t:?}"
            )))
        }
    };

    let crit: Option<Vec<String>> = if p.crit.is_empty() {
        None
    } else {
        Some(
            p.crit
                .iter()
                .map(|c| match c {
                    RegisteredLabelWithPrivate::Assigned(h) => h.to_i64().to_string(),
                    RegisteredLabelWithPrivate::PrivateUse(i) => i.to_string(),
                    RegisteredLabelWithPrivate::Text(t) => t.clone(),
                })
                .collect(),
        )
    };

    let content_type = match &p.content_type {
        None => None,
        Some(RegisteredLabel::Text(t)) => Some(t.clone()),
        Some(RegisteredLabel::Assigned(c)) => {
            return Err(EnvelopeError::invalid(
                "content type",
                format!(
                    "CoAP content format {}; the text {} is required",
                    c.to_i64(),
                    super::PAYLOAD_CONTENT_TYPE
                ),
            ))
        }
    };

    // Labels that are Notation's (not extended attributes).
    let notation_text = [
        attr::SIGNING_SCHEME,
        attr::SIGNING_TIME,
        attr::AUTHENTIC_SIGNING_TIME,
        attr::EXPIRY,
        attr::VERIFICATION_PLUGIN,
        attr::VERIFICATION_PLUGIN_MIN_VERSION,
    ];
    let extended_keys = protected_keys
        .iter()
        .filter(|k| match k {
            Key::Int(i) => ![ALG, CRIT, CONTENT_TYPE, X5CHAIN].contains(i),
            Key::Text(t) => !notation_text.contains(&t.as_str()),
        })
        .map(Key::name)
        .collect();

    let raw = RawSigned {
        signing_scheme: text_attr(p, attr::SIGNING_SCHEME)?,
        signing_time: time_attr(p, attr::SIGNING_TIME)?,
        authentic_signing_time: time_attr(p, attr::AUTHENTIC_SIGNING_TIME)?,
        expiry: time_attr(p, attr::EXPIRY)?,
        content_type,
        verification_plugin: text_attr(p, attr::VERIFICATION_PLUGIN)?,
        verification_plugin_min_version: text_attr(p, attr::VERIFICATION_PLUGIN_MIN_VERSION)?,
        extended_keys,
        crit,
    };
    // go-cose: every crit label must be present in the protected header.
    let present: Vec<String> = protected_keys.iter().map(Key::name).collect();
    let signed = raw.validate(|entry| present.iter().any(|k| k == entry))?;

    let payload = msg
        .payload
        .clone()
        .ok_or_else(|| malformed("the payload is detached (nil); Notation embeds it"))?;
    if payload.is_empty() {
        return Err(malformed("the payload is empty"));
    }
    if msg.signature.is_empty() {
        return Err(malformed("the signature is empty"));
    }

    // Certificate chain: unprotected (as notation-core-go writes it) or protected.
    let chain_value = rest_get_int(u, X5CHAIN).or_else(|| rest_get_int(p, X5CHAIN));
    let certificate_chain = match chain_value {
        Some(v) => decode_chain(chain_ders(v)?)?,
        None => Vec::new(),
    };

    let signing_agent = match rest_get(u, attr::SIGNING_AGENT) {
        None => None,
        Some(Value::Text(s)) => Some(s.clone()),
        Some(other) => {
            return Err(malformed(format!(
                "{} is {}, not a text string",
                attr::SIGNING_AGENT,
                cbor_type(other)
            )))
        }
    };
    let timestamp_token = match rest_get(u, attr::TIMESTAMP_SIGNATURE) {
        None => None,
        Some(Value::Bytes(b)) => Some(b.clone()),
        Some(other) => {
            return Err(malformed(format!(
                "{} is {}, not a byte string",
                attr::TIMESTAMP_SIGNATURE,
                cbor_type(other)
            )))
        }
    };

    let to_be_signed = sig_structure(&protected_bytes, &payload);
    Ok(Envelope {
        format: EnvelopeFormat::Cose,
        payload,
        signed,
        unsigned: UnsignedAttributes {
            signing_agent,
            timestamp_token,
        },
        algorithm,
        certificate_chain,
        signature: msg.signature,
        to_be_signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_structure_matches_coset() {
        let bytes = std::fs::read(crate::test_support::vector(
            "notation/test/e2e/testdata/signatures/blob.cose.sig",
        ))
        .expect("read vector");
        let msg = CoseSign1::from_tagged_slice(&bytes).expect("decode");
        let ours = sig_structure(
            msg.protected.original_data.as_deref().unwrap_or_default(),
            msg.payload.as_deref().unwrap_or_default(),
        );
        assert_eq!(ours, msg.tbs_data(b""));
    }

    #[test]
    fn cbor_heads_match_ciborium() {
        for len in [0usize, 1, 23, 24, 255, 256, 65535, 65536, 70000] {
            let mut ours = Vec::new();
            push_head(&mut ours, 2, len as u64);
            let mut theirs = Vec::new();
            coset::cbor::ser::into_writer(&Value::Bytes(vec![0; len]), &mut theirs)
                .expect("encode");
            assert_eq!(
                ours,
                theirs.get(..theirs.len() - len).expect("head"),
                "len {len}"
            );
        }
        let mut big = Vec::new();
        push_head(&mut big, 2, 1 << 32);
        assert_eq!(big, [0x5b, 0, 0, 0, 1, 0, 0, 0, 0]);
    }
}
