//! The one HTTP client of this crate: hyper 1 over tokio-rustls (aws-lc-rs), plugged into
//! `azure_core` as its [`HttpClient`](azure_core::http::HttpClient) so that the house
//! libraries (`azure_identity`, Key Vault) and our own ACR exchange share one transport.
//!
//! - TLS roots: the Mozilla roots (`webpki-roots`) in production; [`HttpTransport::with_roots_pem`]
//!   replaces them (tests: the fakes' generated CA).
//! - Plain HTTP only to the IMDS address `169.254.169.254` (the managed-identity endpoint is
//!   plain HTTP by design) and to hosts allowed explicitly.
//! - [`HttpTransport::resolve`] pins `host:port` to a socket address (like curl's
//!   `--resolve`): the request, its `Host` header and the TLS server name stay those of the
//!   real endpoint, only the TCP connection goes elsewhere. Tests use it to put the fakes
//!   behind `login.microsoftonline.com`, `169.254.169.254` and `*.vault.azure.net` without
//!   changing a single URL in the code under test. With [`HttpTransport::only_resolved`] every
//!   other host is refused, so a test can never reach the network.
//! - One connection per request (no pool): token fetches happen about once an hour.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};

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
    resolve: HashMap<(String, u16), SocketAddr>,
    only_resolved: bool,
    plain_http: HashSet<String>,
    timeout: Duration,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("resolve", &self.inner.resolve)
            .field("only_resolved", &self.inner.only_resolved)
            .field("plain_http", &self.inner.plain_http)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

fn tls_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl HttpTransport {
    /// Production: Mozilla roots, plain HTTP to IMDS only, 30 s per request.
    pub fn new() -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        HttpTransport {
            inner: Arc::new(Inner {
                tls: tls_config(roots).unwrap_or_else(|e| panic!("{e}")),
                resolve: HashMap::new(),
                only_resolved: false,
                plain_http: HashSet::from([IMDS_HOST.to_owned()]),
                timeout: Duration::from_secs(30),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Trusts exactly the PEM CA certificates in `pem` (instead of the Mozilla roots).
    pub fn with_roots_pem(self, pem: &[u8]) -> Result<Self, TransportError> {
        let bad = |message: String| TransportError {
            endpoint: "TLS roots".into(),
            message,
        };
        let mut roots = rustls::RootCertStore::empty();
        let mut n = 0;
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pem) {
            let cert: CertificateDer<'static> = cert.map_err(|e| bad(format!("PEM: {e}")))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("no certificate in PEM".into()));
        }
        let tls = tls_config(roots).map_err(bad)?;
        Ok(self.edit(|i| i.tls = tls))
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
        let (mut parts, body) = request.into_parts();
        let host = parts
            .uri
            .host()
            .ok_or("URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let tls = match parts.uri.scheme_str() {
            Some("https") => true,
            Some("http") if self.inner.plain_http.contains(&host) => false,
            Some("http") => return Err("plain HTTP is not allowed to this host".into()),
            _ => return Err("URL scheme must be https".into()),
        };
        let port = parts.uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let addr = match self.inner.resolve.get(&(host.clone(), port)) {
            Some(a) => *a,
            None if self.inner.only_resolved => {
                return Err(format!("{host}:{port} is not a pinned test address"))
            }
            None => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("resolving {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host} has no address"))?,
        };
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or("URL has no host")?;
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        parts.uri = path.parse().map_err(|e| format!("path: {e}"))?;
        parts.headers.insert(
            http::header::HOST,
            authority.parse().map_err(|e| format!("host header: {e}"))?,
        );
        let request = http::Request::from_parts(parts, Full::new(body));

        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let response = if tls {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("server name {host}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(self.inner.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            exchange(TokioIo::new(stream), request).await?
        } else {
            exchange(TokioIo::new(tcp), request).await?
        };
        Ok(response)
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new()
    }
}

async fn exchange<I>(
    io: I,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<Bytes>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    driver.abort();
    Ok(http::Response::from_parts(parts, body))
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
