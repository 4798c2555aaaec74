//! TUF public keys as Notary writes them, their content IDs, and signature checks.
//!
//! | `keytype` | `keyval.public` | signature `method` |
//! |---|---|---|
//! | `ed25519` | the raw 32-byte key | `eddsa` |
//! | `ecdsa` | PKIX `SubjectPublicKeyInfo` (DER) | `ecdsa` (r‖s over SHA-256) |
//! | `ecdsa-x509` | a PEM certificate | `ecdsa` |
//! | `rsa` | PKIX `SubjectPublicKeyInfo` (DER) | `rsapss` (SHA-256, salt 32) or `rsapkcs1v15` |
//! | `rsa-x509` | a PEM certificate | `rsapss` or `rsapkcs1v15` |
//!
//! A key's ID is the hex SHA-256 of the canonical JSON
//! `{"keytype":T,"keyval":{"private":null,"public":BASE64}}`; Notary's "canonical" ID of an
//! x509 key is the ID of the same key written without its certificate (`ecdsa` / `rsa` with
//! the certificate's `SubjectPublicKeyInfo`), which is what `notary key list` prints for root.

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::canonical::to_canonical;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// A key as it appears in `keys` of root or `delegations.keys` of targets.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawKey {
    pub(crate) keytype: String,
    pub(crate) keyval: RawKeyVal,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawKeyVal {
    pub(crate) public: String,
}

/// The algorithm family of a parsed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Ed25519,
    EcP256,
    EcP384,
    EcP521,
    Rsa,
}

/// A usable public key.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// The key's ID (content hash of the key as written in the metadata).
    pub id: String,
    /// Notary's canonical ID: for x509 keys the ID of the bare public key.
    pub canonical_id: String,
    /// `keytype` as written.
    pub keytype: String,
    /// The DER `SubjectPublicKeyInfo` of the key (for ed25519 as well, built from the raw key).
    pub spki_der: Vec<u8>,
    /// The DER certificate of an x509 key type.
    pub certificate_der: Option<Vec<u8>>,
    family: Family,
    /// The key in the form aws-lc-rs verifies with: EC point, PKCS#1 RSAPublicKey, raw ed25519.
    raw: Vec<u8>,
}

pub(crate) fn key_id(keytype: &str, public_b64: &str) -> String {
    let doc = json!({"keytype": keytype, "keyval": {"private": Value::Null, "public": public_b64}});
    // A JSON object of strings always has a canonical form.
    let bytes = to_canonical(&doc).unwrap_or_default();
    hex(digest(&SHA256, &bytes).as_ref())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Ed25519 SPKI prefix (RFC 8410) before the 32 raw key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl PublicKey {
    /// Parses a key written under `id` in metadata; the ID must be the key's content ID.
    pub(crate) fn parse(id: &str, raw: &RawKey) -> Result<PublicKey, String> {
        let public = STANDARD
            .decode(raw.keyval.public.as_bytes())
            .map_err(|e| format!("public key is not base64: {e}"))?;
        let computed = key_id(&raw.keytype, &raw.keyval.public);
        if computed != id {
            return Err(format!(
                "key ID does not match the key's content (content ID {computed})"
            ));
        }
        let (spki_der, certificate_der) = match raw.keytype.as_str() {
            "ed25519" => {
                if public.len() != 32 {
                    return Err(format!(
                        "ed25519 key has {} bytes, 32 expected",
                        public.len()
                    ));
                }
                let mut spki = ED25519_SPKI_PREFIX.to_vec();
                spki.extend_from_slice(&public);
                (spki, None)
            }
            "ecdsa" | "rsa" => (public, None),
            "ecdsa-x509" | "rsa-x509" => {
                let der = pem_block(&public, "CERTIFICATE")
                    .ok_or_else(|| "x509 key holds no PEM certificate".to_owned())?;
                let (_, cert) = X509Certificate::from_der(&der)
                    .map_err(|e| format!("certificate does not parse: {e}"))?;
                (cert.public_key().raw.to_vec(), Some(der))
            }
            other => return Err(format!("unsupported key type {other:?}")),
        };
        let (family, raw_key) = family_of(&spki_der)?;
        let expected = match raw.keytype.as_str() {
            "ed25519" => family == Family::Ed25519,
            "ecdsa" | "ecdsa-x509" => {
                matches!(family, Family::EcP256 | Family::EcP384 | Family::EcP521)
            }
            _ => family == Family::Rsa,
        };
        if !expected {
            return Err(format!(
                "key type {} does not match its public key",
                raw.keytype
            ));
        }
        let canonical_id = match raw.keytype.as_str() {
            "ecdsa-x509" => key_id("ecdsa", &STANDARD.encode(&spki_der)),
            "rsa-x509" => key_id("rsa", &STANDARD.encode(&spki_der)),
            _ => id.to_owned(),
        };
        Ok(PublicKey {
            id: id.to_owned(),
            canonical_id,
            keytype: raw.keytype.clone(),
            spki_der,
            certificate_der,
            family,
            raw: raw_key,
        })
    }

    /// Checks one signature made with `method` over `message`.
    pub(crate) fn verify(&self, method: &str, message: &[u8], sig: &[u8]) -> bool {
        let method = method.to_ascii_lowercase();
        match (self.family, method.as_str()) {
            (Family::Ed25519, "eddsa") => UnparsedPublicKey::new(&signature::ED25519, &self.raw)
                .verify(message, sig)
                .is_ok(),
            (Family::EcP256, "ecdsa") => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.raw)
                    .verify(message, sig)
                    .is_ok()
            }
            // Notary hashes with SHA-256 whatever the curve; r‖s is re-encoded as ASN.1.
            (Family::EcP384, "ecdsa") if sig.len() == 96 => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA256_ASN1, &self.raw)
                    .verify(message, &fixed_to_asn1(sig))
                    .is_ok()
            }
            (Family::EcP521, "ecdsa") if sig.len() == 132 => {
                UnparsedPublicKey::new(&signature::ECDSA_P521_SHA256_FIXED, &self.raw)
                    .verify(message, sig)
                    .is_ok()
            }
            (Family::Rsa, "rsapss") => {
                UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, &self.raw)
                    .verify(message, sig)
                    .is_ok()
            }
            (Family::Rsa, "rsapkcs1v15") => {
                UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.raw)
                    .verify(message, sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

fn family_of(spki_der: &[u8]) -> Result<(Family, Vec<u8>), String> {
    if spki_der.len() == 44 && spki_der[..12] == ED25519_SPKI_PREFIX {
        return Ok((Family::Ed25519, spki_der[12..].to_vec()));
    }
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| format!("public key does not parse: {e}"))?;
    if !rest.is_empty() {
        return Err("public key has trailing bytes".to_owned());
    }
    let alg = spki.algorithm.algorithm.to_id_string();
    let raw = spki.subject_public_key.data.to_vec();
    match alg.as_str() {
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                OID_P256 => Ok((Family::EcP256, raw)),
                OID_P384 => Ok((Family::EcP384, raw)),
                OID_P521 => Ok((Family::EcP521, raw)),
                other => Err(format!("unsupported elliptic curve {other}")),
            }
        }
        OID_RSA => Ok((Family::Rsa, raw)),
        "1.3.101.112" => Ok((Family::Ed25519, raw)),
        other => Err(format!("unsupported public key algorithm {other}")),
    }
}

/// r‖s (two equal halves) as a DER `Ecdsa-Sig-Value`.
fn fixed_to_asn1(sig: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let mut v = bytes[start..].to_vec();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02];
        push_len(&mut out, v.len());
        out.extend_from_slice(&v);
        out
    }
    fn push_len(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            out.push(0x81);
            out.push(len as u8);
        }
    }
    let (r, s) = sig.split_at(sig.len() / 2);
    let mut body = integer(r);
    body.extend(integer(s));
    let mut out = vec![0x30];
    push_len(&mut out, body.len());
    out.extend(body);
    out
}

/// The first PEM block labelled `label` in `text`, decoded.
pub(crate) fn pem_block(text: &[u8], label: &str) -> Option<Vec<u8>> {
    pem_blocks(text, label).into_iter().next()
}

/// Every PEM block labelled `label` in `text`, decoded (malformed blocks are skipped).
pub(crate) fn pem_blocks(text: &[u8], label: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(text);
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else {
            break;
        };
        let body: String = after[..stop]
            .lines()
            .filter(|l| !l.contains(':'))
            .collect::<Vec<_>>()
            .concat();
        if let Ok(der) = STANDARD.decode(body.trim().as_bytes()) {
            out.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn1_integers_are_minimal_and_positive() {
        let mut sig = vec![0u8; 96];
        sig[0] = 0x80;
        sig[48 + 47] = 1;
        let der = fixed_to_asn1(&sig);
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..5], &[0x02, 49, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 1]);
    }
}
