//! Namespaced trust (`[NAMESPACE]IMAGE` keys) with `signet serve`, the real engine and
//! Debian's real `docker-registry` over TLS, Gatekeeper's side over mTLS: one image verified
//! under team-a's trust and refused under team-b's in the same request, a namespace without
//! configuration falling back to the cluster's, malformed keys, the webhook using the
//! object's namespace, mutation ignoring the namespace, and a namespace's trust reloaded
//! (and its readiness) without touching the others.
#![allow(clippy::unwrap_used)]

mod serve_support;
use signet_testkit::registry as support;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use serve_support::*;
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, TestCa};
use support::push::{Pusher, SigStyle};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;

fn policy(scope: &str, store: &str) -> Vec<u8> {
    json!({"version": "1.0", "trustPolicies": [{"name": "team", "registryScopes": [scope],
        "signatureVerification": {"level": "strict"}, "trustStores": [store],
        "trustedIdentities": ["*"]}]})
    .to_string()
    .into_bytes()
}

/// A namespace's trust directory: `DIR/policy/trustpolicy.json` (a Kubernetes-style mount)
/// and `DIR/truststore/x509/ca/NAME/ca.crt`.
fn namespace_trust(dir: &Path, policy_bytes: &[u8], store: &str, ca: &TestCa) {
    k8s_mount(&dir.join("policy"), &[("trustpolicy.json", policy_bytes)]);
    let store_dir = dir.join(format!("truststore/x509/ca/{store}"));
    std::fs::create_dir_all(&store_dir).unwrap();
    std::fs::write(store_dir.join("ca.crt"), ca.cert_pem()).unwrap();
}

fn code(item: &Value) -> &str {
    if item["value"]["verified"] == true {
        return "VERIFIED";
    }
    item["value"]["error"]["code"].as_str().unwrap_or("none")
}

#[tokio::test]
async fn one_image_under_each_namespace_trust() {
    let reg_pki = TestPki::new();
    let reg = Registry::start(&reg_pki, RegistryAuth::None).await;
    let pusher = Pusher::new(&reg.url(), reg_pki.client_config(), None);
    let ca_a = TestCa::new("Team A Signing CA", KeyKind::P256);
    let ca_b = TestCa::new("Team B Signing CA", KeyKind::P256);
    let signer_a = ca_a.issue(&LeafOptions::new("team-a signer", KeyKind::P256));
    let signer_b = ca_b.issue(&LeafOptions::new("team-b signer", KeyKind::P256));
    let by_a = pusher.image("shared/app", "a").await;
    pusher
        .signature(
            "shared/app",
            &by_a,
            &signer_a,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    let by_b = pusher.image("shared/app", "b").await;
    pusher
        .signature(
            "shared/app",
            &by_b,
            &signer_b,
            EnvelopeKind::Jws,
            SigStyle::Current,
            true,
        )
        .await;
    let repo = format!("{}/shared/app", reg.host);
    let img_a = format!("{repo}:a");
    let img_b = format!("{repo}:b");

    // The cluster trusts team A's CA (store ca:test); team-a the same CA under its own
    // policy; team-b only team B's CA.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new();
    std::fs::write(d.join("registry-ca.crt"), &reg_pki.ca_pem).unwrap();
    namespace_trust(&d.join("ns/team-a"), &policy(&repo, "ca:a"), "a", &ca_a);
    namespace_trust(&d.join("ns/team-b"), &policy(&repo, "ca:b"), "b", &ca_b);
    let ns_yaml = |ns: &str| {
        format!(
            "  {ns}:\n    trust:\n      policyFile: {p}/policy/trustpolicy.json\n      storeRoot: {p}/truststore\n",
            p = d.join("ns").join(ns).display()
        )
    };
    let cfg = setup(
        d,
        &pki,
        &policy(&repo, "ca:test"),
        &format!(
            "registry:\n  caFiles: [{}/registry-ca.crt]\nnamespaces:\n{}{}",
            d.display(),
            ns_yaml("team-a"),
            ns_yaml("team-b")
        ),
    );
    std::fs::write(d.join("truststore/x509/ca/test/ca.crt"), ca_a.cert_pem()).unwrap();

    let check = signet_check(&cfg);
    assert!(check.contains("namespace team-a: trust policy"), "{check}");
    assert!(check.contains("namespace team-b: trust policy"), "{check}");

    let serve = Serve::start(d, &["--config", cfg.to_str().unwrap()]);
    let probes = serve.probes.unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || probe(probes, "/readyz")
            .await
            .0
            == 200)
        .await,
        "not ready: {:?} {:#?}",
        probe(probes, "/readyz").await,
        serve.logs()
    );
    let gk = client_config(&pki.server_ca.pem, Some(&pki.client));
    let verify = async |keys: &[&str]| -> Value {
        let (status, v) = call(
            serve.addr,
            gk.clone(),
            "POST",
            "/v1/verify",
            &provider_request(keys),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{v}");
        v
    };

    let a_in_a = format!("[team-a]{img_a}");
    let a_in_b = format!("[team-b]{img_a}");
    let a_in_c = format!("[team-c]{img_a}");
    let b_in_a = format!("[team-a]{img_b}");
    let b_in_b = format!("[team-b]{img_b}");
    let b_in_c = format!("[team-c]{img_b}");
    let keys: Vec<&str> = vec![
        &a_in_a, &a_in_b, &a_in_c, &img_a, &b_in_a, &b_in_b, &b_in_c, &img_b,
    ];
    let expected = [
        "VERIFIED",         // team-a trusts A
        "UNTRUSTED_SIGNER", // team-b does not
        "VERIFIED",         // team-c has no configuration: the cluster's, which trusts A
        "VERIFIED",         // no namespace: the cluster's
        "UNTRUSTED_SIGNER",
        "VERIFIED", // team-b trusts B
        "UNTRUSTED_SIGNER",
        "UNTRUSTED_SIGNER",
    ];
    // Twice: the second answers come from the verdict caches, which must keep the trust
    // configurations apart.
    for round in 0..2 {
        let v = verify(&keys).await;
        let items = v["response"]["items"].as_array().unwrap();
        assert_eq!(items.len(), keys.len());
        for ((item, key), want) in items.iter().zip(&keys).zip(expected) {
            assert_eq!(item["key"], *key, "echoed exactly");
            assert_eq!(code(item), want, "round {round}, {key}: {item}");
        }
        assert_eq!(items[0]["value"]["digest"], by_a.digest.as_str());
        assert_eq!(items[1]["value"]["digest"], by_a.digest.as_str());
        if round == 0 {
            // The engines share one tag cache (resolution does not depend on trust): each
            // tag was resolved once for the three trust configurations.
            let (_, text) = probe(probes, "/metrics").await;
            assert!(
                text.contains("signet_resolve_cache_misses_total 2\n"),
                "{text}"
            );
        }
    }

    // Malformed namespaced keys: the contract's invalid-reference item error; the others
    // in the request are answered as usual.
    let bad_ns = format!("[Team-A]{img_a}");
    let unclosed = format!("[team-a{img_a}");
    let v = verify(&[&bad_ns, &unclosed, "[team-a]", &a_in_b]).await;
    let items = v["response"]["items"].as_array().unwrap();
    for (i, needle) in [
        (0, "is not a namespace name"),
        (1, "does not close it"),
        (2, "but no image"),
    ] {
        let e = items[i]["error"].as_str().unwrap();
        assert!(
            e.starts_with("INVALID_REFERENCE: ") && e.contains(needle),
            "{e}"
        );
        assert!(items[i].get("value").is_none());
    }
    assert_eq!(code(&items[3]), "UNTRUSTED_SIGNER");

    // Mutation resolves the tag whatever the namespace (trust plays no part).
    let (_, v) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/mutate",
        &provider_request(&[&a_in_b]),
    )
    .await
    .unwrap();
    let item = &v["response"]["items"][0];
    assert_eq!(item["key"], a_in_b.as_str());
    assert_eq!(item["value"], format!("{img_a}@{}", by_a.digest));

    // The webhook uses the object's namespace.
    let admit = async |namespace: &str, image: &str| -> Value {
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "namespace": namespace, "operation": "CREATE",
                "object": {"metadata": {"name": "p", "namespace": namespace},
                           "spec": {"containers": [{"name": "c", "image": image}]}}}});
        let (_, v) = call(
            serve.addr,
            gk.clone(),
            "POST",
            "/v1/admit",
            &review.to_string(),
        )
        .await
        .unwrap();
        v["response"].clone()
    };
    assert_eq!(admit("team-a", &img_a).await["allowed"], true);
    let denied = admit("team-b", &img_a).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(denied["status"]["message"]
        .as_str()
        .unwrap()
        .contains("UNTRUSTED_SIGNER"));
    assert_eq!(admit("team-b", &img_b).await["allowed"], true);
    assert_eq!(admit("team-c", &img_a).await["allowed"], true);
    assert_eq!(admit("team-c", &img_b).await["allowed"], false);

    // Each namespace's certificates are on /metrics with its name.
    let (_, text) = probe(probes, "/metrics").await;
    assert!(
        text.contains("store_type=\"ca\",store=\"b\",subject=\"CN=Team B Signing CA")
            && text.contains("namespace=\"team-b\"}"),
        "{text}"
    );

    // team-b's trust reloaded: now it trusts A too, through its own files only.
    let team_b = d.join("ns/team-b");
    std::fs::create_dir_all(team_b.join("truststore/x509/ca/a")).unwrap();
    std::fs::write(team_b.join("truststore/x509/ca/a/ca.crt"), ca_a.cert_pem()).unwrap();
    let both = json!({"version": "1.0", "trustPolicies": [{"name": "team",
        "registryScopes": [repo], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:a", "ca:b"], "trustedIdentities": ["*"]}]})
    .to_string();
    k8s_mount(
        &team_b.join("policy"),
        &[("trustpolicy.json", both.as_bytes())],
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            code(&verify(&[&a_in_b]).await["response"]["items"][0]) == "VERIFIED"
        })
        .await,
        "{:#?}",
        serve.logs()
    );
    // team-a's answers did not move.
    let v = verify(&[&b_in_a, &a_in_a]).await;
    assert_eq!(code(&v["response"]["items"][0]), "UNTRUSTED_SIGNER");
    assert_eq!(code(&v["response"]["items"][1]), "VERIFIED");

    // A typo in team-b's policy: the previous one stays, and the log says why.
    k8s_mount(
        &team_b.join("policy"),
        &[(
            "trustpolicy.json",
            both.replace("strict", "strickt").as_bytes(),
        )],
    );
    assert!(
        eventually(Duration::from_secs(10), async || serve
            .logs()
            .iter()
            .any(|l| l.contains("namespace team-b: trust material not loaded")))
        .await,
        "{:#?}",
        serve.logs()
    );
    assert_eq!(probe(probes, "/readyz").await.0, 200);
    assert_eq!(
        code(&verify(&[&a_in_b]).await["response"]["items"][0]),
        "VERIFIED"
    );

    // A store team-b's policy names goes missing: not ready, and the reason names team-b.
    k8s_mount(
        &team_b.join("policy"),
        &[("trustpolicy.json", &policy(&repo, "ca:gone"))],
    );
    assert!(
        eventually(Duration::from_secs(10), async || probe(probes, "/readyz")
            .await
            .0
            == 503)
        .await
    );
    let (_, body) = probe(probes, "/readyz").await;
    assert!(
        body.contains("namespace team-b") && body.contains("ca:gone"),
        "{body}"
    );
}

/// `signet serve --check-config`: the configuration and every namespace's trust load.
fn signet_check(cfg: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["serve", "--check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}
