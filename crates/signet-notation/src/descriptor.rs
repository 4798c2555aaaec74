//! OCI content descriptors and digests, as signed in a Notation payload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An OCI descriptor: what a Notation payload's `targetArtifact` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// Digest algorithms allowed in OCI digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha384 => 96,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn aws(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            DigestAlgorithm::Sha256 => &aws_lc_rs::digest::SHA256,
            DigestAlgorithm::Sha384 => &aws_lc_rs::digest::SHA384,
            DigestAlgorithm::Sha512 => &aws_lc_rs::digest::SHA512,
        }
    }

    /// From a digest algorithm OID (dotted), as CMS and X.509 name them.
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "2.16.840.1.101.3.4.2.1" => Some(DigestAlgorithm::Sha256),
            "2.16.840.1.101.3.4.2.2" => Some(DigestAlgorithm::Sha384),
            "2.16.840.1.101.3.4.2.3" => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }

    /// The raw hash of `bytes`.
    pub fn hash(self, bytes: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(self.aws(), bytes)
            .as_ref()
            .to_vec()
    }

    /// `algorithm:hex` digest of `bytes`.
    pub fn digest(self, bytes: &[u8]) -> String {
        let d = aws_lc_rs::digest::digest(self.aws(), bytes);
        format!("{}:{}", self.name(), hex(d.as_ref()))
    }
}

/// Why a digest string is not a valid OCI digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {0:?} has no `algorithm:` prefix")]
    MissingAlgorithm(String),
    #[error("digest {0:?} uses an unsupported algorithm (sha256, sha384 or sha512 expected)")]
    UnsupportedAlgorithm(String),
    #[error("digest {0:?} is not lower-case hex of the algorithm's length")]
    BadEncoding(String),
}

/// Parses and checks an OCI digest (`sha256:<64 lower hex>` and the like).
pub fn parse_digest(digest: &str) -> Result<(DigestAlgorithm, &str), DigestError> {
    let (alg, hex_part) = digest
        .split_once(':')
        .ok_or_else(|| DigestError::MissingAlgorithm(digest.to_owned()))?;
    let alg = match alg {
        "sha256" => DigestAlgorithm::Sha256,
        "sha384" => DigestAlgorithm::Sha384,
        "sha512" => DigestAlgorithm::Sha512,
        _ => return Err(DigestError::UnsupportedAlgorithm(digest.to_owned())),
    };
    if hex_part.len() != alg.hex_len()
        || !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(DigestError::BadEncoding(digest.to_owned()));
    }
    Ok((alg, hex_part))
}

/// Whether `bytes` hash to `digest` under the digest's own algorithm.
pub fn digest_matches(digest: &str, bytes: &[u8]) -> Result<bool, DigestError> {
    let (alg, _) = parse_digest(digest)?;
    Ok(alg.digest(bytes) == digest)
}

/// Lower-case hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_roundtrip() {
        let d = DigestAlgorithm::Sha256.digest(b"abc");
        assert_eq!(
            d,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(digest_matches(&d, b"abc").unwrap());
        assert!(!digest_matches(&d, b"abd").unwrap());
        assert!(parse_digest("sha256:ABC").is_err());
        assert!(parse_digest("md5:00").is_err());
        assert!(parse_digest("nocolon").is_err());
    }
}
