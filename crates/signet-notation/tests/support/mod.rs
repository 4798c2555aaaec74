//! Builds a trust policy statement and stores around a testkit CA.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use signet_notation::policy::{parse_oci, Statement};
use signet_notation::truststore::{StoreType, TrustStore};
use signet_notation::verifier::TrustStores;
use signet_notation::Certificate;
use signet_testkit::TestCa;

pub const REPO: &str = "registry.example/app";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
pub const SIZE: i64 = 1234;

/// A policy with one statement for `REPO` at `level`, trusting store `ca:test`, identity `*`.
pub fn statement(level: &str) -> Statement {
    statement_with(level, r#"["*"]"#)
}

pub fn statement_with(level: &str, identities: &str) -> Statement {
    statement_of(level, identities, StoreType::Ca)
}

/// A policy with one statement for `REPO` at `level`, trusting store `<store_type>:test`.
pub fn statement_of(level: &str, identities: &str, store_type: StoreType) -> Statement {
    let (stores, ids) = if level == "skip" {
        (String::new(), String::new())
    } else {
        (
            format!(r#","trustStores":["{}:test"]"#, store_type.as_str()),
            format!(r#","trustedIdentities":{identities}"#),
        )
    };
    let doc = format!(
        r#"{{"version":"1.0","trustPolicies":[{{"name":"test","registryScopes":["{REPO}"],"signatureVerification":{{"level":"{level}"}}{stores}{ids}}}]}}"#
    );
    parse_oci(doc.as_bytes()).unwrap().statements.remove(0)
}

pub fn stores(ca: &TestCa) -> TrustStores {
    stores_of(ca, StoreType::Ca)
}

/// Store `<store_type>:test` holding `ca`'s root.
pub fn stores_of(ca: &TestCa, store_type: StoreType) -> TrustStores {
    TrustStores::from_stores([TrustStore {
        store_type,
        name: "test".into(),
        certificates: vec![Certificate::from_der(ca.cert_der().to_vec()).unwrap()],
    }])
}
