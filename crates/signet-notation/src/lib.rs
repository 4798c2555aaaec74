//! Notary Project (Notation) signature verification, with no network I/O.
//!
//! This crate owns everything needed to decide whether one signature envelope makes an
//! artifact trusted under a Notation trust policy:
//!
//! - [`envelope`]: COSE_Sign1 (`application/cose`) and JWS JSON (`application/jose+json`)
//!   envelopes: decoding, signed attributes, signature check;
//! - [`crypto`]: the signature algorithms Notation allows and the key they require;
//! - [`chain`]: Notation's code-signing and timestamping certificate-chain rules;
//! - [`timestamp`]: RFC 3161 timestamp countersignatures;
//! - [`policy`]: trust policy documents (OCI and blob): validation, statement selection,
//!   verification levels, trusted identities;
//! - [`revocation`]: certificate revocation checking of a signing chain (OCSP, then CRLs)
//!   from revocation information the caller fetches through a
//!   [`revocation::RevocationSource`];
//! - [`truststore`]: named trust stores in Notation's directory layout;
//! - [`verifier`]: the function that turns (envelope, artifact descriptor, trust policy,
//!   trust stores, clock) into a [`verifier::SignatureVerdict`], and
//!   [`verifier::verify_artifact`], the one sequence over an artifact's signatures (what is
//!   refused before parsing, the options each is verified with, how they combine) that the
//!   engine and every CLI path run.
//!
//! It does not own fetching anything from a registry, fetching CRLs or OCSP responses, caching,
//! configuration, or the contract's answer (the engine's `ImageVerdict`): callers hand in
//! bytes and get values back. The only I/O is
//! [`truststore::TrustStore::load`], which reads a directory the caller names.
//!
//! Every time-dependent check takes "now" from the caller (`at`), never from the system clock.

pub mod cert;
pub mod chain;
pub mod code;
pub mod crypto;
pub mod descriptor;
pub mod envelope;
pub mod policy;
pub mod revocation;
pub mod timestamp;
pub mod truststore;
pub mod verifier;

#[cfg(test)]
mod test_support;

pub use cert::Certificate;
pub use code::ErrorCode;
pub use descriptor::Descriptor;

/// An instant; all checks take it from the caller.
pub type Instant = time::OffsetDateTime;

/// `t` in UTC as RFC 3339 (`2025-06-01T00:00:00Z`), the way every message and output prints
/// instants.
pub fn format_rfc3339(t: Instant) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| utc.to_string())
}

/// Largest envelope accepted before parsing (32 MiB).
pub const MAX_ENVELOPE_BYTES: usize = 32 * 1024 * 1024;

/// Longest certificate chain accepted in an envelope or a timestamp token.
pub const MAX_CHAIN_LENGTH: usize = 10;
