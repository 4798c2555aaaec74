//! The verification pipeline of Signet, between the service (or CLI) and the adapters.
//!
//! One image reference goes: parse → resolve the digest (registry) → cached verdict? →
//! discover signatures → fetch envelopes → [`signet_notation`] verdict under the current
//! [`TrustSnapshot`] → cache. This crate owns concurrency limits, in-flight deduplication,
//! deadlines, caching and the mapping of every internal error to a contract
//! [`ErrorCode`](signet_notation::ErrorCode) (in one place: `codes.rs`).
//! It knows nothing of HTTP servers, Gatekeeper or Kubernetes JSON.
//!
//! API CONTRACT (stubs; the engine owner implements, the server codes against it):
//! - [`TrustSnapshot::load`] / [`TrustSnapshot::from_document`]
//! - [`Engine::new`], [`Engine::set_trust`], [`Engine::trust_generation`], [`Engine::is_ready`]
//! - [`Engine::verify`] → [`ImageVerdict`], [`Engine::pin`] → `repo:tag@digest`

use std::path::Path;
use std::sync::Arc;

use signet_notation::policy::TrustPolicyDocument;
use signet_notation::ErrorCode;
use signet_registry::RegistryConfig;

/// A contract error: code and a message saying what failed and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerdictError {
    pub code: ErrorCode,
    pub message: String,
}

/// One examined signature.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureSummary {
    /// Digest of the signature manifest.
    pub digest: String,
    /// The envelope media type.
    pub media_type: String,
    pub verified: bool,
    /// Leaf subject (RFC 4514), when the envelope decoded.
    pub signer: Option<String>,
    pub error: Option<VerdictError>,
}

/// The verdict for one image reference.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageVerdict {
    /// The reference as given.
    pub reference: String,
    /// The resolved manifest digest, once known.
    pub digest: Option<String>,
    pub verified: bool,
    /// The trust policy statement applied.
    pub policy: Option<String>,
    /// Its level (`strict`, `permissive`, `audit`, `skip`).
    pub level: Option<String>,
    pub signatures: Vec<SignatureSummary>,
    pub error: Option<VerdictError>,
}

/// The trust policy and the trust stores of each statement, loaded and validated; immutable.
/// A reload builds a new snapshot aside and swaps it in with [`Engine::set_trust`].
#[derive(Debug, Clone)]
pub struct TrustSnapshot {
    pub policy: Arc<TrustPolicyDocument>,
    /// Increases with every reload; part of every cache key.
    pub generation: u64,
}

/// Why trust material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{0}")]
    Invalid(String),
}

impl TrustSnapshot {
    /// Reads and validates an OCI trust policy and loads every store it names from `store_root`.
    /// Any invalid policy or store that fails to load is an error (the old snapshot stays).
    pub fn load(
        policy_path: &Path,
        store_root: &Path,
        generation: u64,
    ) -> Result<Self, TrustError> {
        let _ = (policy_path, store_root, generation);
        Err(TrustError::Invalid("not implemented yet".into()))
    }
}

/// Engine settings (validated once at build).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub registry: RegistryConfig,
    /// Verifications running at once (default 32).
    pub max_concurrent_verifications: usize,
    /// Cache lifetime of a verified verdict (default 5 min).
    pub success_ttl: std::time::Duration,
    /// Cache lifetime of a failed verdict (default 30 s; registry/timeouts are not cached).
    pub failure_ttl: std::time::Duration,
    /// Cache lifetime of a tag → digest resolution (default 30 s).
    pub tag_ttl: std::time::Duration,
    /// Evaluate as if now were this instant (CLI `--at`); `None`: the real clock.
    pub fixed_time: Option<time::OffsetDateTime>,
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Config(String),
}

/// The pipeline. Cheap to share (`Arc<Engine>`); all methods take `&self`.
#[derive(Debug)]
pub struct Engine {
    _private: (),
}

impl Engine {
    pub fn new(config: EngineConfig, trust: TrustSnapshot) -> Result<Self, EngineError> {
        let _ = (config, trust);
        Err(EngineError::Config("not implemented yet".into()))
    }

    /// Swaps in new trust material atomically; cached verdicts of older generations are unused.
    pub fn set_trust(&self, trust: TrustSnapshot) {
        let _ = trust;
    }

    /// The generation of the trust material in use.
    pub fn trust_generation(&self) -> u64 {
        0
    }

    /// Verifies one image reference; finishes by `deadline` (else `TIMEOUT`).
    pub async fn verify(&self, image: &str, deadline: tokio::time::Instant) -> ImageVerdict {
        let _ = deadline;
        ImageVerdict {
            reference: image.to_owned(),
            digest: None,
            verified: false,
            policy: None,
            level: None,
            signatures: Vec::new(),
            error: Some(VerdictError {
                code: ErrorCode::Internal,
                message: "not implemented yet".into(),
            }),
        }
    }

    /// The image pinned to its digest, tag kept: `registry/repo:tag@sha256:…`.
    pub async fn pin(
        &self,
        image: &str,
        deadline: tokio::time::Instant,
    ) -> Result<String, VerdictError> {
        let _ = (image, deadline);
        Err(VerdictError {
            code: ErrorCode::Internal,
            message: "not implemented yet".into(),
        })
    }
}
