//! Docker Content Trust against the real Notary v1 server and client: tags published with
//! `notary` (to `targets` and to the `targets/releases` delegation) verify; wrong roots,
//! expired, tampered, replayed and under-signed metadata and mismatched manifests do not.

#![allow(clippy::unwrap_used)]

mod common;

use common::{root_certificate_pem, verifier, Front, Notary};
use serde_json::Value;
use signet_dct::{BasicCredentials, DctError, ProxySettings};
use signet_testkit::registry::token::{TokenPolicy, TokenServer};
use time::{Duration, OffsetDateTime};

const DIGEST_V1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const DIGEST_V2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const DIGEST_V3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

/// A repository with `v1` in `targets` and `v2` in `targets/releases`.
async fn published(notary: &Notary, gun: &str) -> common::Client {
    let client = notary.client(gun.rsplit('/').next().unwrap());
    client.init(gun);
    client.add(gun, "v1", DIGEST_V1, 1234, None);
    client.publish(gun);
    client.add_releases_delegation(gun, notary.dir.path());
    client.add(gun, "v2", DIGEST_V2, 5678, Some("targets/releases"));
    client.publish(gun);
    client
}

#[tokio::test]
async fn tags_signed_in_targets_and_releases_verify_with_a_pinned_root_key() {
    let Some(notary) = Notary::start().await else {
        return;
    };
    let gun = "registry.example/team/app";
    let client = published(&notary, gun).await;
    let dct = verifier(
        "registry.example/team/*",
        &notary.url,
        &notary.pki.ca_pem,
        vec![client.root_key_id()],
        vec![],
    );
    let now = OffsetDateTime::now_utc();

    let v1 = dct.verify(gun, "v1", DIGEST_V1, 1234, now).await.unwrap();
    assert_eq!(v1.target.role, "targets");
    assert_eq!(v1.target.digest, DIGEST_V1);
    let v2 = dct.verify(gun, "v2", DIGEST_V2, 5678, now).await.unwrap();
    assert_eq!(v2.target.role, "targets/releases");
    assert_eq!(v2.target.signers.len(), 1);
    assert!(
        v2.signer().starts_with("targets/releases (key "),
        "{}",
        v2.signer()
    );

    // The signed target must be exactly the manifest the registry gave.
    let wrong_digest = dct
        .verify(gun, "v2", DIGEST_V1, 5678, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&wrong_digest, DctError::TargetMismatch { role, .. } if role == "targets/releases"),
        "{wrong_digest}"
    );
    let wrong_size = dct
        .verify(gun, "v1", DIGEST_V1, 1235, now)
        .await
        .unwrap_err();
    assert!(matches!(
        wrong_size,
        DctError::TargetMismatch {
            signed_length: 1234,
            size: 1235,
            ..
        }
    ));
    let unsigned = dct
        .verify(gun, "v9", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(
        matches!(unsigned, DctError::TargetNotFound { .. }),
        "{unsigned}"
    );

    // A repository outside every scope is not verified at all.
    let other = dct
        .verify("registry.example/other", "v1", DIGEST_V1, 1234, now)
        .await;
    assert!(matches!(other, Err(DctError::NotConfigured { .. })));
}

#[tokio::test]
async fn root_is_trusted_only_when_pinned() {
    let Some(notary) = Notary::start().await else {
        return;
    };
    let gun = "registry.example/pinning";
    let client = notary.client("pinning");
    client.init(gun);
    client.add(gun, "v1", DIGEST_V1, 1234, None);
    client.publish(gun);
    let root = notary.fetch(gun, "root").await;
    let now = OffsetDateTime::now_utc();

    let by_cert = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![],
        vec![root_certificate_pem(&root)],
    );
    by_cert
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap();

    // Another repository's root key, and an unrelated certificate, anchor nothing here.
    let other = notary.client("other");
    other.init("registry.example/other");
    other.publish("registry.example/other");
    let wrong_key = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![other.root_key_id()],
        vec![],
    );
    let err = wrong_key
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(matches!(err, DctError::RootNotPinned { .. }), "{err}");
    assert!(err.to_string().contains("pin its root key"), "{err}");

    let other_root = notary.fetch("registry.example/other", "root").await;
    let wrong_cert = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![],
        vec![root_certificate_pem(&other_root)],
    );
    let err = wrong_cert
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(matches!(err, DctError::RootNotPinned { .. }), "{err}");

    // The pinned certificate must also be valid at verification time (10 years for notary):
    // a verifier that has not trusted this root before refuses it as unanchored, one that
    // has refuses it as expired.
    let late = now + Duration::days(365 * 11);
    let fresh = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![],
        vec![root_certificate_pem(&root)],
    );
    let err = fresh
        .verify(gun, "v1", DIGEST_V1, 1234, late)
        .await
        .unwrap_err();
    assert!(matches!(err, DctError::RootNotPinned { .. }), "{err}");
    let err = by_cert
        .verify(gun, "v1", DIGEST_V1, 1234, late)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DctError::Expired { role, .. } if role == "root"),
        "{err}"
    );
}

#[tokio::test]
async fn expired_timestamp_is_refused() {
    let Some(notary) = Notary::start().await else {
        return;
    };
    let gun = "registry.example/expiry";
    let client = notary.client("expiry");
    client.init(gun);
    client.add(gun, "v1", DIGEST_V1, 1234, None);
    client.publish(gun);
    let dct = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![client.root_key_id()],
        vec![],
    );
    let now = OffsetDateTime::now_utc();
    dct.verify(gun, "v1", DIGEST_V1, 1234, now).await.unwrap();
    // Notary's server signs timestamps for 14 days, snapshots and targets for 3 years.
    let err = dct
        .verify(gun, "v1", DIGEST_V1, 1234, now + Duration::days(15))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DctError::Expired { role, .. } if role == "timestamp"),
        "{err}"
    );
    let err = dct
        .verify(gun, "v1", DIGEST_V1, 1234, now + Duration::days(365 * 4))
        .await
        .unwrap_err();
    assert!(matches!(&err, DctError::Expired { .. }), "{err}");
}

#[tokio::test]
async fn hostile_metadata_from_a_front_is_refused() {
    let Some(notary) = Notary::start().await else {
        return;
    };
    let gun = "registry.example/front";
    let client = published(&notary, gun).await;
    let front = Front::start(&notary).await;
    let dct = verifier(
        gun,
        &front.url,
        &notary.pki.ca_pem,
        vec![client.root_key_id()],
        vec![],
    );
    let now = OffsetDateTime::now_utc();
    dct.verify(gun, "v1", DIGEST_V1, 1234, now).await.unwrap();

    // Replay: keep the current (signed, valid) metadata, publish newer, verify, then serve
    // the old set again.
    let old: Vec<(&str, Vec<u8>)> = {
        let mut v = Vec::new();
        for role in ["timestamp", "snapshot", "targets", "targets/releases"] {
            v.push((role, notary.fetch(gun, role).await));
        }
        v
    };
    client.add(gun, "v3", DIGEST_V3, 42, Some("targets/releases"));
    client.add(gun, "v4", DIGEST_V3, 42, None);
    client.publish(gun);
    dct.verify(gun, "v3", DIGEST_V3, 42, now).await.unwrap();
    for (role, bytes) in &old {
        front.set(role, bytes.clone());
    }
    let err = dct
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DctError::Rollback { role, .. } if role == "timestamp"),
        "{err}"
    );
    // Only an older snapshot (with the current timestamp): the length or hash the timestamp
    // declares catches it (an older snapshot longer than declared is cut off while read;
    // the lengths differ with the digits of the expiry's nanoseconds).
    front.clear();
    front.set("snapshot", old[1].1.clone());
    let err = dct
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DctError::MetaMismatch { role, parent, .. } if role == "snapshot" && parent == "timestamp")
            || matches!(&err, DctError::TooLarge { role, .. } if role == "snapshot"),
        "{err}"
    );
    front.clear();

    // Tampered targets: one changed length, signature and snapshot hash no longer match.
    let targets = notary.fetch(gun, "targets").await;
    let mut doc: Value = serde_json::from_slice(&targets).unwrap();
    doc["signed"]["targets"]["v1"]["length"] = Value::from(99);
    front.set("targets", serde_json::to_vec(&doc).unwrap());
    let err = dct.verify(gun, "v1", DIGEST_V1, 99, now).await.unwrap_err();
    assert!(
        matches!(&err, DctError::MetaMismatch { role, .. } if role == "targets"),
        "{err}"
    );
    front.clear();

    // Threshold not met: the timestamp's only signature is garbage.
    let timestamp = notary.fetch(gun, "timestamp").await;
    let mut doc: Value = serde_json::from_slice(&timestamp).unwrap();
    doc["signatures"][0]["sig"] = Value::from("AAAA");
    front.set("timestamp", serde_json::to_vec(&doc).unwrap());
    let err = dct
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DctError::ThresholdNotMet { role, valid: 0, threshold: 1 } if role == "timestamp"),
        "{err}"
    );
    // Stripped signatures count the same.
    doc["signatures"] = Value::Array(vec![]);
    front.set("timestamp", serde_json::to_vec(&doc).unwrap());
    let err = dct
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(matches!(err, DctError::ThresholdNotMet { .. }), "{err}");
    front.clear();

    // A delegation signed by a key targets does not name: threshold not met for releases.
    let releases = notary.fetch(gun, "targets/releases").await;
    let mut doc: Value = serde_json::from_slice(&releases).unwrap();
    doc["signatures"][0]["keyid"] = Value::from("00".repeat(32));
    let forged = serde_json::to_vec(&doc).unwrap();
    front.set("targets/releases", forged);
    let err = dct
        .verify(gun, "v2", DIGEST_V2, 5678, now)
        .await
        .unwrap_err();
    // The snapshot pins the bytes first; either way the forged file is refused.
    assert!(
        matches!(&err, DctError::MetaMismatch { role, .. } | DctError::ThresholdNotMet { role, .. } if role == "targets/releases"),
        "{err}"
    );
    front.clear();

    // Oversized metadata is cut off at the length the metadata above declares.
    front.set("snapshot", vec![b' '; 10 * 1024 * 1024]);
    let err = dct
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DctError::TooLarge { role, .. } if role == "snapshot"),
        "{err}"
    );
    front.clear();

    // And after all of that, the real metadata still verifies.
    dct.verify(gun, "v4", DIGEST_V3, 42, now).await.unwrap();
}

#[tokio::test]
async fn root_rotation_is_followed_from_the_trusted_root_only() {
    let Some(notary) = Notary::start().await else {
        return;
    };
    let gun = "registry.example/rotation";
    let client = notary.client("rotation");
    client.init(gun);
    client.add(gun, "v1", DIGEST_V1, 1234, None);
    client.publish(gun);
    let old_root_key = client.root_key_id();
    let dct = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![old_root_key.clone()],
        vec![],
    );
    let now = OffsetDateTime::now_utc();
    dct.verify(gun, "v1", DIGEST_V1, 1234, now).await.unwrap();

    // `notary key rotate GUN root` signs the new root with the old and the new root keys.
    client.run_with_input(&["key", "rotate", gun, "root"], "yes\n");
    let root: Value = serde_json::from_slice(&notary.fetch(gun, "root").await).unwrap();
    assert_eq!(root["signed"]["version"], 2);

    // The verifier that trusted version 1 follows the rotation…
    dct.verify(gun, "v1", DIGEST_V1, 1234, now).await.unwrap();
    assert_eq!(dct.state(gun).versions.get("root"), Some(&2));
    // …a fresh one pinned to the old key does not: the new root's keys are not pinned.
    let fresh = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![old_root_key],
        vec![],
    );
    let err = fresh
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(matches!(err, DctError::RootNotPinned { .. }), "{err}");
}

#[tokio::test]
async fn root_certificate_issued_by_a_pinned_ca_is_trusted() {
    let Some(notary) = Notary::start().await else {
        return;
    };
    let gun = "registry.example/ca-rooted";
    let ca = common::TestRootCa::new("Signet DCT Root CA");
    let (root_key, root_cert) = ca.issue_root(gun);
    let key_path = notary.dir.path().join("ca-rooted-root.key");
    let cert_path = notary.dir.path().join("ca-rooted-root.crt");
    // `notary init --rootkey` imports only encrypted keys: PKCS#8 PBES2, PBKDF2 with
    // HMAC-SHA1, AES-256-CBC, under the root passphrase.
    let plain_path = notary.dir.path().join("ca-rooted-root.plain.key");
    std::fs::write(&plain_path, root_key).unwrap();
    let status = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-v2prf",
            "hmacWithSHA1",
        ])
        .args(["-passout", &format!("pass:{}", common::ROOT_PASSPHRASE)])
        .arg("-in")
        .arg(&plain_path)
        .arg("-out")
        .arg(&key_path)
        .status()
        .unwrap();
    assert!(status.success(), "openssl pkcs8 failed");
    std::fs::write(&cert_path, root_cert).unwrap();
    let client = notary.client("ca-rooted");
    client.run(&[
        "init",
        gun,
        "--rootkey",
        key_path.to_str().unwrap(),
        "--rootcert",
        cert_path.to_str().unwrap(),
    ]);
    client.add(gun, "v1", DIGEST_V1, 1234, None);
    client.publish(gun);
    let now = OffsetDateTime::now_utc();

    let by_ca = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![],
        vec![ca.cert_pem.clone()],
    );
    by_ca.verify(gun, "v1", DIGEST_V1, 1234, now).await.unwrap();

    let other_ca = common::TestRootCa::new("Signet DCT Root CA");
    let by_other = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![],
        vec![other_ca.cert_pem],
    );
    let err = by_other
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap_err();
    assert!(matches!(err, DctError::RootNotPinned { .. }), "{err}");
}

// Multi-threaded: the token server runs on this runtime while the notary CLI blocks a thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notary_server_behind_a_token_service_is_read_with_a_pull_token() {
    if !common::available() {
        return;
    }
    let pki = signet_testkit::registry::tls::TestPki::new();
    let tokens = TokenServer::start(&pki, TokenPolicy::default()).await;
    let notary = Notary::start_with(pki, Some(tokens.realm.clone())).await;
    let gun = "registry.example/behind-auth";
    let client = notary.client("behind-auth");
    client.init(gun);
    client.add(gun, "v1", DIGEST_V1, 1234, None);
    client.publish(gun);
    tokens.log.lock().unwrap().requests.clear();
    let unauthenticated = signet_testkit::registry::http::send(
        &notary.pki.client_config(),
        http::Method::GET,
        &format!("{}/v2/{gun}/_trust/tuf/root.json", notary.url),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(
        unauthenticated.status, 401,
        "the server must require a token"
    );

    let now = OffsetDateTime::now_utc();
    let dct = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![client.root_key_id()],
        vec![],
    )
    .with_credentials(
        &notary.url,
        BasicCredentials {
            username: "puller".into(),
            password: "secret".into(),
        },
    );
    dct.verify(gun, "v1", DIGEST_V1, 1234, now).await.unwrap();
    let requests = tokens.log.lock().unwrap().requests.clone();
    // One token for the whole chain, for pulling this repository, with the credentials
    // configured for this server (the realm is on the server's host).
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].1, format!("repository:{gun}:pull"));
    assert!(requests[0].2, "credentials were not sent to the realm");

    // Without credentials the token is anonymous.
    tokens.log.lock().unwrap().requests.clear();
    let anonymous = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![client.root_key_id()],
        vec![],
    );
    anonymous
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap();
    let requests = tokens.log.lock().unwrap().requests.clone();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| !r.2),
        "{requests:?}"
    );
}

#[tokio::test]
async fn notary_servers_are_reached_through_the_https_proxy_unless_no_proxy_says_otherwise() {
    let Some(notary) = Notary::start().await else {
        return;
    };
    let gun = "registry.example/proxied";
    let client = notary.client("proxied");
    client.init(gun);
    client.add(gun, "v1", DIGEST_V1, 1234, None);
    client.publish(gun);
    let proxy = common::ConnectProxy::start().await;
    let now = OffsetDateTime::now_utc();
    let root_key = client.root_key_id();

    let proxied = verifier(
        gun,
        &notary.url,
        &notary.pki.ca_pem,
        vec![root_key.clone()],
        vec![],
    )
    .with_proxy(ProxySettings {
        https: Some(proxy.addr.to_string()),
        http: None,
        no_proxy: vec!["localhost".into()],
    });
    proxied
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap();
    let port = notary.url.rsplit(':').next().unwrap().to_owned();
    let targets = proxy.targets.lock().unwrap().clone();
    // Connections are pooled (signet-http's client): the four metadata files may share
    // one tunnel.
    assert!(!targets.is_empty(), "no tunnel: {targets:?}");
    assert!(
        targets.iter().all(|t| *t == format!("127.0.0.1:{port}")),
        "{targets:?}"
    );

    proxy.targets.lock().unwrap().clear();
    let direct = verifier(gun, &notary.url, &notary.pki.ca_pem, vec![root_key], vec![]).with_proxy(
        ProxySettings {
            https: Some(proxy.addr.to_string()),
            http: None,
            no_proxy: vec!["127.0.0.1".into()],
        },
    );
    direct
        .verify(gun, "v1", DIGEST_V1, 1234, now)
        .await
        .unwrap();
    assert!(proxy.targets.lock().unwrap().is_empty());
}
