//! `signet`: verification of Notary Project (Notation) signatures: the Gatekeeper
//! external-data provider (`signet serve`) and the command line.
//!
//! Exit status: 0 everything verified (or the document is valid); 1 a verification failed;
//! 2 bad usage, or an unreadable or invalid input (trust policy, trust store, file).

use std::process::ExitCode;

use clap::Parser as _;

use signet::commands;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(status) => ExitCode::from(status as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
