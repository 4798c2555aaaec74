//! The one HTTP client of this crate, plugged into `azure_core` as its
//! [`HttpClient`](azure_core::http::HttpClient) so that the house libraries (`azure_identity`,
//! Key Vault) and our own ACR exchange share one transport: `signet-http`'s connector under
//! hyper-util's pooled client (keep-alive; Key Vault refreshes and token grants reuse
//! connections).
//!
//! - Proxy: `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` from the environment (HTTPS through a
//!   CONNECT tunnel, so Entra and Key Vault tokens never reach the proxy); the IMDS address is
//!   never proxied. [`HttpTransport::with_proxy`] replaces the policy (tests).
//! - TLS roots: the Mozilla roots, the system store (`SSL_CERT_FILE`, `SSL_CERT_DIR`) and
//!   [`HttpTransport::with_extra_roots_pem`]; [`HttpTransport::with_roots_pem`] trusts exactly
//!   the given CAs instead (tests: the fakes' generated CA).
//! - Plain HTTP only to the IMDS address `169.254.169.254` (the managed-identity endpoint is
//!   plain HTTP by design) and to hosts allowed explicitly.
//! - [`HttpTransport::resolve`] pins `host:port` to a socket address (like curl's
//!   `--resolve`): the request, its `Host` header and the TLS server name stay those of the
//!   real endpoint, only the TCP connection goes elsewhere. Tests use it to put the fakes
//!   behind `login.microsoftonline.com`, `169.254.169.254` and `*.vault.azure.net` without
//!   changing a single URL in the code under test. With [`HttpTransport::only_resolved`] every
//!   other host is refused, so a test can never reach the network.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use rustls_pki_types::CertificateDer;
use signet_http::{Connector, PlainHttp, PooledClient, ProxyPolicy};

/// The managed identity endpoint (IMDS), reached over plain HTTP.
pub const IMDS_HOST: &str = "169.254.169.254";

/// Largest answer body read (tokens, certificates, error documents).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A failed round trip.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint}: {message}")]
pub struct TransportError {
    pub endpoint: String,
    pub message: String,
}

/// See the module docs.
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    tls: Arc<rustls::ClientConfig>,
    extra_roots: Vec<CertificateDer<'static>>,
    resolve: HashMap<(String, u16), SocketAddr>,
    only_resolved: bool,
    plain_http: HashSet<String>,
    proxy: ProxyPolicy,
    timeout: Duration,
    client: PooledClient,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("resolve", &self.inner.resolve)
            .field("only_resolved", &self.inner.only_resolved)
            .field("plain_http", &self.inner.plain_http)
            .field("proxy", &self.inner.proxy)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn build_client(&mut self) {
        let mut connector = Connector::new(self.tls.clone(), self.proxy.clone())
            .plain_http(PlainHttp::Hosts(Arc::new(self.plain_http.clone())));
        for ((host, port), addr) in &self.resolve {
            connector = connector.resolve(host, *port, *addr);
        }
        if self.only_resolved {
            connector = connector.only_resolved();
        }
        self.client = signet_http::pooled_client(connector);
    }
}

impl HttpTransport {
    /// Production: Mozilla and system roots, the environment's proxy settings, plain HTTP to
    /// IMDS only, 30 s per request.
    pub fn new() -> Self {
        let tls = signet_http::tls::client_config(&[]).unwrap_or_else(|e| panic!("TLS: {e}"));
        let proxy = ProxyPolicy::from_env();
        let plain_http = HashSet::from([IMDS_HOST.to_owned()]);
        let client = signet_http::pooled_client(
            Connector::new(tls.clone(), proxy.clone())
                .plain_http(PlainHttp::Hosts(Arc::new(plain_http.clone()))),
        );
        HttpTransport {
            inner: Arc::new(Inner {
                tls,
                extra_roots: Vec::new(),
                resolve: HashMap::new(),
                only_resolved: false,
                plain_http,
                proxy,
                timeout: Duration::from_secs(30),
                client,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        f(inner);
        inner.build_client();
        self
    }

    fn pem_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TransportError> {
        signet_http::tls::parse_pem_certs(pem).map_err(|e| TransportError {
            endpoint: "TLS roots".into(),
            message: e.0,
        })
    }

    /// Trusts exactly the PEM CA certificates in `pem` (instead of the Mozilla and system roots).
    pub fn with_roots_pem(self, pem: &[u8]) -> Result<Self, TransportError> {
        let roots = Self::pem_roots(pem)?;
        let tls = signet_http::tls::client_config_exact(&roots).map_err(|e| TransportError {
            endpoint: "TLS roots".into(),
            message: e.0,
        })?;
        Ok(self.edit(|i| i.tls = tls))
    }

    /// Trusts the PEM CA certificates in `pem` besides the Mozilla and system roots.
    pub fn with_extra_roots_pem(self, pem: &[u8]) -> Result<Self, TransportError> {
        let mut extra = self.inner.extra_roots.clone();
        extra.extend(Self::pem_roots(pem)?);
        let tls = signet_http::tls::client_config(&extra).map_err(|e| TransportError {
            endpoint: "TLS roots".into(),
            message: e.0,
        })?;
        Ok(self.edit(|i| {
            i.tls = tls;
            i.extra_roots = extra;
        }))
    }

    /// Replaces the proxy policy (default: the environment's).
    pub fn with_proxy(self, proxy: ProxyPolicy) -> Self {
        self.edit(|i| i.proxy = proxy)
    }

    /// Connects to `addr` for `host:port` (see the module docs).
    pub fn resolve(self, host: &str, port: u16, addr: SocketAddr) -> Self {
        let host = host.to_ascii_lowercase();
        self.edit(|i| {
            i.resolve.insert((host, port), addr);
        })
    }

    /// Refuses every host not pinned with [`HttpTransport::resolve`] (tests).
    pub fn only_resolved(self) -> Self {
        self.edit(|i| i.only_resolved = true)
    }

    /// Allows plain HTTP to `host` (besides IMDS).
    pub fn allow_plain_http(self, host: &str) -> Self {
        let host = host.to_ascii_lowercase();
        self.edit(|i| {
            i.plain_http.insert(host);
        })
    }

    /// The deadline of one round trip (connect, TLS, request, whole answer).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.edit(|i| i.timeout = timeout)
    }

    /// One round trip. `request`'s URI must be absolute (`https://host/path?query`).
    pub async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let uri = request.uri().clone();
        let endpoint = format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("?"),
            uri.authority().map(|a| a.as_str()).unwrap_or("?"),
            uri.path()
        );
        let fail = |message: String| TransportError {
            endpoint: endpoint.clone(),
            message,
        };
        match tokio::time::timeout(self.inner.timeout, self.round_trip(request)).await {
            Ok(r) => r.map_err(fail),
            Err(_) => Err(fail(format!("no answer within {:?}", self.inner.timeout))),
        }
    }

    async fn round_trip(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, String> {
        let (parts, body) = request.into_parts();
        if parts.uri.host().is_none() {
            return Err("URL has no host".into());
        }
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = self
            .inner
            .client
            .request(request)
            .await
            .map_err(|e| signet_http::describe(&e))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new()
    }
}

/// `azure_core`'s transport seam: the SDK's requests go through [`HttpTransport::send`].
#[async_trait::async_trait]
impl azure_core::http::HttpClient for HttpTransport {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        use azure_core::error::{Error, ErrorKind};
        let body = match request.body() {
            azure_core::http::Body::Bytes(b) => Bytes::copy_from_slice(b),
            _ => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "streamed request bodies are not supported by signet's transport",
                ))
            }
        };
        let method = http::Method::from_bytes(request.method().as_ref().as_bytes())
            .map_err(|e| Error::with_message(ErrorKind::Other, format!("method: {e}")))?;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(request.url().as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let http_request = builder
            .body(body)
            .map_err(|e| Error::with_message(ErrorKind::Other, format!("request: {e}")))?;
        let response = self
            .send(http_request)
            .await
            .map_err(|e| Error::with_message(ErrorKind::Io, e.to_string()))?;
        let (parts, body) = response.into_parts();
        let mut headers = azure_core::http::headers::Headers::new();
        for (name, value) in &parts.headers {
            if let Ok(v) = value.to_str() {
                headers.insert(name.as_str().to_owned(), v.to_owned());
            }
        }
        Ok(azure_core::http::AsyncRawResponse::from_bytes(
            azure_core::http::StatusCode::from(parts.status.as_u16()),
            headers,
            body,
        ))
    }
}
