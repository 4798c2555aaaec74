//! `signet serve` as a process under connection floods: sockets that never authenticate
//! must not keep Gatekeeper out (its default `failurePolicy: Ignore` would then admit), and
//! the plain-HTTP probe listener is bounded too.
#![allow(clippy::unwrap_used)]

mod serve_support;

use std::net::IpAddr;
use std::time::Duration;

use serve_support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const BAD_POLICY: &[u8] = b"{ this is not a trust policy";
const HOST: &str = "signet.signet-system.svc";
/// Long enough that a stalled server fails the test, not a slow machine.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn other_peer() -> IpAddr {
    "127.0.0.2".parse().unwrap()
}

#[tokio::test]
async fn idle_sockets_that_never_handshake_do_not_keep_gatekeeper_out() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    // Few connection places and a handshake deadline longer than the test: idle sockets
    // holding places would keep Gatekeeper out for the whole test.
    let cfg = setup(
        dir.path(),
        &pki,
        BAD_POLICY,
        "limits:\n  maxConnections: 4\n  handshakeTimeout: 120s\n  maxHandshakesPerPeer: 8\n",
    );
    let serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);

    // An attacker's sockets: connected, silent.
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(TcpStream::connect(serve.addr).await.unwrap());
    }
    // Gatekeeper, from another address, still gets answers, on several connections.
    let gk = client_config(&pki.server_ca.pem, Some(&pki.client));
    for _ in 0..3 {
        let answered = tokio::time::timeout(HANG_GUARD, async {
            let tcp = tcp_from(other_peer(), serve.addr).await.unwrap();
            let (mut conn, _) = connect_over(tcp, gk.clone(), HOST).await.unwrap();
            send(
                &mut conn,
                "POST",
                "/v1/verify",
                &provider_request(&["registry.example/app:v1"]),
            )
            .await
            .unwrap()
        })
        .await
        .expect("a client with a certificate was kept out by idle sockets");
        assert_eq!(answered.0, 200, "{}", answered.1);
        assert_eq!(
            answered.1["response"]["items"][0]["key"],
            "registry.example/app:v1"
        );
    }

    // The surplus idle sockets of the one address were closed by the server.
    let (_, metrics) = probe(serve.probes.unwrap(), "/metrics").await;
    assert!(
        metrics.contains(
            "signet_connections_refused_total{listener=\"tls\",reason=\"peer_handshakes\"}"
        ),
        "{metrics}"
    );
    drop(idle);
}

#[tokio::test]
async fn the_probe_listener_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let cfg = setup(dir.path(), &pki, BAD_POLICY, "");
    let serve = Serve::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let probes = serve.probes.unwrap();

    // Idle sockets from one address take at most a quarter of the places.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(probes).await.unwrap());
    }
    let (status, _) = tokio::time::timeout(HANG_GUARD, async {
        probe_over(tcp_from(other_peer(), probes).await.unwrap(), "/healthz").await
    })
    .await
    .expect("the probe listener was stalled by idle sockets");
    assert_eq!(status, 200);

    // Oversized headers: 431, not read into memory.
    let mut s = tcp_from(other_peer(), probes).await.unwrap();
    let big = "x".repeat(64 * 1024);
    let req = format!("GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-big: {big}\r\n\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(HANG_GUARD, s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // A body is never read: a huge declared one on a probe gets its answer at once.
    let mut s = tcp_from(other_peer(), probes).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1000000000\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(HANG_GUARD, s.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    let (status, metrics) =
        probe_over(tcp_from(other_peer(), probes).await.unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "signet_connections_refused_total{listener=\"probes\",reason=\"peer_connections\"}"
        ),
        "{metrics}"
    );
    drop(idle);
}
