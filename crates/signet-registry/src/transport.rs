//! The HTTP layer: a connector (TCP + rustls with the aws-lc-rs provider, plain HTTP only
//! where allowed), one pooled hyper client per host, capped body reads, backoff.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::RegistryError;

/// A connection: plain TCP or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connects to one host: TLS with the given configuration, or plain TCP when allowed.
#[derive(Clone)]
pub(crate) struct Connector {
    tls: Arc<rustls::ClientConfig>,
    allow_plain: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("allow_plain", &self.allow_plain)
            .finish()
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        let allow_plain = self.allow_plain;
        Box::pin(async move {
            let https = match uri.scheme_str() {
                Some("https") => true,
                Some("http") if allow_plain => false,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("scheme of {uri} not allowed"),
                    ))
                }
            };
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            if !https {
                return Ok(TokioIo::new(Stream::Plain(tcp)));
            }
            let name = ServerName::try_from(host)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = TlsConnector::from(tls).connect(name, tcp).await?;
            Ok(TokioIo::new(Stream::Tls(Box::new(tls))))
        })
    }
}

pub(crate) type HttpClient = Client<Connector, Full<Bytes>>;

/// One pooled HTTP client for one host.
pub(crate) fn http_client(tls: Arc<rustls::ClientConfig>, allow_plain: bool) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(16)
        .build(Connector { tls, allow_plain })
}

/// A rustls client configuration on the aws-lc-rs provider trusting the Mozilla roots plus
/// `extra` (DER certificates).
pub(crate) fn tls_config(
    extra: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, RegistryError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| RegistryError::Config(format!("registry CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Parses PEM certificates (every `CERTIFICATE` block).
pub(crate) fn parse_pem_certs(
    pem: &[u8],
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, RegistryError> {
    use rustls_pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = rustls_pki_types::CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| RegistryError::Config(format!("registry CA PEM: {e}")))?;
    if certs.is_empty() {
        return Err(RegistryError::Config(
            "registry CA PEM holds no certificate".to_owned(),
        ));
    }
    Ok(certs)
}

/// Reads a body, failing as soon as it grows past `limit`.
pub(crate) async fn read_capped(
    mut body: Incoming,
    limit: u64,
    host: &str,
    what: &str,
) -> Result<Bytes, RegistryError> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RegistryError::Transport {
            host: host.to_owned(),
            message: format!("reading {what}: {e}"),
        })?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(RegistryError::TooLarge {
                    host: host.to_owned(),
                    what: what.to_owned(),
                    limit,
                });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// Whether a client error is worth a retry: connection refused/reset, a connection closed
/// before the answer.
pub(crate) fn retryable(err: &hyper_util::client::legacy::Error) -> bool {
    if err.is_connect() {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// Describes a client error with its causes.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// Jittered exponential backoff: attempt 0 → 50–100 ms, doubling, capped at 2 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap_ms = (100u64 << attempt.min(5)).min(2000);
    let mut r = [0u8; 8];
    let rand = if aws_lc_rs::rand::fill(&mut r).is_ok() {
        u64::from_le_bytes(r)
    } else {
        0
    };
    Duration::from_millis(cap_ms / 2 + rand % (cap_ms / 2 + 1))
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured: backoff applies).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Percent-encodes a query component.
pub(crate) fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
