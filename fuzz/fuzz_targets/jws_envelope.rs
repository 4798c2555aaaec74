#![no_main]
//! `Envelope::parse` (JWS JSON) on arbitrary bytes, then `verify_signature` when it parses.
//! Must never panic.

use libfuzzer_sys::fuzz_target;
use signet_notation::envelope::{Envelope, EnvelopeFormat};

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(EnvelopeFormat::Jws, data) {
        let _ = envelope.verify_signature();
        let _ = envelope.signed.has_unsupported_critical();
    }
});
