//! The command line: one module per command.

use clap::{Parser, Subcommand};

mod audit;
mod blob_verify;
mod envelope_inspect;
mod envelope_verify;
mod policy_check;
mod serve;
mod verify;

/// How a command ended (errors, exit 2, travel as `anyhow::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Everything verified / valid.
    Success = 0,
    /// At least one verification failed.
    Failure = 1,
}

/// The flags every verifying command evaluates with.
#[derive(Debug, clap::Args)]
struct Evaluation {
    /// Evaluate as if now were this RFC 3339 instant.
    #[arg(long, value_name = "RFC3339", value_parser = crate::input::parse_at)]
    at: Option<signet_notation::Instant>,
    /// KEY=VALUE the signed payload's targetArtifact.annotations must contain (repeatable).
    #[arg(long = "user-metadata", short = 'm', value_name = "KEY=VALUE", value_parser = crate::input::parse_key_value)]
    user_metadata: Vec<(String, String)>,
}

impl Evaluation {
    /// The options of a local verification (OCI layout, blob, envelope): the envelopes are
    /// local, the chain's revocation is checked online as `notation verify` does and as
    /// `serve` and `verify REFERENCE` do.
    fn local(&self) -> anyhow::Result<crate::verification::Options> {
        let mut options = crate::verification::Options::offline(self.at, &self.user_metadata);
        options.revocation = Some(Box::new(crate::verification::OnlineRevocation::new(
            signet_engine::revocation::RevocationConfig::default(),
        )?));
        Ok(options)
    }
}

/// Prints verdicts (`--output`); the status is success when all verified.
fn print_verdicts(
    verdicts: &[signet_engine::ImageVerdict],
    format: crate::output::OutputFormat,
) -> anyhow::Result<Status> {
    crate::output::print_results(verdicts, format)?;
    Ok(Status::from_verified(crate::output::all_verified(verdicts)))
}

impl Status {
    fn from_verified(verified: bool) -> Self {
        if verified {
            Status::Success
        } else {
            Status::Failure
        }
    }
}

/// What `signet --version` prints after the name: the version and the commit it was built
/// from (`build.rs`: `SIGNET_GIT_COMMIT` or `git rev-parse HEAD`, else "unknown").
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SIGNET_GIT_COMMIT"),
    ")"
);

/// Verifies Notary Project (Notation) signatures of container images, blobs and envelopes.
#[derive(Debug, Parser)]
#[command(
    name = "signet",
    version = VERSION,
    about,
    propagate_version = true,
    after_help = "Environment:\n  \
      HTTPS_PROXY, HTTP_PROXY, NO_PROXY (or lower case)  proxy for every outbound connection\n    \
        (registries, Entra ID, Key Vault, CRL/OCSP); HTTPS is tunnelled with CONNECT\n  \
      SSL_CERT_FILE, SSL_CERT_DIR  CA certificates trusted besides the Mozilla and system roots\n  \
      XDG_CONFIG_HOME  notation's configuration directory (default ~/.config/notation): the\n    \
        trust policy and trust store `signet verify` uses without --trust-policy/--trust-store\n  \
      DOCKER_CONFIG  Docker's configuration directory (default ~/.docker): registry credentials,\n    \
        credential helpers (credsStore, credHelpers)"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify the Notation signatures of images in registries (or of OCI image layouts with --oci-layout).
    Verify(verify::Args),
    /// Blob signatures.
    #[command(subcommand)]
    Blob(BlobCommand),
    /// Single signature envelopes.
    #[command(subcommand)]
    Envelope(EnvelopeCommand),
    /// Trust policy documents.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Report which workloads of a `kubectl get ... -o json` List admission would deny.
    Audit(audit::Args),
    /// Run the Gatekeeper external-data provider and admission webhook (mutual TLS 1.3).
    Serve(serve::Args),
}

#[derive(Debug, Subcommand)]
enum BlobCommand {
    /// Verify a detached blob signature under a blob trust policy (trustpolicy.blob.json).
    Verify(blob_verify::Args),
}

#[derive(Debug, Subcommand)]
enum EnvelopeCommand {
    /// Verify one signature envelope against the descriptor of the artifact it must sign.
    Verify(envelope_verify::Args),
    /// Decode an envelope and print its signed attributes, certificate chain and algorithm.
    Inspect(envelope_inspect::Args),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a trust policy document (and, with --trust-store, the stores it names).
    Check(policy_check::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.command {
        Command::Verify(a) => verify::run(a),
        Command::Blob(BlobCommand::Verify(a)) => blob_verify::run(a),
        Command::Envelope(EnvelopeCommand::Verify(a)) => envelope_verify::run(a),
        Command::Envelope(EnvelopeCommand::Inspect(a)) => envelope_inspect::run(a),
        Command::Policy(PolicyCommand::Check(a)) => policy_check::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Audit(a) => audit::run(a),
    }
}
