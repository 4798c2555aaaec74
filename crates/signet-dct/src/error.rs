//! What can fail, in words that say which metadata and which check.

use thiserror::Error;

/// A failed Docker Content Trust verification. Every variant names the TUF role involved
/// where there is one, so the message tells an operator which file was wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DctError {
    /// No `dct` repository entry covers this repository name (GUN).
    #[error("no Docker Content Trust configuration covers repository {gun}")]
    NotConfigured { gun: String },
    /// The metadata could not be parsed or breaks a structural rule.
    #[error("{role} metadata is malformed: {reason}")]
    Malformed { role: String, reason: String },
    /// The metadata is larger than allowed (by the configured bound or the size the
    /// referring metadata declares).
    #[error("{role} metadata is too large: {size} bytes, at most {limit} allowed")]
    TooLarge { role: String, size: u64, limit: u64 },
    /// A key in the metadata cannot be used (unknown type, bad encoding, ID not its content).
    #[error("{role} metadata: key {key_id}: {reason}")]
    BadKey {
        role: String,
        key_id: String,
        reason: String,
    },
    /// Fewer valid signatures from the role's keys than its threshold.
    #[error("{role} metadata has {valid} valid signature(s) from its keys, {threshold} required")]
    ThresholdNotMet {
        role: String,
        valid: usize,
        threshold: u32,
    },
    /// The repository's root is not anchored in the configured root keys or certificates.
    #[error(
        "root of {gun} is not trusted: {reason}; pin its root key or certificate in the dct configuration"
    )]
    RootNotPinned { gun: String, reason: String },
    /// The metadata expired before the verification time.
    #[error("{role} metadata expired at {expires}")]
    Expired { role: String, expires: String },
    /// The version went down compared to what was already seen for this repository.
    #[error(
        "{role} metadata version {found} is older than version {seen} already seen (rollback)"
    )]
    Rollback { role: String, found: u64, seen: u64 },
    /// A file does not match the hash or length that the metadata above it declares.
    #[error("{role} metadata does not match the {what} that {parent} declares")]
    MetaMismatch {
        role: String,
        parent: String,
        what: &'static str,
    },
    /// The tag is not signed by any trusted targets role.
    #[error("tag {tag} of {gun} is not signed in Docker Content Trust")]
    TargetNotFound { gun: String, tag: String },
    /// The signed target differs from the manifest the registry serves.
    #[error(
        "tag {tag} is signed (by {role}) for sha256:{signed_sha256} ({signed_length} bytes), but the registry serves {digest} ({size} bytes)"
    )]
    TargetMismatch {
        tag: String,
        role: String,
        signed_sha256: String,
        signed_length: u64,
        digest: String,
        size: u64,
    },
    /// The Notary server could not be reached or answered with an error.
    #[error("notary server {server}: {reason}")]
    Server { server: String, reason: String },
    /// The Notary server has no metadata for the repository (HTTP 404): it is not signed
    /// with Docker Content Trust there.
    #[error("notary server {server} has no {role} metadata for {gun}: the repository is not signed with Docker Content Trust")]
    NotSigned {
        server: String,
        gun: String,
        role: String,
    },
    /// The Notary server did not answer within the time allowed.
    #[error("notary server {server} did not answer within {seconds} s")]
    Timeout { server: String, seconds: u64 },
    /// The `dct` configuration is invalid.
    #[error("invalid dct configuration: {0}")]
    Config(String),
}

impl DctError {
    pub(crate) fn malformed(role: &str, reason: impl Into<String>) -> DctError {
        DctError::Malformed {
            role: role.to_owned(),
            reason: reason.into(),
        }
    }

    /// Whether the failure is about reaching the server rather than about the metadata
    /// (the engine maps these to `REGISTRY_ERROR` / `TIMEOUT`, and does not cache them).
    pub fn is_transport(&self) -> bool {
        matches!(self, DctError::Server { .. } | DctError::Timeout { .. })
    }
}
