//! Notation's certificate-chain rules (code signing and timestamping).
//!
//! OWNER: chain helper. Contract:
//! `validate_code_signing_chain(&[Certificate], signing_time: Option<Instant>) -> Result<(), ChainError>`,
//! `validate_timestamping_chain(&[Certificate], signing_time: Option<Instant>) -> Result<(), ChainError>`,
//! `ChainError` (thiserror) with a precise message.
