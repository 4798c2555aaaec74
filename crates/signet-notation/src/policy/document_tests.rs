use super::*;
use crate::test_support::{cases, vector};

#[test]
fn conformance_trustpolicy_validate() {
    let all = cases("trustpolicy-validate");
    let mut agree = 0;
    for case in &all {
        let id = case["id"].as_str().unwrap_or("?");
        let signet = &case["signet"];
        let bytes = if let Some(input) = signet["document_input"].as_str() {
            serde_json::to_vec(&case["inputs"][input]).unwrap()
        } else {
            let path = signet["trust_policy"].as_str().unwrap();
            std::fs::read(vector(path)).unwrap()
        };
        let got = if signet["blob"].as_bool() == Some(true) {
            parse_blob(&bytes)
        } else {
            parse_oci(&bytes)
        };
        let want = case["expected_signet"]["valid"].as_bool().unwrap();
        assert_eq!(got.is_ok(), want, "{id}: got {got:?}");
        if let Err(e) = &got {
            assert!(matches!(e, PolicyError::Invalid(_)), "{id}: {e:?}");
        }
        agree += 1;
    }
    eprintln!("trustpolicy-validate: {agree}/{} agree", all.len());
}

#[test]
fn all_vector_policies_parse_without_panicking() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "json") {
                    out.push(p);
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(&vector(""), &mut files);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let _ = parse_oci(&bytes);
        let _ = parse_blob(&bytes);
    }
}

fn doc(statements: &str) -> Vec<u8> {
    format!(r#"{{"version":"1.0","trustPolicies":[{statements}]}}"#).into_bytes()
}

const GOOD: &str = r#"{"name":"a","registryScopes":["r.io/x"],"signatureVerification":{"level":"strict"},"trustStores":["ca:s"],"trustedIdentities":["*"]}"#;

#[test]
fn go_json_quirks() {
    // Case-insensitive keys, unknown fields ignored, trailing bytes ignored.
    let d = br#"{"Version":"1.0","TRUSTPOLICIES":[{"NAME":"a","registryscopes":["r.io/x"],"signatureverification":{"LEVEL":"audit"},"truststores":["ca:s"],"trustedidentities":["*"],"extra":1}],"x":[]} junk"#;
    let parsed = parse_oci(d).unwrap();
    assert_eq!(parsed.statements[0].level, super::super::Level::Audit);
    // Wrong JSON types are malformed.
    assert!(parse_oci(br#"{"version":1.0,"trustPolicies":[]}"#).is_err());
    assert!(parse_oci(b"[]").is_err());
    assert!(parse_oci(b"null").is_err());
    assert!(parse_oci(b"").is_err());
    // Objects given twice merge.
    let d = br#"{"version":"1.0","trustPolicies":[{"name":"a","registryScopes":["r.io/x"],"signatureVerification":{"level":"strict"},"signatureVerification":{"verifyTimestamp":"afterCertExpiry"},"trustStores":["ca:s"],"trustedIdentities":["*"]}]}"#;
    let parsed = parse_oci(d).unwrap();
    assert_eq!(
        parsed.statements[0].verify_timestamp,
        VerifyTimestamp::AfterCertExpiry
    );
    assert_eq!(parsed.statements[0].level, super::super::Level::Strict);
}

#[test]
fn bounds() {
    let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    assert!(parse_oci(&big).is_err());
    let many = vec![GOOD; MAX_STATEMENTS + 1].join(",");
    assert!(parse_oci(&doc(&many)).is_err());
}

#[test]
fn scopes() {
    for ok in [
        "example.com/rep",
        "localhost:5000/a/b-c__d.e",
        "a/b",
        "1.2.3.4:80/x",
    ] {
        assert!(validate_scope_format(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "a",
        "A.com/Rep",
        "a.com/rep:tag",
        "a.com/rep@sha256:x",
        "-a.com/x",
        "a.com/x/",
        "a.com//x",
        "a.com/x..y",
        "a.com/x___y",
        "a.com:/x",
        "a.com/*",
    ] {
        assert!(validate_scope_format(bad).is_err(), "{bad}");
    }
    assert!(validate_scope_format("a.com/x---y").is_ok());
    // "*" in two statements.
    let two = doc(&[
        GOOD.replace("r.io/x", "*"),
        GOOD.replace("r.io/x", "*").replace("\"a\"", "\"b\""),
    ]
    .join(","));
    assert!(parse_oci(&two).is_err());
    // Same scope twice in one statement.
    assert!(parse_oci(&doc(
        &GOOD.replace(r#"["r.io/x"]"#, r#"["r.io/x","r.io/x"]"#)
    ))
    .is_err());
}

#[test]
fn blob_rules() {
    let blob = r#"{"name":"a","signatureVerification":{"level":"strict"},"trustStores":["ca:s"],"trustedIdentities":["*"],"globalPolicy":true}"#;
    let d = parse_blob(&doc(blob)).unwrap();
    assert_eq!(d.statements[0].scope, Scope::Blob { global: true });
    // registryScopes is not a blob field: ignored, as Go does.
    assert!(parse_blob(&doc(&blob.replace(
        "\"globalPolicy\"",
        "\"registryScopes\":[\"x\"],\"globalPolicy\""
    )))
    .is_ok());
    // globalPolicy must be a boolean.
    assert!(parse_blob(&doc(&blob.replace(":true", ":\"yes\""))).is_err());
    // An OCI document needs registry scopes.
    assert!(parse_oci(&doc(blob)).is_err());
}

#[test]
fn identities_and_stores() {
    let with = |ids: &str, stores: &str| {
        doc(&GOOD.replace(r#"["*"]"#, ids).replace(r#"["ca:s"]"#, stores))
    };
    assert!(parse_oci(&with(
        r#"["x509.subject:C=US,ST=WA,O=x","x509.subject:C=US,ST=WA,O=x"]"#,
        r#"["ca:s"]"#
    ))
    .is_err());
    assert!(parse_oci(&with(
        r#"["x509.subject:C=US,ST=WA,O=x","x509.subject:C=US,ST=WA,O=y"]"#,
        r#"["tsa:s","signingAuthority:t"]"#
    ))
    .is_ok());
    assert!(parse_oci(&with(r#"["other:a","other:a"]"#, r#"["ca:s"]"#)).is_ok());
    assert!(parse_oci(&with(
        r#"["x509.subject:C=US,ST=WA,O=x=#1"]"#,
        r#"["ca:s"]"#
    ))
    .is_err());
    assert!(parse_oci(&with(r#"["*"]"#, r#"["CA:s"]"#)).is_err());
    assert!(parse_oci(&with(r#"["*"]"#, r#"["ca:s/t"]"#)).is_err());
    assert!(parse_oci(&with(r#"["*"]"#, r#"["ca:a:b"]"#)).is_err());
}

/// Poor man's fuzzing: random mutations of valid documents and random bytes must never
/// panic (the cargo-fuzz target calls the same entry points).
#[test]
fn mutations_never_panic() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = doc(&[
        GOOD,
        &GOOD
            .replace("\"a\"", "\"b\"")
            .replace("r.io/x", "*")
            .replace(r#"["*"]"#, r#"["x509.subject:C=US,ST=WA,O=x\\,y","z:w"]"#),
    ]
    .join(","));
    let alphabet = b"{}[]\":,\\=#+; *@/.-_aCSTOx0\x00\xff\xc3\xa9";
    for _ in 0..20_000 {
        let mut d = base.clone();
        for _ in 0..(next() % 6 + 1) {
            let pos = (next() as usize) % (d.len() + 1);
            let byte = alphabet[(next() as usize) % alphabet.len()];
            match next() % 3 {
                0 => d.insert(pos, byte),
                1 if pos < d.len() => {
                    d.remove(pos);
                }
                _ if pos < d.len() => d[pos] = byte,
                _ => {}
            }
        }
        let _ = parse_oci(&d);
        let _ = parse_blob(&d);
        if let Ok(s) = std::str::from_utf8(&d) {
            let _ = TrustedIdentity::parse(s);
            let _ = super::super::repository_of_reference(s);
        }
    }
    for len in 0..200 {
        let d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = parse_oci(&d);
        let _ = parse_blob(&d);
    }
}

/// The trust policy files that verification cases run with: exit 2 only ⇒ invalid,
/// no exit 2 ⇒ valid.
#[test]
fn conformance_verification_case_policies() {
    let mut checked = 0;
    for kind in [
        "oci-verify",
        "oci-verify-layout",
        "blob-verify",
        "oci-verify-plugin",
    ] {
        for case in cases(kind) {
            let Some(path) = case["signet"]["trust_policy"].as_str() else {
                continue;
            };
            let exits: Vec<i64> = case["expected_signet"]["exit"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e.as_i64()).collect())
                .unwrap_or_default();
            let blob = kind == "blob-verify" || case["signet"]["blob"].as_bool() == Some(true);
            let mut bytes = std::fs::read(vector(path)).unwrap();
            if let Some(patch) = case["signet"]["policy_patch"].as_object() {
                // The patch replaces fields of every statement.
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                for st in v["trustPolicies"].as_array_mut().unwrap() {
                    for (k, val) in patch {
                        st[k] = val.clone();
                    }
                }
                bytes = serde_json::to_vec(&v).unwrap();
            }
            let got = if blob {
                parse_blob(&bytes)
            } else {
                parse_oci(&bytes)
            };
            let id = case["id"].as_str().unwrap_or("?");
            if exits == [2] {
                assert!(got.is_err(), "{id}: {path} should be invalid");
                checked += 1;
            } else if !exits.contains(&2) {
                assert!(got.is_ok(), "{id}: {path}: {got:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked}");
}
