//! `signet verify REFERENCE…` against Debian's real `docker-registry` (TLS + htpasswd,
//! no referrers API: the tag-schema fallback), run as the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The registry harness (real docker-registry, push helpers) lives in the testkit.
use signet_testkit::registry as support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, TestCa};
use support::push::{Pusher, SigStyle};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

struct Files {
    _dir: tempfile::TempDir,
    policy: PathBuf,
    store: PathBuf,
    docker_config: PathBuf,
    ca: PathBuf,
}

fn files(root: &Path, registry_host: &str, pki: &TestPki, signing_ca: &TestCa) -> Files {
    let dir = tempfile::tempdir_in(root).unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("x509/ca/test")).unwrap();
    std::fs::write(store.join("x509/ca/test/ca.pem"), signing_ca.cert_pem()).unwrap();
    let policy = dir.path().join("trustpolicy.json");
    let doc = serde_json::json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "team", "registryScopes": [format!("{registry_host}/team/app")],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:test"], "trustedIdentities": ["*"]
        }]
    });
    std::fs::write(&policy, doc.to_string()).unwrap();
    let docker_config = dir.path().join("config.json");
    let auths =
        serde_json::json!({"auths": {registry_host: {"auth": b64(&format!("{USER}:{PASS}"))}}});
    std::fs::write(&docker_config, auths.to_string()).unwrap();
    let ca = dir.path().join("registry-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    Files {
        _dir: dir,
        policy,
        store,
        docker_config,
        ca,
    }
}

async fn signet(f: &Files, extra: &[&str], references: &[String]) -> (Option<i32>, Value, String) {
    let mut args: Vec<String> = vec![
        "verify".into(),
        "--trust-policy".into(),
        f.policy.display().to_string(),
        "--trust-store".into(),
        f.store.display().to_string(),
        "--docker-config".into(),
        f.docker_config.display().to_string(),
        "--registry-ca".into(),
        f.ca.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(references.iter().cloned());
    let out: Output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    (out.status.code(), json, stderr)
}

#[tokio::test]
async fn verify_against_a_real_registry() {
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
    let ca = TestCa::new("Signet CLI Test CA", KeyKind::P256);
    let signer = ca.issue(&LeafOptions::new("cli signer", KeyKind::P256));
    let signed = pusher.image("team/app", "signed").await;
    let sig = pusher
        .signature(
            "team/app",
            &signed,
            &signer,
            EnvelopeKind::Jws,
            SigStyle::Current,
            true,
        )
        .await;
    let unsigned = pusher.image("team/app", "unsigned").await;

    let tmp = tempfile::tempdir().unwrap();
    let f = files(tmp.path(), &reg.host, &pki, &ca);
    let signed_ref = format!("{}/team/app:signed", reg.host);
    let unsigned_ref = format!("{}/team/app:unsigned", reg.host);
    let json = ["--output", "json"];

    // The same through --config (the service configuration `serve` reads): trust and
    // registry settings come from the file.
    let config = f._dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "trust:\n  policyFile: {}\n  storeRoot: {}\nregistry:\n  dockerConfig: {}\n  caFiles: [{}]\n",
            f.policy.display(),
            f.store.display(),
            f.docker_config.display(),
            f.ca.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["verify", "--config"])
        .arg(&config)
        .args(["--output", "json", &signed_ref, &unsigned_ref])
        .output()
        .unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(answer["results"][0]["verified"], true, "{answer}");
    assert_eq!(
        answer["results"][1]["error"]["code"], "SIGNATURE_NOT_FOUND",
        "{answer}"
    );

    // Signed: exit 0.
    let (code, out, err) = signet(&f, &json, std::slice::from_ref(&signed_ref)).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let r = &out["results"][0];
    assert_eq!(r["reference"], signed_ref.as_str());
    assert_eq!(r["verified"], true);
    assert_eq!(r["digest"], signed.digest.as_str());
    assert_eq!(r["policy"], "team");
    assert_eq!(r["level"], "strict");
    assert!(r["error"].is_null());
    assert_eq!(r["signatures"][0]["digest"], sig.manifest.digest.as_str());
    assert_eq!(r["signatures"][0]["mediaType"], "application/jose+json");
    assert_eq!(r["signatures"][0]["format"], "notation");
    assert_eq!(r["signatures"][0]["verified"], true);
    assert!(r["signatures"][0]["signer"]
        .as_str()
        .unwrap()
        .contains("CN=cli signer"));

    // Unsigned: exit 1, SIGNATURE_NOT_FOUND.
    let (code, out, err) = signet(&f, &json, std::slice::from_ref(&unsigned_ref)).await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    let r = &out["results"][0];
    assert_eq!(r["verified"], false);
    assert_eq!(r["digest"], unsigned.digest.as_str());
    assert_eq!(r["error"]["code"], "SIGNATURE_NOT_FOUND");
    assert!(!r["error"]["message"].as_str().unwrap().is_empty());

    // Both (and the signed one by digest): exit 1, one result per reference, in order.
    let by_digest = format!("{}/team/app@{}", reg.host, signed.digest);
    let (code, out, err) = signet(
        &f,
        &json,
        &[unsigned_ref.clone(), signed_ref.clone(), by_digest.clone()],
    )
    .await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["reference"], unsigned_ref.as_str());
    assert_eq!(results[0]["error"]["code"], "SIGNATURE_NOT_FOUND");
    assert_eq!(results[1]["reference"], signed_ref.as_str());
    assert_eq!(results[1]["verified"], true);
    assert_eq!(results[2]["reference"], by_digest.as_str());
    assert_eq!(results[2]["verified"], true);

    // Text output.
    let (code, out, err) = signet(&f, &[], std::slice::from_ref(&signed_ref)).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.as_str().unwrap().starts_with("VERIFIED"), "{out}");

    // --user-metadata reaches verification: the signature carries no such annotation.
    let (code, out, err) = signet(
        &f,
        &["--output", "json", "--user-metadata", "team=blue"],
        std::slice::from_ref(&signed_ref),
    )
    .await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert_eq!(out["results"][0]["verified"], false);

    // No credentials: REGISTRY_AUTH_FAILED (exit 1).
    let empty = tmp.path().join("empty-config.json");
    std::fs::write(&empty, "{}").unwrap();
    let mut anonymous = files(tmp.path(), &reg.host, &pki, &ca);
    anonymous.docker_config = empty;
    let (code, out, _) = signet(&anonymous, &json, std::slice::from_ref(&signed_ref)).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out["results"][0]["error"]["code"], "REGISTRY_AUTH_FAILED");

    // A malformed reference is a failed result (exit 1), not a usage error.
    let (code, out, _) = signet(&f, &json, &["UPPER/Case:bad:tag".to_owned()]).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out["results"][0]["error"]["code"], "INVALID_REFERENCE");

    // Unreadable trust policy, bad Docker config, bad registry CA: exit 2.
    let mut broken = files(tmp.path(), &reg.host, &pki, &ca);
    std::fs::write(&broken.policy, "{not json").unwrap();
    let (code, _, err) = signet(&broken, &json, std::slice::from_ref(&signed_ref)).await;
    assert_eq!(code, Some(2), "{err}");
    broken.policy = f.policy.clone();
    std::fs::write(&broken.docker_config, "{not json").unwrap();
    let (code, _, err) = signet(&broken, &json, std::slice::from_ref(&signed_ref)).await;
    assert_eq!(code, Some(2), "{err}");
    broken.docker_config = f.docker_config.clone();
    std::fs::write(&broken.ca, "not a pem").unwrap();
    let (code, _, err) = signet(&broken, &json, std::slice::from_ref(&signed_ref)).await;
    assert_eq!(code, Some(2), "{err}");
}

/// Pushes an index of linux/amd64 and linux/arm64 images under `tag`; returns the index and
/// the two platform manifests.
async fn push_multi_arch(
    pusher: &Pusher,
    repo: &str,
    tag: &str,
) -> (
    signet_notation::Descriptor,
    signet_notation::Descriptor,
    signet_notation::Descriptor,
) {
    use serde_json::json;
    let amd64 = pusher.image(repo, &format!("{tag}-amd64")).await;
    let arm64 = pusher.image(repo, &format!("{tag}-arm64")).await;
    let entry = |d: &signet_notation::Descriptor, arch: &str| {
        json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size,
               "platform": {"os": "linux", "architecture": arch}})
    };
    let index = json!({"schemaVersion": 2, "mediaType": support::push::OCI_INDEX,
                       "manifests": [entry(&amd64, "amd64"), entry(&arm64, "arm64")]});
    let index = pusher
        .manifest(
            repo,
            tag,
            support::push::OCI_INDEX,
            &serde_json::to_vec(&index).unwrap(),
        )
        .await;
    (index, amd64, arm64)
}

#[tokio::test]
async fn multi_arch_per_platform_through_the_configuration() {
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
    let ca = TestCa::new("Signet CLI Multi-Arch CA", KeyKind::P256);
    let signer = ca.issue(&LeafOptions::new("cli signer", KeyKind::P256));
    let (index, amd64, arm64) = push_multi_arch(&pusher, "team/app", "multi").await;
    pusher
        .signature(
            "team/app",
            &amd64,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    pusher
        .signature(
            "team/app",
            &arm64,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    let (_, half_amd64, half_arm64) = push_multi_arch(&pusher, "team/app", "half").await;
    pusher
        .signature(
            "team/app",
            &half_amd64,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;

    let tmp = tempfile::tempdir().unwrap();
    let f = files(tmp.path(), &reg.host, &pki, &ca);
    let config = f._dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "trust:\n  policyFile: {}\n  storeRoot: {}\nregistry:\n  dockerConfig: {}\n  caFiles: [{}]\n\
             multiArch:\n  statements:\n    team: {{mode: platforms}}\n",
            f.policy.display(),
            f.store.display(),
            f.docker_config.display(),
            f.ca.display()
        ),
    )
    .unwrap();
    let run = |reference: String| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
                .args(["verify", "--config"])
                .arg(&config)
                .args(["--output", "json", &reference])
                .output()
                .unwrap()
        })
    };
    let out = run(format!("{}/team/app:multi", reg.host)).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let r = &doc["results"][0];
    assert_eq!(r["digest"], index.digest.as_str());
    let manifests: Vec<&str> = r["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verified"] == true)
        .map(|s| s["manifest"].as_str().unwrap())
        .collect();
    assert_eq!(
        manifests,
        vec![amd64.digest.as_str(), arm64.digest.as_str()]
    );

    let out = run(format!("{}/team/app:half", reg.host)).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &doc["results"][0]["error"];
    assert_eq!(e["code"], "SIGNATURE_NOT_FOUND");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("linux/arm64") && message.contains(&half_arm64.digest),
        "{message}"
    );
}
