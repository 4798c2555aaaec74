//! The signature algorithms Notation allows, and their keys.
//!
//! Contract: [`SignatureAlgorithm::for_certificate`] (RSA 2048/3072/4096 → PS256/384/512,
//! EC P-256/384/521 → ES256/384/512, anything else an error) and
//! [`SignatureAlgorithm::verify`] (aws-lc-rs; RSASSA-PSS with the salt length equal to the
//! hash length, ECDSA signatures as raw `r || s`).

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::RSAPublicKey;

use crate::cert::Certificate;

/// A Notation signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    EcdsaP521Sha512,
}

/// Why a key cannot be used, or a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The certificate's key is of a type or size Notation does not allow.
    #[error("unsupported signing key: {0} (Notation allows RSA 2048/3072/4096 and EC P-256/P-384/P-521)")]
    UnsupportedKey(String),
    /// The certificate's public key could not be decoded.
    #[error("malformed public key in the certificate: {0}")]
    MalformedKey(String),
    /// The algorithm the envelope names is not the one the key requires.
    #[error(
        "the envelope's algorithm {header} does not match the signing key, which requires {key}"
    )]
    AlgorithmMismatch {
        header: &'static str,
        key: &'static str,
    },
    /// The signature does not verify with the key.
    #[error("the signature does not verify with the signing certificate's public key")]
    BadSignature,
}

/// The public key type and size of a certificate, as far as Notation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySpec {
    Rsa(usize),
    Ec(usize),
}

impl SignatureAlgorithm {
    /// Every algorithm, in the order of the specification.
    pub const ALL: [SignatureAlgorithm; 6] = [
        SignatureAlgorithm::RsaPssSha256,
        SignatureAlgorithm::RsaPssSha384,
        SignatureAlgorithm::RsaPssSha512,
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::EcdsaP384Sha384,
        SignatureAlgorithm::EcdsaP521Sha512,
    ];

    /// The JWS name (`PS256`, ..., `ES512`).
    pub fn jws_name(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaPssSha256 => "PS256",
            SignatureAlgorithm::RsaPssSha384 => "PS384",
            SignatureAlgorithm::RsaPssSha512 => "PS512",
            SignatureAlgorithm::EcdsaP256Sha256 => "ES256",
            SignatureAlgorithm::EcdsaP384Sha384 => "ES384",
            SignatureAlgorithm::EcdsaP521Sha512 => "ES512",
        }
    }

    /// The algorithm with JWS name `name`, if Notation allows it.
    pub fn from_jws_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.jws_name() == name)
    }

    /// The COSE algorithm identifier (RFC 9053 / IANA: PS256 = -37, ..., ES512 = -36).
    pub fn cose_id(self) -> i64 {
        match self {
            SignatureAlgorithm::RsaPssSha256 => -37,
            SignatureAlgorithm::RsaPssSha384 => -38,
            SignatureAlgorithm::RsaPssSha512 => -39,
            SignatureAlgorithm::EcdsaP256Sha256 => -7,
            SignatureAlgorithm::EcdsaP384Sha384 => -35,
            SignatureAlgorithm::EcdsaP521Sha512 => -36,
        }
    }

    /// The algorithm with COSE identifier `id`, if Notation allows it.
    pub fn from_cose_id(id: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.cose_id() == id)
    }

    /// The digest the algorithm signs with: `"sha256"`, `"sha384"` or `"sha512"`.
    pub fn hash_name(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaPssSha256 | SignatureAlgorithm::EcdsaP256Sha256 => "sha256",
            SignatureAlgorithm::RsaPssSha384 | SignatureAlgorithm::EcdsaP384Sha384 => "sha384",
            SignatureAlgorithm::RsaPssSha512 | SignatureAlgorithm::EcdsaP521Sha512 => "sha512",
        }
    }

    /// The one algorithm Notation allows for the certificate's public key.
    pub fn for_certificate(cert: &Certificate) -> Result<Self, CryptoError> {
        match key_spec(cert)? {
            KeySpec::Rsa(2048) => Ok(SignatureAlgorithm::RsaPssSha256),
            KeySpec::Rsa(3072) => Ok(SignatureAlgorithm::RsaPssSha384),
            KeySpec::Rsa(4096) => Ok(SignatureAlgorithm::RsaPssSha512),
            KeySpec::Ec(256) => Ok(SignatureAlgorithm::EcdsaP256Sha256),
            KeySpec::Ec(384) => Ok(SignatureAlgorithm::EcdsaP384Sha384),
            KeySpec::Ec(521) => Ok(SignatureAlgorithm::EcdsaP521Sha512),
            KeySpec::Rsa(bits) => Err(CryptoError::UnsupportedKey(format!(
                "RSA key of {bits} bits"
            ))),
            KeySpec::Ec(bits) => Err(CryptoError::UnsupportedKey(format!(
                "EC key of {bits} bits"
            ))),
        }
    }

    /// Verifies `signature` over `message` with `cert`'s public key under this algorithm.
    ///
    /// Fails with [`CryptoError::AlgorithmMismatch`] when the key requires another algorithm.
    /// ECDSA signatures are the fixed-length `r || s` form used by JWS and COSE.
    pub fn verify(
        self,
        cert: &Certificate,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let required = Self::for_certificate(cert)?;
        if required != self {
            return Err(CryptoError::AlgorithmMismatch {
                header: self.jws_name(),
                key: required.jws_name(),
            });
        }
        let x509 = cert.x509();
        // For RSA this is the PKCS#1 RSAPublicKey, for EC the uncompressed point: exactly
        // what aws-lc-rs expects for these algorithms.
        let key_bytes: &[u8] = &x509.public_key().subject_public_key.data;
        let alg: &'static dyn VerificationAlgorithm = match self {
            SignatureAlgorithm::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
            SignatureAlgorithm::RsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
            SignatureAlgorithm::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
            SignatureAlgorithm::EcdsaP256Sha256 => &sig::ECDSA_P256_SHA256_FIXED,
            SignatureAlgorithm::EcdsaP384Sha384 => &sig::ECDSA_P384_SHA384_FIXED,
            SignatureAlgorithm::EcdsaP521Sha512 => &sig::ECDSA_P521_SHA512_FIXED,
        };
        UnparsedPublicKey::new(alg, key_bytes)
            .verify(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// Key type and size of the certificate's subject public key, following Go's `crypto/x509`
/// (rsaEncryption and id-ecPublicKey on the named NIST curves only; uncompressed EC points).
fn key_spec(cert: &Certificate) -> Result<KeySpec, CryptoError> {
    let x509 = cert.x509();
    let spki = x509.public_key();
    let key: &[u8] = &spki.subject_public_key.data;
    let oid = &spki.algorithm.algorithm;
    if *oid == OID_PKCS1_RSAENCRYPTION {
        let (rest, rsa) = RSAPublicKey::from_der(key)
            .map_err(|e| CryptoError::MalformedKey(format!("RSA public key: {e}")))?;
        if !rest.is_empty() {
            return Err(CryptoError::MalformedKey(
                "trailing bytes after the RSA public key".into(),
            ));
        }
        Ok(KeySpec::Rsa(bit_length(rsa.modulus)))
    } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| CryptoError::MalformedKey("EC key without a named curve".into()))?;
        let (bits, coord_len) = if curve == OID_EC_P256 {
            (256, 32)
        } else if curve == OID_NIST_EC_P384 {
            (384, 48)
        } else if curve == OID_NIST_EC_P521 {
            (521, 66)
        } else {
            return Err(CryptoError::UnsupportedKey(format!("EC curve {curve}")));
        };
        match key.split_first() {
            Some((4, rest)) if rest.len() == 2 * coord_len => Ok(KeySpec::Ec(bits)),
            _ => Err(CryptoError::MalformedKey(format!(
                "EC public key is not an uncompressed point on a {bits}-bit curve"
            ))),
        }
    } else {
        Err(CryptoError::UnsupportedKey(format!("key algorithm {oid}")))
    }
}

/// Bit length of a big-endian unsigned integer.
fn bit_length(be: &[u8]) -> usize {
    let mut i = be.iter().skip_while(|b| **b == 0);
    match i.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * i.count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0, 1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0, 0x7f, 0]), 15);
    }

    #[test]
    fn names_round_trip() {
        for a in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_jws_name(a.jws_name()), Some(a));
            assert_eq!(SignatureAlgorithm::from_cose_id(a.cose_id()), Some(a));
        }
        assert_eq!(SignatureAlgorithm::from_jws_name("RS256"), None);
        assert_eq!(SignatureAlgorithm::from_cose_id(-8), None);
    }
}
