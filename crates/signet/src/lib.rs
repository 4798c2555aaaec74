//! The `signet` command line and its offline building blocks.
//!
//! - [`commands`]: the CLI (clap) and one module per command;
//! - [`config`]: the service configuration file (YAML) of `serve` (and `verify --config`);
//! - [`oci_layout`]: a read-only OCI image layout reader (artifact and signature discovery);
//! - [`verification`]: the only module that calls `signet_notation`: policies, stores, and
//!   the local paths' one verifier ([`verification::LocalVerifier`]);
//! - [`output`]: the engine's verdicts ([`signet_engine::ImageVerdict`]) as the JSON document
//!   of CONTRACT.md and as text;
//! - [`input`]: bounded file reads and argument parsers;
//! - [`engine_setup`]: the engine of `verify REFERENCE…` and `audit`, from their options;
//! - [`workloads`]: the workloads and images of a Kubernetes `List` (`audit`'s input).
//!
//! Owns: argument parsing, the configuration file, the local OCI layout reader, rendering.
//! Does not own: signature verification (`signet_notation::verifier::verify_artifact`), the
//! verdict types and their contract codes (`signet_engine`), registry I/O, the server; every
//! command builds those and runs them.

pub mod commands;
pub mod config;
pub mod engine_setup;
pub mod input;
pub mod oci_layout;
pub mod output;
pub mod verification;
pub mod workloads;
