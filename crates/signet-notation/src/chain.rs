//! Notation's certificate-chain rules (code signing and timestamping).
//!
//! OWNER: chain helper. Contract:
//! `validate_code_signing_chain(&[Certificate], signing_time: Option<Instant>) -> Result<(), ChainError>`,
//! `validate_timestamping_chain(&[Certificate], signing_time: Option<Instant>) -> Result<(), ChainError>`,
//! `ChainError` (thiserror) with a precise message.

use crate::cert::Certificate;
use crate::Instant;

/// Why a chain breaks Notation's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("{0}")]
    Invalid(String),
}

pub fn validate_code_signing_chain(
    chain: &[Certificate],
    signing_time: Option<Instant>,
) -> Result<(), ChainError> {
    let _ = (chain, signing_time);
    Err(ChainError::Invalid("not implemented yet".into()))
}

pub fn validate_timestamping_chain(
    chain: &[Certificate],
    signing_time: Option<Instant>,
) -> Result<(), ChainError> {
    let _ = (chain, signing_time);
    Err(ChainError::Invalid("not implemented yet".into()))
}
