//! Metrics computed at scrape time from snapshots the server does not own: the engine's
//! counters ([`signet_engine::EngineStats`]), the expiry of every trusted certificate, and
//! the outcomes of trust refreshes from remote sources (Key Vault). Written as OpenMetrics
//! text after the registry's own metrics, so nothing is copied on the request path.

use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use signet_engine::{EngineStats, REGISTRY_LATENCY_BUCKETS};

use crate::verifier::TrustedCertificate;

/// Outcomes of a trust-material refresh loop (e.g. the Key Vault one): the loop records
/// each round, `/metrics` reads them. Register with
/// [`Server::watch_trust_refresh`](crate::Server::watch_trust_refresh).
#[derive(Debug, Default)]
pub struct TrustRefreshStats {
    successes: AtomicU64,
    failures: AtomicU64,
    last_success_unix: AtomicU64,
}

impl TrustRefreshStats {
    /// One refresh round: `ok` when the source answered and its material is in use (or
    /// unchanged), else a failure (the trust in use is kept).
    pub fn record(&self, ok: bool) {
        if ok {
            self.successes.fetch_add(1, Ordering::Relaxed);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.last_success_unix.store(now, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rounds whose material is in use.
    pub fn successes(&self) -> u64 {
        self.successes.load(Ordering::Relaxed)
    }

    /// Rounds that kept the trust in use because the source failed or its material did not load.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// An OpenMetrics text writer for families written by hand.
pub(crate) struct Exposition<'a> {
    out: &'a mut String,
}

impl<'a> Exposition<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        Exposition { out }
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP signet_{name} {help}");
        let _ = writeln!(self.out, "# TYPE signet_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        let _ = write!(self.out, "signet_{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                escape_into(self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(&format!("{name}_total"), &[], value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    /// The engine's counters, gauges and registry latency histograms.
    pub(crate) fn engine(&mut self, s: &EngineStats) {
        self.family(
            "engine_answers",
            "counter",
            "Verdicts given by the engine, by code (VERIFIED or an error code)",
        );
        self.sample("engine_answers_total", &[("code", "VERIFIED")], s.verified);
        for (code, n) in &s.failed {
            self.sample("engine_answers_total", &[("code", code.as_str())], n);
        }
        self.counter(
            "verdict_cache_hits",
            "Verdicts served from the verdict cache",
            s.verdict_cache_hits,
        );
        self.counter(
            "verdict_cache_misses",
            "Verdicts computed (a pipeline run: discovery, envelopes, verification)",
            s.verdict_cache_misses,
        );
        self.counter(
            "verdict_coalesced",
            "Verifications that joined a run already in flight for the same image",
            s.verdict_coalesced,
        );
        self.counter(
            "resolve_cache_hits",
            "Tag and digest resolutions served from the cache or joined in flight",
            s.resolve_cache_hits,
        );
        self.counter(
            "resolve_cache_misses",
            "Tag and digest resolutions sent to the registry",
            s.resolve_cache_misses,
        );
        self.gauge(
            "verdict_cache_entries",
            "Verdicts cached (approximate)",
            s.verdict_cache_entries,
        );
        self.gauge(
            "verifications_in_flight",
            "Pipeline runs holding a concurrency permit",
            s.in_flight,
        );
        self.counter(
            "registry_requests",
            "HTTP requests sent to registries (tokens, retries and redirects included)",
            s.registry_requests,
        );
        self.family(
            "registry_request_duration_seconds",
            "histogram",
            "Registry call latency, by operation (resolve, signatures, envelope)",
        );
        for (op, h) in &s.registry_latency {
            let name = "registry_request_duration_seconds";
            self.sample(&format!("{name}_sum"), &[("operation", op)], h.sum_seconds);
            self.sample(&format!("{name}_count"), &[("operation", op)], h.count);
            for (le, n) in REGISTRY_LATENCY_BUCKETS.iter().zip(&h.buckets) {
                let le = le.to_string();
                self.sample(
                    &format!("{name}_bucket"),
                    &[("le", &le), ("operation", op)],
                    n,
                );
            }
            self.sample(
                &format!("{name}_bucket"),
                &[("le", "+Inf"), ("operation", op)],
                h.count,
            );
        }
    }

    /// When each trusted certificate expires.
    pub(crate) fn certificates(&mut self, certs: &[TrustedCertificate]) {
        self.family(
            "trust_certificate_expiry_timestamp_seconds",
            "gauge",
            "When a certificate of a trust store in use expires (Unix time; the earliest \
             of the certificates with the same subject in a store)",
        );
        for c in certs {
            // Namespaces come from the configuration, so the label stays bounded; the
            // cluster's stores carry none (as before namespaced trust existed).
            let mut labels = vec![
                ("store_type", c.store_type),
                ("store", c.store.as_str()),
                ("subject", c.subject.as_str()),
            ];
            if let Some(ns) = &c.namespace {
                labels.push(("namespace", ns.as_str()));
            }
            self.sample(
                "trust_certificate_expiry_timestamp_seconds",
                &labels,
                c.not_after_unix,
            );
        }
    }

    /// Outcomes of the trust refresh loops.
    pub(crate) fn trust_refresh(&mut self, sources: &[(&'static str, &TrustRefreshStats)]) {
        if sources.is_empty() {
            return;
        }
        self.family(
            "trust_refresh",
            "counter",
            "Refreshes of trust material from a remote source, by source and outcome",
        );
        for (source, s) in sources {
            let ok = s.successes.load(Ordering::Relaxed);
            let failed = s.failures.load(Ordering::Relaxed);
            self.sample(
                "trust_refresh_total",
                &[("source", source), ("outcome", "success")],
                ok,
            );
            self.sample(
                "trust_refresh_total",
                &[("source", source), ("outcome", "failure")],
                failed,
            );
        }
        self.family(
            "trust_refresh_last_success_timestamp_seconds",
            "gauge",
            "When a refresh from the source last succeeded (Unix time; 0: never)",
        );
        for (source, s) in sources {
            self.sample(
                "trust_refresh_last_success_timestamp_seconds",
                &[("source", source)],
                s.last_success_unix.load(Ordering::Relaxed),
            );
        }
    }
}

/// A label value as OpenMetrics writes it (`\`, `"` and newlines escaped).
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_refreshes_counted() {
        let mut out = String::new();
        let stats = TrustRefreshStats::default();
        stats.record(true);
        stats.record(false);
        stats.record(false);
        let mut e = Exposition::new(&mut out);
        e.certificates(&[TrustedCertificate {
            store_type: "ca",
            store: "acme".into(),
            subject: "CN=a \"quoted\" \\ name,O=Acme".into(),
            not_after_unix: 1_900_000_000,
            namespace: None,
        }]);
        e.trust_refresh(&[("keyvault", &stats)]);
        assert!(out.contains(
            "signet_trust_certificate_expiry_timestamp_seconds{store_type=\"ca\",store=\"acme\",\
             subject=\"CN=a \\\"quoted\\\" \\\\ name,O=Acme\"} 1900000000"
        ));
        assert!(
            out.contains("signet_trust_refresh_total{source=\"keyvault\",outcome=\"success\"} 1\n")
        );
        assert!(
            out.contains("signet_trust_refresh_total{source=\"keyvault\",outcome=\"failure\"} 2\n")
        );
        assert!(!out.contains(
            "signet_trust_refresh_last_success_timestamp_seconds{source=\"keyvault\"} 0\n"
        ));
    }
}
