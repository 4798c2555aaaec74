//! The crate's one error type and its mapping to the contract's error codes.

use std::time::Duration;

use signet_notation::ErrorCode;

/// Everything that can go wrong talking to a registry.
///
/// Every variant maps to one contract code through [`RegistryError::code`]:
///
/// | variant | code |
/// |---|---|
/// | `InvalidReference` | `INVALID_REFERENCE` |
/// | `Config` | `INTERNAL` (a bad configuration is caught when the client is built) |
/// | `Connect`, `Transport`, `Status`, `RateLimited`, `TooLarge`, `Malformed`, `Redirect` | `REGISTRY_ERROR` |
/// | `AuthFailed`, `TokenService`, `CredentialHelper` | `REGISTRY_AUTH_FAILED` |
/// | `NotFound` | `ARTIFACT_NOT_FOUND` |
/// | `DigestMismatch`, `SizeMismatch`, `SubjectMismatch`, `InvalidSignatureManifest` | `SIGNATURE_INVALID` (the registry served content that is not what was asked for: integrity) |
/// | `Timeout` | `TIMEOUT` |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The image reference is not one Kubernetes (or Docker) would accept.
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// The client configuration is unusable (bad CA PEM, bad Docker config).
    #[error("invalid registry configuration: {0}")]
    Config(String),

    /// The TCP connection or TLS handshake failed.
    #[error("cannot connect to registry {host}: {message}")]
    Connect { host: String, message: String },

    /// The connection broke while a request or answer was under way.
    #[error("transport error talking to {host}: {message}")]
    Transport { host: String, message: String },

    /// The registry answered with an unexpected HTTP status.
    #[error("registry {host} answered HTTP {status} to {what}")]
    Status {
        host: String,
        status: u16,
        what: String,
    },

    /// The registry kept rate-limiting (429) or failing (502/503/504) and the deadline
    /// did not allow waiting for it any longer.
    #[error("registry {host} is throttling or unavailable (HTTP {status}){}", retry_after_text(.retry_after))]
    RateLimited {
        host: String,
        status: u16,
        retry_after: Option<Duration>,
    },

    /// An answer was larger than the limit for its kind (manifest 4 MiB, envelope 32 MiB).
    #[error("{what} from {host} exceeds the limit of {limit} bytes")]
    TooLarge {
        host: String,
        what: String,
        limit: u64,
    },

    /// An answer that should be JSON of a known shape was not (a referrers list, a
    /// tag-schema index, a token answer, an authentication challenge).
    #[error("malformed {what} from {host}: {message}")]
    Malformed {
        host: String,
        what: String,
        message: String,
    },

    /// A redirect that was refused (too many, to plain HTTP, unparsable `Location`).
    #[error("refused redirect from {host}: {message}")]
    Redirect { host: String, message: String },

    /// The registry refused the credentials (or the lack of them): 401 after
    /// authenticating, or 403.
    #[error("registry {host} refused access to {what}: {message}")]
    AuthFailed {
        host: String,
        what: String,
        message: String,
    },

    /// The bearer-token service named in the registry's challenge failed.
    #[error("token service {realm} failed: {message}")]
    TokenService { realm: String, message: String },

    /// A Docker credential helper (`docker-credential-NAME get`) failed.
    #[error("credential helper docker-credential-{helper} (from the Docker config) failed for {registry}: {message}")]
    CredentialHelper {
        helper: String,
        registry: String,
        message: String,
    },

    /// The manifest, tag or blob does not exist.
    #[error("{what} not found in {repository}")]
    NotFound { repository: String, what: String },

    /// Content whose digest is not the one it was asked for (or announced with).
    #[error("{what}: registry served content with digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// Content whose size is not the one its descriptor announced.
    #[error("{what}: registry served {actual} bytes, descriptor says {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    /// A signature manifest that names another artifact as its subject.
    #[error("signature manifest {manifest} has subject {actual}, not the artifact {expected}")]
    SubjectMismatch {
        manifest: String,
        expected: String,
        actual: String,
    },

    /// A manifest announced as a Notation signature that is not a valid one (junk JSON,
    /// no or several envelope layers, unknown envelope media type...).
    #[error("signature manifest {manifest} is invalid: {message}")]
    InvalidSignatureManifest { manifest: String, message: String },

    /// The caller's deadline passed.
    #[error("deadline exceeded while {during}")]
    Timeout { during: String },
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(
            "; it asked to retry after {} s, past the deadline",
            d.as_secs()
        ),
        None => String::new(),
    }
}

impl RegistryError {
    /// The contract error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            RegistryError::InvalidReference { .. } => ErrorCode::InvalidReference,
            RegistryError::Config(_) => ErrorCode::Internal,
            RegistryError::Connect { .. }
            | RegistryError::Transport { .. }
            | RegistryError::Status { .. }
            | RegistryError::RateLimited { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::Malformed { .. }
            | RegistryError::Redirect { .. } => ErrorCode::RegistryError,
            RegistryError::AuthFailed { .. }
            | RegistryError::TokenService { .. }
            | RegistryError::CredentialHelper { .. } => ErrorCode::RegistryAuthFailed,
            RegistryError::NotFound { .. } => ErrorCode::ArtifactNotFound,
            RegistryError::DigestMismatch { .. }
            | RegistryError::SizeMismatch { .. }
            | RegistryError::SubjectMismatch { .. }
            | RegistryError::InvalidSignatureManifest { .. } => ErrorCode::SignatureInvalid,
            RegistryError::Timeout { .. } => ErrorCode::Timeout,
        }
    }

    pub(crate) fn invalid_reference(reference: &str, reason: impl Into<String>) -> Self {
        RegistryError::InvalidReference {
            reference: reference.chars().take(300).collect(),
            reason: reason.into(),
        }
    }
}
