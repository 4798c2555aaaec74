//! The Signet provider service.
//!
//! - [`app`]: routing, limits, `POST /v1/verify`, `/v1/mutate`, `/v1/admit`, probes, metrics;
//! - [`protocol`]: Gatekeeper and Kubernetes JSON;
//! - [`admission`]: which images a workload runs, exclusions;
//! - [`verifier`]: the [`ImageVerifier`] seam and [`EngineVerifier`] (the real pipeline);
//! - [`tls`]: TLS 1.3 + client certificates, reloadable;
//! - [`reload`]: directory watching (Kubernetes `..data` swaps), fingerprints, debounce;
//! - [`metrics`](crate::metrics): Prometheus;
//! - [`server`]: listeners, connections, drain.
//!
//! Knows HTTP and Kubernetes/Gatekeeper JSON; knows nothing of signatures.

pub mod admission;
pub mod app;
pub mod metrics;
pub mod protocol;
pub mod reload;
pub mod server;
pub mod tls;
pub mod verifier;

pub use admission::AdmissionSettings;
pub use app::{App, Limits};
pub use reload::{ReloadSettings, Reloadable};
pub use server::{Server, ServerSettings};
pub use tls::{LiveTls, TlsSettings};
pub use verifier::{BoxFuture, EngineVerifier, ImageVerifier};
