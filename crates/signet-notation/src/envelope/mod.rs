//! Notation signature envelopes: COSE_Sign1 and JWS JSON.
//!
//! API contract (others code against these names):
//! - `EnvelopeFormat::from_media_type(&str) -> Option<EnvelopeFormat>`, `EnvelopeFormat::media_type()`
//! - `Envelope::parse(format, bytes) -> Result<Envelope, EnvelopeError>`: size-bounded
//!   ([`crate::MAX_ENVELOPE_BYTES`]), structure, signed attributes, crit handling, chain decoding
//!   (≤ [`crate::MAX_CHAIN_LENGTH`]); no cryptography.
//! - `Envelope::verify_signature(&self) -> Result<(), EnvelopeError>`: algorithm derived from
//!   the leaf key must equal the header `alg`; signature checked with aws-lc-rs.
//! - `EnvelopeError::code(&self) -> ErrorCode`.

use crate::cert::Certificate;
use crate::crypto::CryptoError;
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

impl SigningScheme {
    /// The value of `io.cncf.notary.signingScheme`.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningScheme::X509 => "notary.x509",
            SigningScheme::X509SigningAuthority => "notary.x509.signingAuthority",
        }
    }

    /// The scheme named `value`, if Notation defines it.
    pub fn from_name(value: &str) -> Option<Self> {
        match value {
            "notary.x509" => Some(SigningScheme::X509),
            "notary.x509.signingAuthority" => Some(SigningScheme::X509SigningAuthority),
            _ => None,
        }
    }
}

impl SignedAttributes {
    /// The signing time the scheme defines: `signingTime` for `notary.x509`,
    /// `authenticSigningTime` for `notary.x509.signingAuthority`.
    pub fn scheme_signing_time(&self) -> Option<Instant> {
        match self.signing_scheme {
            SigningScheme::X509 => self.signing_time,
            SigningScheme::X509SigningAuthority => self.authentic_signing_time,
        }
    }

    /// Whether some critical attribute is one Signet does not process: a critical extended
    /// attribute, or a verification plugin requirement.
    pub fn has_unsupported_critical(&self) -> bool {
        self.extended.iter().any(|a| a.critical)
            || self.verification_plugin.is_some()
            || self.verification_plugin_min_version.is_some()
    }
}

/// Payload content type Notation signs.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// Attribute names shared by both envelope formats.
pub mod attr {
    pub const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
    pub const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
    pub const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
    pub const EXPIRY: &str = "io.cncf.notary.expiry";
    pub const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
    pub const VERIFICATION_PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";
    pub const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
    pub const TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("unsupported signature envelope media type {0:?} (application/cose or application/jose+json expected)")]
    UnsupportedMediaType(String),
    #[error("the envelope is {0} bytes, over the limit of {max} bytes; it cannot be a Notation signature", max = crate::MAX_ENVELOPE_BYTES)]
    TooLarge(usize),
    #[error("the signature envelope is empty; fetch the signature blob again")]
    Empty,
    #[error("malformed {format} envelope: {reason}")]
    Malformed {
        format: &'static str,
        reason: String,
    },
    #[error("{field} is not valid {encoding}: {reason}")]
    Base64 {
        field: &'static str,
        encoding: &'static str,
        reason: String,
    },
    #[error("unsupported signature algorithm {0}; Notation allows PS256, PS384, PS512, ES256, ES384 and ES512")]
    UnsupportedAlgorithm(String),
    #[error("the protected header lacks the required attribute {0}")]
    MissingAttribute(&'static str),
    #[error("invalid signed attribute {name}: {reason}")]
    InvalidAttribute { name: String, reason: String },
    #[error("invalid critical header list: {0}")]
    Critical(String),
    #[error("the certificate chain has {0} certificates, over the limit of {max}", max = crate::MAX_CHAIN_LENGTH)]
    ChainTooLong(usize),
    #[error("certificate {index} of the chain (0 = signing certificate) is not a valid DER X.509 certificate: {reason}")]
    BadCertificate { index: usize, reason: String },
    #[error("the envelope carries no certificate chain, so its signature cannot be checked")]
    MissingCertificateChain,
    #[error("the signing certificate's key cannot sign Notation signatures: {0}")]
    UnsupportedKey(String),
    #[error("the envelope's algorithm {header} does not match the signing certificate's key, which requires {key}")]
    AlgorithmMismatch {
        header: &'static str,
        key: &'static str,
    },
    #[error("the signature does not verify with the signing certificate's public key: the envelope was altered or signed by another key")]
    BadSignature,
}

impl EnvelopeError {
    /// The contract code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            EnvelopeError::UnsupportedMediaType(_)
            | EnvelopeError::UnsupportedAlgorithm(_)
            | EnvelopeError::UnsupportedKey(_) => ErrorCode::UnsupportedSignature,
            EnvelopeError::TooLarge(_)
            | EnvelopeError::Empty
            | EnvelopeError::Malformed { .. }
            | EnvelopeError::Base64 { .. }
            | EnvelopeError::MissingAttribute(_)
            | EnvelopeError::InvalidAttribute { .. }
            | EnvelopeError::Critical(_)
            | EnvelopeError::ChainTooLong(_)
            | EnvelopeError::BadCertificate { .. }
            | EnvelopeError::MissingCertificateChain
            | EnvelopeError::AlgorithmMismatch { .. }
            | EnvelopeError::BadSignature => ErrorCode::SignatureInvalid,
        }
    }

    pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> Self {
        EnvelopeError::InvalidAttribute {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<CryptoError> for EnvelopeError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::UnsupportedKey(s) => EnvelopeError::UnsupportedKey(s),
            CryptoError::MalformedKey(reason) => EnvelopeError::BadCertificate { index: 0, reason },
            CryptoError::AlgorithmMismatch { header, key } => {
                EnvelopeError::AlgorithmMismatch { header, key }
            }
            CryptoError::BadSignature => EnvelopeError::BadSignature,
        }
    }
}

impl Envelope {
    /// Decodes an envelope of `format`: size bound, structure, signed attributes, `crit`,
    /// certificate chain. No cryptography; nothing in the result is trusted yet.
    pub fn parse(format: EnvelopeFormat, bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > crate::MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        if bytes.is_empty() {
            return Err(EnvelopeError::Empty);
        }
        match format {
            EnvelopeFormat::Cose => cose::parse(bytes),
            EnvelopeFormat::Jws => jws::parse(bytes),
        }
    }

    /// [`Envelope::parse`] for a signature media type; other media types are
    /// [`EnvelopeError::UnsupportedMediaType`].
    pub fn parse_media_type(media_type: &str, bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let format = EnvelopeFormat::from_media_type(media_type)
            .ok_or_else(|| EnvelopeError::UnsupportedMediaType(media_type.to_owned()))?;
        Self::parse(format, bytes)
    }

    /// The signing certificate (first of the chain), if the envelope has a chain.
    pub fn signing_certificate(&self) -> Option<&Certificate> {
        self.certificate_chain.first()
    }

    /// Checks the signature: the algorithm the leaf key requires must be the header `alg`,
    /// and the signature must verify over [`Envelope::to_be_signed`].
    pub fn verify_signature(&self) -> Result<(), EnvelopeError> {
        let leaf = self
            .certificate_chain
            .first()
            .ok_or(EnvelopeError::MissingCertificateChain)?;
        let required = SignatureAlgorithm::for_certificate(leaf)?;
        if required != self.algorithm {
            return Err(EnvelopeError::AlgorithmMismatch {
                header: self.algorithm.jws_name(),
                key: required.jws_name(),
            });
        }
        self.algorithm
            .verify(leaf, &self.to_be_signed, &self.signature)
            .map_err(EnvelopeError::from)
    }
}

/// Decodes the chain (leaf first): at most [`crate::MAX_CHAIN_LENGTH`] certificates, each DER.
pub(crate) fn decode_chain(ders: Vec<Vec<u8>>) -> Result<Vec<Certificate>, EnvelopeError> {
    if ders.len() > crate::MAX_CHAIN_LENGTH {
        return Err(EnvelopeError::ChainTooLong(ders.len()));
    }
    ders.into_iter()
        .enumerate()
        .map(|(index, der)| {
            Certificate::from_der(der).map_err(|e| EnvelopeError::BadCertificate {
                index,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The Notation signed attributes common to both formats, before validation.
#[derive(Debug, Default)]
pub(crate) struct RawSigned {
    pub(crate) signing_scheme: Option<String>,
    pub(crate) signing_time: Option<Instant>,
    pub(crate) authentic_signing_time: Option<Instant>,
    pub(crate) expiry: Option<Instant>,
    pub(crate) content_type: Option<String>,
    pub(crate) verification_plugin: Option<String>,
    pub(crate) verification_plugin_min_version: Option<String>,
    /// Extended attribute keys (outside Notation's set), in header order.
    pub(crate) extended_keys: Vec<String>,
    /// The `crit` list, as strings (COSE integer labels in decimal).
    pub(crate) crit: Option<Vec<String>>,
}

impl RawSigned {
    /// Validates the attributes as notation-core-go does:
    /// - the signing scheme is known, and its signing time is present (the other one absent);
    /// - the expiry, when present, is after the signing time;
    /// - the content type is the Notation payload;
    /// - `crit` lists the signing scheme, the expiry when present, `authenticSigningTime` for
    ///   `notary.x509.signingAuthority`, and every other entry names an attribute that
    ///   `crit_other_allowed` accepts (present, and allowed to be critical in this format).
    pub(crate) fn validate(
        self,
        crit_other_allowed: impl Fn(&str) -> bool,
    ) -> Result<SignedAttributes, EnvelopeError> {
        let scheme_name = self
            .signing_scheme
            .ok_or(EnvelopeError::MissingAttribute(attr::SIGNING_SCHEME))?;
        let signing_scheme = SigningScheme::from_name(&scheme_name).ok_or_else(|| {
            EnvelopeError::invalid(
                attr::SIGNING_SCHEME,
                format!("unknown signing scheme {scheme_name:?} (notary.x509 or notary.x509.signingAuthority expected)"),
            )
        })?;
        let signing_time = match signing_scheme {
            SigningScheme::X509 => {
                if self.authentic_signing_time.is_some() {
                    return Err(EnvelopeError::invalid(
                        attr::AUTHENTIC_SIGNING_TIME,
                        "must not be present for the notary.x509 signing scheme",
                    ));
                }
                self.signing_time
                    .ok_or(EnvelopeError::MissingAttribute(attr::SIGNING_TIME))?
            }
            SigningScheme::X509SigningAuthority => {
                if self.signing_time.is_some() {
                    return Err(EnvelopeError::invalid(
                        attr::SIGNING_TIME,
                        "must not be present for the notary.x509.signingAuthority signing scheme",
                    ));
                }
                self.authentic_signing_time
                    .ok_or(EnvelopeError::MissingAttribute(
                        attr::AUTHENTIC_SIGNING_TIME,
                    ))?
            }
        };
        if let Some(expiry) = self.expiry {
            if expiry <= signing_time {
                return Err(EnvelopeError::invalid(
                    attr::EXPIRY,
                    "the expiry is not after the signing time",
                ));
            }
        }
        let content_type = self
            .content_type
            .ok_or(EnvelopeError::MissingAttribute("content type (cty)"))?;
        if content_type != PAYLOAD_CONTENT_TYPE {
            return Err(EnvelopeError::invalid(
                "content type",
                format!("{content_type:?} is not the Notation payload type {PAYLOAD_CONTENT_TYPE}"),
            ));
        }

        let crit = self.crit.ok_or_else(|| {
            EnvelopeError::Critical("the protected header has no crit list".into())
        })?;
        let mut required = vec![attr::SIGNING_SCHEME];
        if signing_scheme == SigningScheme::X509SigningAuthority {
            required.push(attr::AUTHENTIC_SIGNING_TIME);
        }
        if self.expiry.is_some() {
            required.push(attr::EXPIRY);
        }
        for entry in &crit {
            if !required.contains(&entry.as_str()) && !crit_other_allowed(entry) {
                return Err(EnvelopeError::Critical(format!(
                    "{entry:?} is marked critical but is not present in the protected header"
                )));
            }
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| !crit.iter().any(|c| c == r))
            .collect();
        if !missing.is_empty() {
            return Err(EnvelopeError::Critical(format!(
                "required attributes not marked critical: {}",
                missing.join(", ")
            )));
        }

        let extended = self
            .extended_keys
            .into_iter()
            .map(|key| ExtendedAttribute {
                critical: crit.contains(&key),
                key,
            })
            .collect();
        Ok(SignedAttributes {
            signing_scheme,
            signing_time: self.signing_time,
            authentic_signing_time: self.authentic_signing_time,
            expiry: self.expiry,
            content_type,
            verification_plugin: self.verification_plugin,
            verification_plugin_min_version: self.verification_plugin_min_version,
            extended,
        })
    }
}

#[cfg(test)]
mod tests;
