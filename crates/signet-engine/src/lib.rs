//! The verification pipeline of Signet, between the service (or CLI) and the adapters.
//!
//! One image reference goes: parse → select the trust policy statement (by `registry/repo`)
//! → resolve the digest (registry, tag cache) → cached verdict? → discover signatures →
//! one signature at a time: fetch its envelope (within a process-wide byte budget) →
//! [`signet_notation`] verdict under the current [`TrustSnapshot`], until one verifies →
//! cache. This crate owns concurrency limits, in-flight deduplication,
//! deadlines, caching and the mapping of every internal error to a contract
//! [`ErrorCode`] (in one place: `codes.rs`, table in [`codes`]).
//! It knows nothing of HTTP servers, Gatekeeper or Kubernetes JSON.
//!
//! It owns the verdict vocabulary every front end prints or answers with ([`ImageVerdict`],
//! [`SignatureSummary`], [`VerdictError`]), built from the verification core's result in one
//! place ([`ImageVerdict::from_artifact`]). It does not own what a signature means: each
//! fetched envelope goes through `signet_notation::verifier::ArtifactCheck::verify_one`, the
//! sequence the CLI's local paths share; nor the configuration file or registry I/O
//! (`signet-registry`).
//!
//! Two additions to that path: an image index is decided by its platform manifests'
//! signatures when the statement's [`EngineConfig::multi_arch`] option asks for it
//! ([`multiarch`]); and a tag Notation does not verify, in a Docker Content Trust scope
//! ([`EngineConfig::dct`]), is verified with DCT and admitted only during its migration
//! window (signature entries say `format: "dct"`).
//!
//! API:
//! - [`TrustSnapshot::load`] / [`TrustSnapshot::load_with_stores`] (service: the policy must
//!   be valid; a store that does not load is absent and listed, which makes the engine not
//!   ready) / [`TrustSnapshot::from_document`] (CLI: store errors tolerated, listed);
//! - [`Engine::new`], [`Engine::set_trust`], [`Engine::trust_generation`], [`Engine::is_ready`],
//!   [`Engine::not_ready_reason`];
//! - [`Engine::verify`] → [`ImageVerdict`] (never an `Err`, never a panic: any doubt is a
//!   verdict that is not verified), [`Engine::verify_shared`] → the same as an
//!   `Arc<`[`SharedVerdict`]`>`, without copying a cached verdict, with a slot for the
//!   caller's rendering of it; [`Engine::pin`] → `registry/repo:tag@sha256:…`;
//! - [`Engine::stats`] → [`EngineStats`] (counters for `/metrics`);
//! - [`EngineConfig::revocation`] turns on online revocation checking: the verifier fetches
//!   CRLs and OCSP responses through [`revocation::HttpRevocationSource`] (plain HTTP,
//!   bounded size, each fetch within [`revocation::RevocationConfig::fetch_timeout`] and the
//!   verification's deadline, CRLs cached by URL until `nextUpdate` but at most
//!   [`revocation::RevocationConfig::max_crl_age`], dropped when they fail validation).
//!   A verified verdict is still cached for `success_ttl`, so a revocation shows after at
//!   most `success_ttl` plus the CRL's cache lifetime. Fetches go only where
//!   [`revocation_guard::RevocationNetworkPolicy`] allows (internal ranges denied by default).
//!
//! # Caching and deduplication
//! - Resolutions `(registry/repo, tag or digest) → descriptor` are cached for
//!   [`EngineConfig::tag_ttl`]; verdicts `(registry/repo, digest, statement, trust
//!   generation)` for [`EngineConfig::success_ttl`] (verified) or
//!   [`EngineConfig::failure_ttl`] (not verified). Transient failures (`REGISTRY_ERROR`,
//!   `REGISTRY_AUTH_FAILED`, `TIMEOUT`, `INTERNAL`, on the artifact or any signature of a
//!   failed one) are never cached. The repository is part of the key because signatures
//!   live next to the artifact in its repository.
//! - Both caches are `moka` future caches filled with `try_get_with`: concurrent requests
//!   for one key share one run (one set of registry round trips), failures included, which
//!   are handed to every waiter and not stored.
//! - A shared run goes on under the deadline of the caller that started it; every caller
//!   stops waiting at its own deadline (`TIMEOUT`). If the caller running it goes away, a
//!   waiting caller runs it again.
//! - Runs (a resolution, or discovery + envelopes + verification) hold one permit of a
//!   semaphore of [`EngineConfig::max_concurrent_verifications`]; cache hits and waiters
//!   hold none. Signature verification itself runs on tokio's blocking pool.
//! - [`Engine::set_trust`] swaps the snapshot atomically and drops cached verdicts and
//!   resolutions; runs
//!   in flight finish under the snapshot they started with, and their verdicts carry the
//!   old generation in their key, so they are never served under the new one.

use std::collections::BTreeMap;

use signet_notation::policy::{Level, Statement};
use signet_notation::verifier::{ArtifactVerdict, Check, Failure, SignatureReport};
use signet_notation::ErrorCode;
use signet_registry::RegistryConfig;

pub mod codes;
mod engine;
pub mod multiarch;
pub mod revocation;
pub mod revocation_guard;
mod shared;
mod stats;
mod trust;

pub use engine::Engine;
pub use multiarch::{MultiArchMode, MultiArchPolicy, MAX_PLATFORM_MANIFESTS};
pub use shared::SharedVerdict;
pub use stats::{EngineStats, LatencyHistogram, REGISTRY_LATENCY_BUCKETS};
pub use trust::{read_oci_policy, TrustError, TrustSnapshot};

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
    /// The signature system (`"format": "notation"` in answers).
    pub format: SignatureFormat,
    /// Digest of the signature manifest (for `dct`: of the image manifest the tag is
    /// signed for).
    pub digest: String,
    /// The digest whose signature this is: the artifact's, or for a multi-arch image
    /// verified per platform, the platform manifest's (CONTRACT.md Additions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// The envelope media type (empty for a signature manifest the registry served wrong).
    pub media_type: String,
    pub verified: bool,
    /// Leaf subject (RFC 4514), when the envelope decoded.
    pub signer: Option<String>,
    pub error: Option<VerdictError>,
    /// The check that failed (for people; not serialized).
    #[serde(skip)]
    pub failed_check: Option<Check>,
    /// Failures of checks only logged at this level (for people; not serialized).
    #[serde(skip)]
    pub logged: Vec<(Check, VerdictError)>,
}

impl SignatureSummary {
    /// One signature as the verification core reported it.
    pub fn from_report(r: &SignatureReport, manifest: Option<&str>) -> Self {
        SignatureSummary {
            format: SignatureFormat::Notation,
            digest: r.digest.clone(),
            manifest: manifest.map(str::to_owned),
            media_type: r.media_type.clone(),
            verified: r.verdict.verified,
            signer: r.verdict.signer.clone(),
            error: r.verdict.failure.as_ref().map(VerdictError::from),
            failed_check: r.verdict.failure.as_ref().map(|f| f.check),
            logged: r
                .verdict
                .logged
                .iter()
                .map(|f| (f.check, VerdictError::from(f)))
                .collect(),
        }
    }
}

impl VerdictError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        VerdictError {
            code,
            message: message.into(),
        }
    }
}

impl From<&Failure> for VerdictError {
    fn from(f: &Failure) -> Self {
        codes::failure(f)
    }
}

/// The signature system a signature belongs to (`format` in answers, CONTRACT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    /// Notary Project (Notation) signatures: COSE or JWS envelopes.
    #[default]
    Notation,
    /// Docker Content Trust (Notary v1, TUF metadata), during a migration window.
    Dct,
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
    /// A remark for people, e.g. that level `skip` verified nothing (not serialized).
    #[serde(skip)]
    pub note: Option<String>,
}

impl ImageVerdict {
    /// A failed verdict with no statement involved.
    pub fn failed(reference: &str, digest: Option<String>, error: VerdictError) -> Self {
        ImageVerdict {
            reference: reference.to_owned(),
            digest,
            verified: false,
            policy: None,
            level: None,
            signatures: Vec::new(),
            error: Some(error),
            note: None,
        }
    }

    /// The verdict the verification core reached on an artifact's signatures under
    /// `statement`. `manifest`: the digest the signatures are of, when the answer names it
    /// (the engine's; the CLI's local paths leave it out).
    pub fn from_artifact(
        reference: &str,
        digest: Option<String>,
        statement: &Statement,
        verdict: &ArtifactVerdict,
        manifest: Option<&str>,
    ) -> Self {
        ImageVerdict {
            reference: reference.to_owned(),
            digest,
            verified: verdict.verified,
            policy: Some(statement.name.clone()),
            level: Some(statement.level.as_str().to_owned()),
            signatures: verdict
                .signatures
                .iter()
                .map(|r| SignatureSummary::from_report(r, manifest))
                .collect(),
            error: if verdict.verified {
                None
            } else {
                verdict.failure.as_ref().map(VerdictError::from)
            },
            note: None,
        }
    }

    /// The verdict under a statement of level `skip`: verified, nothing checked.
    pub fn skipped(reference: &str, digest: Option<String>, statement: &Statement) -> Self {
        ImageVerdict {
            reference: reference.to_owned(),
            digest,
            verified: true,
            policy: Some(statement.name.clone()),
            level: Some(Level::Skip.as_str().to_owned()),
            signatures: Vec::new(),
            error: None,
            note: Some(format!(
                "trust policy statement {:?} has level \"skip\": signatures were not verified",
                statement.name
            )),
        }
    }

    /// The contract code, when not verified.
    pub fn code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }

    /// Whether this verdict may be cached (see [`codes::is_transient`]).
    pub fn is_cacheable(&self) -> bool {
        if self.verified {
            return true;
        }
        let transient =
            |e: &Option<VerdictError>| e.as_ref().is_none_or(|e| codes::is_transient(e.code));
        !transient(&self.error)
            && !self.signatures.iter().any(|s| {
                s.error
                    .as_ref()
                    .is_some_and(|e| codes::is_transient(e.code))
            })
    }
}

/// Engine settings (validated once at build). Build with `..EngineConfig::default()`:
/// fields may be added.
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
    /// Pairs every signed payload's `targetArtifact.annotations` must contain
    /// (CLI `--user-metadata`; default none).
    pub user_metadata: BTreeMap<String, String>,
    /// Most verdicts (and most resolutions) kept in cache (default 10 000).
    pub max_cache_entries: u64,
    /// Bytes of signature envelopes held at once by all verifications together (default
    /// 128 MiB; at least one envelope of the largest size, 32 MiB). Each verification holds
    /// one envelope at a time.
    pub max_envelope_bytes_in_flight: u64,
    /// Online revocation checking (CRLs over HTTP); `None` (the default): none, so a chain
    /// with revocation information has an unknown revocation status (`REVOCATION_UNKNOWN`
    /// under an enforced `revocation` action).
    pub revocation: Option<revocation::RevocationConfig>,
    /// Multi-arch verification per trust-policy statement name (statements not named: the
    /// index's own signature decides, [`MultiArchMode::Index`]).
    pub multi_arch: BTreeMap<String, MultiArchPolicy>,
    /// Docker Content Trust for tags Notation does not verify, in the verifier's scopes,
    /// admitting only during its migration window; `None` (the default): Notation only.
    pub dct: Option<signet_dct::DctVerifier>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            registry: RegistryConfig::default(),
            max_concurrent_verifications: 32,
            success_ttl: std::time::Duration::from_secs(300),
            failure_ttl: std::time::Duration::from_secs(30),
            tag_ttl: std::time::Duration::from_secs(30),
            fixed_time: None,
            user_metadata: BTreeMap::new(),
            max_cache_entries: 10_000,
            max_envelope_bytes_in_flight: 128 * 1024 * 1024,
            revocation: None,
            multi_arch: BTreeMap::new(),
            dct: None,
        }
    }
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Config(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signatures_name_their_format() {
        let s = SignatureSummary {
            format: SignatureFormat::Notation,
            digest: "sha256:00".into(),
            manifest: Some("sha256:11".into()),
            media_type: "application/cose".into(),
            verified: true,
            signer: None,
            error: None,
            failed_check: None,
            logged: Vec::new(),
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["format"], "notation");
        assert_eq!(json["mediaType"], "application/cose");
        assert_eq!(json["manifest"], "sha256:11");
    }
}
