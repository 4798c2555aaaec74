#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

/// Serves `body` with `status` to every connection; counts requests.
async fn serve(status: u16, body: Vec<u8>, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
            });
        }
    });
    (format!("http://{addr}/ca.crl"), hits)
}

/// A CRL with `nextUpdate` `next_update_days` from now (`thisUpdate` a day before).
fn crl(next_update_days: i64) -> Vec<u8> {
    let ca = signet_testkit::TestCa::new("CA", signet_testkit::KeyKind::P256);
    let next = time::OffsetDateTime::now_utc() + time::Duration::days(next_update_days);
    ca.crl(&[], next - time::Duration::days(1), next)
}

/// Redirects every request to `location`; returns the URL.
async fn redirect(location: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let response = format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let _ = conn.write_all(response.as_bytes()).await;
        }
    });
    format!("http://{addr}/moved.crl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_redirects() {
    let body = crl(7);
    let (url, _) = serve(200, body.clone(), Duration::ZERO).await;
    let source = HttpRevocationSource::new(loopback_allowed());
    let moved = redirect(&url).await;
    assert_eq!(*source.crl(&moved, soon()).await.unwrap(), body);
    // A loop ends.
    let a = redirect("http://127.0.0.1:1/unused").await;
    let b = redirect(&a).await;
    let c = redirect(&b).await;
    let d = redirect(&c).await;
    let e = source.crl(&d, soon()).await.unwrap_err();
    assert!(e.contains("redirects"), "{e}");
}

/// The test servers listen on 127.0.0.1, which the default policy refuses.
fn loopback_allowed() -> RevocationConfig {
    RevocationConfig {
        network: RevocationNetworkPolicy::new(&["127.0.0.1/32".into()], &[]).unwrap(),
        ..RevocationConfig::default()
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_and_caches_crls() {
    let body = crl(7);
    let (url, hits) = serve(200, body.clone(), Duration::ZERO).await;
    let source = Arc::new(HttpRevocationSource::new(loopback_allowed()));
    assert_eq!(*source.crl(&url, soon()).await.unwrap(), body);
    assert_eq!(*source.crl(&url, soon()).await.unwrap(), body);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the second fetch is cached");
    source.forget_crl(&url).await;
    source.crl(&url, soon()).await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "forgotten CRLs are fetched again"
    );

    // The synchronous view, from the blocking pool.
    let blocking = source.blocking(tokio::runtime::Handle::current(), soon());
    let url2 = url.clone();
    let fetched = tokio::task::spawn_blocking(move || blocking.fetch_crl(&url2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_crls_are_not_cached() {
    let (url, hits) = serve(200, crl(-1), Duration::ZERO).await;
    let source = HttpRevocationSource::new(loopback_allowed());
    source.crl(&url, soon()).await.unwrap();
    source.crl(&url, soon()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures() {
    let source = HttpRevocationSource::new(RevocationConfig {
        fetch_timeout: Duration::from_millis(300),
        ..loopback_allowed()
    });
    let (url, _) = serve(404, b"no".to_vec(), Duration::ZERO).await;
    let e = source.crl(&url, soon()).await.unwrap_err();
    assert!(e.contains("404"), "{e}");

    let (url, _) = serve(200, vec![0; 70 * 1024], Duration::ZERO).await;
    let e = source.ocsp(&url, b"req", soon()).await.unwrap_err();
    assert!(e.contains("at most"), "{e}");

    let (url, _) = serve(200, crl(7), Duration::from_secs(3)).await;
    let started = Instant::now();
    let e = source.crl(&url, soon()).await.unwrap_err();
    assert!(e.contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A redirect to an https:// URL is refused like one given directly.
    let e = source
        .crl(&redirect("https://crl.example/ca.crl").await, soon())
        .await
        .unwrap_err();
    assert!(e.contains("only http://"), "{e}");

    let e = source
        .crl("https://crl.example/ca.crl", soon())
        .await
        .unwrap_err();
    assert!(e.contains("only http://"), "{e}");
}

/// The network policy holds for the first URL, every redirect hop and every address a
/// name resolves to; denials name the host, not its addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_are_refused() {
    let (url, hits) = serve(200, crl(7), Duration::ZERO).await;
    let default = HttpRevocationSource::new(RevocationConfig::default());
    let e = default.crl(&url, soon()).await.unwrap_err();
    assert!(e.contains("revocation.allow"), "{e}");
    let e = default
        .crl("http://169.254.169.254/latest/meta-data/", soon())
        .await
        .unwrap_err();
    assert!(e.contains("refused"), "{e}");
    // A name that resolves to loopback: refused at resolution, address not echoed.
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let e = default
        .crl(&format!("http://localhost:{port}/ca.crl"), soon())
        .await
        .unwrap_err();
    assert!(
        e.contains("localhost") && e.contains("resolves only"),
        "{e}"
    );
    assert!(!e.contains("127.0.0.1") && !e.contains("::1"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");

    // Allowed first hop, redirect to a loopback address the allow list does not cover.
    let source = HttpRevocationSource::new(loopback_allowed());
    let e = source
        .crl(&redirect("http://127.0.0.2:9/ca.crl").await, soon())
        .await
        .unwrap_err();
    assert!(e.contains("127.0.0.2") && e.contains("refused"), "{e}");
    // Deny wins over allow.
    let denying = HttpRevocationSource::new(RevocationConfig {
        network: RevocationNetworkPolicy::new(&["127.0.0.0/8".into()], &["127.0.0.1/32".into()])
            .unwrap(),
        ..RevocationConfig::default()
    });
    let e = denying.crl(&url, soon()).await.unwrap_err();
    assert!(e.contains("revocation.deny"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // Allowed by name: localhost's addresses are then trusted.
    let by_name = HttpRevocationSource::new(RevocationConfig {
        network: RevocationNetworkPolicy::new(&["localhost".into()], &[]).unwrap(),
        ..RevocationConfig::default()
    });
    by_name
        .crl(&format!("http://localhost:{port}/ca.crl"), soon())
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
