//! The signature algorithms Notation allows, and their keys.
//!
//! OWNER: envelope helper. Contract: `SignatureAlgorithm::for_certificate(&Certificate)`
//! (RSA 2048/3072/4096 → PS256/384/512, P-256/384/521 → ES256/384/512, anything else an error),
//! `SignatureAlgorithm::verify(self, cert, message, signature)`.

/// A Notation signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    EcdsaP521Sha512,
}

impl SignatureAlgorithm {
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
}
