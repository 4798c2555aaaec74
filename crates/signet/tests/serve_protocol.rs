//! `signet serve` as a process, called the way Gatekeeper calls it: the protocol, TLS,
//! probes, metrics, bad input, reloads and drain. Independent of the verification engine:
//! the trust policy here is deliberately invalid, so every verdict is a deterministic
//! `INTERNAL` ("trust material not loaded") and `/readyz` answers 503; `serve_engine.rs`
//! asserts real verdicts.
#![allow(clippy::unwrap_used)]

mod serve_support;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use serde_json::{json, Value};
use serve_support::*;

const BAD_POLICY: &[u8] = b"{ this is not a trust policy";
const HOST: &str = "signet.signet-system.svc";

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn gatekeeper_calls_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cfg = setup(dir.path(), &pki, BAD_POLICY, "");
    let serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let gk = client_config(&pki.server_ca.pem, Some(&pki.client));

    // One keep-alive connection, several requests, like Gatekeeper's pooled client.
    let (mut conn, _) = connect(serve.addr, gk.clone(), HOST).await.unwrap();
    let keys = [
        "registry.example/app:v1",
        "registry.example/app:v1",
        "NOT a reference",
    ];
    let (status, v) = send(&mut conn, "POST", "/v1/verify", &provider_request(&keys))
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["apiVersion"], "externaldata.gatekeeper.sh/v1beta1");
    assert_eq!(v["kind"], "ProviderResponse");
    let items = v["response"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for (item, key) in items.iter().zip(keys) {
        assert_eq!(item["key"], key);
    }
    let value = &items[0]["value"];
    assert_eq!(value["verified"], false);
    assert_eq!(value["isSuccess"], false);
    assert_eq!(value["error"]["code"], "INTERNAL");
    assert!(value["error"]["message"]
        .as_str()
        .unwrap()
        .contains("trust material not loaded"));
    assert_eq!(value["traceID"].as_str().unwrap().len(), 32);
    assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(value.get("signatures").is_some());
    assert!(items[2].get("value").is_none());
    assert!(items[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("INVALID_REFERENCE"));
    let trace = value["traceID"].as_str().unwrap().to_owned();

    let (status, v) = send(
        &mut conn,
        "POST",
        "/v1/mutate",
        &provider_request(&["registry.example/app:v1"]),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["response"]["idempotent"], true);
    assert!(v["response"]["items"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("INTERNAL: "));

    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                    "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "namespace": "team", "operation": "CREATE",
                    "object": {"metadata": {"name": "web"}, "spec": {"template": {"spec": {
                        "containers": [{"name": "web", "image": "registry.example/app:v1"}]}}}}}});
    let (status, v) = send(&mut conn, "POST", "/v1/admit", &review.to_string())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(v["response"]["allowed"], false, "fail closed: {v}");
    assert!(v["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("registry.example/app:v1: INTERNAL"));

    let (status, _) = send(&mut conn, "GET", "/healthz", "").await.unwrap();
    assert_eq!(status, 200);
    let (status, v) = send(&mut conn, "GET", "/readyz", "").await.unwrap();
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["ready"], false);

    // The plain-HTTP probe listener (kubelet, Prometheus): probes and metrics only.
    let probes = serve.probes.unwrap();
    assert_eq!(probe(probes, "/healthz").await.0, 200);
    assert_eq!(probe(probes, "/readyz").await.0, 503);
    assert_eq!(probe(probes, "/v1/verify").await.0, 404);
    let (status, text) = probe(probes, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &text,
            "signet_http_requests_total{endpoint=\"verify\",status=\"200\"}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "signet_key_outcomes_total{endpoint=\"verify\",code=\"INTERNAL\"}"
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "signet_key_outcomes_total{endpoint=\"verify\",code=\"INVALID_REFERENCE\"}"
        ),
        1.0,
        "{text}"
    );
    assert!(text.contains("signet_verification_duration_seconds_bucket"));
    assert!(text.contains("signet_ready 0"));

    // The request's trace id is in its log lines, which are JSON.
    let logs = serve.logs();
    assert!(
        logs.iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains(&trace) && l.contains("answered")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn clients_without_or_with_foreign_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cfg = setup(dir.path(), &pki, BAD_POLICY, "");
    let serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let body = provider_request(&["registry.example/app:v1"]);

    let none = client_config(&pki.server_ca.pem, None);
    assert!(call(serve.addr, none, "POST", "/v1/verify", &body)
        .await
        .is_err());
    let foreign = client_config(&pki.server_ca.pem, Some(&pki.foreign));
    assert!(call(serve.addr, foreign, "POST", "/v1/verify", &body)
        .await
        .is_err());
    // The client checks the server's name like Gatekeeper (service DNS name).
    let gk = client_config(&pki.server_ca.pem, Some(&pki.client));
    assert!(connect(serve.addr, gk.clone(), "other.example")
        .await
        .is_err());
    // TLS 1.2 is not spoken.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(
            rustls_pki_types::pem::PemObject::from_pem_slice(pki.server_ca.pem.as_bytes())
                .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
                .unwrap(),
        ))
        .unwrap();
    let tls12 = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    assert!(connect(serve.addr, tls12, HOST).await.is_err());

    // Everyone else is still served.
    let (status, _) = call(serve.addr, gk, "POST", "/v1/verify", &body)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (_, text) = probe(serve.probes.unwrap(), "/metrics").await;
    assert!(
        metric(&text, "signet_tls_handshake_failures_total") >= 2.0,
        "{text}"
    );
    let logs = serve.logs();
    assert!(
        logs.iter().any(|l| l.contains("TLS handshake refused")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_json_answer_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cfg = setup(
        dir.path(),
        &pki,
        BAD_POLICY,
        "limits:\n  maxKeysPerRequest: 5\n  headerReadTimeout: 500ms\n  bodyReadTimeout: 1s\n",
    );
    let serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let gk = client_config(&pki.server_ca.pem, Some(&pki.client));

    let (status, v) = call(serve.addr, gk.clone(), "POST", "/v1/verify", "{nope")
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert!(v["response"]["systemError"]
        .as_str()
        .unwrap()
        .contains("malformed"));
    let wrong = json!({"apiVersion": "v1", "kind": "Pod", "request": {"keys": []}}).to_string();
    let (status, v) = call(serve.addr, gk.clone(), "POST", "/v1/verify", &wrong)
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert!(v["response"]["systemError"]
        .as_str()
        .unwrap()
        .contains("apiVersion"));
    let many: Vec<String> = (0..6).map(|i| format!("r.example/a:{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (status, v) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/verify",
        &provider_request(&many),
    )
    .await
    .unwrap();
    assert_eq!(status, 400);
    assert!(v["response"]["systemError"]
        .as_str()
        .unwrap()
        .contains("too many keys"));
    let huge = provider_request(&[&"a".repeat(1_100_000)]);
    let (status, v) = call(serve.addr, gk.clone(), "POST", "/v1/verify", &huge)
        .await
        .unwrap();
    assert_eq!(status, 413);
    assert!(v["response"]["systemError"]
        .as_str()
        .unwrap()
        .contains("larger than 1048576"));

    // Slow clients, at the byte level (blocking std I/O over rustls).
    let addr = serve.addr;
    let tls = move |gk: std::sync::Arc<rustls::ClientConfig>| {
        let conn = rustls::ClientConnection::new(gk, HOST.try_into().unwrap()).unwrap();
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    };
    let gk2 = gk.clone();
    let slow_body = tokio::task::spawn_blocking(move || {
        let mut s = tls(gk2);
        s.write_all(b"POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"api")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    let gk3 = gk.clone();
    let slow_headers = tokio::task::spawn_blocking(move || {
        let mut s = tls(gk3);
        s.write_all(b"POST /v1/verify HTTP/1.1\r\nhost: x\r\n")
            .unwrap();
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (
            started.elapsed(),
            String::from_utf8_lossy(&out).into_owned(),
        )
    });
    // Meanwhile, Gatekeeper is served.
    let (status, _) = call(
        serve.addr,
        gk.clone(),
        "POST",
        "/v1/verify",
        &provider_request(&["r.example/a:1"]),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let answer = slow_body.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("bodyReadTimeout"), "{answer}");
    let (took, answer) = slow_headers.await.unwrap();
    assert!(took < Duration::from_secs(4), "{took:?} {answer}");
    let (status, _) = call(serve.addr, gk, "GET", "/healthz", "").await.unwrap();
    assert_eq!(status, 200);
    let logs = serve.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("request refused") && l.contains("too many keys")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn certificates_and_trust_policy_reload_on_directory_swap() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cfg = setup(dir.path(), &pki, BAD_POLICY, "");
    let serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let gk = client_config(&pki.server_ca.pem, Some(&pki.client));
    let probes = serve.probes.unwrap();
    let (_, first) = connect(serve.addr, gk.clone(), HOST).await.unwrap();

    // A bad new certificate: the old one stays in use, the failure is counted and logged.
    k8s_mount(
        &dir.path().join("tls"),
        &[
            ("tls.crt", b"garbage"),
            ("tls.key", pki.server.1.as_bytes()),
        ],
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            metric(
                &probe(probes, "/metrics").await.1,
                "signet_reloads_total{what=\"tls\",result=\"failed\"}",
            ) >= 1.0
        })
        .await
    );
    let (_, still) = connect(serve.addr, gk.clone(), HOST).await.unwrap();
    assert_eq!(still, first);
    assert!(serve.logs().iter().any(|l| l.contains("reload failed")));

    // A good new certificate (new key): the next handshake presents it, no restart.
    let renewed = pki
        .server_ca
        .issue("signet.signet-system", &["signet.signet-system.svc"]);
    k8s_mount(
        &dir.path().join("tls"),
        &[
            ("tls.crt", renewed.0.as_bytes()),
            ("tls.key", renewed.1.as_bytes()),
        ],
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            connect(serve.addr, gk.clone(), HOST)
                .await
                .map(|(_, c)| c != first)
                .unwrap_or(false)
        })
        .await
    );
    let (_, text) = probe(probes, "/metrics").await;
    assert_eq!(
        metric(&text, "signet_reloads_total{what=\"tls\",result=\"ok\"}"),
        1.0,
        "{text}"
    );

    // The trust policy directory is watched too: a new (still invalid) policy is re-read
    // and refused; readiness stays as it was.
    k8s_mount(
        &dir.path().join("policy"),
        &[("trustpolicy.json", b"{\"version\": \"9.9\"}")],
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            metric(
                &probe(probes, "/metrics").await.1,
                "signet_reloads_total{what=\"trust\",result=\"failed\"}",
            ) >= 1.0
        })
        .await
    );
    assert_eq!(probe(probes, "/readyz").await.0, 503);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cfg = setup(
        dir.path(),
        &pki,
        BAD_POLICY,
        "limits:\n  shutdownGrace: 10s\n",
    );
    let mut serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let gk = client_config(&pki.server_ca.pem, Some(&pki.client));
    let addr = serve.addr;

    // A request in flight: headers and half the body sent.
    let body = provider_request(&["registry.example/app:v1"]);
    let (half, rest) = body.split_at(body.len() / 2);
    let (half, rest) = (half.to_owned(), rest.to_owned());
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let gk2 = gk.clone();
    let in_flight = tokio::task::spawn_blocking(move || {
        let conn = rustls::ClientConnection::new(gk2, HOST.try_into().unwrap()).unwrap();
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        write!(
            s,
            "POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{half}",
            body.len()
        )
        .unwrap();
        s.flush().unwrap();
        go_rx.recv().unwrap();
        s.write_all(rest.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    serve.terminate();
    // New connections are no longer accepted...
    assert!(
        eventually(Duration::from_secs(5), async || {
            call(addr, gk.clone(), "GET", "/healthz", "").await.is_err()
        })
        .await
    );
    // ...but the request in flight is answered.
    go_tx.send(()).unwrap();
    let answer = in_flight.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("ProviderResponse"), "{answer}");
    let status = serve
        .wait(Duration::from_secs(10))
        .expect("exits after draining");
    assert!(status.success(), "{status:?}");
    assert!(
        serve.logs().iter().any(|l| l.contains("drained")),
        "{:#?}",
        serve.logs()
    );
}

#[tokio::test]
async fn insecure_mode_is_explicit_and_loud() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cfg = setup(dir.path(), &pki, BAD_POLICY, "");
    let serve = Serve::start(
        dir.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--insecure-no-client-auth",
        ],
    );
    let anyone = client_config(&pki.server_ca.pem, None);
    let (status, _) = call(serve.addr, anyone, "GET", "/healthz", "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let logs = serve.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("INSECURE") && l.contains("WARN")),
        "{logs:#?}"
    );
}

#[test]
fn check_config_exits_0_or_2_with_precise_messages() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let good_policy = br#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],
        "signatureVerification":{"level":"skip"}}]}"#;
    let cfg = setup(dir.path(), &pki, good_policy, "");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
            .arg("serve")
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("configuration valid"));

    let unknown = dir.path().join("unknown.yaml");
    std::fs::write(
        &unknown,
        std::fs::read_to_string(&cfg).unwrap() + "limits:\n  maxKeys: 5\n",
    )
    .unwrap();
    let o = run(&["--config", unknown.to_str().unwrap(), "--check-config"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown field `maxKeys`"), "{err}");

    let o = run(&[
        "--config",
        cfg.to_str().unwrap(),
        "--check-config",
        "--request-deadline",
        "45s",
        "--listen",
        "here",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("limits.requestDeadline: 45s"), "{err}");
    assert!(err.contains("listen: \"here\""), "{err}");

    std::fs::write(dir.path().join("tls/..data/tls.crt"), "garbage").unwrap();
    let o = run(&["--config", cfg.to_str().unwrap(), "--check-config"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("server certificate"));
    // And serve refuses to start on it.
    let o = run(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}
