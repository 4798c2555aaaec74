//! Signet's one outbound HTTP stack, shared by the registry client, the Azure adapters
//! (Entra ID, ACR token exchange, Key Vault) and the CRL/OCSP fetcher.
//!
//! - [`tls`]: rustls client configurations on the **aws-lc-rs** provider. Trusted roots are
//!   the Mozilla set (`webpki-roots`), the system store (through `rustls-native-certs`, which
//!   honours `SSL_CERT_FILE` and `SSL_CERT_DIR`; read once per process) and the CA files the
//!   caller configured. Enterprises that inspect TLS add their CA one of these ways.
//! - [`proxy`]: `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (and `ALL_PROXY`, either case), read
//!   once with hyper-util's matcher (curl's rules: domains and their subdomains, a leading
//!   dot, `*`, IP addresses and CIDR ranges) plus `host:port` entries, which hyper-util does
//!   not know. The IMDS address and loopback are never proxied.
//! - [`Connector`]: the `tower` connector of hyper-util's pooled client. HTTPS through a proxy
//!   is a `CONNECT` tunnel (hyper-util's `Tunnel`), TLS end to end inside it, so the proxy
//!   sees the host name and nothing else; `Proxy-Authorization` comes only from the proxy
//!   URL's user info, never from a registry or Azure credential. Plain HTTP through a proxy
//!   is an absolute-form request to `HTTP_PROXY` (CRL and OCSP are plain HTTP by design; a
//!   plain-HTTP registry is a test setting, and what it sends is visible on the path anyway).
//!   [`Connector::resolve`] pins `host:port` to an address like curl's `--resolve` (tests).
//!
//! It owns transport only: no protocol of its callers (registry auth, token services, CRL
//! caching) and no retry policy.

mod connect;
pub mod proxy;
pub mod tls;

pub use connect::{pooled_client, AddressFilter, Conn, Connector, PlainHttp, PooledClient, Stream};
pub use proxy::ProxyPolicy;

/// A configuration error of the HTTP stack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HttpConfigError(pub String);

/// An error with its causes (`client error (Connect): proxy 127.0.0.1:3128 …`): hyper-util's
/// own `Display` shows only the outermost layer.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
