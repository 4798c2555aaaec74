//! Root trust pinned by configuration: root key IDs, public keys, or certificates.
//! There is no trust on first use: a root that none of these anchors is refused.

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::DctError;
use crate::keys::{pem_blocks, PublicKey};

/// What anchors the root of one repository scope.
#[derive(Debug, Clone, Default)]
pub struct RootPin {
    /// Root key IDs: the ID written in `root.json`, or Notary's canonical ID (what
    /// `notary key list` and `docker trust inspect` print for the root key).
    pub key_ids: Vec<String>,
    /// Root public keys, as DER `SubjectPublicKeyInfo`.
    pub public_keys: Vec<Vec<u8>>,
    /// Root certificates (DER): a root key's certificate must equal one of these, or be
    /// issued and signed by one of them (a CA), and be valid at verification time.
    pub certificates: Vec<Vec<u8>>,
}

impl RootPin {
    /// Builds a pin from configuration strings: key IDs (64 hex digits), PEM public keys
    /// and PEM certificates.
    pub fn from_config(
        key_ids_or_public_keys: &[String],
        certificates_pem: &[String],
    ) -> Result<RootPin, DctError> {
        let mut pin = RootPin::default();
        for entry in key_ids_or_public_keys {
            let entry = entry.trim();
            if entry.len() == 64 && entry.bytes().all(|b| b.is_ascii_hexdigit()) {
                pin.key_ids.push(entry.to_ascii_lowercase());
                continue;
            }
            let blocks = pem_blocks(entry.as_bytes(), "PUBLIC KEY");
            if blocks.is_empty() {
                return Err(DctError::Config(format!(
                    "root key {entry:?} is neither a 64-hex-digit key ID nor a PEM public key"
                )));
            }
            pin.public_keys.extend(blocks);
        }
        for pem in certificates_pem {
            let blocks = pem_blocks(pem.as_bytes(), "CERTIFICATE");
            if blocks.is_empty() {
                return Err(DctError::Config(
                    "a root certificate entry holds no PEM certificate".to_owned(),
                ));
            }
            for der in blocks {
                X509Certificate::from_der(&der).map_err(|e| {
                    DctError::Config(format!("a root certificate does not parse: {e}"))
                })?;
                pin.certificates.push(der);
            }
        }
        if pin.is_empty() {
            return Err(DctError::Config(
                "a repository needs at least one root key or root certificate (no trust on first use)"
                    .to_owned(),
            ));
        }
        Ok(pin)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.key_ids.is_empty() && self.public_keys.is_empty() && self.certificates.is_empty()
    }

    /// Whether `key` is anchored by this pin at `now`; the reason when it is not.
    pub(crate) fn anchors(&self, key: &PublicKey, now: OffsetDateTime) -> Result<(), String> {
        if self
            .key_ids
            .iter()
            .any(|id| *id == key.id || *id == key.canonical_id)
        {
            return Ok(());
        }
        if self.public_keys.contains(&key.spki_der) {
            return Ok(());
        }
        let Some(cert_der) = &key.certificate_der else {
            return Err(format!("key {} is not a pinned key", key.canonical_id));
        };
        if self.certificates.is_empty() {
            return Err(format!("key {} is not a pinned key", key.canonical_id));
        }
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| format!("certificate of key {}: {e}", key.id))?;
        let validity = cert.validity();
        let now_ts = now.unix_timestamp();
        if now_ts < validity.not_before.timestamp() || now_ts > validity.not_after.timestamp() {
            return Err(format!(
                "certificate of root key {} is not valid at this time (valid {} to {})",
                key.canonical_id, validity.not_before, validity.not_after
            ));
        }
        for pinned in &self.certificates {
            if pinned == cert_der {
                return Ok(());
            }
            let Ok((_, ca)) = X509Certificate::from_der(pinned) else {
                continue;
            };
            if ca.subject() == cert.issuer()
                && ca.is_ca()
                && cert.verify_signature(Some(ca.public_key())).is_ok()
            {
                return Ok(());
            }
        }
        Err(format!(
            "certificate of root key {} ({}) is neither a pinned certificate nor issued by one",
            key.canonical_id,
            cert.subject()
        ))
    }
}
