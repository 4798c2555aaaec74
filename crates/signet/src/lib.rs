//! The `signet` command line and its offline building blocks.
//!
//! - [`commands`]: the CLI (clap) and one module per command;
//! - [`config`]: the service configuration file (YAML) of `serve` (and `verify --config`);
//! - [`oci_layout`]: a read-only OCI image layout reader (artifact and signature discovery);
//! - [`verification`]: the only module that calls `signet_notation`;
//! - [`output`]: the JSON document of CONTRACT.md and the text form;
//! - [`input`]: bounded file reads and argument parsers;
//! - [`engine_setup`]: the engine of `verify REFERENCE…` and `audit`, from their options;
//! - [`workloads`]: the workloads and images of a Kubernetes `List` (`audit`'s input).

pub mod commands;
pub mod config;
pub mod engine_setup;
pub mod input;
pub mod oci_layout;
pub mod output;
pub mod verification;
pub mod workloads;
