//! Docker Content Trust during a migration to Notation: a tag that Notation does not verify,
//! in a repository a `dct` scope covers, is verified against its Notary server; it is
//! admitted only while the migration window (`migrationUntil`) is open
//! ([`signet_dct::admit`]). Notation is always asked first, and preferred.
//!
//! DCT outcomes are cached per (repository, tag, manifest digest and size): verified for
//! `success_ttl`, failed for `failure_ttl`, failures to reach the Notary server not at all.
//! The window is decided at answer time with the engine's clock, never cached.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use moka::Expiry;
use signet_dct::{admit, Admission, DctError, DctVerified, DctVerifier};
use signet_notation::{Descriptor, ErrorCode};
use signet_registry::Reference;
use tokio::time::Instant;

use super::Engine;
use crate::{codes, ImageVerdict, SignatureFormat, SignatureSummary, VerdictError};

/// `(gun, tag, digest, size)`.
type DctKey = (String, String, String, i64);
type DctOutcome = Result<DctVerified, DctError>;

struct DctExpiry {
    success: Duration,
    failure: Duration,
}

impl Expiry<DctKey, Arc<DctOutcome>> for DctExpiry {
    fn expire_after_create(
        &self,
        _key: &DctKey,
        value: &Arc<DctOutcome>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(if value.is_ok() {
            self.success
        } else {
            self.failure
        })
    }
}

/// The DCT verifier and its outcome cache.
pub(super) struct DctState {
    verifier: DctVerifier,
    outcomes: Cache<DctKey, Arc<DctOutcome>>,
}

impl DctState {
    pub(super) fn new(
        verifier: DctVerifier,
        success: Duration,
        failure: Duration,
        capacity: u64,
    ) -> DctState {
        DctState {
            verifier,
            outcomes: Cache::builder()
                .max_capacity(capacity)
                .expire_after(DctExpiry { success, failure })
                .build(),
        }
    }
}

impl Engine {
    /// `verdict` (Notation's), or for a tag Notation did not verify in a DCT scope, the
    /// answer with Docker Content Trust's outcome.
    /// Whether [`Engine::with_dct`] may change `verdict`: a tag reference Notation did not
    /// verify, in a DCT scope (decided at answer time, never cached).
    pub(super) fn dct_applies(&self, verdict: &ImageVerdict, reference: &Reference) -> bool {
        let Some(dct) = &self.dct else {
            return false;
        };
        !verdict.verified
            && reference.tag().is_some()
            && dct
                .verifier
                .config()
                .repository_for(&reference.name())
                .is_some()
    }

    pub(super) async fn with_dct(
        &self,
        verdict: ImageVerdict,
        reference: &Reference,
        deadline: Instant,
    ) -> ImageVerdict {
        let Some(dct) = &self.dct else {
            return verdict;
        };
        // DCT signs tags: a reference by digest alone has nothing DCT could vouch for.
        let (false, Some(tag)) = (verdict.verified, reference.tag()) else {
            return verdict;
        };
        let gun = reference.name();
        if dct.verifier.config().repository_for(&gun).is_none() {
            return verdict;
        }
        let desc = match self.resolve_cached(reference, deadline).await {
            Ok(d) => d,
            Err(_) => return verdict,
        };
        let outcome = self.dct_outcome(dct, &gun, tag, &desc, deadline).await;
        let now = self
            .fixed_time
            .unwrap_or_else(time::OffsetDateTime::now_utc);
        let until = dct.verifier.config().migration_until;
        let mut verdict = verdict;
        match outcome {
            Ok(signed) => match admit(false, true, until, now) {
                Admission::Admitted(_) => {
                    verdict.signatures.push(entry(&desc, Some(&signed), None));
                    verdict.verified = true;
                    verdict.error = None;
                    verdict.note = Some(format!(
                        "admitted by Docker Content Trust ({}) during the migration window, which ends {}; sign the image with Notation before then",
                        signed.signer(),
                        until.map(rfc3339).unwrap_or_default()
                    ));
                }
                Admission::WindowClosed { ended } => {
                    let e = codes::dct_window_closed(tag, &signed.signer(), &rfc3339(ended));
                    verdict
                        .signatures
                        .push(entry(&desc, Some(&signed), Some(e.clone())));
                    append(&mut verdict, &e);
                }
                Admission::NotVerified => {
                    let e = codes::dct_no_window(tag, &signed.signer());
                    verdict
                        .signatures
                        .push(entry(&desc, Some(&signed), Some(e.clone())));
                    append(&mut verdict, &e);
                }
            },
            Err(e) => {
                verdict.signatures.push(entry(&desc, None, Some(e.clone())));
                let notation_found_none = verdict
                    .error
                    .as_ref()
                    .is_some_and(|n| n.code == ErrorCode::SignatureNotFound);
                if notation_found_none {
                    // No Notation signature at all: DCT's failure says more.
                    verdict.error = Some(VerdictError {
                        code: e.code,
                        message: format!(
                            "no Notation signature, and Docker Content Trust did not verify: {}",
                            e.message
                        ),
                    });
                } else {
                    append(&mut verdict, &e);
                }
            }
        }
        verdict
    }

    async fn dct_outcome(
        &self,
        dct: &DctState,
        gun: &str,
        tag: &str,
        desc: &Descriptor,
        deadline: Instant,
    ) -> Result<DctVerified, VerdictError> {
        let key = (
            gun.to_owned(),
            tag.to_owned(),
            desc.digest.clone(),
            desc.size,
        );
        let size = u64::try_from(desc.size).unwrap_or(0);
        let result = dct
            .outcomes
            .try_get_with(key, async {
                let _permit = self.permit(deadline).await.map_err(DctRun::Engine)?;
                let now = self
                    .fixed_time
                    .unwrap_or_else(time::OffsetDateTime::now_utc);
                let started = Instant::now();
                let r = dct.verifier.verify(gun, tag, &desc.digest, size, now).await;
                self.counters.registry_call("dct", started.elapsed());
                match r {
                    Err(e) if e.is_transport() => Err(DctRun::Dct(e)),
                    other => Ok(Arc::new(other)),
                }
            })
            .await;
        match result {
            Ok(outcome) => (*outcome).clone().map_err(|e| codes::dct(&e)),
            Err(run) => Err(match &*run {
                DctRun::Engine(e) => e.clone(),
                DctRun::Dct(e) => codes::dct(e),
            }),
        }
    }
}

/// A DCT run that is not remembered.
enum DctRun {
    Engine(VerdictError),
    Dct(DctError),
}

fn entry(
    desc: &Descriptor,
    signed: Option<&DctVerified>,
    error: Option<VerdictError>,
) -> SignatureSummary {
    SignatureSummary {
        format: SignatureFormat::Dct,
        digest: desc.digest.clone(),
        manifest: Some(desc.digest.clone()),
        media_type: String::new(),
        verified: error.is_none(),
        signer: signed.map(DctVerified::signer),
        error,
        failed_check: None,
        logged: Vec::new(),
    }
}

/// Adds DCT's word to Notation's failure (whose code stays the answer's).
fn append(verdict: &mut ImageVerdict, dct: &VerdictError) {
    match &mut verdict.error {
        Some(e) => e
            .message
            .push_str(&format!("; Docker Content Trust: {}", dct.message)),
        None => verdict.error = Some(dct.clone()),
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
