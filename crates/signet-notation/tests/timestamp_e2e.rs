//! A timestamp countersignature through the whole verifier: a JWS signed by a short-lived
//! certificate, countersigned by a real RFC 3161 TSA (the `openssl ts` responder), verified
//! after the certificate expired. The TSA PKI and token are made by the `openssl` CLI at test
//! time, because the token must cover this run's envelope signature.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use signet_notation::policy::parse_oci;
use signet_notation::truststore::{StoreType, TrustStore};
use signet_notation::verifier::{verify_signature, Check, Target, TrustStores, VerifyOptions};
use signet_notation::{Certificate, Descriptor, ErrorCode};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, SignOptions, TestCa};
use support::{DIGEST, MANIFEST_MEDIA_TYPE, REPO, SIZE};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TSA root and TSA certificate (critical EKU timeStamping), and a responder config.
fn make_tsa(dir: &Path) {
    std::fs::write(
        dir.join("ext.cnf"),
        "[ leaf ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = critical, timeStamping\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ts.cnf"),
        "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\ndir = .\nserial = ./tsaserial\ncrypto_device = builtin\ndefault_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\nsigner_digest = sha256\naccuracy = secs:1\nordering = yes\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
    )
    .unwrap();
    std::fs::write(dir.join("tsaserial"), "01\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-subj",
            "/CN=Signet Test TSA Root",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=Signet Test TSA",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "leaf",
            "-out",
            "leaf.pem",
        ],
    );
}

/// An RFC 3161 token over `signature`.
fn timestamp(dir: &Path, signature: &[u8]) -> Vec<u8> {
    std::fs::write(dir.join("sig.bin"), signature).unwrap();
    openssl(
        dir,
        &[
            "ts", "-query", "-data", "sig.bin", "-sha256", "-cert", "-out", "req.tsq",
        ],
    );
    openssl(
        dir,
        &[
            "ts",
            "-reply",
            "-queryfile",
            "req.tsq",
            "-signer",
            "leaf.pem",
            "-inkey",
            "leaf.key",
            "-chain",
            "root.pem",
            "-config",
            "ts.cnf",
            "-token_out",
            "-out",
            "token.tst",
        ],
    );
    std::fs::read(dir.join("token.tst")).unwrap()
}

/// Puts a token into the JWS unprotected header (which the signature does not cover).
fn with_token(jws: &[u8], token: &[u8]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(jws).unwrap();
    v["header"]["io.cncf.notary.timestampSignature"] = STANDARD.encode(token).into();
    serde_json::to_vec(&v).unwrap()
}

/// Puts a token into the COSE unprotected header, keeping every signed byte as it was.
fn with_cose_token(cose: &[u8], token: &[u8]) -> Vec<u8> {
    use coset::TaggedCborSerializable as _;
    let mut sign1 = coset::CoseSign1::from_tagged_slice(cose).unwrap();
    sign1.unprotected.rest.push((
        coset::Label::Text("io.cncf.notary.timestampSignature".into()),
        coset::cbor::Value::Bytes(token.to_vec()),
    ));
    sign1.to_tagged_vec().unwrap()
}

fn statement(stores: &str) -> signet_notation::policy::Statement {
    statement_at_level(stores, "strict")
}

fn statement_at_level(stores: &str, level: &str) -> signet_notation::policy::Statement {
    let doc = format!(
        r#"{{"version":"1.0","trustPolicies":[{{"name":"ts","registryScopes":["{REPO}"],"signatureVerification":{{"level":"{level}"}},"trustStores":{stores},"trustedIdentities":["*"]}}]}}"#
    );
    parse_oci(doc.as_bytes()).unwrap().statements.remove(0)
}

/// The ca store `ca` (with `ca`'s root) and the tsa store `tsa` (the TSA root in `dir`).
fn ca_and_tsa_stores(ca: &TestCa, dir: &Path) -> TrustStores {
    let tsa_root = Certificate::parse_pem(&std::fs::read(dir.join("root.pem")).unwrap()).unwrap();
    TrustStores::from_stores([
        TrustStore {
            store_type: StoreType::Ca,
            name: "ca".into(),
            certificates: vec![Certificate::from_der(ca.cert_der().to_vec()).unwrap()],
        },
        TrustStore {
            store_type: StoreType::Tsa,
            name: "tsa".into(),
            certificates: tsa_root,
        },
    ])
}

/// A JWS by a leaf valid from `not_before` to `not_after` that claims `signing_time`,
/// countersigned now by the TSA in `dir`.
fn stamped_jws(
    dir: &Path,
    ca: &TestCa,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
    signing_time: time::OffsetDateTime,
) -> Vec<u8> {
    let mut leaf = LeafOptions::new("windowed signer", KeyKind::P256);
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let mut options = SignOptions::new(EnvelopeKind::Jws, MANIFEST_MEDIA_TYPE, DIGEST, SIZE);
    options.signing_time = signing_time;
    let jws = ca.issue(&leaf).sign(&options);
    let v: serde_json::Value = serde_json::from_slice(&jws).unwrap();
    let signature = URL_SAFE_NO_PAD
        .decode(v["signature"].as_str().unwrap())
        .unwrap();
    with_token(&jws, &timestamp(dir, &signature))
}

fn verify_jws_at(
    envelope: &[u8],
    stores: &TrustStores,
    level: &str,
    at: time::OffsetDateTime,
) -> signet_notation::verifier::SignatureVerdict {
    let descriptor = Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: DIGEST.into(),
        size: SIZE,
        annotations: None,
        artifact_type: None,
    };
    let metadata = BTreeMap::new();
    verify_signature(
        envelope,
        "application/jose+json",
        Target::Oci(&descriptor),
        &statement_at_level(r#"["ca:ca","tsa:tsa"]"#, level),
        stores,
        &VerifyOptions {
            at,
            user_metadata: &metadata,
            revocation: None,
        },
    )
}

/// With a tsa store in the policy, the chain must be valid over the timestamp's range; the
/// failure is `CERTIFICATE_EXPIRED` in the authentic-timestamp check, which `strict`
/// enforces and `permissive` / `audit` log, as in notation.
#[test]
fn chain_invalid_at_the_timestamp_is_certificate_expired_by_level() {
    let dir = tempfile::tempdir().unwrap();
    make_tsa(dir.path());
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let ca = TestCa::new("root", KeyKind::P256);
    let stores = ca_and_tsa_stores(&ca, dir.path());

    // Expired a day before the TSA's time, though the signer claims to have signed a minute ago.
    let expired = stamped_jws(
        dir.path(),
        &ca,
        now - 30 * day,
        now - day,
        now - time::Duration::minutes(1),
    );
    // Valid only from tomorrow: the timestamp is before its validity.
    let early = stamped_jws(
        dir.path(),
        &ca,
        now + day,
        now + 30 * day,
        now - time::Duration::minutes(1),
    );
    for (envelope, at, words) in [
        (&expired, now + day, "may be after the end of"),
        (&early, now + 2 * day, "may be before the start of"),
    ] {
        let failure = verify_jws_at(envelope, &stores, "strict", at)
            .failure
            .expect("strict refuses");
        assert_eq!(
            (failure.code, failure.check),
            (ErrorCode::CertificateExpired, Check::AuthenticTimestamp),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains(words) && failure.message.contains("windowed signer"),
            "{}",
            failure.message
        );
        for level in ["permissive", "audit"] {
            let verdict = verify_jws_at(envelope, &stores, level, at);
            assert!(verdict.verified, "{level}: {:?}", verdict.failure);
            assert_eq!(verdict.logged.len(), 1, "{level}");
            assert_eq!(verdict.logged[0].code, ErrorCode::CertificateExpired);
        }
    }
}

/// The signer's claimed signing time is not held against the chain when a trusted timestamp
/// inside the chain's validity exists, even after the chain expired.
#[test]
fn valid_timestamp_admits_a_claimed_signing_time_before_the_chain_validity() {
    let dir = tempfile::tempdir().unwrap();
    make_tsa(dir.path());
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let ca = TestCa::new("root", KeyKind::P256);
    let stores = ca_and_tsa_stores(&ca, dir.path());
    let envelope = stamped_jws(dir.path(), &ca, now - 30 * day, now + day, now - 60 * day);
    for level in ["strict", "permissive", "audit"] {
        let verdict = verify_jws_at(&envelope, &stores, level, now + 30 * day);
        assert!(verdict.verified, "{level}: {:?}", verdict.failure);
        assert!(verdict.logged.is_empty(), "{level}: {:?}", verdict.logged);
    }
}

#[test]
fn timestamp_extends_trust_past_certificate_expiry() {
    let dir = tempfile::tempdir().unwrap();
    make_tsa(dir.path());
    let now = time::OffsetDateTime::now_utc();
    let ca = TestCa::new("root", KeyKind::P256);
    let mut leaf = LeafOptions::new("short-lived", KeyKind::P256);
    leaf.not_before = now - time::Duration::days(30);
    leaf.not_after = now + time::Duration::days(1);
    let signer = ca.issue(&leaf);
    let mut options = SignOptions::new(EnvelopeKind::Jws, MANIFEST_MEDIA_TYPE, DIGEST, SIZE);
    options.signing_time = now - time::Duration::minutes(1);
    let jws = signer.sign(&options);
    let signature = {
        let v: serde_json::Value = serde_json::from_slice(&jws).unwrap();
        URL_SAFE_NO_PAD
            .decode(v["signature"].as_str().unwrap())
            .unwrap()
    };
    let stamped = with_token(&jws, &timestamp(dir.path(), &signature));
    let foreign = with_token(&jws, &timestamp(dir.path(), b"another signature"));

    let tsa_root =
        Certificate::parse_pem(&std::fs::read(dir.path().join("root.pem")).unwrap()).unwrap();
    let stores = TrustStores::from_stores([
        TrustStore {
            store_type: StoreType::Ca,
            name: "ca".into(),
            certificates: vec![Certificate::from_der(ca.cert_der().to_vec()).unwrap()],
        },
        TrustStore {
            store_type: StoreType::Tsa,
            name: "tsa".into(),
            certificates: tsa_root,
        },
    ]);
    let descriptor = Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: DIGEST.into(),
        size: SIZE,
        annotations: None,
        artifact_type: None,
    };
    let metadata = BTreeMap::new();
    let later = VerifyOptions {
        at: now + time::Duration::days(30),
        user_metadata: &metadata,
        revocation: None,
    };
    let verify = |envelope: &[u8], statement: &signet_notation::policy::Statement| {
        verify_signature(
            envelope,
            "application/jose+json",
            Target::Oci(&descriptor),
            statement,
            &stores,
            &later,
        )
    };
    let with_tsa = statement(r#"["ca:ca","tsa:tsa"]"#);
    let without_tsa = statement(r#"["ca:ca"]"#);

    let verdict = verify(&stamped, &with_tsa);
    assert!(verdict.verified, "{:?}", verdict.failure);
    // No tsa store in the policy: the timestamp is not consulted, the expired chain fails.
    assert_eq!(
        verify(&stamped, &without_tsa).failure.unwrap().code,
        ErrorCode::CertificateExpired
    );
    // A token countersigning other bytes (swapped in the unprotected header).
    assert_eq!(
        verify(&foreign, &with_tsa).failure.unwrap().code,
        ErrorCode::TimestampInvalid
    );
    // No token at all while the policy requires one: enforced by strict, logged by permissive.
    assert_eq!(
        verify(&jws, &with_tsa).failure.unwrap().code,
        ErrorCode::TimestampInvalid
    );
    let permissive = verify(
        &jws,
        &statement_at_level(r#"["ca:ca","tsa:tsa"]"#, "permissive"),
    );
    assert!(permissive.verified, "{:?}", permissive.failure);
    assert_eq!(permissive.logged[0].code, ErrorCode::TimestampInvalid);

    // The same for COSE, whose token sits in the unprotected header too.
    let mut options = options.clone();
    options.kind = EnvelopeKind::Cose;
    let cose = signer.sign(&options);
    let cose_signature = {
        use coset::TaggedCborSerializable as _;
        coset::CoseSign1::from_tagged_slice(&cose)
            .unwrap()
            .signature
    };
    let verify_cose = |envelope: &[u8]| {
        verify_signature(
            envelope,
            "application/cose",
            Target::Oci(&descriptor),
            &with_tsa,
            &stores,
            &later,
        )
    };
    let stamped = with_cose_token(&cose, &timestamp(dir.path(), &cose_signature));
    let verdict = verify_cose(&stamped);
    assert!(verdict.verified, "{:?}", verdict.failure);
    let foreign = with_cose_token(&cose, &timestamp(dir.path(), b"another signature"));
    assert_eq!(
        verify_cose(&foreign).failure.unwrap().code,
        ErrorCode::TimestampInvalid
    );
}
