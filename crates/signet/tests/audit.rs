//! `signet audit` against Debian's real `docker-registry` (TLS + htpasswd), run as the built
//! binary on kubectl-like `List` documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use signet_testkit::registry as support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, TestCa};
use support::push::{Pusher, SigStyle};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;

const USER: &str = "auditor";
const PASS: &str = "audit-pass";

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Trust policy, store, Docker config and registry CA, and a service configuration naming
/// them (with `extra` YAML appended).
fn write_config(
    dir: &Path,
    registry_host: &str,
    pki: &TestPki,
    ca: &TestCa,
    extra: &str,
) -> PathBuf {
    let store = dir.join("store");
    std::fs::create_dir_all(store.join("x509/ca/test")).unwrap();
    std::fs::write(store.join("x509/ca/test/ca.pem"), ca.cert_pem()).unwrap();
    let policy = dir.join("trustpolicy.json");
    let doc = json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "team", "registryScopes": [format!("{registry_host}/team/app")],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:test"], "trustedIdentities": ["*"]
        }]
    });
    std::fs::write(&policy, doc.to_string()).unwrap();
    let docker = dir.join("config.json");
    let auths = json!({"auths": {registry_host: {"auth": b64(&format!("{USER}:{PASS}"))}}});
    std::fs::write(&docker, auths.to_string()).unwrap();
    let registry_ca = dir.join("registry-ca.pem");
    std::fs::write(&registry_ca, &pki.ca_pem).unwrap();
    let config = dir.join(format!("config-{}.yaml", extra.len()));
    std::fs::write(
        &config,
        format!(
            "trust:\n  policyFile: {}\n  storeRoot: {}\nregistry:\n  dockerConfig: {}\n  caFiles: [{}]\n{extra}",
            policy.display(),
            store.display(),
            docker.display(),
            registry_ca.display()
        ),
    )
    .unwrap();
    config
}

/// Runs `signet audit ARGS`, feeding `stdin` when given.
fn audit(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
        .arg("audit")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn pod_spec(containers: &[&str]) -> Value {
    json!({"containers": containers.iter().enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect::<Vec<_>>()})
}

/// `kubectl get pods,deployments,replicasets,cronjobs,services -A -o json` of two namespaces:
/// shop (a Deployment with its ReplicaSet and Pod, all signed; a CronJob on the unsigned
/// image) and tools (a bare Pod whose init container is unsigned and whose debug container
/// names no valid reference; a Service).
fn cluster(signed: &str, unsigned: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "web-7d9f-x2x", "namespace": "shop", "uid": "pod-1",
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f",
                                           "uid": "rs-1", "controller": true, "blockOwnerDeletion": true}]},
         "spec": pod_spec(&[signed]), "status": {"phase": "Running"}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "debug", "namespace": "tools", "uid": "pod-2"},
         "spec": {"initContainers": [{"name": "init", "image": unsigned}],
                  "containers": [{"name": "main", "image": signed}],
                  "ephemeralContainers": [{"name": "dbg", "image": "Not A Reference"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "shop", "uid": "deploy-1"},
         "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec(&[signed])}}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": "web-7d9f", "namespace": "shop", "uid": "rs-1",
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                           "uid": "deploy-1", "controller": true}]},
         "spec": {"template": {"spec": pod_spec(&[signed])}}},
        {"apiVersion": "batch/v1", "kind": "CronJob",
         "metadata": {"name": "nightly", "namespace": "shop", "uid": "cron-1"},
         "spec": {"schedule": "0 3 * * *",
                  "jobTemplate": {"spec": {"template": {"spec": pod_spec(&[unsigned])}}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {}}
    ]})
}

#[tokio::test]
async fn audit_reports_what_admission_would_deny() {
    let pki = TestPki::new();
    let reg = Registry::start(
        &pki,
        RegistryAuth::Htpasswd {
            username: USER.into(),
            password: PASS.into(),
        },
    )
    .await;
    let pusher = Pusher::new(
        &reg.url(),
        pki.client_config(),
        Some(format!("Basic {}", b64(&format!("{USER}:{PASS}")))),
    );
    let ca = TestCa::new("Signet Audit Test CA", KeyKind::P256);
    let signer = ca.issue(&LeafOptions::new("audit signer", KeyKind::P256));
    let signed_image = pusher.image("team/app", "signed").await;
    pusher
        .signature(
            "team/app",
            &signed_image,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    pusher.image("team/app", "unsigned").await;
    let signed = format!("{}/team/app:signed", reg.host);
    let unsigned = format!("{}/team/app:unsigned", reg.host);

    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &reg.host, &pki, &ca, "");
    let config = config.to_str().unwrap();
    let input = tmp.path().join("cluster.json");
    std::fs::write(&input, cluster(&signed, &unsigned).to_string()).unwrap();
    let input = input.to_str().unwrap();

    let out = tokio::task::spawn_blocking({
        let args = ["--config", config, "--output", "json", input].map(String::from);
        move || audit(&args.each_ref().map(String::as_str), None)
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    // Each distinct image once, sorted; a reference that does not parse is denied too.
    let images = report["images"].as_array().unwrap();
    let image_names: Vec<&str> = images
        .iter()
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        image_names,
        [signed.as_str(), unsigned.as_str(), "Not A Reference"],
        "{report}"
    );
    assert_eq!(images[0]["verified"], true, "{report}");
    assert!(images[0]["error"].is_null());
    assert_eq!(images[1]["verified"], false);
    assert_eq!(
        images[1]["error"]["code"], "SIGNATURE_NOT_FOUND",
        "{report}"
    );
    assert!(!images[1]["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(images[2]["error"]["code"], "INVALID_REFERENCE", "{report}");
    // The Deployment's ReplicaSet and Pod are reported under it; the Service is no workload.
    assert_eq!(
        report["workloads"],
        json!([
            {"namespace": "shop", "kind": "CronJob", "name": "nightly", "denied": [unsigned]},
            {"namespace": "shop", "kind": "Deployment", "name": "web", "denied": []},
            {"namespace": "tools", "kind": "Pod", "name": "debug", "denied": [unsigned, "Not A Reference"]},
        ]),
        "{report}"
    );
    assert_eq!(report["excluded"], json!({"namespaces": [], "images": []}));

    // Text, from standard input: grouped by namespace, with code and message, and a summary.
    let document = cluster(&signed, &unsigned).to_string();
    let out = tokio::task::spawn_blocking({
        let config = config.to_owned();
        move || audit(&["--config", &config, "-"], Some(&document))
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("namespace shop\n  CronJob nightly: would be denied\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("    {unsigned}: SIGNATURE_NOT_FOUND: ")),
        "{text}"
    );
    assert!(
        text.contains("namespace tools\n  Pod debug: would be denied\n"),
        "{text}"
    );
    assert!(!text.contains("Deployment web"), "{text}");
    assert!(
        text.contains("2 of 3 workload(s) would be denied; 2 of 3 image(s) failed verification"),
        "{text}"
    );
    assert!(
        text.contains("ignored (not workloads): 1 Service"),
        "{text}"
    );
    // Progress goes to a terminal only.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("verified 1/"));

    // What admission leaves out, audit leaves out: with tools and the unsigned image
    // excluded, nothing would be denied (exit 0), and the JSON says what was not checked.
    let excluding = write_config(
        tmp.path(),
        &reg.host,
        &pki,
        &ca,
        "admission:\n  excludeNamespaces: [\"tool*\"]\n  excludeImages: [\"*/team/app:unsigned\"]\n",
    );
    let out = tokio::task::spawn_blocking({
        let args = [
            "--config".to_owned(),
            excluding.display().to_string(),
            "--output".into(),
            "json".into(),
            input.to_owned(),
        ];
        move || audit(&args.each_ref().map(String::as_str), None)
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    assert_eq!(
        report["images"],
        json!([{"image": signed, "verified": true, "error": null}])
    );
    assert_eq!(
        report["workloads"],
        json!([
            {"namespace": "shop", "kind": "CronJob", "name": "nightly", "denied": []},
            {"namespace": "shop", "kind": "Deployment", "name": "web", "denied": []},
        ])
    );
    assert_eq!(
        report["excluded"],
        json!({"namespaces": ["tools"], "images": [unsigned]})
    );

    // One workload object (not a List), with the trust flags instead of a configuration:
    // exit 0.
    let deployment = cluster(&signed, &unsigned)["items"][2].to_string();
    let dir = tmp.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        audit(
            &[
                "--trust-policy",
                dir.join("trustpolicy.json").to_str().unwrap(),
                "--trust-store",
                dir.join("store").to_str().unwrap(),
                "--docker-config",
                dir.join("config.json").to_str().unwrap(),
                "--registry-ca",
                dir.join("registry-ca.pem").to_str().unwrap(),
                "--output",
                "json",
            ],
            Some(&deployment),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_of(&out)["workloads"],
        json!([{"namespace": "shop", "kind": "Deployment", "name": "web", "denied": []}])
    );
}

/// Exit 2, with a message naming what was wrong, before any registry is asked.
#[test]
fn bad_input_and_usage_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("store")).unwrap();
    let policy = tmp.path().join("trustpolicy.json");
    std::fs::write(
        &policy,
        json!({"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"],
            "signatureVerification": {"level": "skip"}}]})
        .to_string(),
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let store = tmp.path().join("store");
    let store = store.to_str().unwrap();
    let trust = ["--trust-policy", policy, "--trust-store", store];
    let run = |stdin: &str| audit(&trust, Some(stdin));
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();

    for (input, expected) in [
        ("{\"kind\": \"List\", ", "standard input: not JSON: EOF while parsing"),
        ("[1, 2]", "not a Kubernetes List: the document is a JSON array"),
        ("{\"kind\": \"Secret\", \"apiVersion\": \"v1\"}", "not a Kubernetes List: kind \"Secret\" is neither"),
        (
            "{\"kind\": \"List\", \"items\": [{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"web\", \"namespace\": \"shop\"}, \"spec\": {}}]}",
            "items[0]: Deployment shop/web has no .spec.template.spec",
        ),
    ] {
        let out = run(input);
        assert_eq!(out.status.code(), Some(2), "{input}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{input}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }

    // An empty List: nothing would be denied.
    let out = run("{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": []}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A missing file.
    let missing = tmp.path().join("missing.json");
    let mut args = trust.to_vec();
    args.push(missing.to_str().unwrap());
    let out = audit(&args, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read input file"),
        "{}",
        stderr(&out)
    );

    // No trust material.
    let out = audit(&["--output", "json"], Some("{}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--trust-policy FILE is required"),
        "{}",
        stderr(&out)
    );

    // A configuration that does not validate.
    let config = tmp.path().join("bad.yaml");
    std::fs::write(&config, "limits:\n  requestDeadline: 1h\n").unwrap();
    let out = audit(&["--config", config.to_str().unwrap()], Some("{}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("limits.requestDeadline"),
        "{}",
        stderr(&out)
    );
}

/// A namespace with trust of its own (`namespaces:`) is audited under it, as `/v1/admit`
/// verifies it: the same image is denied in shop (whose trust does not know the signer)
/// and admitted in tools (the cluster's trust).
#[tokio::test]
async fn audit_applies_each_namespaces_own_trust() {
    let pki = TestPki::new();
    let reg = Registry::start(
        &pki,
        RegistryAuth::Htpasswd {
            username: USER.into(),
            password: PASS.into(),
        },
    )
    .await;
    let pusher = Pusher::new(
        &reg.url(),
        pki.client_config(),
        Some(format!("Basic {}", b64(&format!("{USER}:{PASS}")))),
    );
    let ca = TestCa::new("Signet Audit Test CA", KeyKind::P256);
    let signer = ca.issue(&LeafOptions::new("audit signer", KeyKind::P256));
    let signed_image = pusher.image("team/app", "signed").await;
    pusher
        .signature(
            "team/app",
            &signed_image,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    pusher.image("team/app", "unsigned").await;
    let signed = format!("{}/team/app:signed", reg.host);
    let unsigned = format!("{}/team/app:unsigned", reg.host);

    let tmp = tempfile::tempdir().unwrap();
    let shop = tmp.path().join("shop");
    let other = TestCa::new("Shop's Own CA", KeyKind::P256);
    std::fs::create_dir_all(shop.join("store/x509/ca/shop")).unwrap();
    std::fs::write(shop.join("store/x509/ca/shop/ca.pem"), other.cert_pem()).unwrap();
    let doc = json!({"version": "1.0", "trustPolicies": [{
        "name": "shop", "registryScopes": [format!("{}/team/app", reg.host)],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:shop"], "trustedIdentities": ["*"]}]});
    std::fs::write(shop.join("trustpolicy.json"), doc.to_string()).unwrap();
    let extra = format!(
        "namespaces:\n  shop:\n    trust:\n      policyFile: {}\n      storeRoot: {}\n",
        shop.join("trustpolicy.json").display(),
        shop.join("store").display()
    );
    let config = write_config(tmp.path(), &reg.host, &pki, &ca, &extra);
    let config = config.to_str().unwrap();
    let input = tmp.path().join("cluster.json");
    std::fs::write(&input, cluster(&signed, &unsigned).to_string()).unwrap();
    let input = input.to_str().unwrap();

    let out = tokio::task::spawn_blocking({
        let args = ["--config", config, "--output", "json", input].map(String::from);
        move || audit(&args.each_ref().map(String::as_str), None)
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    let verdict = |image: &str, ns: Option<&str>| -> Value {
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["image"] == image && i.get("trustNamespace").and_then(Value::as_str) == ns)
            .unwrap_or_else(|| panic!("{image} under {ns:?} not in {report:#}"))
            .clone()
    };
    let in_shop = verdict(&signed, Some("shop"));
    assert_eq!(in_shop["verified"], false, "{report:#}");
    assert_eq!(in_shop["error"]["code"], "UNTRUSTED_SIGNER", "{report:#}");
    assert_eq!(verdict(&signed, None)["verified"], true, "{report:#}");
    let denied = |ns: &str, kind: &str, name: &str| -> Vec<String> {
        let w = report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["namespace"] == ns && w["kind"] == kind && w["name"] == name)
            .unwrap_or_else(|| panic!("{ns}/{kind}/{name} not in {report:#}"));
        serde_json::from_value(w["denied"].clone()).unwrap()
    };
    assert_eq!(denied("shop", "Deployment", "web"), vec![signed.clone()]);
    let tools = denied("tools", "Pod", "debug");
    assert!(!tools.contains(&signed), "{tools:?}");
    assert!(tools.contains(&unsigned), "{tools:?}");

    // Text output names the namespace's verdict.
    let out = tokio::task::spawn_blocking({
        let args = ["--config", config, input].map(String::from);
        move || audit(&args.each_ref().map(String::as_str), None)
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{signed}: UNTRUSTED_SIGNER")),
        "{text}"
    );
}
