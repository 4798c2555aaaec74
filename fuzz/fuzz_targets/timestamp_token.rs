//! RFC 3161 timestamp tokens (CMS SignedData) on untrusted bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_notation::timestamp::verify_timestamp;

fuzz_target!(|data: &[u8]| {
    let _ = verify_timestamp(data, b"signature bytes", &[]);
});
