//! One end-to-end signature verification in the library (parse, signature, chain, trust
//! store, identity, expiry, target binding), per envelope format and key type.
//!
//! `cargo bench -p signet-notation --bench verify`; numbers go in docs/performance.md.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use signet_notation::policy::parse_oci;
use signet_notation::truststore::{StoreType, TrustStore};
use signet_notation::verifier::{verify_signature, Target, TrustStores, VerifyOptions};
use signet_notation::{Certificate, Descriptor};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, SignOptions, TestCa};

const MT: &str = "application/vnd.oci.image.manifest.v1+json";
const DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

fn bench(c: &mut Criterion) {
    let policy = parse_oci(br#"{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["registry.example/app"],"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],"trustedIdentities":["*"]}]}"#).unwrap();
    let statement = &policy.statements[0];
    let descriptor = Descriptor {
        media_type: MT.into(),
        digest: DIGEST.into(),
        size: 1234,
        annotations: None,
        artifact_type: None,
    };
    let metadata = BTreeMap::new();
    let at = time::macros::datetime!(2026-06-01 00:00 UTC);
    let options = VerifyOptions {
        at,
        user_metadata: &metadata,
        revocation: None,
    };
    for (key, root_key, kind) in [
        (KeyKind::Rsa3072, KeyKind::Rsa3072, EnvelopeKind::Cose),
        (KeyKind::Rsa3072, KeyKind::Rsa3072, EnvelopeKind::Jws),
        (KeyKind::P256, KeyKind::P256, EnvelopeKind::Cose),
        (KeyKind::P256, KeyKind::P256, EnvelopeKind::Jws),
    ] {
        let ca = TestCa::new("bench root", root_key);
        let signer = ca.issue(&LeafOptions::new("bench signer", key));
        let envelope = signer.sign(&SignOptions::new(kind, MT, DIGEST, 1234));
        let stores = TrustStores::from_stores([TrustStore {
            store_type: StoreType::Ca,
            name: "bench".into(),
            certificates: vec![Certificate::from_der(ca.cert_der().to_vec()).unwrap()],
        }]);
        let verdict = verify_signature(
            &envelope,
            kind.media_type(),
            Target::Oci(&descriptor),
            statement,
            &stores,
            &options,
        );
        assert!(verdict.verified, "{:?}", verdict.failure);
        let name = format!("verify/{:?}/{}", kind, key.jws_alg());
        c.bench_function(&name, |b| {
            b.iter(|| {
                verify_signature(
                    &envelope,
                    kind.media_type(),
                    Target::Oci(&descriptor),
                    statement,
                    &stores,
                    &options,
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
