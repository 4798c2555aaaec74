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
    /// The verdict for one image reference (as written in the pod spec).
    fn verify<'a>(&'a self, image: &'a str, deadline: Instant) -> BoxFuture<'a, ImageVerdict>;
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
        let v = EngineVerifier {
            config,
            policy,
            store_root,
            engine: ArcSwapOption::empty(),
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
                    None => Engine::new(self.config.clone(), snapshot)
                        .map(|e| self.engine.store(Some(Arc::new(e))))
                        .map_err(|e| format!("verification engine not built: {e}")),
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
