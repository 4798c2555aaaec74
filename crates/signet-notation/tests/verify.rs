//! End-to-end verification of envelopes made by the test signer, one check at a time.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use signet_notation::policy::Statement;
use signet_notation::truststore::StoreType;
use signet_notation::verifier::{
    verify_signature, Check, SignatureVerdict, Target, TrustStores, VerifyOptions,
};
use signet_notation::{Descriptor, ErrorCode, Instant};
use signet_testkit::{
    EnvelopeKind, KeyKind, LeafOptions, SignOptions, SigningScheme, TestCa, TestSigner,
};
use support::*;

fn descriptor() -> Descriptor {
    Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: DIGEST.into(),
        size: SIZE,
        annotations: None,
        artifact_type: None,
    }
}

fn at(year: i32) -> Instant {
    time::Date::from_calendar_date(year, time::Month::June, 1)
        .unwrap()
        .midnight()
        .assume_utc()
}

fn sign(
    ca: &TestCa,
    key: KeyKind,
    kind: EnvelopeKind,
    f: impl FnOnce(&mut SignOptions),
) -> Vec<u8> {
    let signer = ca.issue(&LeafOptions::new("signer", key));
    let mut options = SignOptions::new(kind, MANIFEST_MEDIA_TYPE, DIGEST, SIZE);
    f(&mut options);
    signer.sign(&options)
}

fn verify(
    envelope: &[u8],
    kind: EnvelopeKind,
    ca: &TestCa,
    level: &str,
    year: i32,
) -> signet_notation::verifier::SignatureVerdict {
    let d = descriptor();
    let metadata = BTreeMap::new();
    verify_signature(
        envelope,
        kind.media_type(),
        Target::Oci(&d),
        &statement(level),
        &stores(ca),
        &VerifyOptions {
            at: at(year),
            user_metadata: &metadata,
            revocation: None,
        },
    )
}

#[test]
fn every_key_type_and_format_verifies() {
    let ca = TestCa::new("root", KeyKind::Rsa2048);
    for key in [
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
        KeyKind::Rsa4096,
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::P521,
    ] {
        for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
            let envelope = sign(&ca, key, kind, |_| {});
            let verdict = verify(&envelope, kind, &ca, "strict", 2026);
            assert!(verdict.verified, "{key:?} {kind:?}: {:?}", verdict.failure);
            assert!(verdict.signer.unwrap().contains("signer"));
        }
    }
}

#[test]
fn untrusted_root_is_untrusted_signer_unless_audit() {
    let ca = TestCa::new("root", KeyKind::P256);
    let other = TestCa::new("other", KeyKind::P256);
    for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
        let envelope = sign(&ca, KeyKind::P256, kind, |_| {});
        let verdict = verify(&envelope, kind, &other, "strict", 2026);
        assert_eq!(verdict.failure.unwrap().code, ErrorCode::UntrustedSigner);
        let verdict = verify(&envelope, kind, &other, "audit", 2026);
        assert!(verdict.verified);
        assert_eq!(verdict.logged[0].check, Check::Authenticity);
    }
}

#[test]
fn expiry_is_enforced_by_strict_and_logged_by_permissive() {
    let ca = TestCa::new("root", KeyKind::P256);
    for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
        let envelope = sign(&ca, KeyKind::P256, kind, |o| o.expiry = Some(at(2026)));
        assert!(verify(&envelope, kind, &ca, "strict", 2025).verified);
        let verdict = verify(&envelope, kind, &ca, "strict", 2027);
        assert_eq!(verdict.failure.unwrap().code, ErrorCode::SignatureExpired);
        assert!(verify(&envelope, kind, &ca, "permissive", 2027).verified);
    }
}

#[test]
fn expired_certificate_without_timestamp_fails_strict() {
    let ca = TestCa::new("root", KeyKind::P256);
    let mut leaf = LeafOptions::new("short", KeyKind::P256);
    leaf.not_after = at(2025);
    let signer = ca.issue(&leaf);
    let envelope = signer.sign(&SignOptions::new(
        EnvelopeKind::Jws,
        MANIFEST_MEDIA_TYPE,
        DIGEST,
        SIZE,
    ));
    let verdict = verify(&envelope, EnvelopeKind::Jws, &ca, "strict", 2026);
    assert_eq!(verdict.failure.unwrap().code, ErrorCode::CertificateExpired);
    assert!(verify(&envelope, EnvelopeKind::Jws, &ca, "permissive", 2026).verified);
}

/// A leaf of `ca` valid from `not_before` to `not_after`.
fn signer_valid(ca: &TestCa, not_before: Instant, not_after: Instant) -> TestSigner {
    let mut leaf = LeafOptions::new("windowed signer", KeyKind::P256);
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    ca.issue(&leaf)
}

fn sign_at(
    signer: &TestSigner,
    kind: EnvelopeKind,
    scheme: SigningScheme,
    signing_time: Instant,
) -> Vec<u8> {
    let mut options = SignOptions::new(kind, MANIFEST_MEDIA_TYPE, DIGEST, SIZE);
    options.signing_scheme = scheme;
    options.signing_time = signing_time;
    signer.sign(&options)
}

fn verify_under(
    envelope: &[u8],
    kind: EnvelopeKind,
    statement: &Statement,
    stores: &TrustStores,
    at: Instant,
) -> SignatureVerdict {
    let d = descriptor();
    let metadata = BTreeMap::new();
    verify_signature(
        envelope,
        kind.media_type(),
        Target::Oci(&d),
        statement,
        stores,
        &VerifyOptions {
            at,
            user_metadata: &metadata,
            revocation: None,
        },
    )
}

/// As notation: a certificate not valid at the time that counts fails the authentic-timestamp
/// check with `CERTIFICATE_EXPIRED`, which `strict` enforces and `permissive` / `audit` only
/// log. The message names the certificate and the dates.
fn assert_validity_failure_by_level(
    envelope: &[u8],
    kind: EnvelopeKind,
    store_type: StoreType,
    stores: &TrustStores,
    at: Instant,
    message_has: &[&str],
) {
    let strict = verify_under(
        envelope,
        kind,
        &statement_of("strict", r#"["*"]"#, store_type),
        stores,
        at,
    );
    let failure = strict.failure.expect("strict refuses");
    assert_eq!(
        (failure.code, failure.check),
        (ErrorCode::CertificateExpired, Check::AuthenticTimestamp),
        "{kind:?}: {}",
        failure.message
    );
    for part in message_has.iter().chain(&["windowed signer"]) {
        assert!(
            failure.message.contains(part),
            "{kind:?}: {part:?} not in {:?}",
            failure.message
        );
    }
    for level in ["permissive", "audit"] {
        let verdict = verify_under(
            envelope,
            kind,
            &statement_of(level, r#"["*"]"#, store_type),
            stores,
            at,
        );
        assert!(verdict.verified, "{kind:?} {level}: {:?}", verdict.failure);
        assert_eq!(verdict.logged.len(), 1, "{kind:?} {level}");
        assert_eq!(
            (verdict.logged[0].code, verdict.logged[0].check),
            (ErrorCode::CertificateExpired, Check::AuthenticTimestamp)
        );
    }
    let skipped = verify_under(
        envelope,
        kind,
        &statement_of("skip", "[]", store_type),
        stores,
        at,
    );
    assert!(skipped.verified);
}

#[test]
fn x509_claimed_signing_time_outside_the_chain_validity_is_no_failure() {
    // notary.x509's signing time is the signer's own claim; without a timestamp, notation
    // checks the chain at the verification time only.
    let ca = TestCa::new("root", KeyKind::P256);
    let signer = signer_valid(&ca, at(2024), at(2027));
    for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
        for claimed in [at(2023), at(2028)] {
            let envelope = sign_at(&signer, kind, SigningScheme::X509, claimed);
            for level in ["strict", "permissive", "audit"] {
                let verdict = verify(&envelope, kind, &ca, level, 2026);
                assert!(
                    verdict.verified,
                    "{kind:?} {claimed} {level}: {:?}",
                    verdict.failure
                );
                assert!(verdict.logged.is_empty(), "{:?}", verdict.logged);
            }
        }
    }
}

#[test]
fn x509_chain_expired_at_verification_time_by_level() {
    let ca = TestCa::new("root", KeyKind::P256);
    let signer = signer_valid(&ca, at(2020), at(2025));
    let stores = stores_of(&ca, StoreType::Ca);
    for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
        // Signed inside the validity, and (claimed) after it ended.
        for claimed in [at(2024), at(2025) + time::Duration::days(90)] {
            let envelope = sign_at(&signer, kind, SigningScheme::X509, claimed);
            assert_validity_failure_by_level(
                &envelope,
                kind,
                StoreType::Ca,
                &stores,
                at(2026),
                &["expired", "2020-06-01", "2025-06-01", "2026-06-01"],
            );
        }
    }
}

#[test]
fn x509_chain_not_yet_valid_at_verification_time_by_level() {
    let ca = TestCa::new("root", KeyKind::P256);
    let signer = signer_valid(&ca, at(2027), at(2030));
    let stores = stores_of(&ca, StoreType::Ca);
    for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
        let envelope = sign_at(&signer, kind, SigningScheme::X509, at(2025));
        assert_validity_failure_by_level(
            &envelope,
            kind,
            StoreType::Ca,
            &stores,
            at(2026),
            &["not valid yet", "2027-06-01", "2030-06-01"],
        );
        assert!(verify(&envelope, kind, &ca, "strict", 2028).verified);
    }
}

#[test]
fn signing_authority_chain_must_be_valid_at_the_authentic_signing_time() {
    let ca = TestCa::new("root", KeyKind::P256);
    let signer = signer_valid(&ca, at(2024), at(2026));
    let stores = stores_of(&ca, StoreType::SigningAuthority);
    for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
        // Inside the validity: the verification time plays no part, even long after expiry.
        let envelope = sign_at(&signer, kind, SigningScheme::SigningAuthority, at(2025));
        let strict = statement_of("strict", r#"["*"]"#, StoreType::SigningAuthority);
        for year in [2025, 2030] {
            let verdict = verify_under(&envelope, kind, &strict, &stores, at(year));
            assert!(verdict.verified, "{kind:?} {year}: {:?}", verdict.failure);
        }
        let after = sign_at(&signer, kind, SigningScheme::SigningAuthority, at(2027));
        assert_validity_failure_by_level(
            &after,
            kind,
            StoreType::SigningAuthority,
            &stores,
            at(2030),
            &["had expired", "2027-06-01", "2024-06-01", "2026-06-01"],
        );
        let before = sign_at(&signer, kind, SigningScheme::SigningAuthority, at(2023));
        assert_validity_failure_by_level(
            &before,
            kind,
            StoreType::SigningAuthority,
            &stores,
            at(2025),
            &["was not valid yet", "2023-06-01", "2024-06-01"],
        );
    }
}

#[test]
fn signature_for_another_artifact_is_invalid() {
    let ca = TestCa::new("root", KeyKind::P256);
    for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
        let envelope = sign(&ca, KeyKind::P256, kind, |o| o.size = SIZE + 1);
        let verdict = verify(&envelope, kind, &ca, "audit", 2026);
        assert_eq!(verdict.failure.unwrap().code, ErrorCode::SignatureInvalid);
    }
}

#[test]
fn tampered_envelope_is_invalid() {
    let ca = TestCa::new("root", KeyKind::P256);
    let envelope = sign(&ca, KeyKind::P256, EnvelopeKind::Jws, |_| {});
    let mut json: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    let sig = json["signature"].as_str().unwrap().to_owned();
    let mut chars: Vec<char> = sig.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    json["signature"] = chars.into_iter().collect::<String>().into();
    let tampered = serde_json::to_vec(&json).unwrap();
    let verdict = verify(&tampered, EnvelopeKind::Jws, &ca, "strict", 2026);
    assert_eq!(verdict.failure.unwrap().code, ErrorCode::SignatureInvalid);

    let cose = sign(&ca, KeyKind::P256, EnvelopeKind::Cose, |_| {});
    let mut tampered = cose.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let verdict = verify(&tampered, EnvelopeKind::Cose, &ca, "strict", 2026);
    assert_eq!(verdict.failure.unwrap().code, ErrorCode::SignatureInvalid);
}

#[test]
fn unknown_critical_attribute_is_unsupported() {
    let ca = TestCa::new("root", KeyKind::P256);
    for kind in [EnvelopeKind::Cose, EnvelopeKind::Jws] {
        let envelope = sign(&ca, KeyKind::P256, kind, |o| {
            o.extra_attributes
                .push(("com.example.mustUnderstand".into(), "x".into(), true))
        });
        let verdict = verify(&envelope, kind, &ca, "strict", 2026);
        assert_eq!(
            verdict.failure.unwrap().code,
            ErrorCode::UnsupportedSignature
        );
        let envelope = sign(&ca, KeyKind::P256, kind, |o| {
            o.extra_attributes
                .push(("com.example.informational".into(), "x".into(), false))
        });
        assert!(verify(&envelope, kind, &ca, "strict", 2026).verified);
    }
}

#[test]
fn identity_mismatch_is_untrusted_identity() {
    let ca = TestCa::new("root", KeyKind::P256);
    let envelope = sign(&ca, KeyKind::P256, EnvelopeKind::Cose, |_| {});
    let d = descriptor();
    let metadata = BTreeMap::new();
    let options = VerifyOptions {
        at: at(2026),
        user_metadata: &metadata,
        revocation: None,
    };
    let stores = stores(&ca);
    let mismatch = statement_with("strict", r#"["x509.subject:C=US,ST=WA,O=Someone Else"]"#);
    let verdict = verify_signature(
        &envelope,
        "application/cose",
        Target::Oci(&d),
        &mismatch,
        &stores,
        &options,
    );
    assert_eq!(verdict.failure.unwrap().code, ErrorCode::UntrustedIdentity);
    let matching = statement_with(
        "strict",
        r#"["x509.subject:C=US,ST=WA,O=Signet Test,CN=signer"]"#,
    );
    let verdict = verify_signature(
        &envelope,
        "application/cose",
        Target::Oci(&d),
        &matching,
        &stores,
        &options,
    );
    assert!(verdict.verified, "{:?}", verdict.failure);
}

#[test]
fn user_metadata_must_be_signed() {
    let ca = TestCa::new("root", KeyKind::P256);
    let envelope = sign(&ca, KeyKind::P256, EnvelopeKind::Jws, |o| {
        o.annotations.push(("env".into(), "prod".into()))
    });
    let d = descriptor();
    let stores = stores(&ca);
    let statement = statement("strict");
    let check = |pairs: &[(&str, &str)]| {
        let metadata: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        verify_signature(
            &envelope,
            "application/jose+json",
            Target::Oci(&d),
            &statement,
            &stores,
            &VerifyOptions {
                at: at(2026),
                user_metadata: &metadata,
                revocation: None,
            },
        )
    };
    assert!(check(&[("env", "prod")]).verified);
    assert!(!check(&[("env", "dev")]).verified);
    assert!(!check(&[("team", "x")]).verified);
}

#[test]
fn revocable_chain_is_unknown_when_enforced_and_passes_when_skipped() {
    let ca = TestCa::new("root", KeyKind::P256);
    let mut leaf = LeafOptions::new("revocable", KeyKind::P256);
    leaf.crl_url = Some("http://crl.example/leaf.crl".into());
    let envelope = ca.issue(&leaf).sign(&SignOptions::new(
        EnvelopeKind::Cose,
        MANIFEST_MEDIA_TYPE,
        DIGEST,
        SIZE,
    ));
    let verdict = verify(&envelope, EnvelopeKind::Cose, &ca, "strict", 2026);
    assert_eq!(verdict.failure.unwrap().code, ErrorCode::RevocationUnknown);
    assert!(verify(&envelope, EnvelopeKind::Cose, &ca, "permissive", 2026).verified);
}

#[test]
fn garbage_never_verifies() {
    let ca = TestCa::new("root", KeyKind::P256);
    for (bytes, mt) in [
        (&b""[..], "application/cose"),
        (b"{}", "application/jose+json"),
        (b"\xd2\x84", "application/cose"),
        (b"x", "application/unknown"),
    ] {
        for level in ["strict", "permissive", "audit"] {
            assert!(
                !verify(
                    bytes,
                    if mt == "application/cose" {
                        EnvelopeKind::Cose
                    } else {
                        EnvelopeKind::Jws
                    },
                    &ca,
                    level,
                    2026
                )
                .verified
                    || mt == "application/unknown"
            );
        }
    }
}

/// Serves one CRL at one URL; anything else fails.
#[derive(Debug)]
struct OneCrl(&'static str, Option<Vec<u8>>);

impl signet_notation::revocation::RevocationSource for OneCrl {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
        match &self.1 {
            Some(crl) if url == self.0 => Ok(crl.clone()),
            _ => Err(format!("connection refused ({url})")),
        }
    }
    fn fetch_ocsp(&self, url: &str, _request_der: &[u8]) -> Result<Vec<u8>, String> {
        Err(format!("connection refused ({url})"))
    }
}

#[test]
fn revocation_with_a_source() {
    const URL: &str = "http://crl.example/root.crl";
    let ca = TestCa::new("root", KeyKind::P256);
    let mut leaf = LeafOptions::new("revocable", KeyKind::P256);
    leaf.crl_url = Some(URL.into());
    let signer = ca.issue(&leaf);
    let envelope = signer.sign(&SignOptions::new(
        EnvelopeKind::Cose,
        MANIFEST_MEDIA_TYPE,
        DIGEST,
        SIZE,
    ));
    let d = descriptor();
    let metadata = BTreeMap::new();
    let stores = stores(&ca);
    let run = |level: &str, source: &OneCrl| {
        verify_signature(
            &envelope,
            EnvelopeKind::Cose.media_type(),
            Target::Oci(&d),
            &statement(level),
            &stores,
            &VerifyOptions {
                at: at(2026),
                user_metadata: &metadata,
                revocation: Some(source),
            },
        )
    };
    let (this, next) = (
        at(2026) - time::Duration::days(1),
        at(2026) + time::Duration::days(7),
    );

    // Not revoked: verified at every level, nothing logged.
    let good = OneCrl(URL, Some(ca.crl(&[], this, next)));
    let verdict = run("strict", &good);
    assert!(verdict.verified, "{:?}", verdict.failure);
    assert!(verdict.logged.is_empty());

    // Revoked: strict fails with CERTIFICATE_REVOKED; permissive verifies and logs it.
    let revoked = OneCrl(URL, Some(ca.crl(&[&signer.chain[0]], this, next)));
    let verdict = run("strict", &revoked);
    let failure = verdict.failure.unwrap();
    assert_eq!(failure.code, ErrorCode::CertificateRevoked);
    assert_eq!(failure.check, Check::Revocation);
    assert!(
        failure.message.contains("CN=revocable"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains(URL), "{}", failure.message);
    let verdict = run("permissive", &revoked);
    assert!(verdict.verified);
    assert_eq!(verdict.logged.len(), 1);
    assert_eq!(verdict.logged[0].code, ErrorCode::CertificateRevoked);
    assert_eq!(verdict.logged[0].check, Check::Revocation);
    // The audit level logs revocation failures too.
    let verdict = run("audit", &revoked);
    assert!(verdict.verified);

    // Unreachable CRL: unknown, naming the URL.
    let down = OneCrl(URL, None);
    let failure = run("strict", &down).failure.unwrap();
    assert_eq!(failure.code, ErrorCode::RevocationUnknown);
    assert!(failure.message.contains(URL), "{}", failure.message);
    assert!(run("permissive", &down).verified);
}
