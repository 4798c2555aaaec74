//! From (envelope, artifact, trust policy statement, trust stores, clock) to a verdict.
//!
//! The steps follow notation-go's order: integrity, authenticity (with the trusted identity),
//! expiry, authentic timestamp, revocation, then the binding to the artifact and the user
//! metadata. Each step's failure is enforced, logged or skipped according to the statement's
//! [`Actions`](crate::policy::Actions).

use std::collections::BTreeMap;

use crate::cert::Certificate;
use crate::descriptor::Descriptor;
use crate::envelope::SigningScheme;
use crate::policy::{Action, Actions, Level, Statement};
use crate::revocation::RevocationSource;
use crate::truststore::StoreType;
use crate::{ErrorCode, Instant};

mod artifact;
mod steps;
mod stores;
mod timestamp;

pub use artifact::{failed, verify_artifact, ArtifactCheck, Examine, SignatureInput};
pub use stores::TrustStores;

use steps::{fail, rfc3339};

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
    /// Where CRLs and OCSP responses come from. Without one, a chain with revocation
    /// information has an unknown revocation status (`REVOCATION_UNKNOWN`, subject to the
    /// statement's `revocation` action).
    pub revocation: Option<&'a dyn RevocationSource>,
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

/// Verifies one signature envelope under one trust policy statement.
///
/// Never panics and never returns early with "verified" on doubt: every path that does not
/// complete the enforced checks ends in a [`Failure`].
pub fn verify_signature(
    envelope: &[u8],
    media_type: &str,
    target: Target<'_>,
    statement: &Statement,
    stores: &TrustStores,
    options: &VerifyOptions<'_>,
) -> SignatureVerdict {
    let mut run = Run {
        actions: statement.actions,
        logged: Vec::new(),
        signer: None,
    };
    let result = run.verify(envelope, media_type, target, statement, stores, options);
    SignatureVerdict {
        verified: result.is_ok(),
        failure: result.err(),
        logged: run.logged,
        signer: run.signer,
    }
}

/// The state of one verification: the actions in force and what was logged so far.
struct Run {
    actions: Actions,
    logged: Vec<Failure>,
    signer: Option<String>,
}

impl Run {
    /// Applies `action` to a failed check: enforce fails, log records, skip ignores.
    fn apply(&mut self, action: Action, failure: Failure) -> Result<(), Failure> {
        match action {
            Action::Enforce => Err(failure),
            Action::Log => {
                self.logged.push(failure);
                Ok(())
            }
            Action::Skip => Ok(()),
        }
    }

    fn verify(
        &mut self,
        bytes: &[u8],
        media_type: &str,
        target: Target<'_>,
        statement: &Statement,
        stores: &TrustStores,
        options: &VerifyOptions<'_>,
    ) -> Result<(), Failure> {
        if statement.level == Level::Skip {
            return Ok(());
        }
        let at = options.at;
        let envelope = steps::integrity(bytes, media_type)?;
        self.signer = envelope.certificate_chain.first().map(Certificate::subject);
        let payload = steps::decode_payload(&envelope)?;
        steps::unsupported_attributes(&envelope)?;

        // Authenticity: some certificate of the chain is one of the trusted certificates of
        // the stores whose type fits the signing scheme.
        let wanted_type = match envelope.signed.signing_scheme {
            SigningScheme::X509 => StoreType::Ca,
            SigningScheme::X509SigningAuthority => StoreType::SigningAuthority,
        };
        if let Err(f) = steps::authenticity(&envelope, statement, stores, wanted_type) {
            self.apply(self.actions.authenticity, f)?;
        } else if let Err(f) = steps::trusted_identity(&envelope, statement) {
            // notation-go records an identity mismatch under the authenticity action.
            self.apply(self.actions.authenticity, f)?;
        }

        if let Some(expiry) = envelope.signed.expiry {
            if at >= expiry {
                let f = fail(
                    ErrorCode::SignatureExpired,
                    Check::Expiry,
                    format!(
                        "the signature expired at {}; re-sign the artifact or relax `expiry` in the trust policy statement {:?}",
                        rfc3339(expiry),
                        statement.name
                    ),
                );
                self.apply(self.actions.expiry, f)?;
            }
        }

        if let Err(f) = timestamp::authentic_timestamp(&envelope, statement, stores, at) {
            self.apply(self.actions.authentic_timestamp, f)?;
        }

        if self.actions.revocation != Action::Skip {
            if let Err(f) = steps::revocation(&envelope, options.revocation, at) {
                self.apply(self.actions.revocation, f)?;
            }
        }

        // Binding to the artifact and user metadata are enforced at every level but skip.
        steps::target_matches(&payload, target)?;
        steps::user_metadata(&payload, options.user_metadata)?;
        Ok(())
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
