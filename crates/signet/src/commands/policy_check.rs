//! `signet policy check`: validates a trust policy document (and the stores it names).

use std::path::PathBuf;

use super::Status;
use crate::verification::{self, PolicyKind};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The trust policy document.
    #[arg(long, value_name = "FILE")]
    trust_policy: PathBuf,
    /// Also check that every trust store the policy names exists and loads from this root.
    #[arg(long, value_name = "DIR")]
    trust_store: Option<PathBuf>,
    /// The document is a blob trust policy (trustpolicy.blob.json).
    #[arg(long)]
    blob: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<Status> {
    let kind = if args.blob {
        PolicyKind::Blob
    } else {
        PolicyKind::Oci
    };
    let policy = verification::load_policy(&args.trust_policy, kind)?;
    let stores = match &args.trust_store {
        Some(root) => Some(policy.check_stores(root)?),
        None => None,
    };
    let what = if args.blob {
        "blob trust policy"
    } else {
        "trust policy"
    };
    print!(
        "{what} {} is valid: {} statement(s)",
        args.trust_policy.display(),
        policy.statement_count()
    );
    match stores {
        Some(n) => println!(", {n} trust store reference(s) loaded"),
        None => println!(),
    }
    Ok(Status::Success)
}
