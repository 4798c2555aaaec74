//! Notation signature envelopes: COSE_Sign1 and JWS JSON.
//!
//! OWNER: envelope helper. API contract (others code against these names):
//! - `EnvelopeFormat::from_media_type(&str) -> Option<EnvelopeFormat>`, `EnvelopeFormat::media_type()`
//! - `Envelope::parse(format, bytes) -> Result<Envelope, EnvelopeError>`: size-bounded
//!   ([`crate::MAX_ENVELOPE_BYTES`]), structure, signed attributes, crit handling, chain decoding
//!   (≤ [`crate::MAX_CHAIN_LENGTH`]); no cryptography.
//! - `Envelope::verify_signature(&self) -> Result<(), EnvelopeError>`: algorithm derived from
//!   the leaf key must equal the header `alg`; signature checked with aws-lc-rs.
//! - `EnvelopeError::code(&self) -> ErrorCode`.

use crate::cert::Certificate;
use crate::crypto::SignatureAlgorithm;
use crate::{ErrorCode, Instant};

pub mod cose;
pub mod jws;

/// The two envelope formats Notation defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeFormat {
    /// `application/cose`
    Cose,
    /// `application/jose+json`
    Jws,
}

impl EnvelopeFormat {
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            "application/cose" => Some(EnvelopeFormat::Cose),
            "application/jose+json" => Some(EnvelopeFormat::Jws),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            EnvelopeFormat::Cose => "application/cose",
            EnvelopeFormat::Jws => "application/jose+json",
        }
    }
}

/// `io.cncf.notary.signingScheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningScheme {
    /// `notary.x509`
    X509,
    /// `notary.x509.signingAuthority`
    X509SigningAuthority,
}

/// An extended (non-Notation) signed attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedAttribute {
    pub key: String,
    pub critical: bool,
}

/// The protected (signed) attributes Notation defines.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedAttributes {
    pub signing_scheme: SigningScheme,
    /// `io.cncf.notary.signingTime` (scheme `notary.x509`).
    pub signing_time: Option<Instant>,
    /// `io.cncf.notary.authenticSigningTime` (scheme `notary.x509.signingAuthority`).
    pub authentic_signing_time: Option<Instant>,
    /// `io.cncf.notary.expiry`.
    pub expiry: Option<Instant>,
    /// The payload content type (`application/vnd.cncf.notary.payload.v1+json`).
    pub content_type: String,
    /// `io.cncf.notary.verificationPlugin`, if present.
    pub verification_plugin: Option<String>,
    /// `io.cncf.notary.verificationPluginMinVersion`, if present.
    pub verification_plugin_min_version: Option<String>,
    /// Attributes outside Notation's set, with whether they are listed in `crit`.
    pub extended: Vec<ExtendedAttribute>,
}

/// The unprotected attributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnsignedAttributes {
    /// `io.cncf.notary.signingAgent`.
    pub signing_agent: Option<String>,
    /// `io.cncf.notary.timestampSignature`: a DER RFC 3161 `TimeStampToken` over the signature.
    pub timestamp_token: Option<Vec<u8>>,
}

/// A decoded envelope. Nothing in it is trusted until [`Envelope::verify_signature`] passed.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub format: EnvelopeFormat,
    pub payload: Vec<u8>,
    pub signed: SignedAttributes,
    pub unsigned: UnsignedAttributes,
    pub algorithm: SignatureAlgorithm,
    /// Leaf first, as in the envelope.
    pub certificate_chain: Vec<Certificate>,
    pub signature: Vec<u8>,
    /// The exact bytes the signature covers (COSE `Sig_structure`, JWS signing input).
    pub to_be_signed: Vec<u8>,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("unsupported signature envelope media type {0:?} (application/cose or application/jose+json expected)")]
    UnsupportedMediaType(String),
    #[error("the envelope is {0} bytes, over the limit of {max} bytes", max = crate::MAX_ENVELOPE_BYTES)]
    TooLarge(usize),
    #[error("malformed envelope: {0}")]
    Malformed(String),
}

impl EnvelopeError {
    /// The contract code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            EnvelopeError::UnsupportedMediaType(_) => ErrorCode::UnsupportedSignature,
            _ => ErrorCode::SignatureInvalid,
        }
    }
}

impl Envelope {
    pub fn parse(format: EnvelopeFormat, bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let _ = (format, bytes);
        Err(EnvelopeError::Malformed("not implemented yet".into()))
    }

    pub fn verify_signature(&self) -> Result<(), EnvelopeError> {
        Err(EnvelopeError::Malformed("not implemented yet".into()))
    }
}
