use super::*;
use crate::policy::{parse_blob, parse_oci};
use crate::test_support::cases;
use serde_json::Value;

fn statement_json(name: &str, scopes: &[&str]) -> Value {
    serde_json::json!({
        "name": name,
        "registryScopes": scopes,
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:valid-trust-store"],
        "trustedIdentities": ["*"],
    })
}

#[test]
fn conformance_trustpolicy_select() {
    let all = cases("trustpolicy-select");
    let mut agree = 0;
    for case in &all {
        let id = case["id"].as_str().unwrap_or("?");
        let inputs = &case["inputs"];
        let statements: Vec<Value> = match inputs["scopes"].as_object() {
            Some(m) => m
                .iter()
                .map(|(name, scopes)| {
                    let scopes: Vec<&str> = scopes
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap())
                        .collect();
                    statement_json(name, &scopes)
                })
                .collect(),
            // notation-go's dummy policy document.
            None => vec![statement_json(
                "test-statement-name",
                &["registry.acme-rockets.io/software/net-monitor"],
            )],
        };
        let doc = serde_json::json!({"version": "1.0", "trustPolicies": statements});
        let doc = parse_oci(&serde_json::to_vec(&doc).unwrap()).unwrap();
        let reference = inputs["artifactReference"].as_str().unwrap();
        let got = doc.select_for_reference(reference);
        let exp = &case["expected_signet"];
        if exp["error"] == Value::Bool(true) {
            assert!(got.is_err(), "{id}: {got:?}");
        } else {
            assert_eq!(
                got.map(|s| s.name.as_str()).ok(),
                exp["selected"].as_str(),
                "{id}"
            );
        }
        agree += 1;
    }
    eprintln!("trustpolicy-select: {agree}/{} agree", all.len());
}

#[test]
fn conformance_trustpolicy_select_blob() {
    let all = cases("trustpolicy-select-blob");
    let doc = serde_json::json!({"version": "1.0", "trustPolicies": [{
        "name": "test-statement-name",
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:valid-trust-store", "signingAuthority:valid-trust-store"],
        "trustedIdentities": ["x509.subject:CN=Notation Test Root,O=Notary,L=Seattle,ST=WA,C=US"],
    }]});
    let doc = parse_blob(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let mut agree = 0;
    for case in &all {
        let id = case["id"].as_str().unwrap_or("?");
        let name = case["inputs"]["policyName"].as_str();
        let got = doc.select_blob(name);
        let exp = &case["expected_signet"];
        if exp["error"] == Value::Bool(true) {
            assert!(got.is_err(), "{id}: {got:?}");
        } else {
            assert_eq!(
                got.map(|s| s.name.as_str()).ok(),
                exp["selected"].as_str(),
                "{id}"
            );
        }
        agree += 1;
    }
    eprintln!("trustpolicy-select-blob: {agree}/{} agree", all.len());
}

#[test]
fn blob_selection() {
    let doc = serde_json::json!({"version": "1.0", "trustPolicies": [
        {"name": "a", "signatureVerification": {"level": "skip"}},
        {"name": "g", "signatureVerification": {"level": "audit"}, "trustStores": ["ca:s"], "trustedIdentities": ["*"], "globalPolicy": true},
    ]});
    let doc = parse_blob(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(doc.select_blob(None).unwrap().name, "g");
    assert_eq!(doc.select_blob(Some("a")).unwrap().name, "a");
    assert!(matches!(
        doc.select_blob(Some(" ")),
        Err(PolicyError::InvalidReference(_))
    ));
    assert!(matches!(
        doc.select_blob(Some("zz")),
        Err(PolicyError::NoApplicableStatement(_))
    ));
}

#[test]
fn references() {
    assert_eq!(
        repository_of_reference("r.io/a/b@sha256:abc").unwrap(),
        "r.io/a/b"
    );
    assert_eq!(
        repository_of_reference("r.io:5000/a/b:v1@sha256:abc").unwrap(),
        "r.io:5000/a/b"
    );
    assert_eq!(
        repository_of_reference("localhost:5000/net@sha256:abc").unwrap(),
        "localhost:5000/net"
    );
    for bad in [
        "",
        "r.io/a",
        "r.io/a:tag",
        "r.io/a@",
        "r.io/a@sha256",
        "r.io/a@sha256:",
        "a@sha256:x",
        "r.io/A@sha256:x",
        "@sha256:x",
    ] {
        assert!(
            matches!(
                repository_of_reference(bad),
                Err(PolicyError::InvalidReference(_))
            ),
            "{bad}"
        );
    }
    let doc = serde_json::json!({"version": "1.0", "trustPolicies": [
        statement_json("w", &["*"]), statement_json("e", &["r.io/a"]),
    ]});
    let doc = parse_oci(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(
        doc.select_for_reference("r.io/a@sha256:x").unwrap().name,
        "e"
    );
    assert_eq!(
        doc.select_for_reference("r.io/b@sha256:x").unwrap().name,
        "w"
    );
    // No docker.io normalisation here (notation-go's function; the engine uses
    // select_for_repository).
    assert_eq!(
        doc.select_for_reference("docker.io/library/a@sha256:x")
            .unwrap()
            .name,
        "w"
    );
}

#[test]
fn canonical_names() {
    for (written, canonical) in [
        ("MyReg.io/x", "myreg.io/x"),
        ("myreg.io:443/x", "myreg.io/x"),
        ("MYREG.IO:443/x/y", "myreg.io/x/y"),
        ("myreg.io:5000/x", "myreg.io:5000/x"),
        ("myreg.io:4430/x", "myreg.io:4430/x"),
        ("docker.io/nginx", "docker.io/library/nginx"),
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        (
            "registry-1.docker.io/library/nginx",
            "docker.io/library/nginx",
        ),
        ("Index.Docker.io:443/team/app", "docker.io/team/app"),
        ("ghcr.io/nginx", "ghcr.io/nginx"),
        ("*", "*"),
    ] {
        assert_eq!(canonical_repository(written), canonical, "{written}");
    }
}

#[test]
fn aliases_select_the_same_statement() {
    let doc = serde_json::json!({"version": "1.0", "trustPolicies": [
        statement_json("w", &["*"]),
        statement_json("mine", &["MyReg.io:443/team/app"]),
        statement_json("hub", &["docker.io/nginx"]),
        statement_json("hub-team", &["index.docker.io/team/app"]),
    ]});
    let doc = parse_oci(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(doc.canonical_scope_conflict(), None);
    for (repository, statement) in [
        ("myreg.io/team/app", "mine"),
        ("MyReg.io/team/app", "mine"),
        ("myreg.io:443/team/app", "mine"),
        ("myreg.io:5000/team/app", "w"),
        ("docker.io/library/nginx", "hub"),
        ("index.docker.io/nginx", "hub"),
        ("registry-1.docker.io/library/nginx", "hub"),
        ("docker.io/nginx", "hub"),
        ("docker.io/team/app", "hub-team"),
        ("registry-1.docker.io/team/app", "hub-team"),
        ("docker.io/library/redis", "w"),
    ] {
        assert_eq!(
            doc.select_for_repository(repository).unwrap().name,
            statement,
            "{repository}"
        );
    }
    assert!(matches!(
        doc.select_for_repository("not a repository"),
        Err(PolicyError::InvalidReference(_))
    ));

    // Two statements naming one repository through aliases: refused, not a coin toss.
    let doc = serde_json::json!({"version": "1.0", "trustPolicies": [
        statement_json("a", &["docker.io/nginx"]),
        statement_json("b", &["docker.io/library/nginx"]),
    ]});
    let doc = parse_oci(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let (a, b, repo) = doc.canonical_scope_conflict().unwrap();
    assert_eq!(
        (a.as_str(), b.as_str(), repo.as_str()),
        ("a", "b", "docker.io/library/nginx")
    );
    assert!(matches!(
        doc.select_for_repository("docker.io/library/nginx"),
        Err(PolicyError::Invalid(_))
    ));
}
