//! Test harness for registry I/O: Debian's real `docker-registry` (distribution 2.8) with
//! TLS and htpasswd or token auth, a bearer-token server, a programmable referrers-capable
//! (and lying, failing) front, and push helpers that store images and Notation signatures.
//!
//! Generally useful to later end-to-end tests (engine, CLI, server): it could move to
//! `signet-testkit` once those need it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod front;
pub mod http;
pub mod push;
pub mod registry;
pub mod server;
pub mod tls;
pub mod token;
