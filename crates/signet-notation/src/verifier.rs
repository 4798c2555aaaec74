//! From (envelope, artifact, trust policy statement, trust stores, clock) to a verdict.
//!
//! The steps follow Notation's order: integrity, authenticity, (trusted identity),
//! authentic timestamp, expiry, revocation. Each step's failure is enforced, logged or
//! skipped according to the statement's [`Actions`](crate::policy::Actions).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::descriptor::Descriptor;
use crate::policy::{Statement, TrustStoreRef};
use crate::truststore::{StoreType, TrustStore, TrustStoreError};
use crate::{ErrorCode, Instant};

/// The trust stores named by a statement, loaded.
#[derive(Debug, Clone, Default)]
pub struct TrustStores {
    stores: HashMap<(StoreType, String), TrustStore>,
}

impl TrustStores {
    /// Wraps already loaded stores.
    pub fn from_stores(stores: impl IntoIterator<Item = TrustStore>) -> Self {
        TrustStores {
            stores: stores
                .into_iter()
                .map(|s| ((s.store_type, s.name.clone()), s))
                .collect(),
        }
    }

    /// Loads exactly the stores `statement` names from a Notation trust-store root
    /// (other stores under the root are not read: they may be broken and must not matter).
    pub fn load_for(root: &Path, statement: &Statement) -> Result<Self, TrustStoreError> {
        let mut stores = Vec::new();
        for r in &statement.trust_stores {
            stores.push(TrustStore::load(root, r.store_type, &r.name)?);
        }
        Ok(Self::from_stores(stores))
    }

    /// The store a reference names, if loaded.
    pub fn get(&self, r: &TrustStoreRef) -> Option<&TrustStore> {
        self.stores.get(&(r.store_type, r.name.clone()))
    }
}

/// What the signature must be bound to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An OCI artifact: the payload's descriptor must carry the same digest, media type and size.
    Oci(&'a Descriptor),
    /// A blob: the payload's digest is recomputed over the content with the payload's own
    /// digest algorithm; the media type is compared only when given.
    Blob {
        content: &'a [u8],
        media_type: Option<&'a str>,
    },
}

/// Per-call options.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// "Now" for every time-dependent check.
    pub at: Instant,
    /// Pairs the payload's `targetArtifact.annotations` must contain.
    pub user_metadata: &'a BTreeMap<String, String>,
}

/// Notation's validation steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    Integrity,
    Authenticity,
    TrustedIdentity,
    AuthenticTimestamp,
    Expiry,
    Revocation,
    UserMetadata,
}

/// A failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: ErrorCode,
    pub check: Check,
    /// Plain words: what failed and, where it helps, what to do.
    pub message: String,
}

/// The outcome for one signature.
#[derive(Debug, Clone)]
pub struct SignatureVerdict {
    pub verified: bool,
    /// The enforced failure, when not verified.
    pub failure: Option<Failure>,
    /// Failures of checks whose action is `log`.
    pub logged: Vec<Failure>,
    /// The leaf certificate's subject, once the envelope decoded.
    pub signer: Option<String>,
}

/// Verifies one signature envelope.
pub fn verify_signature(
    envelope: &[u8],
    media_type: &str,
    target: Target<'_>,
    statement: &Statement,
    stores: &TrustStores,
    options: &VerifyOptions<'_>,
) -> SignatureVerdict {
    let _ = (envelope, media_type, target, statement, stores, options);
    SignatureVerdict {
        verified: false,
        failure: Some(Failure {
            code: ErrorCode::Internal,
            check: Check::Integrity,
            message: "not implemented yet".into(),
        }),
        logged: Vec::new(),
        signer: None,
    }
}

/// One examined signature of an artifact.
#[derive(Debug, Clone)]
pub struct SignatureReport {
    /// Digest of the signature manifest (or of the envelope blob where there is none).
    pub digest: String,
    pub media_type: String,
    pub verdict: SignatureVerdict,
}

/// The outcome for an artifact with any number of signatures.
#[derive(Debug, Clone)]
pub struct ArtifactVerdict {
    pub verified: bool,
    pub failure: Option<Failure>,
    pub signatures: Vec<SignatureReport>,
}

/// The artifact is verified if one signature verifies; otherwise the reported failure is the
/// one that got furthest through the steps ([`ErrorCode::progress`]); with no signature at
/// all it is `SIGNATURE_NOT_FOUND`.
pub fn combine(signatures: Vec<SignatureReport>) -> ArtifactVerdict {
    if signatures.iter().any(|s| s.verdict.verified) {
        return ArtifactVerdict {
            verified: true,
            failure: None,
            signatures,
        };
    }
    let failure = signatures
        .iter()
        .filter_map(|s| s.verdict.failure.as_ref())
        // `max_by_key` keeps the last of equals; reverse so the first signature wins ties.
        .rev()
        .max_by_key(|f| f.code.progress())
        .cloned()
        .unwrap_or_else(|| Failure {
            code: ErrorCode::SignatureNotFound,
            check: Check::Integrity,
            message: "no Notation signature was found for the artifact; sign it with `notation sign` or check the reference".into(),
        });
    ArtifactVerdict {
        verified: false,
        failure: Some(failure),
        signatures,
    }
}
