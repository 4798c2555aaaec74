//! Registry harness (feature `registry`): Debian's real `docker-registry` (distribution 2.8)
//! with TLS and htpasswd or token auth, a bearer-token server, a programmable
//! referrers-capable (and lying, failing) front, and push helpers that store images and
//! Notation signatures.
//!
//! Shared by the registry, engine and CLI integration tests, the local demo
//! (`signet-examples`) and the load-test setup. Everything panics on failure, like the rest
//! of the testkit: a broken fixture is a broken test.
//!
//! - [`registry::Registry`]: the registry process (killed on drop); [`registry::available`]
//!   says whether `/usr/bin/docker-registry` is installed (`.ci/install-deps`).
//! - [`tls::TestPki`]: the CA and server certificate the registry serves.
//! - [`push::Pusher`]: pushes images and signature manifests (with the tag-schema index).
//! - [`token::TokenServer`], [`front::Front`]: token auth and a programmable front.
//! - [`proxy::Proxy`]: a forward proxy (CONNECT tunnels, absolute-form forwarding) that records what it was sent.

pub mod front;
pub mod http;
pub mod proxy;
pub mod push;
#[allow(clippy::module_inception)] // `registry::registry`: the process, as the tests name it
pub mod registry;
pub mod server;
pub mod tls;
pub mod token;

pub use push::{Pusher, SigStyle};
pub use registry::{Registry, RegistryAuth};
pub use tls::TestPki;
