//! The stable error codes of Signet's interface contract.

use std::fmt;

/// A contract error code, as written in API answers and CLI JSON output.
///
/// The order of the variants that verification can produce matters: when several
/// signatures fail, the one reported is the one that got furthest, see [`ErrorCode::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    InvalidReference,
    RegistryError,
    RegistryAuthFailed,
    ArtifactNotFound,
    SignatureNotFound,
    NoTrustPolicy,
    SignatureInvalid,
    UntrustedSigner,
    UntrustedIdentity,
    SignatureExpired,
    CertificateExpired,
    TimestampInvalid,
    CertificateRevoked,
    RevocationUnknown,
    UnsupportedSignature,
    Timeout,
    Internal,
}

impl ErrorCode {
    /// The code as written on the wire, e.g. `SIGNATURE_INVALID`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidReference => "INVALID_REFERENCE",
            ErrorCode::RegistryError => "REGISTRY_ERROR",
            ErrorCode::RegistryAuthFailed => "REGISTRY_AUTH_FAILED",
            ErrorCode::ArtifactNotFound => "ARTIFACT_NOT_FOUND",
            ErrorCode::SignatureNotFound => "SIGNATURE_NOT_FOUND",
            ErrorCode::NoTrustPolicy => "NO_TRUST_POLICY",
            ErrorCode::SignatureInvalid => "SIGNATURE_INVALID",
            ErrorCode::UntrustedSigner => "UNTRUSTED_SIGNER",
            ErrorCode::UntrustedIdentity => "UNTRUSTED_IDENTITY",
            ErrorCode::SignatureExpired => "SIGNATURE_EXPIRED",
            ErrorCode::CertificateExpired => "CERTIFICATE_EXPIRED",
            ErrorCode::TimestampInvalid => "TIMESTAMP_INVALID",
            ErrorCode::CertificateRevoked => "CERTIFICATE_REVOKED",
            ErrorCode::RevocationUnknown => "REVOCATION_UNKNOWN",
            ErrorCode::UnsupportedSignature => "UNSUPPORTED_SIGNATURE",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// How far through Notation's verification steps a signature failing with this code got,
    /// in notation-go's order: integrity < authenticity < identity < expiry < authentic
    /// timestamp < revocation.
    /// Used to pick the reported failure among several signatures.
    pub fn progress(self) -> u8 {
        match self {
            ErrorCode::UnsupportedSignature | ErrorCode::SignatureInvalid => 1,
            ErrorCode::UntrustedSigner => 2,
            ErrorCode::UntrustedIdentity => 3,
            ErrorCode::SignatureExpired => 4,
            ErrorCode::CertificateExpired | ErrorCode::TimestampInvalid => 5,
            ErrorCode::CertificateRevoked | ErrorCode::RevocationUnknown => 6,
            _ => 0,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode::*;

    #[test]
    fn progress_follows_notation_step_order() {
        let order = [
            SignatureInvalid,
            UntrustedSigner,
            UntrustedIdentity,
            SignatureExpired,
            CertificateExpired,
            RevocationUnknown,
        ];
        assert!(order.windows(2).all(|w| w[0].progress() < w[1].progress()));
        assert_eq!(UnsupportedSignature.progress(), SignatureInvalid.progress());
        assert_eq!(TimestampInvalid.progress(), CertificateExpired.progress());
    }
}
