//! JWS JSON envelopes (`application/jose+json`): the flattened JSON serialization
//! `{"payload", "protected", "header", "signature"}` as notation-core-go writes it.
//!
//! Decoding follows notation-core-go v1:
//! - `payload`, `protected` and `signature` are base64url **without** padding;
//! - the protected header is a JSON object with `alg`, `cty`, `crit`,
//!   `io.cncf.notary.signingScheme`, the RFC 3339 times, and any extended attributes;
//! - the unprotected `header` carries `x5c` (standard base64 DER certificates),
//!   `io.cncf.notary.signingAgent` and `io.cncf.notary.timestampSignature` (standard base64);
//! - top-level and unprotected-header member names match case-insensitively (Go's
//!   `encoding/json`); unknown members are ignored.
//!
//! Stricter than Go, on purpose: duplicate member names (at the top level and in the
//! protected header) are refused instead of "last one wins", and protected-header names match
//! exactly.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

use super::{
    attr, decode_chain, Envelope, EnvelopeError, EnvelopeFormat, RawSigned, UnsignedAttributes,
};
use crate::crypto::SignatureAlgorithm;
use crate::Instant;

const FORMAT: &str = "JWS";

/// base64url, no padding accepted (Go's `base64.RawURLEncoding`).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with padding (Go's `encoding/json` for `[]byte`).
const B64STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Protected-header names that are not extended attributes.
const HEADER_KEYS: [&str; 7] = [
    "alg",
    "cty",
    "crit",
    attr::EXPIRY,
    attr::SIGNING_TIME,
    attr::SIGNING_SCHEME,
    attr::AUTHENTIC_SIGNING_TIME,
];

/// A JSON object whose members are kept in order and whose names must be unique.
#[derive(Debug)]
struct StrictObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictObject, A::Error> {
                let mut members: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if members.iter().any(|(seen, _)| *seen == k) {
                        return Err(serde::de::Error::custom(format!("duplicate member {k:?}")));
                    }
                    members.push((k, v));
                }
                Ok(StrictObject(members))
            }
        }
        d.deserialize_map(V)
    }
}

impl StrictObject {
    fn from_slice(bytes: &[u8], what: &str) -> Result<Self, EnvelopeError> {
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("{what}: {e}")))
    }

    fn from_value(value: Value, what: &str) -> Result<Self, EnvelopeError> {
        match value {
            Value::Object(map) => Ok(StrictObject(map.into_iter().collect())),
            Value::Null => Ok(StrictObject(Vec::new())),
            other => Err(malformed(format!(
                "{what} is {}, not a JSON object",
                json_type(&other)
            ))),
        }
    }

    /// The member named `name` exactly.
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Takes the member named `name`, matching case-insensitively as Go does; two members
    /// that both match are refused.
    fn take_folded(&mut self, name: &str) -> Result<Option<Value>, EnvelopeError> {
        let mut found = None;
        let mut i = 0;
        while i < self.0.len() {
            if self
                .0
                .get(i)
                .is_some_and(|(k, _)| k.eq_ignore_ascii_case(name))
            {
                let (k, v) = self.0.remove(i);
                if found.is_some() {
                    return Err(malformed(format!(
                        "member {k:?} duplicates {name:?} (names match case-insensitively)"
                    )));
                }
                found = Some(v);
            } else {
                i += 1;
            }
        }
        Ok(found)
    }
}

fn malformed(reason: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Malformed {
        format: FORMAT,
        reason: reason.into(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string member (absent or `null` → `None`).
fn opt_string(v: Option<Value>, what: &str) -> Result<Option<String>, EnvelopeError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(malformed(format!(
            "{what} is {}, not a string",
            json_type(&other)
        ))),
    }
}

fn b64url(field: &'static str, s: &str) -> Result<Vec<u8>, EnvelopeError> {
    B64URL.decode(s).map_err(|e| EnvelopeError::Base64 {
        field,
        encoding: "unpadded base64url",
        reason: e.to_string(),
    })
}

fn b64std(field: &'static str, s: &str) -> Result<Vec<u8>, EnvelopeError> {
    B64STD.decode(s).map_err(|e| EnvelopeError::Base64 {
        field,
        encoding: "standard base64",
        reason: e.to_string(),
    })
}

/// An RFC 3339 time attribute of the protected header.
fn time_attr(header: &StrictObject, name: &str) -> Result<Option<Instant>, EnvelopeError> {
    match header.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Instant::parse(s, &Rfc3339).map(Some).map_err(|e| {
            EnvelopeError::invalid(name, format!("{s:?} is not an RFC 3339 time: {e}"))
        }),
        Some(other) => Err(EnvelopeError::invalid(
            name,
            format!("{}, not an RFC 3339 time string", json_type(other)),
        )),
    }
}

fn string_attr(header: &StrictObject, name: &str) -> Result<Option<String>, EnvelopeError> {
    match header.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(EnvelopeError::invalid(
            name,
            format!("{}, not a string", json_type(other)),
        )),
    }
}

/// Parses a JWS JSON envelope. The caller has checked the size bound and non-emptiness.
pub(crate) fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let mut top = StrictObject::from_slice(bytes, "the envelope is not a JSON object")?;
    let payload_b64 = opt_string(top.take_folded("payload")?, "payload")?
        .ok_or_else(|| malformed("the payload member is missing"))?;
    let protected_b64 = opt_string(top.take_folded("protected")?, "protected")?
        .ok_or_else(|| malformed("the protected member is missing"))?;
    let signature_b64 = opt_string(top.take_folded("signature")?, "signature")?
        .ok_or_else(|| malformed("the signature member is missing"))?;
    let header = match top.take_folded("header")? {
        Some(v) => StrictObject::from_value(v, "the unprotected header")?,
        None => StrictObject(Vec::new()),
    };

    // Protected header.
    let protected_json = b64url("protected", &protected_b64)?;
    let protected = StrictObject::from_slice(&protected_json, "the protected header")?;
    let alg_name = string_attr(&protected, "alg")?.ok_or(EnvelopeError::MissingAttribute("alg"))?;
    let algorithm = SignatureAlgorithm::from_jws_name(&alg_name)
        .ok_or_else(|| EnvelopeError::UnsupportedAlgorithm(format!("{alg_name:?}")))?;
    let crit = match protected.get("crit") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(EnvelopeError::Critical(format!(
                        "an entry is {}, not a string",
                        json_type(other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => {
            return Err(EnvelopeError::Critical(format!(
                "crit is {}, not an array of strings",
                json_type(other)
            )))
        }
    };
    let raw = RawSigned {
        signing_scheme: string_attr(&protected, attr::SIGNING_SCHEME)?,
        signing_time: time_attr(&protected, attr::SIGNING_TIME)?,
        authentic_signing_time: time_attr(&protected, attr::AUTHENTIC_SIGNING_TIME)?,
        expiry: time_attr(&protected, attr::EXPIRY)?,
        content_type: string_attr(&protected, "cty")?,
        verification_plugin: string_attr(&protected, attr::VERIFICATION_PLUGIN)?,
        verification_plugin_min_version: string_attr(
            &protected,
            attr::VERIFICATION_PLUGIN_MIN_VERSION,
        )?,
        extended_keys: protected
            .0
            .iter()
            .map(|(k, _)| k)
            .filter(|k| {
                !HEADER_KEYS.contains(&k.as_str())
                    && *k != attr::VERIFICATION_PLUGIN
                    && *k != attr::VERIFICATION_PLUGIN_MIN_VERSION
            })
            .cloned()
            .collect(),
        crit,
    };
    // notation-core-go: a crit entry other than the required ones must be an extended
    // attribute (so `alg`, `cty`, `signingTime`... may not be listed).
    let signed =
        raw.validate(|entry| !HEADER_KEYS.contains(&entry) && protected.get(entry).is_some())?;

    // Payload: non-empty, and a JSON object (the JWT claims set notation-core-go parses).
    let payload = b64url("payload", &payload_b64)?;
    if payload.is_empty() {
        return Err(malformed("the payload is empty"));
    }
    match serde_json::from_slice::<Value>(&payload) {
        Ok(Value::Object(_)) => {}
        Ok(other) => {
            return Err(malformed(format!(
                "the payload is {}, not a JSON object",
                json_type(&other)
            )))
        }
        Err(e) => return Err(malformed(format!("the payload is not JSON: {e}"))),
    }

    let signature = b64url("signature", &signature_b64)?;
    if signature.is_empty() {
        return Err(malformed("the signature is empty"));
    }

    // Unprotected header.
    let mut header = header;
    let chain_ders = match header.take_folded("x5c")? {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > crate::MAX_CHAIN_LENGTH {
                return Err(EnvelopeError::ChainTooLong(items.len()));
            }
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => b64std("x5c", s),
                    other => Err(malformed(format!(
                        "an x5c entry is {}, not a base64 string",
                        json_type(other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(other) => {
            return Err(malformed(format!(
                "x5c is {}, not an array",
                json_type(&other)
            )))
        }
    };
    let certificate_chain = decode_chain(chain_ders)?;
    let signing_agent = opt_string(
        header.take_folded(attr::SIGNING_AGENT)?,
        attr::SIGNING_AGENT,
    )?;
    let timestamp_token = match opt_string(
        header.take_folded(attr::TIMESTAMP_SIGNATURE)?,
        attr::TIMESTAMP_SIGNATURE,
    )? {
        Some(s) => Some(b64std("io.cncf.notary.timestampSignature", &s)?),
        None => None,
    };

    let mut to_be_signed = Vec::with_capacity(protected_b64.len() + 1 + payload_b64.len());
    to_be_signed.extend_from_slice(protected_b64.as_bytes());
    to_be_signed.push(b'.');
    to_be_signed.extend_from_slice(payload_b64.as_bytes());

    Ok(Envelope {
        format: EnvelopeFormat::Jws,
        payload,
        signed,
        unsigned: UnsignedAttributes {
            signing_agent,
            timestamp_token,
        },
        algorithm,
        certificate_chain,
        signature,
        to_be_signed,
    })
}
