//! Test support for Signet: a small PKI factory and a Notation test signer.
//!
//! Everything here is for tests and benchmarks: keys are generated in memory, nothing is
//! persisted, and errors panic with a message (a broken fixture is a broken test). The only
//! home of test PKI, signers and loopback HTTPS servers (`registry::server`, `registry::tls`):
//! tests of other crates use these rather than their own. Not a place for production code.
//!
//! - [`KeyKind`]: the six key types Notation allows (and a few it refuses, for negative tests).
//! - [`TestCa`]: a root CA that issues code-signing leaves ([`TestSigner`]).
//! - [`TestSigner::sign`]: a COSE or JWS Notation envelope over an OCI descriptor.
//! - `registry` (feature `registry`): the real `docker-registry` harness with push helpers.

#![allow(clippy::unwrap_used)]

mod envelope;
mod pki;
#[cfg(feature = "registry")]
pub mod registry;

pub use envelope::{EnvelopeKind, SignOptions, SigningScheme};
pub use pki::{KeyKind, LeafOptions, OcspStatus, TestCa, TestSigner};

/// The media type of Notation payloads.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
