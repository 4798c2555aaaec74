//! The pipeline: one verification per image reference, under a deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use moka::future::Cache;
use moka::Expiry;
use signet_notation::policy::{Level, Statement};
use signet_notation::verifier::{
    self, ArtifactCheck, SignatureInput, SignatureReport, Target, TrustStores, VerifyOptions,
};
use signet_notation::Descriptor;
use signet_registry::{Reference, RegistryClient, RegistryError, SignatureManifest};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::multiarch::MultiArchPolicy;
use crate::revocation::HttpRevocationSource;
use crate::stats::Counters;
use crate::{
    codes, EngineConfig, EngineError, EngineStats, ImageVerdict, SharedVerdict, TrustSnapshot,
    VerdictError,
};

mod dct;
mod per_platform;

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

/// What every step of one verification works under: the reference as asked, the trust
/// snapshot and the statement selected in it, and the caller's deadline.
#[derive(Clone, Copy)]
struct Ask<'a> {
    image: &'a str,
    trust: &'a Arc<TrustSnapshot>,
    statement: &'a Arc<Statement>,
    deadline: Instant,
}

/// How [`Engine::through_cache`] found a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Hit,
    Ran,
    /// Shared with a run another caller started.
    Coalesced,
}

/// `(registry/repo, tag or digest)`.
type ResolveKey = (String, String);

/// Verified verdicts live `success_ttl`, others `failure_ttl`.
struct VerdictExpiry {
    success: Duration,
    failure: Duration,
}

impl Expiry<VerdictKey, Arc<SharedVerdict>> for VerdictExpiry {
    fn expire_after_create(
        &self,
        _key: &VerdictKey,
        value: &Arc<SharedVerdict>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(if value.verdict().verified {
            self.success
        } else {
            self.failure
        })
    }
}

/// The pipeline. Cheap to share (`Arc<Engine>`); all methods take `&self`.
pub struct Engine {
    client: RegistryClient,
    /// Read for every key: an `ArcSwap`, so readers on several cores share no lock.
    trust: ArcSwap<TrustSnapshot>,
    verdicts: Cache<VerdictKey, Arc<SharedVerdict>>,
    resolved: Cache<ResolveKey, Descriptor>,
    permits: Arc<Semaphore>,
    /// KiB of signature envelopes fetched and being verified, process-wide.
    envelope_bytes: Arc<Semaphore>,
    fixed_time: Option<time::OffsetDateTime>,
    user_metadata: Arc<std::collections::BTreeMap<String, String>>,
    revocation: Option<Arc<HttpRevocationSource>>,
    /// Multi-arch options by statement name.
    multi_arch: Arc<std::collections::BTreeMap<String, MultiArchPolicy>>,
    /// Docker Content Trust during a migration, when configured.
    dct: Option<Arc<dct::DctState>>,
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
        if config.max_envelope_bytes_in_flight < signet_registry::MAX_ENVELOPE_BYTES {
            return Err(EngineError::Config(format!(
                "max_envelope_bytes_in_flight must be at least {} (one envelope of the largest size)",
                signet_registry::MAX_ENVELOPE_BYTES
            )));
        }
        let envelope_kib = usize::try_from(config.max_envelope_bytes_in_flight.div_ceil(1024))
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
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
            trust: ArcSwap::from_pointee(trust),
            verdicts,
            resolved,
            permits: Arc::new(Semaphore::new(config.max_concurrent_verifications)),
            envelope_bytes: Arc::new(Semaphore::new(envelope_kib)),
            fixed_time: config.fixed_time,
            user_metadata: Arc::new(config.user_metadata),
            revocation: config
                .revocation
                .map(|c| Arc::new(HttpRevocationSource::new(c))),
            multi_arch: Arc::new(config.multi_arch),
            dct: config.dct.map(|v| {
                Arc::new(dct::DctState::new(
                    v,
                    config.success_ttl,
                    config.failure_ttl,
                    config.max_cache_entries,
                ))
            }),
            counters: Counters::default(),
        })
    }

    /// An engine for another trust configuration (a namespace's) that shares this one's
    /// trust-independent parts: the registry client (connections, tokens, body budget), tag
    /// resolutions, concurrency permits, the envelope budget and the CRL cache, so the
    /// process-wide bounds hold for both, and the Docker Content Trust verifier. Its verdict
    /// cache is its own: a verdict reached under one trust configuration never answers for
    /// another. Takes the verdict cache's size and lifetimes, `fixed_time`, `user_metadata`
    /// and the multi-arch options (by statement name) from `config`.
    pub fn sibling(&self, config: &EngineConfig, trust: TrustSnapshot) -> Engine {
        Engine {
            client: self.client.clone(),
            trust: ArcSwap::from_pointee(trust),
            verdicts: Cache::builder()
                .max_capacity(config.max_cache_entries)
                .expire_after(VerdictExpiry {
                    success: config.success_ttl,
                    failure: config.failure_ttl,
                })
                .build(),
            resolved: self.resolved.clone(),
            permits: self.permits.clone(),
            envelope_bytes: self.envelope_bytes.clone(),
            fixed_time: config.fixed_time,
            user_metadata: Arc::new(config.user_metadata.clone()),
            revocation: self.revocation.clone(),
            // Keyed by the statement names of this configuration's trust policy.
            multi_arch: Arc::new(config.multi_arch.clone()),
            // DCT trust is pinned in the service configuration, not in a trust policy.
            dct: self.dct.clone(),
            counters: Counters::default(),
        }
    }

    /// Swaps in new trust material atomically. Cached verdicts and resolutions are dropped:
    /// what was decided under the old material (a store since removed, a statement since
    /// changed) is decided again.
    pub fn set_trust(&self, trust: TrustSnapshot) {
        self.trust.store(Arc::new(trust));
        self.verdicts.invalidate_all();
        self.resolved.invalidate_all();
    }

    /// The trust material in use.
    pub fn trust(&self) -> Arc<TrustSnapshot> {
        self.trust.load_full()
    }

    /// The generation of the trust material in use.
    pub fn trust_generation(&self) -> u64 {
        self.trust().generation
    }

    /// Whether the engine can give every verdict its policy asks for: each store the policy
    /// names is loaded. False while one is missing, empty or unreadable (see
    /// [`Engine::not_ready_reason`]); verdicts are still given, failing closed.
    pub fn is_ready(&self) -> bool {
        self.trust().load_errors().is_empty()
    }

    /// Why [`Engine::is_ready`] is false (for `/readyz` and the logs).
    pub fn not_ready_reason(&self) -> Option<String> {
        self.trust().incomplete_reason()
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
        self.verify_shared(image, deadline).await.to_verdict(image)
    }

    /// [`Engine::verify`] without a copy: a cached verdict comes back as the cache holds it,
    /// shared (so its `reference` is the one of the call that reached it), with the
    /// rendering its consumer keeps there ([`SharedVerdict::rendering`]).
    pub async fn verify_shared(&self, image: &str, deadline: Instant) -> Arc<SharedVerdict> {
        let verdict = match self.cached(image).await {
            Some(v) => v,
            // Boxed: the pipeline's future is large, and the cached path should not carry
            // (and copy) it.
            None => Box::pin(self.verify_uncached(image, deadline)).await,
        };
        let v = verdict.verdict();
        self.counters.answer(v.verified, v.code());
        verdict
    }

    /// The verdict for `image` when the caches hold it (its resolution for a tag, and its
    /// verdict) and nothing is decided at answer time (Docker Content Trust's migration
    /// window): no registry call, no permit, no waiting. Counted as hits only when found.
    async fn cached(&self, image: &str) -> Option<Arc<SharedVerdict>> {
        let reference = Reference::parse(image).ok()?;
        let name = reference.name();
        let (statement, generation) = {
            let trust = self.trust.load();
            let statement = trust.select_repository(&name).ok()?;
            if statement.level == Level::Skip {
                return None;
            }
            (statement.name.clone(), trust.generation)
        };
        let (name, digest, resolved) = match reference.digest() {
            Some(d) => (name, d.to_owned(), false),
            None => {
                let key = (name, reference.manifest_reference().to_owned());
                let desc = self.resolved.get(&key).await?;
                (key.0, desc.digest, true)
            }
        };
        let key = VerdictKey {
            name,
            digest,
            statement,
            generation,
        };
        let v = self.verdicts.get(&key).await?;
        if self.dct_applies(v.verdict(), &reference) {
            return None;
        }
        if resolved {
            self.counters.resolve_hits.fetch_add(1, Ordering::Relaxed);
        }
        self.counters.verdict_hits.fetch_add(1, Ordering::Relaxed);
        Some(v)
    }

    async fn verify_uncached(&self, image: &str, deadline: Instant) -> Arc<SharedVerdict> {
        let mut digest = None;
        match tokio::time::timeout_at(deadline, self.verify_inner(image, deadline, &mut digest))
            .await
        {
            Ok(v) => v,
            Err(_) => shared(ImageVerdict::failed(
                image,
                digest,
                codes::timeout("verifying the image"),
            )),
        }
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
    ) -> Arc<SharedVerdict> {
        let reference = match Reference::parse(image) {
            Ok(r) => r,
            Err(e) => return shared(ImageVerdict::failed(image, None, codes::registry(&e))),
        };
        let trust = self.trust();
        let statement = match trust.select(&reference) {
            Ok(s) => s,
            Err(e) => return shared(ImageVerdict::failed(image, None, e)),
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
                Err(e) => return shared(ImageVerdict::failed(image, None, e)),
            },
        };
        *digest_slot = Some(digest.clone());

        if statement.level == Level::Skip {
            // Notation verifies nothing; the answer still carries the registry's digest.
            let desc = match descriptor {
                Some(d) => d,
                None => match self.resolve_cached(&reference, deadline).await {
                    Ok(d) => d,
                    Err(e) => return shared(ImageVerdict::failed(image, Some(digest), e)),
                },
            };
            return shared(ImageVerdict::skipped(image, Some(desc.digest), &statement));
        }

        let key = VerdictKey {
            name: reference.name(),
            digest: digest.clone(),
            statement: statement.name.clone(),
            generation: trust.generation,
        };
        let (verdict, lookup) = self
            .through_cache(key, async {
                let desc = match descriptor {
                    Some(d) => d,
                    None => match self.resolve_cached(&reference, deadline).await {
                        Ok(d) => d,
                        Err(e) => return ImageVerdict::failed(image, Some(digest.clone()), e),
                    },
                };
                let ask = Ask {
                    image,
                    trust: &trust,
                    statement: &statement,
                    deadline,
                };
                self.decide(ask, &reference, &desc).await
            })
            .await;
        if lookup == Lookup::Coalesced {
            self.counters
                .verdict_coalesced
                .fetch_add(1, Ordering::Relaxed);
        }
        if !self.dct_applies(verdict.verdict(), &reference) {
            return verdict;
        }
        shared(
            self.with_dct(verdict.to_verdict(image), &reference, deadline)
                .await,
        )
    }

    /// The verdict under `key`: cached, shared with the run in flight for it, or from `run`
    /// (kept when it may be cached: [`ImageVerdict::is_cacheable`]).
    async fn through_cache(
        &self,
        key: VerdictKey,
        run: impl std::future::Future<Output = ImageVerdict>,
    ) -> (Arc<SharedVerdict>, Lookup) {
        if let Some(v) = self.verdicts.get(&key).await {
            self.counters.verdict_hits.fetch_add(1, Ordering::Relaxed);
            return (v, Lookup::Hit);
        }
        let mut ran = false;
        let result = self
            .verdicts
            .try_get_with(key, async {
                ran = true;
                self.counters.verdict_misses.fetch_add(1, Ordering::Relaxed);
                // Boxed: the whole verification's state would otherwise sit in this future
                // and in every future awaiting it (deep stacks in debug builds).
                let v = Box::pin(run).await;
                let v = shared(v);
                if v.verdict().is_cacheable() {
                    Ok(v)
                } else {
                    Err(v)
                }
            })
            .await;
        let lookup = if ran { Lookup::Ran } else { Lookup::Coalesced };
        match result {
            Ok(v) => (v, lookup),
            Err(v) => (Arc::clone(&v), lookup),
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

    /// Reserves the envelope's declared size (at most `MAX_ENVELOPE_BYTES`, checked by
    /// discovery) from the process-wide envelope budget, waiting until the deadline.
    async fn envelope_budget(
        &self,
        sig: &SignatureManifest,
        deadline: Instant,
    ) -> Result<SemaphorePermit<'_>, VerdictError> {
        let size = u64::try_from(sig.envelope.size)
            .unwrap_or(0)
            .clamp(1, signet_registry::MAX_ENVELOPE_BYTES);
        let kib = u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX);
        match tokio::time::timeout_at(deadline, self.envelope_bytes.acquire_many(kib)).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(codes::internal("the engine is shutting down")),
            Err(_) => Err(codes::timeout(
                "waiting for memory to fetch a signature envelope (many large envelopes are being verified)",
            )),
        }
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
    async fn run(&self, ask: Ask<'_>, reference: &Reference, desc: &Descriptor) -> ImageVerdict {
        let Ask {
            image,
            trust,
            statement,
            deadline,
        } = ask;
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

        let rejected: Vec<SignatureReport> = found
            .rejected
            .iter()
            .map(|r| SignatureReport {
                digest: r.digest.clone(),
                media_type: String::new(),
                verdict: verifier::failed(codes::rejected_signature(r)),
            })
            .collect();

        let mut job = Job {
            statement: statement.clone(),
            stores: trust
                .stores_for(&statement.name)
                .cloned()
                .unwrap_or_default(),
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

        // One signature at a time, in discovery order, until one verifies: at most one
        // envelope of this artifact is in memory, and the bytes of all envelopes held at
        // once by the process stay within `max_envelope_bytes_in_flight`.
        let mut reports: Vec<SignatureReport> = Vec::new();
        for sig in found.signatures {
            let budget = match self.envelope_budget(&sig, deadline).await {
                Ok(b) => b,
                Err(e) => return ImageVerdict::failed(image, digest, e),
            };
            let started = Instant::now();
            let envelope = self.client.fetch_envelope(reference, &sig, deadline).await;
            self.counters.registry_call("envelope", started.elapsed());
            let (returned, report) =
                match tokio::task::spawn_blocking(move || job.verify_one(sig, envelope)).await {
                    Ok(r) => r,
                    Err(e) => {
                        return ImageVerdict::failed(
                            image,
                            digest,
                            codes::internal(format!(
                                "signature verification failed unexpectedly: {e}"
                            )),
                        )
                    }
                };
            drop(budget);
            job = returned;
            let verified = report.verdict.verified;
            reports.push(report);
            if verified {
                break;
            }
        }
        reports.extend(rejected);
        let combined = verifier::combine(reports);

        let mut verdict =
            ImageVerdict::from_artifact(image, digest, statement, &combined, Some(&desc.digest));
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

/// What the blocking verification needs, owned; moved to the blocking pool for each
/// signature and handed back.
struct Job {
    statement: Arc<Statement>,
    stores: Arc<TrustStores>,
    subject: Descriptor,
    at: time::OffsetDateTime,
    user_metadata: Arc<std::collections::BTreeMap<String, String>>,
    /// Fetches revocation information; blocks, so only on the blocking pool.
    revocation: Option<crate::revocation::BlockingSource>,
}

impl Job {
    fn verify_one(
        self,
        sig: SignatureManifest,
        envelope: Result<Vec<u8>, RegistryError>,
    ) -> (Job, SignatureReport) {
        let options = VerifyOptions {
            at: self.at,
            user_metadata: &self.user_metadata,
            revocation: self
                .revocation
                .as_ref()
                .map(|r| r as &dyn signet_notation::revocation::RevocationSource),
        };
        let check = ArtifactCheck {
            target: Target::Oci(&self.subject),
            statement: &self.statement,
            stores: &self.stores,
            options: &options,
        };
        let report = check.verify_one(SignatureInput {
            digest: sig.digest,
            media_type: sig.media_type,
            envelope: envelope.map_err(|e| codes::envelope_fetch(&e)),
        });
        (self, report)
    }
}

fn shared(v: ImageVerdict) -> Arc<SharedVerdict> {
    Arc::new(SharedVerdict::new(v))
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
