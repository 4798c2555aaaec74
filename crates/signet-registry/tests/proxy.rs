//! The registry client through an HTTP proxy (as AKS's HTTP-proxy feature or a corporate
//! egress proxy sets one up): HTTPS through CONNECT tunnels, `NO_PROXY` bypass, proxy
//! authentication from the proxy URL only, registry credentials never offered to the proxy.
//! The proxy settings are given explicitly (`ProxyPolicy::explicit`), exactly as
//! `ProxyPolicy::from_env` builds them, so tests running in parallel share no environment.
#![allow(clippy::unwrap_used)]

use signet_testkit::registry as support;

use std::sync::Arc;
use std::time::Duration;

use signet_http::ProxyPolicy;
use signet_notation::ErrorCode;
use signet_registry::{Credential, DockerConfig, Reference, RegistryClient, RegistryConfig};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, TestCa};
use support::proxy::Proxy;
use support::push::{Pusher, SigStyle};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;
use tokio::time::Instant;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn client(pki: &TestPki, host: &str, proxy: ProxyPolicy) -> RegistryClient {
    let mut config = RegistryConfig::default();
    config.add_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    let mut dc = DockerConfig::default();
    dc.insert(
        host,
        Credential::Basic {
            username: USER.into(),
            password: PASS.into(),
        },
    );
    config.credentials = Arc::new(dc);
    config.proxy = proxy;
    RegistryClient::new(config).unwrap()
}

fn https_proxy(url: &str, no_proxy: &str) -> ProxyPolicy {
    ProxyPolicy::explicit("", url, "", no_proxy).unwrap()
}

/// Resolve, discover, fetch: one whole verification's registry traffic.
async fn fetch_all(
    c: &RegistryClient,
    r: &Reference,
) -> Result<usize, signet_registry::RegistryError> {
    let desc = c.resolve(r, deadline()).await?;
    let sigs = c.signatures(r, &desc, deadline()).await?;
    for sig in &sigs.signatures {
        c.fetch_envelope(r, sig, deadline()).await?;
    }
    Ok(sigs.signatures.len())
}

struct Setup {
    pki: TestPki,
    reg: Registry,
    reference: Reference,
}

async fn setup() -> Setup {
    let pki = TestPki::new();
    let reg = Registry::start(
        &pki,
        RegistryAuth::Htpasswd {
            username: USER.into(),
            password: PASS.into(),
        },
    )
    .await;
    let pusher = Pusher::new(&reg.url(), pki.client_config(), Some(basic(USER, PASS)));
    let signer =
        TestCa::new("Proxy Test CA", KeyKind::P256).issue(&LeafOptions::new("s", KeyKind::P256));
    let image = pusher.image("team/app", "v1").await;
    pusher
        .signature(
            "team/app",
            &image,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    let reference = Reference::parse(&format!("{}/team/app:v1", reg.host)).unwrap();
    Setup {
        pki,
        reg,
        reference,
    }
}

#[tokio::test]
async fn https_goes_through_connect_tunnels_and_credentials_never_reach_the_proxy() {
    let s = setup().await;
    let proxy = Proxy::start(None).await;
    let c = client(&s.pki, &s.reg.host, https_proxy(&proxy.url(), ""));
    assert_eq!(fetch_all(&c, &s.reference).await.unwrap(), 1);

    let seen = proxy.seen();
    assert!(proxy.connects() >= 1, "{seen:?}");
    for request in &seen {
        assert_eq!(request.method, "CONNECT", "only tunnels: {request:?}");
        assert_eq!(request.target, s.reg.host, "{request:?}");
        assert!(
            request.header("authorization").is_none()
                && request.header("proxy-authorization").is_none(),
            "the registry's Basic credentials were offered to the proxy: {request:?}"
        );
    }
    // Keep-alive: the pooled connection (one tunnel) carries several requests.
    assert!(
        proxy.connects() < c.round_trips() as usize,
        "{} tunnels for {} requests",
        proxy.connects(),
        c.round_trips()
    );
}

#[tokio::test]
async fn proxy_credentials_come_from_the_proxy_url_only() {
    let s = setup().await;
    let proxy = Proxy::start(Some(basic("proxy-user", "p@ss"))).await;
    let with_auth = format!("http://proxy-user:p%40ss@{}", proxy.addr);
    let c = client(&s.pki, &s.reg.host, https_proxy(&with_auth, ""));
    assert_eq!(fetch_all(&c, &s.reference).await.unwrap(), 1);
    for request in proxy.seen() {
        assert_eq!(
            request.header("proxy-authorization"),
            Some(basic("proxy-user", "p@ss").as_str())
        );
        assert!(request.header("authorization").is_none(), "{request:?}");
    }

    // Without the proxy's credentials: a clear error naming the proxy, never a retry with
    // the registry's credentials.
    let c = client(&s.pki, &s.reg.host, https_proxy(&proxy.url(), ""));
    let err = fetch_all(&c, &s.reference).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RegistryError, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("proxy") && text.contains("authorization required"),
        "{text}"
    );
    assert!(proxy
        .seen()
        .iter()
        .all(|r| r.header("authorization").is_none()));
}

#[tokio::test]
async fn no_proxy_bypasses_the_proxy() {
    let s = setup().await;
    let proxy = Proxy::start(None).await;
    let (host, port) = s.reg.host.rsplit_once(':').unwrap();
    for no_proxy in [
        host.to_owned(),
        format!("{host}:{port}"),
        "*".to_owned(),
        "127.0.0.0/8".to_owned(),
    ] {
        let c = client(&s.pki, &s.reg.host, https_proxy(&proxy.url(), &no_proxy));
        assert_eq!(fetch_all(&c, &s.reference).await.unwrap(), 1, "{no_proxy}");
    }
    assert_eq!(proxy.connects(), 0, "{:?}", proxy.seen());

    // A NO_PROXY entry for another port does not match.
    let c = client(
        &s.pki,
        &s.reg.host,
        https_proxy(&proxy.url(), &format!("{host}:1")),
    );
    assert_eq!(fetch_all(&c, &s.reference).await.unwrap(), 1);
    assert!(proxy.connects() >= 1);
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_clear_registry_error() {
    let s = setup().await;
    let port = support::registry::free_port();
    let c = client(
        &s.pki,
        &s.reg.host,
        https_proxy(&format!("http://127.0.0.1:{port}"), ""),
    );
    let err = fetch_all(&c, &s.reference).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RegistryError, "{err}");
    assert!(
        err.to_string().contains(&format!("proxy 127.0.0.1:{port}")),
        "{err}"
    );
}
