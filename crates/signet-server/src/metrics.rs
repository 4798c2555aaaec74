//! Prometheus metrics (text format on `/metrics`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
        }
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

    /// The text exposition, with the readiness gauges refreshed.
    pub(crate) fn render(&self, ready: bool, generation: u64) -> String {
        self.ready.set(i64::from(ready));
        self.trust_generation.set(generation);
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
