//! `signet serve` with the real verification engine against Debian's real `docker-registry`:
//! verified / unsigned / untrusted answers on all three endpoints, and a trust policy reload
//! (Kubernetes-style `..data` swap) that changes answers and readiness without a restart,
//! while an invalid new policy keeps the old one and a missing store takes trust away.
//!
//! NOTE: this file needs the engine pipeline (`signet-engine`, issue #4's other half). While
//! `TrustSnapshot::load` / `Engine::new` are stubs, the server never becomes ready and the
//! test fails at its first readiness check; it passes once the engine is merged.
#![allow(clippy::unwrap_used)]

mod serve_support;
// The registry harness (real docker-registry, push helpers) lives in the testkit.
use signet_testkit::registry as support;

use std::time::Duration;

use serde_json::json;
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

#[tokio::test]
async fn real_verdicts_and_trust_reload() {
    let reg_pki = TestPki::new();
    let reg = Registry::start(&reg_pki, RegistryAuth::None).await;
    let pusher = Pusher::new(&reg.url(), reg_pki.client_config(), None);
    let ca = TestCa::new("Signet Serve Test Signing CA", KeyKind::P256);
    let signer = ca.issue(&LeafOptions::new("signer", KeyKind::P256));
    let signed = pusher.image("team/app", "v1").await;
    pusher
        .signature(
            "team/app",
            &signed,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    pusher.image("team/app", "unsigned").await;
    let repo = format!("{}/team/app", reg.host);
    let signed_ref = format!("{repo}:v1");
    let unsigned_ref = format!("{repo}:unsigned");

    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    std::fs::write(dir.path().join("registry-ca.crt"), &reg_pki.ca_pem).unwrap();
    let cfg = setup(
        dir.path(),
        &pki,
        &policy(&repo, "ca:test"),
        &format!(
            "registry:\n  caFiles: [{}/registry-ca.crt]\n",
            dir.path().display()
        ),
    );
    std::fs::write(
        dir.path().join("truststore/x509/ca/test/ca.crt"),
        ca.cert_pem(),
    )
    .unwrap();
    let serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
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

    let (status, v) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/verify",
        &provider_request(&[&signed_ref, &unsigned_ref]),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let items = &v["response"]["items"];
    assert_eq!(items[0]["value"]["verified"], true, "{v}");
    assert_eq!(items[0]["value"]["isSuccess"], true);
    assert_eq!(items[0]["value"]["digest"], signed.digest.as_str());
    assert_eq!(items[0]["value"]["signatures"][0]["verified"], true);
    assert_eq!(
        items[1]["value"]["error"]["code"], "SIGNATURE_NOT_FOUND",
        "{v}"
    );
    // The statement and level applied, and the checks only logged (none at strict).
    assert_eq!(items[0]["value"]["policy"], "team", "{v}");
    assert_eq!(items[0]["value"]["level"], "strict", "{v}");
    assert_eq!(items[0]["value"]["logged"], json!([]), "{v}");

    // The engine's statistics and the trusted certificates' expiry are on /metrics.
    let (_, again) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/verify",
        &provider_request(&[&signed_ref]),
    )
    .await
    .unwrap();
    assert_eq!(again["response"]["items"][0]["value"]["verified"], true);
    let (_, text) = probe(probes, "/metrics").await;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{prefix} not in\n{text}"))
    };
    assert_eq!(value("signet_engine_answers_total{code=\"VERIFIED\"}"), 2.0);
    assert_eq!(
        value("signet_engine_answers_total{code=\"SIGNATURE_NOT_FOUND\"}"),
        1.0
    );
    assert!(value("signet_verdict_cache_hits_total") >= 1.0);
    assert!(value("signet_verdict_cache_misses_total") >= 1.0);
    assert!(value("signet_resolve_cache_misses_total") >= 1.0);
    assert!(value("signet_registry_requests_total") >= 1.0);
    assert_eq!(value("signet_verifications_in_flight"), 0.0);
    assert!(value("signet_verdict_cache_entries") >= 0.0);
    assert!(value("signet_verdict_coalesced_total") >= 0.0);
    assert!(
        value("signet_registry_request_duration_seconds_bucket{le=\"+Inf\",operation=\"resolve\"}")
            >= 1.0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let expiry = value(
        "signet_trust_certificate_expiry_timestamp_seconds{store_type=\"ca\",store=\"test\",subject=\"",
    );
    assert!(expiry > now, "{text}");
    assert!(text.contains("CN=Signet Serve Test Signing CA"), "{text}");
    assert!(text.contains("signet_build_info{version=\""), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");

    let (_, v) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/mutate",
        &provider_request(&[&signed_ref]),
    )
    .await
    .unwrap();
    assert_eq!(
        v["response"]["items"][0]["value"],
        format!("{signed_ref}@{}", signed.digest)
    );

    let review = |image: &str| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "namespace": "team", "operation": "CREATE",
                    "object": {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": image}]}}}}).to_string()
    };
    let (_, v) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/admit",
        &review(&signed_ref),
    )
    .await
    .unwrap();
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let (_, v) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/admit",
        &review(&unsigned_ref),
    )
    .await
    .unwrap();
    assert_eq!(v["response"]["allowed"], false, "{v}");
    assert!(v["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("SIGNATURE_NOT_FOUND"));

    // An invalid new policy (a typo): the old one stays.
    k8s_mount(
        &dir.path().join("policy"),
        &[(
            "trustpolicy.json",
            &String::from_utf8(policy(&repo, "ca:test"))
                .unwrap()
                .replace("\"strict\"", "\"strickt\"")
                .into_bytes(),
        )],
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            probe(probes, "/metrics")
                .await
                .1
                .contains("signet_reloads_total{what=\"trust\",result=\"failed\"} 1")
        })
        .await
    );
    assert_eq!(probe(probes, "/readyz").await.0, 200);
    let (_, v) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/verify",
        &provider_request(&[&signed_ref]),
    )
    .await
    .unwrap();
    assert_eq!(v["response"]["items"][0]["value"]["verified"], true, "{v}");

    // A valid policy naming a store that does not exist: applied without it, so trust
    // removal takes effect; not ready, with the reason, and the signer is not trusted.
    k8s_mount(
        &dir.path().join("policy"),
        &[("trustpolicy.json", &policy(&repo, "ca:missing"))],
    );
    assert!(
        eventually(Duration::from_secs(10), async || probe(probes, "/readyz")
            .await
            .0
            == 503)
        .await
    );
    let (_, body) = probe(probes, "/readyz").await;
    assert!(body.contains("ca:missing"), "{body}");
    let (_, v) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/verify",
        &provider_request(&[&signed_ref]),
    )
    .await
    .unwrap();
    assert_eq!(
        v["response"]["items"][0]["value"]["error"]["code"], "UNTRUSTED_SIGNER",
        "{v}"
    );

    // A good new policy that no longer covers the repository: answers change, no restart.
    k8s_mount(
        &dir.path().join("policy"),
        &[("trustpolicy.json", &policy("other.example/x", "ca:test"))],
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            let (_, v) = call(
                serve.addr,
                gk.clone(),
                "POST",
                "/v1/verify",
                &provider_request(&[&signed_ref]),
            )
            .await
            .unwrap();
            v["response"]["items"][0]["value"]["error"]["code"] == "NO_TRUST_POLICY"
        })
        .await
    );
    let (_, text) = probe(probes, "/metrics").await;
    assert!(
        text.contains("signet_reloads_total{what=\"trust\",result=\"ok\"} 2"),
        "{text}"
    );
    assert!(text.contains("signet_trust_generation 3"), "{text}");
    assert_eq!(probe(probes, "/readyz").await.0, 200);
}

/// The provider's answers for a multi-arch image under `multiArch` mode `platforms`: each
/// signature entry names the platform manifest whose signature decided, and an unsigned
/// platform denies the image with a message naming it.
#[tokio::test]
async fn provider_answers_name_the_platform_manifests_of_multi_arch_images() {
    let reg_pki = TestPki::new();
    let reg = Registry::start(&reg_pki, RegistryAuth::None).await;
    let pusher = Pusher::new(&reg.url(), reg_pki.client_config(), None);
    let ca = TestCa::new("Signet Serve Multi-Arch CA", KeyKind::P256);
    let signer = ca.issue(&LeafOptions::new("signer", KeyKind::P256));
    let mut indexes = Vec::new();
    let mut platforms = Vec::new();
    for tag in ["all", "half"] {
        let amd64 = pusher.image("team/app", &format!("{tag}-amd64")).await;
        let arm64 = pusher.image("team/app", &format!("{tag}-arm64")).await;
        let entry = |d: &signet_notation::Descriptor, arch: &str| {
            json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size,
                   "platform": {"os": "linux", "architecture": arch}})
        };
        let index = json!({"schemaVersion": 2, "mediaType": support::push::OCI_INDEX,
                           "manifests": [entry(&amd64, "amd64"), entry(&arm64, "arm64")]});
        let index = pusher
            .manifest(
                "team/app",
                tag,
                support::push::OCI_INDEX,
                &serde_json::to_vec(&index).unwrap(),
            )
            .await;
        let signed: &[&signet_notation::Descriptor] = if tag == "all" {
            &[&amd64, &arm64]
        } else {
            &[&amd64]
        };
        for d in signed {
            pusher
                .signature(
                    "team/app",
                    d,
                    &signer,
                    EnvelopeKind::Cose,
                    SigStyle::Current,
                    true,
                )
                .await;
        }
        indexes.push(index);
        platforms.push((amd64, arm64));
    }
    let repo = format!("{}/team/app", reg.host);

    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    std::fs::write(dir.path().join("registry-ca.crt"), &reg_pki.ca_pem).unwrap();
    let cfg = setup(
        dir.path(),
        &pki,
        &policy(&repo, "ca:test"),
        &format!(
            "registry:\n  caFiles: [{}/registry-ca.crt]\nmultiArch:\n  statements:\n    team: {{mode: platforms}}\n",
            dir.path().display()
        ),
    );
    std::fs::write(
        dir.path().join("truststore/x509/ca/test/ca.crt"),
        ca.cert_pem(),
    )
    .unwrap();
    let serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let probes = serve.probes.unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || probe(probes, "/readyz")
            .await
            .0
            == 200)
        .await,
        "not ready: {:#?}",
        serve.logs()
    );
    let gk = client_config(&pki.server_ca.pem, Some(&pki.client));
    let (status, v) = call(
        serve.addr,
        gk,
        "POST",
        "/v1/verify",
        &provider_request(&[&format!("{repo}:all"), &format!("{repo}:half")]),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let all = &v["response"]["items"][0]["value"];
    assert_eq!(all["verified"], true, "{v}");
    assert_eq!(all["digest"], indexes[0].digest.as_str());
    let manifests: Vec<&str> = all["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["manifest"].as_str().unwrap())
        .collect();
    assert_eq!(
        manifests,
        vec![
            platforms[0].0.digest.as_str(),
            platforms[0].1.digest.as_str()
        ]
    );
    assert_eq!(all["signatures"][0]["format"], "notation");
    let half = &v["response"]["items"][1]["value"];
    assert_eq!(half["verified"], false, "{v}");
    assert_eq!(half["error"]["code"], "SIGNATURE_NOT_FOUND");
    let message = half["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("linux/arm64") && message.contains(&platforms[1].1.digest),
        "{message}"
    );
}
