//! Prometheus metrics (OpenMetrics text on `/metrics`): what the server counts itself, in a
//! `prometheus-client` registry, followed by what [`scrape`](crate::scrape) reads from
//! snapshots at scrape time (engine counters, trusted certificates, trust refreshes).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::scrape::{Exposition, TrustRefreshStats};
use crate::verifier::ImageVerifier;

/// The commit built, when the build set `SIGNET_GIT_COMMIT`.
const COMMIT: &str = match option_env!("SIGNET_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    outcomes: Family<Labels, Counter>,
    verification_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    reloads: Family<Labels, Counter>,
    tls_failures: Counter,
    connections_refused: Family<Labels, Counter>,
    connections: Gauge,
    ready: Gauge,
    trust_generation: Gauge<u64, AtomicU64>,
    trust_refresh: Mutex<Vec<(&'static str, Arc<TrustRefreshStats>)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("signet");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint",
            request_seconds.clone(),
        );
        let outcomes = Family::<Labels, Counter>::default();
        registry.register(
            "key_outcomes",
            "Per-key answers, by endpoint and code (VERIFIED, PINNED or an error code)",
            outcomes.clone(),
        );
        let verification_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "verification_duration_seconds",
            "Time to a verdict for one key, by endpoint",
            verification_seconds.clone(),
        );
        let reloads = Family::<Labels, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of mounted files, by what and result (ok, failed)",
            reloads.clone(),
        );
        let tls_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes refused or failed (no or foreign client certificate, timeouts)",
            tls_failures.clone(),
        );
        let connections_refused = Family::<Labels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed unserved, by listener (tls, probes) and reason \
             (peer_handshakes, connections, peer_connections)",
            connections_refused.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open",
            connections.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when trust material is loaded and valid",
            ready.clone(),
        );
        let trust_generation = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "trust_generation",
            "Generation of the trust material in use",
            trust_generation.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", COMMIT),
            ]),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            outcomes,
            verification_seconds,
            reloads,
            tls_failures,
            connections_refused,
            connections,
            ready,
            trust_generation,
            trust_refresh: Mutex::new(Vec::new()),
        }
    }

    /// Exports the outcomes of a trust refresh loop as `source`.
    pub fn watch_trust_refresh(&self, source: &'static str, stats: Arc<TrustRefreshStats>) {
        self.trust_refresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((source, stats));
    }

    pub(crate) fn request(&self, endpoint: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("endpoint", endpoint.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
        self.request_seconds
            .get_or_create(&vec![("endpoint", endpoint.to_owned())])
            .observe(seconds);
    }

    pub(crate) fn outcome(&self, endpoint: &'static str, code: &str, seconds: f64) {
        self.outcomes
            .get_or_create(&vec![
                ("endpoint", endpoint.to_owned()),
                ("code", code.to_owned()),
            ])
            .inc();
        self.verification_seconds
            .get_or_create(&vec![("endpoint", endpoint.to_owned())])
            .observe(seconds);
    }

    /// The per-key outcomes of one request at once: how many keys answered each code, and
    /// each key's time (one label lookup per code and request, not per key).
    pub(crate) fn outcomes(
        &self,
        endpoint: &'static str,
        codes: &[(&'static str, u64)],
        seconds: &[f64],
    ) {
        for (code, n) in codes {
            self.outcomes
                .get_or_create(&vec![
                    ("endpoint", endpoint.to_owned()),
                    ("code", (*code).to_owned()),
                ])
                .inc_by(*n);
        }
        if !seconds.is_empty() {
            let histogram = self
                .verification_seconds
                .get_or_create(&vec![("endpoint", endpoint.to_owned())]);
            for s in seconds {
                histogram.observe(*s);
            }
        }
    }

    pub(crate) fn reload(&self, what: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads
            .get_or_create(&vec![("what", what.to_owned()), ("result", result.into())])
            .inc();
    }

    pub(crate) fn tls_failure(&self) {
        self.tls_failures.inc();
    }

    pub(crate) fn connection_refused(&self, listener: &'static str, reason: &'static str) {
        self.connections_refused
            .get_or_create(&vec![
                ("listener", listener.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.dec();
    }

    /// The text exposition, with the readiness gauges refreshed and the verifier's
    /// snapshots read.
    pub(crate) fn render(&self, verifier: &dyn ImageVerifier) -> String {
        self.ready.set(i64::from(verifier.is_ready()));
        self.trust_generation.set(verifier.trust_generation());
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        // The registry ends the exposition; what follows goes before that end.
        let end = out.rfind("# EOF").unwrap_or(out.len());
        out.truncate(end);
        {
            let mut e = Exposition::new(&mut out);
            if let Some(stats) = verifier.stats() {
                e.engine(&stats);
            }
            e.certificates(&verifier.trusted_certificates());
            let sources = self.trust_refresh.lock().unwrap_or_else(|p| p.into_inner());
            let sources: Vec<_> = sources.iter().map(|(s, t)| (*s, &**t)).collect();
            e.trust_refresh(&sources);
        }
        out.push_str("# EOF\n");
        out
    }
}
