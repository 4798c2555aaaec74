use super::*;
use std::path::PathBuf;

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/timestamp")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn pem(name: &str) -> Vec<Certificate> {
    Certificate::parse_pem(&data(name)).expect("pem")
}

#[test]
fn rsa_token_verifies() {
    let roots = pem("root.pem");
    let ts =
        verify_timestamp(&data("token-rsa.tst"), &data("signature.bin"), &roots).expect("verifies");
    assert_eq!(ts.time, time::macros::datetime!(2026-12-02 01:56:44 UTC));
    assert_eq!(
        ts.accuracy,
        time::Duration::milliseconds(1500) + time::Duration::microseconds(100)
    );
    assert_eq!(ts.tsa_chain.len(), 2);
    assert_eq!(ts.tsa_chain[0], pem("leaf.pem")[0]);
    assert_eq!(ts.tsa_chain[1], roots[0]);
    assert!(ts.earliest() < ts.time && ts.time < ts.latest());
}

#[test]
fn ec_token_verifies() {
    let roots = pem("ec-root.pem");
    let ts =
        verify_timestamp(&data("token-ec.tst"), &data("signature.bin"), &roots).expect("verifies");
    assert_eq!(ts.time, time::macros::datetime!(2026-12-02 01:56:46 UTC));
    assert_eq!(ts.tsa_chain.len(), 2);
}

#[test]
fn wrong_signature_is_imprint_mismatch() {
    let mut sig = data("signature.bin");
    sig[0] ^= 1;
    assert_eq!(
        verify_timestamp(&data("token-rsa.tst"), &sig, &pem("root.pem")),
        Err(TimestampError::ImprintMismatch)
    );
}

#[test]
fn wrong_root_is_untrusted() {
    let err = verify_timestamp(
        &data("token-rsa.tst"),
        &data("signature.bin"),
        &pem("other-root.pem"),
    );
    assert!(
        matches!(err, Err(TimestampError::Untrusted { .. })),
        "{err:?}"
    );
    let err = verify_timestamp(&data("token-rsa.tst"), &data("signature.bin"), &[]);
    assert!(
        matches!(err, Err(TimestampError::Untrusted { .. })),
        "{err:?}"
    );
    // The EC root does not anchor the RSA token either.
    let err = verify_timestamp(
        &data("token-rsa.tst"),
        &data("signature.bin"),
        &pem("ec-root.pem"),
    );
    assert!(
        matches!(err, Err(TimestampError::Untrusted { .. })),
        "{err:?}"
    );
}

#[test]
fn corrupted_tokens_error_without_panic() {
    let token = data("token-rsa.tst");
    let sig = data("signature.bin");
    let roots = pem("root.pem");
    assert!(matches!(
        verify_timestamp(&[], &sig, &roots),
        Err(TimestampError::Malformed(_))
    ));
    assert!(verify_timestamp(&token[..token.len() / 2], &sig, &roots).is_err());
    // Flip every byte in turn: nothing panics, and nothing verifies but flips in the
    // parts no verifier relies on: the token's copy of the root (the trusted root from
    // the store anchors the chain) and SignedData.digestAlgorithms (bytes 28..43 of this
    // fixture; informational).
    let root_der = roots[0].der();
    let root_pos = token
        .windows(root_der.len())
        .position(|w| w == root_der)
        .expect("token carries the root");
    let harmless =
        |i: usize| (root_pos..root_pos + root_der.len()).contains(&i) || (28..43).contains(&i);
    for i in 0..token.len() {
        let mut t = token.clone();
        t[i] ^= 0x5a;
        if verify_timestamp(&t, &sig, &roots).is_ok() {
            assert!(harmless(i), "token corrupted at byte {i} still verifies");
        }
    }
    // The signature value of the signer is the last bytes before the (absent) unsigned
    // attributes: corrupting it gives SignatureInvalid.
    let mut t = token.clone();
    let n = t.len();
    t[n - 10] ^= 1;
    assert!(matches!(
        verify_timestamp(&t, &sig, &roots),
        Err(TimestampError::SignatureInvalid(_))
    ));
    let big = vec![0u8; MAX_TOKEN_BYTES + 1];
    assert!(matches!(
        verify_timestamp(&big, &sig, &roots),
        Err(TimestampError::TooLarge { .. })
    ));
}

/// A real token (notation e2e `blob.jws.sig`, countersigned by a public TSA).
#[test]
fn upstream_blob_jws_token_verifies() {
    use base64::Engine;
    let path = crate::test_support::vector("notation/test/e2e/testdata/signatures/blob.jws.sig");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    let token = base64::engine::general_purpose::STANDARD
        .decode(
            doc["header"]["io.cncf.notary.timestampSignature"]
                .as_str()
                .expect("token"),
        )
        .expect("base64");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(doc["signature"].as_str().expect("signature"))
        .expect("base64url");
    let mut roots = Vec::new();
    for rel in [
        "notation/test/e2e/testdata/config/timestamp/DigiCertTSARootSHA384.cer",
        "notation/test/e2e/testdata/config/timestamp/globalsignTSARoot.cer",
    ] {
        let bytes = std::fs::read(crate::test_support::vector(rel)).expect("read root");
        roots.extend(Certificate::parse_pem_or_der(&bytes).expect("root"));
    }
    // The token is signed by a Microsoft TSA whose root is not in the corpus: parsing,
    // imprint, attributes and signature pass, and the chain is refused as untrusted.
    let err = verify_timestamp(&token, &sig, &roots);
    assert!(
        matches!(err, Err(TimestampError::Untrusted { .. })),
        "{err:?}"
    );
    // Anchoring on the token's own top certificate gets further: to the chain rules,
    // which require a self-signed root.
    let ci = ContentInfo::from_der(&token).expect("content info");
    let sd: SignedData = ci.content.decode_as().expect("signed data");
    let certs: Vec<Certificate> = sd
        .certificates
        .expect("certs")
        .0
        .iter()
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => {
                Certificate::from_der(c.to_der().expect("der")).ok()
            }
            _ => None,
        })
        .collect();
    let issuers: Vec<Certificate> = certs
        .iter()
        .filter(|c| {
            c.subject().contains("Timestamping CA") || c.subject().contains("Time-Stamping PCA")
        })
        .cloned()
        .collect();
    assert!(!issuers.is_empty(), "{certs:?}");
    let err = verify_timestamp(&token, &sig, &issuers);
    assert!(
        matches!(
            err,
            Err(TimestampError::Chain(ChainError::RootNotSelfSigned { .. }))
        ),
        "{err:?}"
    );
    // Not over another signature.
    assert_eq!(
        verify_timestamp(&token, b"other", &roots),
        Err(TimestampError::ImprintMismatch)
    );
}

#[test]
fn upstream_token_with_invalid_signature_fails() {
    let dir = "notation-core-go/internal/timestamp/testdata";
    let token = std::fs::read(crate::test_support::vector(&format!(
        "{dir}/TimeStampTokenWithInvalidSignature.p7s"
    )))
    .expect("read");
    let root = std::fs::read(crate::test_support::vector(&format!(
        "{dir}/tsaRootCert.cer"
    )))
    .expect("read");
    let roots = Certificate::parse_pem_or_der(&root).expect("root");
    // Whatever it timestamps, it must not verify.
    let err = verify_timestamp(&token, b"notation", &roots);
    assert!(err.is_err(), "{err:?}");
}

#[test]
fn generalized_time_forms() {
    let any = |s: &str| Any::new(der::Tag::GeneralizedTime, s.as_bytes()).expect("any");
    assert_eq!(
        parse_generalized_time(&any("20240102030405Z")),
        Ok(time::macros::datetime!(2024-01-02 03:04:05 UTC))
    );
    assert_eq!(
        parse_generalized_time(&any("20240102030405.123Z")),
        Ok(time::macros::datetime!(2024-01-02 03:04:05.123 UTC))
    );
    for bad in [
        "20240102030405",
        "20240102030405.Z",
        "20240102030405.10Z",
        "2024010203040Z",
        "20241302030405Z",
        "2024010203040aZ",
    ] {
        assert!(parse_generalized_time(&any(bad)).is_err(), "{bad}");
    }
}
