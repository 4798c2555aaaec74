//! Certificate-chain handling on untrusted bytes: the input is split into up to 12
//! length-prefixed DER certificates (u16 big-endian lengths), each parsed, and the chain
//! checked under both Notation rule sets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_notation::chain::{validate_code_signing_chain, validate_timestamping_chain};
use signet_notation::Certificate;

fuzz_target!(|data: &[u8]| {
    let mut certs = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && certs.len() < 12 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let take = len.min(rest.len());
        if let Ok(cert) = Certificate::from_der(rest[..take].to_vec()) {
            let _ = cert.subject();
            let _ = cert.issuer();
            certs.push(cert);
        }
        rest = &rest[take..];
    }
    let _ = Certificate::parse_pem_or_der(data);
    let at = time::OffsetDateTime::from_unix_timestamp(1_750_000_000).ok();
    let _ = validate_code_signing_chain(&certs, at);
    let _ = validate_code_signing_chain(&certs, None);
    let _ = validate_timestamping_chain(&certs, at);
});
