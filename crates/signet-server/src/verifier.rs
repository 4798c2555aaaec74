//! What the server needs from the verification pipeline, and its implementation on
//! [`signet_engine::Engine`].
//!
//! The server never looks inside a verdict beyond its code: [`ImageVerifier`] is the whole
//! seam, so tests run the HTTP layer against a deterministic in-process verifier and the
//! binary plugs in [`EngineVerifier`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use signet_engine::{
    Engine, EngineConfig, EngineStats, ImageVerdict, SharedVerdict, TrustSnapshot, VerdictError,
};
use signet_notation::truststore::TrustStore;
use signet_notation::ErrorCode;
use tokio::time::Instant;

use crate::reload::{fingerprint, Fingerprint};

/// A boxed, sendable future (keeps the trait usable as `Arc<dyn ImageVerifier>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Verification as the server sees it. Implementations must answer by `deadline` (the
/// server also cuts a key off there and answers `TIMEOUT` for it).
pub trait ImageVerifier: Send + Sync + 'static {
    /// The verdict for one image reference (as written in the pod spec), under the
    /// cluster's trust configuration.
    fn verify<'a>(&'a self, image: &'a str, deadline: Instant) -> BoxFuture<'a, ImageVerdict>;
    /// The verdict for one image under the trust configuration of `namespace` when one is
    /// configured, else the cluster's (the contract's namespaced keys, `[NAMESPACE]IMAGE`).
    /// Verifiers without per-namespace trust use the cluster's for every namespace.
    fn verify_in<'a>(
        &'a self,
        namespace: Option<&'a str>,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, ImageVerdict> {
        let _ = namespace;
        self.verify(image, deadline)
    }
    /// [`verify`](Self::verify) without a copy: a cached verdict shared as the cache holds
    /// it, where the server keeps its rendering of the answer (its `reference` may be another
    /// spelling of the image: the server does not answer with it). By default, `verify`'s.
    fn verify_shared<'a>(
        &'a self,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Arc<SharedVerdict>> {
        Box::pin(async move { Arc::new(SharedVerdict::new(self.verify(image, deadline).await)) })
    }
    /// [`verify_shared`](Self::verify_shared) under the trust configuration of `namespace`
    /// (see [`verify_in`](Self::verify_in)). By default `verify_shared`'s without a
    /// namespace, else `verify_in`'s.
    fn verify_shared_in<'a>(
        &'a self,
        namespace: Option<&'a str>,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Arc<SharedVerdict>> {
        match namespace {
            None => self.verify_shared(image, deadline),
            Some(_) => Box::pin(async move {
                Arc::new(SharedVerdict::new(
                    self.verify_in(namespace, image, deadline).await,
                ))
            }),
        }
    }
    /// The image pinned to its digest, tag kept: `registry/repo:tag@sha256:…`.
    fn pin<'a>(
        &'a self,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<String, VerdictError>>;
    /// Trust material is loaded and valid: verdicts can be given (`/readyz`).
    fn is_ready(&self) -> bool;
    /// Generation of the trust material in use (exported as a metric).
    fn trust_generation(&self) -> u64 {
        0
    }
    /// Why it is not ready, for `/readyz` and the logs.
    fn not_ready_reason(&self) -> Option<String> {
        None
    }
    /// The pipeline's counters, for `/metrics` (read at scrape time).
    fn stats(&self) -> Option<EngineStats> {
        None
    }
    /// The certificates of the trust stores in use, for `/metrics` (read at scrape time).
    fn trusted_certificates(&self) -> Vec<TrustedCertificate> {
        Vec::new()
    }
}

/// A certificate of a trust store in use, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrustedCertificate {
    /// `ca`, `signingAuthority` or `tsa`.
    pub store_type: &'static str,
    pub store: String,
    /// RFC 4514, as Notation prints it.
    pub subject: String,
    /// `notAfter`, Unix time.
    pub not_after_unix: i64,
    /// The namespace whose trust configuration holds the store; `None`: the cluster's.
    pub namespace: Option<String>,
}

/// Every certificate of every store the trust policy's statements use, one per (store,
/// subject): the earliest to expire when a store holds several with one subject.
fn trusted_certificates(trust: &TrustSnapshot) -> Vec<TrustedCertificate> {
    let mut earliest: std::collections::BTreeMap<(&'static str, String, String), i64> =
        std::collections::BTreeMap::new();
    for statement in &trust.policy.statements {
        let Some(stores) = trust.stores_for(&statement.name) else {
            continue;
        };
        for r in &statement.trust_stores {
            let Some(Ok(store)) = stores.get(r) else {
                continue;
            };
            for cert in &store.certificates {
                let not_after = cert.not_after().unix_timestamp();
                earliest
                    .entry((
                        store.store_type.as_str(),
                        store.name.clone(),
                        cert.subject(),
                    ))
                    .and_modify(|t| *t = (*t).min(not_after))
                    .or_insert(not_after);
            }
        }
    }
    earliest
        .into_iter()
        .map(
            |((store_type, store, subject), not_after_unix)| TrustedCertificate {
                store_type,
                store,
                subject,
                not_after_unix,
                namespace: None,
            },
        )
        .collect()
}

/// The real pipeline, built on the first trust snapshot that loads and fed every later one.
///
/// Until a snapshot has loaded (bad policy at start, engine not yet able to build), verify
/// and pin answer `INTERNAL` with the reason and `/readyz` says 503; a reload that fixes the
/// files makes it ready without a restart.
#[derive(Debug)]
pub struct EngineVerifier {
    config: EngineConfig,
    policy: PathBuf,
    store_root: PathBuf,
    engine: ArcSwapOption<Engine>,
    /// When set, the engine is built as its sibling (see [`Engine::sibling`]): one registry
    /// client, tag cache, permit pool and envelope budget for several trust configurations.
    shared: Option<Arc<Engine>>,
    state: Mutex<TrustState>,
    /// Trust stores kept in memory (e.g. from Key Vault), joined to the file stores.
    extra_stores: Mutex<Arc<Vec<TrustStore>>>,
}

#[derive(Debug, Default)]
struct TrustState {
    generation: u64,
    applied: Option<Fingerprint>,
    failed: Option<Fingerprint>,
    last_error: Option<String>,
}

impl EngineVerifier {
    /// Builds the verifier and tries a first load (its failure is kept: see [`Self::last_error`]).
    pub fn new(config: EngineConfig, policy: PathBuf, store_root: PathBuf) -> Self {
        Self::build(config, policy, store_root, None)
    }

    /// Like [`Self::new`], with the engine built as a sibling of `shared` (which supplies
    /// the registry client, tag cache, permits and budgets; `config` the verdict cache's
    /// settings).
    pub fn with_shared(
        config: EngineConfig,
        policy: PathBuf,
        store_root: PathBuf,
        shared: Arc<Engine>,
    ) -> Self {
        Self::build(config, policy, store_root, Some(shared))
    }

    fn build(
        config: EngineConfig,
        policy: PathBuf,
        store_root: PathBuf,
        shared: Option<Arc<Engine>>,
    ) -> Self {
        let v = EngineVerifier {
            config,
            policy,
            store_root,
            engine: ArcSwapOption::empty(),
            shared,
            state: Mutex::new(TrustState::default()),
            extra_stores: Mutex::new(Arc::new(Vec::new())),
        };
        let _ = v.reload_trust();
        v
    }

    /// Replaces the in-memory trust stores (see [`TrustSnapshot::load_with_stores`]) and
    /// rebuilds the snapshot with them and the current files. A failure keeps what is in use.
    pub fn set_extra_stores(&self, stores: Vec<TrustStore>) -> Result<bool, String> {
        *self.extra_stores.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(stores);
        {
            let mut state = self.lock();
            state.applied = None;
            state.failed = None;
        }
        self.reload_trust()
    }

    /// The directories whose changes can change the trust material.
    pub fn watched(&self) -> Vec<(PathBuf, bool)> {
        let parent = self
            .policy
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        vec![(parent, false), (self.store_root.clone(), true)]
    }

    /// Why the last load failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TrustState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Reloads the policy and stores if their bytes changed: builds a snapshot aside,
    /// validates it, and swaps it in (generation + 1). A failure keeps what is in use.
    /// Returns `Ok(true)` when new material was applied, `Ok(false)` when nothing changed.
    pub fn reload_trust(&self) -> Result<bool, String> {
        let mut state = self.lock();
        let fp = fingerprint(&[
            (self.policy.clone(), false),
            (self.store_root.clone(), true),
        ]);
        if state.applied == Some(fp) || state.failed == Some(fp) {
            return Ok(false);
        }
        let generation = state.generation + 1;
        let extra = self
            .extra_stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let result =
            TrustSnapshot::load_with_stores(&self.policy, &self.store_root, &extra, generation)
                .map_err(|e| format!("trust material not loaded: {e}"))
                .and_then(|snapshot| match self.engine.load_full() {
                    Some(engine) => {
                        engine.set_trust(snapshot);
                        Ok(())
                    }
                    None => match &self.shared {
                        Some(shared) => {
                            let e = shared.sibling(&self.config, snapshot);
                            self.engine.store(Some(Arc::new(e)));
                            Ok(())
                        }
                        None => Engine::new(self.config.clone(), snapshot)
                            .map(|e| self.engine.store(Some(Arc::new(e))))
                            .map_err(|e| format!("verification engine not built: {e}")),
                    },
                });
        match result {
            Ok(()) => {
                if let Some(why) = self
                    .engine
                    .load()
                    .as_ref()
                    .and_then(|e| e.not_ready_reason())
                {
                    tracing::error!(error = %why, "trust material applied without a store it names: not ready");
                }
                state.generation = generation;
                state.applied = Some(fp);
                state.failed = None;
                state.last_error = None;
                Ok(true)
            }
            Err(e) => {
                // Remember the bad bytes so that polling does not retry them every tick.
                state.failed = Some(fp);
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn not_ready(&self) -> VerdictError {
        VerdictError {
            code: ErrorCode::Internal,
            message: self
                .last_error()
                .unwrap_or_else(|| "trust material not loaded".into()),
        }
    }
}

impl ImageVerifier for EngineVerifier {
    fn verify<'a>(&'a self, image: &'a str, deadline: Instant) -> BoxFuture<'a, ImageVerdict> {
        Box::pin(async move {
            match self.engine.load_full() {
                Some(engine) => engine.verify(image, deadline).await,
                None => ImageVerdict::failed(image, None, self.not_ready()),
            }
        })
    }

    fn verify_shared<'a>(
        &'a self,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Arc<SharedVerdict>> {
        Box::pin(async move {
            match self.engine.load_full() {
                Some(engine) => engine.verify_shared(image, deadline).await,
                None => Arc::new(SharedVerdict::new(ImageVerdict::failed(
                    image,
                    None,
                    self.not_ready(),
                ))),
            }
        })
    }

    fn pin<'a>(
        &'a self,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<String, VerdictError>> {
        Box::pin(async move {
            match self.engine.load_full() {
                Some(engine) => engine.pin(image, deadline).await,
                None => Err(self.not_ready()),
            }
        })
    }

    fn is_ready(&self) -> bool {
        self.engine.load().as_ref().is_some_and(|e| e.is_ready())
    }

    fn not_ready_reason(&self) -> Option<String> {
        self.last_error().or_else(|| {
            self.engine
                .load()
                .as_ref()
                .and_then(|e| e.not_ready_reason())
        })
    }

    fn trust_generation(&self) -> u64 {
        self.engine
            .load()
            .as_ref()
            .map(|e| e.trust_generation())
            .unwrap_or(0)
    }

    fn stats(&self) -> Option<EngineStats> {
        self.engine.load().as_ref().map(|e| e.stats())
    }

    fn trusted_certificates(&self) -> Vec<TrustedCertificate> {
        self.engine
            .load()
            .as_ref()
            .map(|e| trusted_certificates(&e.trust()))
            .unwrap_or_default()
    }
}

/// Trust per namespace (the contract's namespaced keys): a namespace with a trust
/// configuration of its own is verified by its own [`EngineVerifier`], every other key by the
/// cluster's.
///
/// Each trust configuration has its own engine, so its verdict cache holds only verdicts
/// reached under that configuration: one namespace's verdict can never answer another's
/// (the cache key is, in effect, (trust configuration, image)). Built with
/// [`NamespacedVerifier::build`], the engines are siblings ([`Engine::sibling`]): one
/// registry client (connections, tokens, body budget), tag cache, permit pool, envelope
/// budget and CRL cache for all, so the process-wide bounds do not grow with namespaces.
#[derive(Debug)]
pub struct NamespacedVerifier {
    cluster: Arc<EngineVerifier>,
    namespaces: std::collections::BTreeMap<String, Arc<EngineVerifier>>,
}

impl NamespacedVerifier {
    /// One engine per trust configuration, all siblings of one engine that holds the
    /// shared parts (and verifies nothing itself). `namespaces`: name → (policy, store root).
    pub fn build(
        config: EngineConfig,
        policy: PathBuf,
        store_root: PathBuf,
        namespaces: impl IntoIterator<Item = (String, PathBuf, PathBuf)>,
    ) -> Result<Self, String> {
        let nothing_trusted = TrustSnapshot::from_document(
            signet_notation::policy::TrustPolicyDocument {
                version: "1.0".into(),
                statements: Vec::new(),
            },
            std::path::Path::new(""),
            0,
        );
        let shared = Arc::new(
            Engine::new(config.clone(), nothing_trusted)
                .map_err(|e| format!("verification engine not built: {e}"))?,
        );
        let namespaces = namespaces
            .into_iter()
            .map(|(ns, policy, store)| {
                let v = EngineVerifier::with_shared(config.clone(), policy, store, shared.clone());
                (ns, Arc::new(v))
            })
            .collect();
        let cluster = Arc::new(EngineVerifier::with_shared(
            config, policy, store_root, shared,
        ));
        Ok(NamespacedVerifier::new(cluster, namespaces))
    }

    /// `namespaces`: the namespaces with a trust configuration of their own.
    pub fn new(
        cluster: Arc<EngineVerifier>,
        namespaces: std::collections::BTreeMap<String, Arc<EngineVerifier>>,
    ) -> Self {
        NamespacedVerifier {
            cluster,
            namespaces,
        }
    }

    /// The verifier whose trust applies to `namespace`.
    pub fn for_namespace(&self, namespace: Option<&str>) -> &Arc<EngineVerifier> {
        namespace
            .and_then(|ns| self.namespaces.get(ns))
            .unwrap_or(&self.cluster)
    }

    /// The cluster's verifier (Key Vault stores are applied to it).
    pub fn cluster(&self) -> &Arc<EngineVerifier> {
        &self.cluster
    }

    /// Every directory whose changes can change some trust material.
    pub fn watched(&self) -> Vec<(PathBuf, bool)> {
        let mut out = self.cluster.watched();
        for v in self.namespaces.values() {
            for w in v.watched() {
                if !out.contains(&w) {
                    out.push(w);
                }
            }
        }
        out
    }

    /// Reloads every trust configuration whose bytes changed, each on its own: one that
    /// fails keeps its previous snapshot without holding the others back. `Err` names
    /// every configuration that failed.
    pub fn reload_trust(&self) -> Result<bool, String> {
        let mut applied = self.cluster.reload_trust().map_err(|e| vec![e]);
        for (ns, v) in &self.namespaces {
            let r = v.reload_trust().map_err(|e| format!("namespace {ns}: {e}"));
            applied = match (applied, r) {
                (Ok(a), Ok(b)) => Ok(a || b),
                (Ok(_), Err(e)) => Err(vec![e]),
                (Err(mut es), Err(e)) => {
                    es.push(e);
                    Err(es)
                }
                (Err(es), Ok(_)) => Err(es),
            };
        }
        applied.map_err(|es| es.join("; "))
    }

    /// Why each trust configuration whose last load failed did, cluster first.
    pub fn last_errors(&self) -> Vec<(Option<&str>, String)> {
        std::iter::once((None, &self.cluster))
            .chain(self.namespaces.iter().map(|(ns, v)| (Some(ns.as_str()), v)))
            .filter_map(|(ns, v)| v.last_error().map(|e| (ns, e)))
            .collect()
    }
}

impl ImageVerifier for NamespacedVerifier {
    fn verify<'a>(&'a self, image: &'a str, deadline: Instant) -> BoxFuture<'a, ImageVerdict> {
        self.cluster.verify(image, deadline)
    }

    fn verify_in<'a>(
        &'a self,
        namespace: Option<&'a str>,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, ImageVerdict> {
        self.for_namespace(namespace).verify(image, deadline)
    }

    fn verify_shared<'a>(
        &'a self,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Arc<SharedVerdict>> {
        self.cluster.verify_shared(image, deadline)
    }

    fn verify_shared_in<'a>(
        &'a self,
        namespace: Option<&'a str>,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Arc<SharedVerdict>> {
        self.for_namespace(namespace).verify_shared(image, deadline)
    }

    /// Resolving a tag to its digest does not depend on trust: always the cluster's engine.
    fn pin<'a>(
        &'a self,
        image: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<String, VerdictError>> {
        self.cluster.pin(image, deadline)
    }

    /// Ready when every trust configuration is: a namespace whose trust is not loaded
    /// would otherwise be answered `INTERNAL` behind a ready pod.
    fn is_ready(&self) -> bool {
        self.cluster.is_ready() && self.namespaces.values().all(|v| v.is_ready())
    }

    fn not_ready_reason(&self) -> Option<String> {
        let reasons: Vec<String> = std::iter::once((None, &self.cluster))
            .chain(self.namespaces.iter().map(|(ns, v)| (Some(ns), v)))
            .filter_map(|(ns, v)| {
                let why = v
                    .not_ready_reason()
                    .or_else(|| (!v.is_ready()).then(|| "trust material not loaded".to_owned()))?;
                Some(match ns {
                    None => why,
                    Some(ns) => format!("namespace {ns}: {why}"),
                })
            })
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// The sum of the generations: it changes whenever any trust configuration is applied.
    fn trust_generation(&self) -> u64 {
        self.namespaces
            .values()
            .fold(self.cluster.trust_generation(), |sum, v| {
                sum.wrapping_add(v.trust_generation())
            })
    }

    fn stats(&self) -> Option<EngineStats> {
        let mut total = self.cluster.stats();
        for v in self.namespaces.values() {
            if let Some(s) = v.stats() {
                match &mut total {
                    Some(t) => add_stats(t, &s),
                    None => total = Some(s),
                }
            }
        }
        total
    }

    fn trusted_certificates(&self) -> Vec<TrustedCertificate> {
        let mut out = self.cluster.trusted_certificates();
        for (ns, v) in &self.namespaces {
            out.extend(v.trusted_certificates().into_iter().map(|mut c| {
                c.namespace = Some(ns.clone());
                c
            }));
        }
        out
    }
}

/// Adds the counters of `s` to `total` (engines of several trust configurations).
fn add_stats(total: &mut EngineStats, s: &EngineStats) {
    total.verified += s.verified;
    for (code, n) in &s.failed {
        *total.failed.entry(*code).or_default() += n;
    }
    total.verdict_cache_hits += s.verdict_cache_hits;
    total.verdict_cache_misses += s.verdict_cache_misses;
    total.verdict_coalesced += s.verdict_coalesced;
    total.resolve_cache_hits += s.resolve_cache_hits;
    total.resolve_cache_misses += s.resolve_cache_misses;
    total.verdict_cache_entries += s.verdict_cache_entries;
    total.in_flight += s.in_flight;
    // One registry client for all (siblings): each engine reports its total.
    total.registry_requests = total.registry_requests.max(s.registry_requests);
    for (op, h) in &s.registry_latency {
        let t = total.registry_latency.entry(op).or_default();
        if t.buckets.len() < h.buckets.len() {
            t.buckets.resize(h.buckets.len(), 0);
        }
        for (a, b) in t.buckets.iter_mut().zip(&h.buckets) {
            *a += b;
        }
        t.count += h.count;
        t.sum_seconds += h.sum_seconds;
    }
}
