//! CRL and OCSP fetches (plain HTTP by design) through `HTTP_PROXY`: absolute-form requests
//! to the proxy, `NO_PROXY` honoured. The proxy settings are explicit (as `from_env` builds
//! them), so nothing process-wide is set.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use signet_engine::revocation::{HttpRevocationSource, RevocationConfig, RevocationNetworkPolicy};
use signet_http::ProxyPolicy;
use signet_testkit::registry::proxy::Proxy;
use signet_testkit::registry::server::{respond, serve, Handler};
use tokio::time::Instant;

#[tokio::test]
async fn crl_and_ocsp_fetches_go_through_http_proxy_unless_no_proxy() {
    let handler: Handler = Arc::new(|req| {
        Box::pin(async move {
            let body = if req.method() == http::Method::POST {
                "ocsp-answer"
            } else {
                "crl-bytes"
            };
            respond(200, &[], body)
        })
    });
    let origin = serve(None, handler).await;
    let proxy = Proxy::start(None).await;
    let deadline = || Instant::now() + Duration::from_secs(10);
    let crl_url = format!("http://{}/ca.crl", origin.addr);
    let ocsp_url = format!("http://{}/ocsp", origin.addr);

    let via_proxy = HttpRevocationSource::new(RevocationConfig {
        proxy: ProxyPolicy::explicit(&proxy.url(), "", "", "").unwrap(),
        network: loopback_allowed(),
        ..RevocationConfig::default()
    });
    let crl = via_proxy.crl(&crl_url, deadline()).await.unwrap();
    assert_eq!(&crl[..], b"crl-bytes");
    let ocsp = via_proxy
        .ocsp(&ocsp_url, b"request", deadline())
        .await
        .unwrap();
    assert_eq!(ocsp, b"ocsp-answer");
    let seen = proxy.seen();
    let targets: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.target.as_str()))
        .collect();
    assert!(targets.contains(&("GET", crl_url.as_str())), "{seen:?}");
    assert!(targets.contains(&("POST", ocsp_url.as_str())), "{seen:?}");

    let direct = HttpRevocationSource::new(RevocationConfig {
        proxy: ProxyPolicy::explicit(&proxy.url(), "", "", "127.0.0.1").unwrap(),
        network: loopback_allowed(),
        ..RevocationConfig::default()
    });
    let before = proxy.seen().len();
    direct
        .ocsp(&ocsp_url, b"request", deadline())
        .await
        .unwrap();
    assert_eq!(proxy.seen().len(), before, "NO_PROXY was not honoured");

    // A proxy that is down: the fetch fails (the verifier then reports the revocation
    // status as unknown), it never goes around the proxy.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let broken = HttpRevocationSource::new(RevocationConfig {
        proxy: ProxyPolicy::explicit(&dead_url, "", "", "").unwrap(),
        network: loopback_allowed(),
        ..RevocationConfig::default()
    });
    let e = broken
        .ocsp(&ocsp_url, b"request", deadline())
        .await
        .unwrap_err();
    assert!(e.contains("proxy"), "{e}");
}

/// The test servers are on loopback, which the revocation network policy refuses by default.
fn loopback_allowed() -> RevocationNetworkPolicy {
    RevocationNetworkPolicy::new(&["127.0.0.1/32".into()], &[]).unwrap()
}
