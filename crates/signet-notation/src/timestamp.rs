//! RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`).
//!
//! OWNER: chain helper.
