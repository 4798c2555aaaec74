//! Counters the engine keeps for the server to export (Prometheus or anything else).
//!
//! The engine does not depend on a metrics library: [`Engine::stats`](crate::Engine::stats)
//! returns an [`EngineStats`] snapshot of plain numbers, all monotonic counters except
//! `in_flight` and the cache sizes (gauges). A `/metrics` handler reads it at scrape time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use signet_notation::ErrorCode;

/// Upper bounds (seconds) of the registry latency histogram buckets; a last `+Inf` bucket
/// is implied (it equals the count).
pub const REGISTRY_LATENCY_BUCKETS: [f64; 10] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A histogram of the duration of one kind of registry call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    /// Cumulative counts per bucket of [`REGISTRY_LATENCY_BUCKETS`] (`le` semantics).
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStats {
    /// Answers given by [`Engine::verify`](crate::Engine::verify) that were verified.
    pub verified: u64,
    /// Answers that were not verified, by contract code.
    pub failed: BTreeMap<ErrorCode, u64>,
    /// Verdicts served from the cache.
    pub verdict_cache_hits: u64,
    /// Verdicts computed (a pipeline run: discovery, envelopes, verification).
    pub verdict_cache_misses: u64,
    /// Verifications that joined a run already in flight for the same key.
    pub verdict_coalesced: u64,
    /// Tag/digest resolutions served from the cache (or joined in flight).
    pub resolve_cache_hits: u64,
    /// Resolutions sent to the registry.
    pub resolve_cache_misses: u64,
    /// Verdicts currently cached (approximate).
    pub verdict_cache_entries: u64,
    /// Pipeline runs holding a concurrency permit now.
    pub in_flight: u64,
    /// HTTP requests sent to registries (tokens, retries and redirects included).
    pub registry_requests: u64,
    /// Registry call latency by operation: `resolve`, `signatures`, `envelope`.
    pub registry_latency: BTreeMap<&'static str, LatencyHistogram>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) verified: AtomicU64,
    pub(crate) failed: Mutex<BTreeMap<ErrorCode, u64>>,
    pub(crate) verdict_hits: AtomicU64,
    pub(crate) verdict_misses: AtomicU64,
    pub(crate) verdict_coalesced: AtomicU64,
    pub(crate) resolve_hits: AtomicU64,
    pub(crate) resolve_misses: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    latency: Mutex<BTreeMap<&'static str, LatencyHistogram>>,
}

impl Counters {
    pub(crate) fn answer(&self, verified: bool, code: Option<ErrorCode>) {
        if verified {
            self.verified.fetch_add(1, Ordering::Relaxed);
        } else {
            let code = code.unwrap_or(ErrorCode::Internal);
            if let Ok(mut m) = self.failed.lock() {
                *m.entry(code).or_default() += 1;
            }
        }
    }

    pub(crate) fn registry_call(&self, operation: &'static str, took: Duration) {
        let secs = took.as_secs_f64();
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(operation).or_insert_with(|| LatencyHistogram {
                buckets: vec![0; REGISTRY_LATENCY_BUCKETS.len()],
                count: 0,
                sum_seconds: 0.0,
            });
            for (b, le) in h.buckets.iter_mut().zip(REGISTRY_LATENCY_BUCKETS) {
                if secs <= le {
                    *b += 1;
                }
            }
            h.count += 1;
            h.sum_seconds += secs;
        }
    }

    pub(crate) fn snapshot(&self) -> EngineStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStats {
            verified: get(&self.verified),
            failed: self.failed.lock().map(|m| m.clone()).unwrap_or_default(),
            verdict_cache_hits: get(&self.verdict_hits),
            verdict_cache_misses: get(&self.verdict_misses),
            verdict_coalesced: get(&self.verdict_coalesced),
            resolve_cache_hits: get(&self.resolve_hits),
            resolve_cache_misses: get(&self.resolve_misses),
            verdict_cache_entries: 0,
            in_flight: get(&self.in_flight),
            registry_requests: 0,
            registry_latency: self.latency.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }
}
