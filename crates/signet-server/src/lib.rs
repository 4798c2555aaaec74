//! The Signet provider service.
//!
//! - [`app`]: limits, the entry point (access log, request metrics), bodies, probes, `/metrics`;
//! - `routing`: the endpoint enum and the one refusal type, turned into an answer in one place;
//! - [`keys`]: provider keys, plain or namespaced (`[NAMESPACE]IMAGE`);
//! - `provider`: `POST /v1/verify` and `/v1/mutate` (one per-key loop for both);
//! - `answer`: the `ProviderResponse` bytes, written directly (a cached verdict's value is
//!   rendered once and kept with it);
//! - [`admission`]: `POST /v1/admit`: which images a workload runs, exclusions, allow/deny;
//! - [`protocol`]: Gatekeeper and Kubernetes JSON;
//! - [`verifier`]: the [`ImageVerifier`] seam, [`EngineVerifier`] (the real pipeline) and
//!   [`NamespacedVerifier`] (trust per namespace);
//! - [`tls`]: TLS 1.3 + client certificates, reloadable;
//! - [`reload`]: directory watching (Kubernetes `..data` swaps), fingerprints, debounce;
//! - [`metrics`](crate::metrics): Prometheus; [`scrape`]: what is read from snapshots at scrape time;
//! - [`server`]: listeners, connections, drain;
//! - [`trust_refresh`]: trust stores from a remote source (Key Vault) on an interval.
//!
//! Knows HTTP and Kubernetes/Gatekeeper JSON; knows nothing of signatures. Does not own the
//! verification pipeline, its caches or its verdict types (`signet-engine`, reached through
//! [`ImageVerifier`]), nor the configuration file (the `signet` binary builds the server).

pub mod admission;
mod answer;
pub mod app;
pub mod keys;
pub mod metrics;
mod peers;
pub mod protocol;
mod provider;
pub mod reload;
mod routing;
pub mod scrape;
pub mod server;
pub mod tls;
pub mod trust_refresh;
pub mod verifier;

pub use admission::AdmissionSettings;
pub use app::{App, Limits};
pub use keys::{split_key, valid_namespace, ProviderKey};
pub use reload::{ReloadSettings, Reloadable};
pub use scrape::TrustRefreshStats;
pub use server::{Server, ServerSettings};
pub use tls::{LiveTls, TlsSettings};
pub use trust_refresh::{FetchedStores, TrustStoreSource};
pub use verifier::{
    BoxFuture, EngineVerifier, ImageVerifier, NamespacedVerifier, TrustedCertificate,
};
