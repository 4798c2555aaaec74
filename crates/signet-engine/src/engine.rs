//! The pipeline: one verification per image reference, under a deadline.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::stream::{self, StreamExt as _};
use moka::future::Cache;
use moka::Expiry;
use signet_notation::policy::Level;
use signet_notation::verifier::{
    self, ArtifactVerdict, Check, Failure, SignatureReport, SignatureVerdict, Target, TrustStores,
    VerifyOptions,
};
use signet_notation::Descriptor;
use signet_registry::{Reference, RegistryClient, RegistryError, SignatureManifest};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::revocation::HttpRevocationSource;
use crate::stats::Counters;
use crate::{
    codes, EngineConfig, EngineError, EngineStats, ImageVerdict, SignatureSummary, TrustSnapshot,
    VerdictError,
};

/// Where a verdict is cached: signatures live in the artifact's repository, and a verdict
/// holds only under the statement and trust material it was reached with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VerdictKey {
    /// `registry/repo`
    name: String,
    digest: String,
    statement: String,
    generation: u64,
}

/// `(registry/repo, tag or digest)`.
type ResolveKey = (String, String);

/// Verified verdicts live `success_ttl`, others `failure_ttl`.
struct VerdictExpiry {
    success: Duration,
    failure: Duration,
}

impl Expiry<VerdictKey, Arc<ImageVerdict>> for VerdictExpiry {
    fn expire_after_create(
        &self,
        _key: &VerdictKey,
        value: &Arc<ImageVerdict>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(if value.verified {
            self.success
        } else {
            self.failure
        })
    }
}

/// The pipeline. Cheap to share (`Arc<Engine>`); all methods take `&self`.
pub struct Engine {
    client: RegistryClient,
    trust: RwLock<Arc<TrustSnapshot>>,
    verdicts: Cache<VerdictKey, Arc<ImageVerdict>>,
    resolved: Cache<ResolveKey, Descriptor>,
    permits: Semaphore,
    fetch_concurrency: usize,
    fixed_time: Option<time::OffsetDateTime>,
    user_metadata: Arc<std::collections::BTreeMap<String, String>>,
    revocation: Option<Arc<HttpRevocationSource>>,
    counters: Counters,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("trust_generation", &self.trust_generation())
            .field("available_permits", &self.permits.available_permits())
            .field("fixed_time", &self.fixed_time)
            .finish_non_exhaustive()
    }
}

/// A concurrency permit that counts itself in `in_flight`.
struct Permit<'a> {
    _permit: SemaphorePermit<'a>,
    counters: &'a Counters,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Engine {
    pub fn new(config: EngineConfig, trust: TrustSnapshot) -> Result<Self, EngineError> {
        if config.max_concurrent_verifications == 0 {
            return Err(EngineError::Config(
                "max_concurrent_verifications must be at least 1".into(),
            ));
        }
        if config.max_concurrent_verifications > Semaphore::MAX_PERMITS {
            return Err(EngineError::Config(
                "max_concurrent_verifications is too large".into(),
            ));
        }
        let fetch_concurrency = config.registry.concurrency.max(1);
        let client =
            RegistryClient::new(config.registry).map_err(|e| EngineError::Config(e.to_string()))?;
        let verdicts = Cache::builder()
            .max_capacity(config.max_cache_entries)
            .expire_after(VerdictExpiry {
                success: config.success_ttl,
                failure: config.failure_ttl,
            })
            .build();
        let resolved = Cache::builder()
            .max_capacity(config.max_cache_entries)
            .time_to_live(config.tag_ttl)
            .build();
        Ok(Engine {
            client,
            trust: RwLock::new(Arc::new(trust)),
            verdicts,
            resolved,
            permits: Semaphore::new(config.max_concurrent_verifications),
            fetch_concurrency,
            fixed_time: config.fixed_time,
            user_metadata: Arc::new(config.user_metadata),
            revocation: config
                .revocation
                .map(|c| Arc::new(HttpRevocationSource::new(c))),
            counters: Counters::default(),
        })
    }

    /// Swaps in new trust material atomically; cached verdicts of older generations are unused
    /// (and dropped).
    pub fn set_trust(&self, trust: TrustSnapshot) {
        let new = Arc::new(trust);
        match self.trust.write() {
            Ok(mut t) => *t = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        self.verdicts.invalidate_all();
    }

    /// The trust material in use.
    pub fn trust(&self) -> Arc<TrustSnapshot> {
        match self.trust.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The generation of the trust material in use.
    pub fn trust_generation(&self) -> u64 {
        self.trust().generation
    }

    /// Whether the engine can give meaningful verdicts: its trust material is loaded with
    /// every store it names (always true for a snapshot from [`TrustSnapshot::load`]).
    pub fn is_ready(&self) -> bool {
        self.trust().load_errors().is_empty()
    }

    /// A snapshot of the counters (see [`EngineStats`]).
    pub fn stats(&self) -> EngineStats {
        let mut s = self.counters.snapshot();
        s.verdict_cache_entries = self.verdicts.entry_count();
        s.registry_requests = self.client.round_trips();
        s
    }

    /// Verifies one image reference; finishes by `deadline` (else `TIMEOUT`).
    pub async fn verify(&self, image: &str, deadline: Instant) -> ImageVerdict {
        let mut digest = None;
        let verdict = match tokio::time::timeout_at(
            deadline,
            self.verify_inner(image, deadline, &mut digest),
        )
        .await
        {
            Ok(v) => v,
            Err(_) => ImageVerdict::failed(image, digest, codes::timeout("verifying the image")),
        };
        self.counters.answer(verdict.verified, verdict.code());
        verdict
    }

    /// The image pinned to its digest, tag kept: `registry/repo:tag@sha256:…`. The digest
    /// is the registry's (through the tag cache); a digest given in `image` must be the one
    /// the registry serves.
    pub async fn pin(&self, image: &str, deadline: Instant) -> Result<String, VerdictError> {
        let work = async {
            let reference = Reference::parse(image).map_err(|e| codes::registry(&e))?;
            let desc = self.resolve_cached(&reference, deadline).await?;
            Ok(reference.with_digest(&desc.digest).to_string())
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(codes::timeout("resolving the image digest")),
        }
    }

    async fn verify_inner(
        &self,
        image: &str,
        deadline: Instant,
        digest_slot: &mut Option<String>,
    ) -> ImageVerdict {
        let reference = match Reference::parse(image) {
            Ok(r) => r,
            Err(e) => return ImageVerdict::failed(image, None, codes::registry(&e)),
        };
        let trust = self.trust();
        let statement = match trust.select(&reference) {
            Ok(s) => s,
            Err(e) => return ImageVerdict::failed(image, None, e),
        };

        // The digest: given, or resolved (tag cache).
        let mut descriptor = None;
        let digest = match reference.digest() {
            Some(d) => d.to_owned(),
            None => match self.resolve_cached(&reference, deadline).await {
                Ok(d) => {
                    let digest = d.digest.clone();
                    descriptor = Some(d);
                    digest
                }
                Err(e) => return ImageVerdict::failed(image, None, e),
            },
        };
        *digest_slot = Some(digest.clone());

        if statement.level == Level::Skip {
            // Notation verifies nothing; the answer still carries the registry's digest.
            let desc = match descriptor {
                Some(d) => d,
                None => match self.resolve_cached(&reference, deadline).await {
                    Ok(d) => d,
                    Err(e) => return ImageVerdict::failed(image, Some(digest), e),
                },
            };
            return ImageVerdict {
                reference: image.to_owned(),
                digest: Some(desc.digest),
                verified: true,
                policy: Some(statement.name.clone()),
                level: Some(Level::Skip.as_str().to_owned()),
                signatures: Vec::new(),
                error: None,
                note: Some(format!(
                    "trust policy statement {:?} has level \"skip\": signatures were not verified",
                    statement.name
                )),
            };
        }

        let key = VerdictKey {
            name: reference.name(),
            digest: digest.clone(),
            statement: statement.name.clone(),
            generation: trust.generation,
        };
        if let Some(v) = self.verdicts.get(&key).await {
            self.counters.verdict_hits.fetch_add(1, Ordering::Relaxed);
            return with_reference(&v, image);
        }
        let mut ran = false;
        let result = self
            .verdicts
            .try_get_with(key, async {
                ran = true;
                self.counters.verdict_misses.fetch_add(1, Ordering::Relaxed);
                let desc = match descriptor {
                    Some(d) => d,
                    None => match self.resolve_cached(&reference, deadline).await {
                        Ok(d) => d,
                        Err(e) => {
                            let v = ImageVerdict::failed(image, Some(digest.clone()), e);
                            return if v.is_cacheable() {
                                Ok(Arc::new(v))
                            } else {
                                Err(v)
                            };
                        }
                    },
                };
                let v = self
                    .run(image, &reference, &desc, &trust, &statement.name, deadline)
                    .await;
                if v.is_cacheable() {
                    Ok(Arc::new(v))
                } else {
                    Err(v)
                }
            })
            .await;
        if !ran {
            self.counters
                .verdict_coalesced
                .fetch_add(1, Ordering::Relaxed);
        }
        match result {
            Ok(v) => with_reference(&v, image),
            Err(v) => with_reference(&v, image),
        }
    }

    /// Resolves through the cache; concurrent resolutions of one key share one request.
    async fn resolve_cached(
        &self,
        reference: &Reference,
        deadline: Instant,
    ) -> Result<Descriptor, VerdictError> {
        let key = (reference.name(), reference.manifest_reference().to_owned());
        let desc = match self.resolved.get(&key).await {
            Some(d) => {
                self.counters.resolve_hits.fetch_add(1, Ordering::Relaxed);
                d
            }
            None => {
                let mut ran = false;
                let result = self
                    .resolved
                    .try_get_with(key, async {
                        ran = true;
                        self.counters.resolve_misses.fetch_add(1, Ordering::Relaxed);
                        let _permit = self.permit(deadline).await?;
                        let started = Instant::now();
                        let r = self.client.resolve(reference, deadline).await;
                        self.counters.registry_call("resolve", started.elapsed());
                        r.map_err(|e| codes::registry(&e))
                    })
                    .await;
                if !ran {
                    self.counters.resolve_hits.fetch_add(1, Ordering::Relaxed);
                }
                result.map_err(|e| (*e).clone())?
            }
        };
        if let Some(expected) = reference.digest() {
            if desc.digest != expected {
                return Err(codes::digest_mismatch(expected, &desc.digest));
            }
        }
        Ok(desc)
    }

    async fn permit(&self, deadline: Instant) -> Result<Permit<'_>, VerdictError> {
        match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
            Ok(Ok(p)) => {
                self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
                Ok(Permit {
                    _permit: p,
                    counters: &self.counters,
                })
            }
            Ok(Err(_)) => Err(codes::internal("the engine is shutting down")),
            Err(_) => Err(codes::timeout("waiting for a free verification slot")),
        }
    }

    /// Discovery, envelopes and verification of one resolved artifact.
    async fn run(
        &self,
        image: &str,
        reference: &Reference,
        desc: &Descriptor,
        trust: &Arc<TrustSnapshot>,
        statement: &str,
        deadline: Instant,
    ) -> ImageVerdict {
        let digest = Some(desc.digest.clone());
        let _permit = match self.permit(deadline).await {
            Ok(p) => p,
            Err(e) => return ImageVerdict::failed(image, digest, e),
        };

        let started = Instant::now();
        let found = self.client.signatures(reference, desc, deadline).await;
        self.counters.registry_call("signatures", started.elapsed());
        let found = match found {
            Ok(s) => s,
            Err(e) => return ImageVerdict::failed(image, digest, codes::registry(&e)),
        };

        let fetched: Vec<(SignatureManifest, Result<Vec<u8>, RegistryError>)> =
            stream::iter(found.signatures)
                .map(|sig| async move {
                    let started = Instant::now();
                    let r = self.client.fetch_envelope(reference, &sig, deadline).await;
                    self.counters.registry_call("envelope", started.elapsed());
                    (sig, r)
                })
                .buffered(self.fetch_concurrency)
                .collect()
                .await;

        let rejected: Vec<SignatureReport> = found
            .rejected
            .iter()
            .map(|r| SignatureReport {
                digest: r.digest.clone(),
                media_type: String::new(),
                verdict: failed(codes::rejected_signature(r)),
            })
            .collect();

        let job = Job {
            trust: trust.clone(),
            statement: statement.to_owned(),
            subject: desc.clone(),
            at: self
                .fixed_time
                .unwrap_or_else(time::OffsetDateTime::now_utc),
            user_metadata: self.user_metadata.clone(),
            revocation: self
                .revocation
                .as_ref()
                .map(|r| r.blocking(tokio::runtime::Handle::current(), deadline)),
        };
        let combined =
            match tokio::task::spawn_blocking(move || job.verify(fetched, rejected)).await {
                Ok(Some(v)) => v,
                Ok(None) => {
                    return ImageVerdict::failed(
                        image,
                        digest,
                        codes::internal(format!(
                            "trust policy statement {statement:?} vanished from the trust snapshot"
                        )),
                    )
                }
                Err(e) => {
                    return ImageVerdict::failed(
                        image,
                        digest,
                        codes::internal(format!("signature verification failed unexpectedly: {e}")),
                    )
                }
            };

        let level = trust
            .policy
            .statements
            .iter()
            .find(|s| s.name == statement)
            .map(|s| s.level.as_str().to_owned());
        let mut verdict = ImageVerdict {
            reference: image.to_owned(),
            digest,
            verified: combined.verified,
            policy: Some(statement.to_owned()),
            level,
            signatures: combined.signatures.iter().map(summary).collect(),
            error: if combined.verified {
                None
            } else {
                combined.failure.as_ref().map(codes::failure)
            },
            note: None,
        };
        if found.truncated && !verdict.verified {
            if let Some(e) = &mut verdict.error {
                e.message.push_str(&format!(
                    " (the artifact has more signatures than the {} examined)",
                    verdict.signatures.len()
                ));
            }
        }
        verdict
    }
}

/// What the blocking verification needs, owned.
struct Job {
    trust: Arc<TrustSnapshot>,
    statement: String,
    subject: Descriptor,
    at: time::OffsetDateTime,
    user_metadata: Arc<std::collections::BTreeMap<String, String>>,
    /// Fetches revocation information; blocks, so only on the blocking pool.
    revocation: Option<crate::revocation::BlockingSource>,
}

impl Job {
    fn verify(
        self,
        fetched: Vec<(SignatureManifest, Result<Vec<u8>, RegistryError>)>,
        rejected: Vec<SignatureReport>,
    ) -> Option<ArtifactVerdict> {
        let statement = self
            .trust
            .policy
            .statements
            .iter()
            .find(|s| s.name == self.statement)?;
        let empty = TrustStores::default();
        let stores = self
            .trust
            .stores_for(&self.statement)
            .map(|s| &**s)
            .unwrap_or(&empty);
        let options = VerifyOptions {
            at: self.at,
            user_metadata: &self.user_metadata,
            revocation: self
                .revocation
                .as_ref()
                .map(|r| r as &dyn signet_notation::revocation::RevocationSource),
        };
        let mut reports: Vec<SignatureReport> = fetched
            .into_iter()
            .map(|(sig, envelope)| {
                let verdict = match envelope {
                    Ok(bytes) => verifier::verify_signature(
                        &bytes,
                        &sig.media_type,
                        Target::Oci(&self.subject),
                        statement,
                        stores,
                        &options,
                    ),
                    Err(e) => failed(codes::envelope_fetch(&e)),
                };
                SignatureReport {
                    digest: sig.digest,
                    media_type: sig.media_type,
                    verdict,
                }
            })
            .collect();
        reports.extend(rejected);
        Some(verifier::combine(reports))
    }
}

fn failed(failure: Failure) -> SignatureVerdict {
    SignatureVerdict {
        verified: false,
        failure: Some(failure),
        logged: Vec::new(),
        signer: None,
    }
}

fn summary(r: &SignatureReport) -> SignatureSummary {
    SignatureSummary {
        format: crate::SignatureFormat::Notation,
        digest: r.digest.clone(),
        media_type: r.media_type.clone(),
        verified: r.verdict.verified,
        signer: r.verdict.signer.clone(),
        error: r.verdict.failure.as_ref().map(codes::failure),
        failed_check: r.verdict.failure.as_ref().map(|f| f.check),
        logged: r
            .verdict
            .logged
            .iter()
            .map(|f| (f.check, codes::failure(f)))
            .collect::<Vec<(Check, VerdictError)>>(),
    }
}

fn with_reference(v: &ImageVerdict, image: &str) -> ImageVerdict {
    let mut v = v.clone();
    v.reference = image.to_owned();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn futures_are_send_and_engine_is_sync() {
        fn sync<T: Send + Sync>() {}
        sync::<Engine>();
        let doc = signet_notation::policy::parse_oci(
            br#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"skip"},"trustStores":[],"trustedIdentities":[]}]}"#,
        );
        let Ok(doc) = doc else {
            panic!("policy");
        };
        let trust = TrustSnapshot::from_document(doc, std::path::Path::new("/nonexistent"), 1);
        let Ok(engine) = Engine::new(EngineConfig::default(), trust) else {
            panic!("engine");
        };
        assert!(engine.is_ready());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(rt) = rt else { panic!("runtime") };
        let _guard = rt.enter();
        let deadline = Instant::now() + Duration::from_secs(1);
        let f = engine.verify("example.com/app:v1", deadline);
        assert_send(&f);
        let p = engine.pin("example.com/app:v1", deadline);
        assert_send(&p);
        let v = rt.block_on(engine.verify("not a reference", deadline));
        assert_eq!(v.code(), Some(signet_notation::ErrorCode::InvalidReference));
    }
}
