//! `signet verify --config` with a `dct:` section, against the real Notary v1 server (tag
//! published with the real `notary` client) and Debian's real `docker-registry`: the built
//! binary admits a DCT-signed tag during the migration window and names the mechanism.
#![allow(clippy::unwrap_used)]

// The Notary server and client harness of signet-dct's own tests.
#[path = "../../signet-dct/tests/common/mod.rs"]
mod common;

use serde_json::Value;
use signet_testkit::registry::push::Pusher;
use signet_testkit::registry::registry::{Registry, RegistryAuth};
use signet_testkit::registry::tls::TestPki;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_admits_a_dct_signed_tag_until_the_window_ends() {
    let Some(notary) = common::Notary::start().await else {
        return;
    };
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
    let image = pusher.image("team/app", "v1").await;
    let gun = format!("{}/team/app", reg.host);
    let client = notary.client("app");
    client.init(&gun);
    client.add(&gun, "v1", &image.digest, image.size as u64, None);
    client.publish(&gun);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("store/x509/ca/test")).unwrap();
    std::fs::write(d.join("store/x509/ca/test/ca.pem"), &pki.ca_pem).unwrap();
    let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
        "name": "team", "registryScopes": [gun.clone()],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:test"], "trustedIdentities": ["*"]}]});
    std::fs::write(d.join("trustpolicy.json"), policy.to_string()).unwrap();
    let auths =
        serde_json::json!({"auths": {reg.host.clone(): {"auth": b64(&format!("{USER}:{PASS}"))}}});
    std::fs::write(d.join("docker.json"), auths.to_string()).unwrap();
    std::fs::write(d.join("registry-ca.pem"), &pki.ca_pem).unwrap();
    let config = |until: &str| {
        let yaml = serde_json::json!({
            "trust": {"policyFile": d.join("trustpolicy.json"), "storeRoot": d.join("store")},
            "registry": {"dockerConfig": d.join("docker.json"), "caFiles": [d.join("registry-ca.pem")]},
            "dct": {
                "migrationUntil": until,
                "repositories": [{"scope": format!("{}/team/*", reg.host), "server": notary.url,
                                  "rootKeys": [client.root_key_id()], "serverCa": notary.pki.ca_pem}],
            },
        });
        // JSON is YAML.
        let path = d.join(format!("config-{}.yaml", &until[..4]));
        std::fs::write(&path, yaml.to_string()).unwrap();
        path
    };
    let run = |config: std::path::PathBuf, reference: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
                .args(["verify", "--config"])
                .arg(&config)
                .args(["--output", "json", &reference])
                .env_remove("HTTPS_PROXY")
                .env_remove("https_proxy")
                .output()
                .unwrap()
        })
    };
    let reference = format!("{}/team/app:v1", reg.host);

    let out = run(config("2999-01-01T00:00:00Z"), reference.clone())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let sig = &doc["results"][0]["signatures"][0];
    assert_eq!(sig["format"], "dct");
    assert_eq!(sig["verified"], true);
    assert_eq!(sig["manifest"], image.digest.as_str());

    let out = run(config("2020-01-01T00:00:00Z"), reference)
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = doc["results"][0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("migration window ended"), "{message}");
}
