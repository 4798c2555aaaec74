//! The four TUF document types Notary serves, parsed under bounds, and the signature check
//! over the canonical bytes of `signed`.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::canonical::to_canonical;
use crate::error::DctError;
use crate::keys::{PublicKey, RawKey};

/// At most this many signatures are looked at in one document.
pub(crate) const MAX_SIGNATURES: usize = 64;
/// At most this many keys in a root or in one targets document's delegations.
pub(crate) const MAX_KEYS: usize = 256;
/// At most this many delegated roles in one targets document.
pub(crate) const MAX_DELEGATED_ROLES: usize = 64;

#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    signed: &'a RawValue,
    signatures: Option<Vec<RawSignature>>,
}

#[derive(Debug, Deserialize)]
struct RawSignature {
    keyid: String,
    method: String,
    sig: String,
}

/// A role's signing keys and threshold.
#[derive(Debug, Clone)]
pub(crate) struct RoleKeys {
    pub(crate) keys: HashMap<String, PublicKey>,
    pub(crate) threshold: u32,
}

/// A document whose signatures are not yet checked: the raw `signed` and the signatures.
#[derive(Debug)]
pub(crate) struct Unverified {
    role: String,
    signed_raw: Vec<u8>,
    signed_value: Value,
    signatures: Vec<(String, String, Vec<u8>)>,
}

impl Unverified {
    pub(crate) fn parse(role: &str, bytes: &[u8]) -> Result<Unverified, DctError> {
        let envelope: Envelope<'_> = serde_json::from_slice(bytes)
            .map_err(|e| DctError::malformed(role, format!("not a signed TUF document: {e}")))?;
        let raw_signatures = envelope.signatures.unwrap_or_default();
        if raw_signatures.len() > MAX_SIGNATURES {
            return Err(DctError::malformed(
                role,
                format!(
                    "{} signatures, at most {MAX_SIGNATURES} allowed",
                    raw_signatures.len()
                ),
            ));
        }
        let mut signatures = Vec::with_capacity(raw_signatures.len());
        for s in raw_signatures {
            // A signature that does not decode can never count; it is skipped like one
            // from an unknown key, so one bad entry cannot hide good ones.
            if let Ok(sig) = STANDARD.decode(s.sig.as_bytes()) {
                signatures.push((s.keyid, s.method, sig));
            }
        }
        let signed_raw = envelope.signed.get().as_bytes().to_vec();
        let signed_value: Value = serde_json::from_slice(&signed_raw)
            .map_err(|e| DctError::malformed(role, format!("signed part: {e}")))?;
        Ok(Unverified {
            role: role.to_owned(),
            signed_raw,
            signed_value,
            signatures,
        })
    }

    /// Typed view of `signed`, before its signatures are checked (to learn the root's keys).
    pub(crate) fn peek<T: for<'de> Deserialize<'de>>(&self) -> Result<T, DctError> {
        serde_json::from_value(self.signed_value.clone())
            .map_err(|e| DctError::malformed(&self.role, e.to_string()))
    }

    /// How many distinct keys of `role` signed this document validly. The message is the
    /// canonical JSON of `signed` (what Notary signs); the bytes as served are tried first,
    /// as Notary serves them canonical already.
    pub(crate) fn valid_signers(&self, role: &RoleKeys) -> Vec<String> {
        let canonical = to_canonical(&self.signed_value);
        let mut signers: Vec<String> = Vec::new();
        for (keyid, method, sig) in &self.signatures {
            if signers.contains(keyid) {
                continue;
            }
            let Some(key) = role.keys.get(keyid) else {
                continue;
            };
            let ok = key.verify(method, &self.signed_raw, sig)
                || canonical
                    .as_deref()
                    .is_some_and(|c| c != self.signed_raw && key.verify(method, c, sig));
            if ok {
                signers.push(keyid.clone());
            }
        }
        signers
    }

    /// Checks the threshold of `role` and returns the signers.
    pub(crate) fn verify(&self, role: &RoleKeys) -> Result<Vec<String>, DctError> {
        let signers = self.valid_signers(role);
        if role.threshold == 0 || signers.len() < role.threshold as usize {
            return Err(DctError::ThresholdNotMet {
                role: self.role.clone(),
                valid: signers.len(),
                threshold: role.threshold,
            });
        }
        Ok(signers)
    }
}

/// Fields every document has.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Common {
    #[serde(rename = "_type")]
    pub(crate) kind: String,
    pub(crate) version: u64,
    pub(crate) expires: String,
}

impl Common {
    pub(crate) fn check_type(&self, role: &str, expected: &str) -> Result<(), DctError> {
        if self.kind.eq_ignore_ascii_case(expected) {
            Ok(())
        } else {
            Err(DctError::malformed(
                role,
                format!("_type is {:?}, {expected:?} expected", self.kind),
            ))
        }
    }

    pub(crate) fn check_expiry(&self, role: &str, now: OffsetDateTime) -> Result<(), DctError> {
        let expires = OffsetDateTime::parse(&self.expires, &Rfc3339).map_err(|e| {
            DctError::malformed(
                role,
                format!("expires {:?} is not RFC 3339: {e}", self.expires),
            )
        })?;
        if now >= expires {
            return Err(DctError::Expired {
                role: role.to_owned(),
                expires: self.expires.clone(),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RoleEntry {
    pub(crate) keyids: Vec<String>,
    pub(crate) threshold: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RootSigned {
    #[serde(flatten)]
    pub(crate) common: Common,
    pub(crate) keys: BTreeMap<String, RawKey>,
    pub(crate) roles: BTreeMap<String, RoleEntry>,
}

/// Length and hashes of a file, as the metadata above it declares them.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FileMeta {
    pub(crate) length: u64,
    #[serde(default)]
    pub(crate) hashes: BTreeMap<String, String>,
}

impl FileMeta {
    /// Checks `bytes` against the declared length and every known hash (SHA-256 required).
    pub(crate) fn check(&self, role: &str, parent: &str, bytes: &[u8]) -> Result<(), DctError> {
        let mismatch = |what| DctError::MetaMismatch {
            role: role.to_owned(),
            parent: parent.to_owned(),
            what,
        };
        if bytes.len() as u64 != self.length {
            return Err(mismatch("length"));
        }
        let Some(sha256) = self.hashes.get("sha256") else {
            return Err(DctError::malformed(
                parent,
                format!("declares no sha256 hash for {role}"),
            ));
        };
        let declared = STANDARD
            .decode(sha256.as_bytes())
            .map_err(|_| DctError::malformed(parent, format!("sha256 of {role} is not base64")))?;
        let actual = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        if declared != actual.as_ref() {
            return Err(mismatch("sha256 hash"));
        }
        if let Some(sha512) = self.hashes.get("sha512") {
            let declared = STANDARD.decode(sha512.as_bytes()).map_err(|_| {
                DctError::malformed(parent, format!("sha512 of {role} is not base64"))
            })?;
            let actual = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, bytes);
            if declared != actual.as_ref() {
                return Err(mismatch("sha512 hash"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TimestampSigned {
    #[serde(flatten)]
    pub(crate) common: Common,
    pub(crate) meta: BTreeMap<String, FileMeta>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SnapshotSigned {
    #[serde(flatten)]
    pub(crate) common: Common,
    pub(crate) meta: BTreeMap<String, FileMeta>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DelegatedRole {
    pub(crate) name: String,
    pub(crate) keyids: Vec<String>,
    pub(crate) threshold: u32,
    #[serde(default)]
    pub(crate) paths: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Delegations {
    #[serde(default)]
    pub(crate) keys: BTreeMap<String, RawKey>,
    #[serde(default)]
    pub(crate) roles: Vec<DelegatedRole>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TargetsSigned {
    #[serde(flatten)]
    pub(crate) common: Common,
    #[serde(default)]
    pub(crate) targets: BTreeMap<String, FileMeta>,
    #[serde(default)]
    pub(crate) delegations: Option<Delegations>,
}

/// Builds a role's key set from the key table of the document that defines it.
pub(crate) fn role_keys(
    defining_role: &str,
    name: &str,
    keyids: &[String],
    threshold: u32,
    table: &BTreeMap<String, RawKey>,
) -> Result<RoleKeys, DctError> {
    if threshold == 0 {
        return Err(DctError::malformed(
            defining_role,
            format!("role {name} has threshold 0"),
        ));
    }
    if keyids.len() > MAX_KEYS {
        return Err(DctError::malformed(
            defining_role,
            format!("role {name} lists more than {MAX_KEYS} keys"),
        ));
    }
    let mut keys = HashMap::new();
    for id in keyids {
        let Some(raw) = table.get(id) else {
            return Err(DctError::malformed(
                defining_role,
                format!("role {name} names key {id}, which is not in the key table"),
            ));
        };
        let key = PublicKey::parse(id, raw).map_err(|reason| DctError::BadKey {
            role: defining_role.to_owned(),
            key_id: id.clone(),
            reason,
        })?;
        keys.insert(id.clone(), key);
    }
    if keys.len() < threshold as usize {
        return Err(DctError::malformed(
            defining_role,
            format!(
                "role {name} has threshold {threshold} but only {} keys",
                keys.len()
            ),
        ));
    }
    Ok(RoleKeys { keys, threshold })
}
