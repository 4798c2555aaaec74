//! Trust policy documents (OCI and blob) and reference selection on untrusted bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_notation::policy::{parse_blob, parse_oci};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = parse_oci(data) {
        let _ = doc.select_for_reference("registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000");
        let _ = doc.select_for_reference(std::str::from_utf8(data).unwrap_or("x"));
    }
    if let Ok(doc) = parse_blob(data) {
        let _ = doc.select_blob(None);
        let _ = doc.select_blob(Some("a"));
    }
});
