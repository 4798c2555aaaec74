//! RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`).
//!
//! OWNER: chain helper.

use crate::cert::Certificate;
use crate::Instant;

/// A verified timestamp.
#[derive(Debug, Clone)]
pub struct VerifiedTimestamp {
    pub time: Instant,
    pub accuracy: time::Duration,
    pub tsa_chain: Vec<Certificate>,
}

/// Why a timestamp token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("{0}")]
    Invalid(String),
}

pub fn verify_timestamp(
    token_der: &[u8],
    signature: &[u8],
    tsa_roots: &[Certificate],
    at: Instant,
) -> Result<VerifiedTimestamp, TimestampError> {
    let _ = (token_der, signature, tsa_roots, at);
    Err(TimestampError::Invalid("not implemented yet".into()))
}
