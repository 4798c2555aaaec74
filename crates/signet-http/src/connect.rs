//! The connector: TCP (with pinned addresses), optional proxy (CONNECT tunnel or
//! absolute-form), then TLS.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::proxy::ProxyPolicy;

/// A connection: plain TCP or TLS over TCP (possibly through a tunnel).
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Where plain HTTP is allowed.
#[derive(Debug, Clone)]
pub enum PlainHttp {
    /// Never: `http://` URLs are refused.
    Never,
    /// Every host (CRL and OCSP URLs are plain HTTP by design).
    Always,
    /// These hosts only (lower-case host names, without port).
    Hosts(Arc<HashSet<String>>),
}

impl PlainHttp {
    fn allows(&self, host: &str) -> bool {
        match self {
            PlainHttp::Never => false,
            PlainHttp::Always => true,
            PlainHttp::Hosts(hosts) => hosts.contains(host),
        }
    }
}

/// Decides which addresses of a resolved host a direct connection may use (the revocation
/// client refuses internal ranges this way). It sees the addresses a name resolved to, so a
/// rebinding DNS answer cannot slip a refused address in between a check and the connect.
pub trait AddressFilter: Send + Sync {
    /// The usable addresses of `host`; an error (naming the host, not the addresses) when
    /// none is.
    fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>>;
}

/// The connector of the pooled client (see the crate docs).
#[derive(Clone)]
pub struct Connector {
    tls: Arc<rustls::ClientConfig>,
    proxy: ProxyPolicy,
    plain_http: PlainHttp,
    pins: Pins,
    address_filter: Option<Arc<dyn AddressFilter>>,
}

#[derive(Clone, Default)]
struct Pins {
    addresses: Arc<HashMap<(String, u16), SocketAddr>>,
    only_pinned: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("proxy", &self.proxy)
            .field("plain_http", &self.plain_http)
            .field("pinned", &self.pins.addresses)
            .field("only_pinned", &self.pins.only_pinned)
            .field("address_filter", &self.address_filter.is_some())
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// TLS with `tls`, the given proxy policy, HTTPS only.
    pub fn new(tls: Arc<rustls::ClientConfig>, proxy: ProxyPolicy) -> Connector {
        Connector {
            tls,
            proxy,
            plain_http: PlainHttp::Never,
            pins: Pins::default(),
            address_filter: None,
        }
    }

    /// Filters the addresses of every destination reached directly. Through a proxy the
    /// proxy resolves the name, so only URL-level checks by the caller apply there.
    pub fn address_filter(mut self, filter: Arc<dyn AddressFilter>) -> Connector {
        self.address_filter = Some(filter);
        self
    }

    /// Where plain HTTP is allowed.
    pub fn plain_http(mut self, plain_http: PlainHttp) -> Connector {
        self.plain_http = plain_http;
        self
    }

    /// Connects to `addr` whenever `host:port` is asked for (a proxy's address included):
    /// the URL, `Host` header and TLS server name stay those of `host`.
    pub fn resolve(mut self, host: &str, port: u16, addr: SocketAddr) -> Connector {
        Arc::make_mut(&mut self.pins.addresses).insert((host.to_ascii_lowercase(), port), addr);
        self
    }

    /// Refuses every host not pinned with [`Connector::resolve`] (tests never reach the network).
    pub fn only_resolved(mut self) -> Connector {
        self.pins.only_pinned = true;
        self
    }

    /// The TLS configuration in use.
    pub fn tls(&self) -> &Arc<rustls::ClientConfig> {
        &self.tls
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// A stream plus whether it goes to an HTTP proxy (then requests are sent in absolute form).
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    via_http_proxy: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new().proxy(self.via_http_proxy)
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
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

/// TCP to `uri`'s host and port, through the pins.
#[derive(Clone)]
struct Tcp {
    pins: Pins,
    filter: Option<Arc<dyn AddressFilter>>,
}

type TcpFuture = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

impl tower_service::Service<Uri> for Tcp {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = TcpFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let pins = self.pins.clone();
        let filter = self.filter.clone();
        Box::pin(async move {
            let (host, port) = host_port(&uri)?;
            let addrs: Vec<SocketAddr> = match pins.addresses.get(&(host.clone(), port)) {
                Some(addr) => vec![*addr],
                None if pins.only_pinned => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("{host}:{port} is not a pinned test address"),
                    ))
                }
                None => tokio::net::lookup_host((host.as_str(), port))
                    .await?
                    .collect(),
            };
            let addrs = match &filter {
                Some(filter) => filter.filter(&host, addrs)?,
                None => addrs,
            };
            let tcp = TcpStream::connect(addrs.as_slice()).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tcp))
        })
    }
}

fn host_port(uri: &Uri) -> io::Result<(String, u16)> {
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    Ok((host, port))
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TokioIo<Conn>>> + Send>>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Conn>;
    type Error = io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(uri).await.map(TokioIo::new) })
    }
}

impl Connector {
    async fn connect(self, uri: Uri) -> io::Result<Conn> {
        if let Some(error) = self.proxy.error() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("proxy settings: {error}"),
            ));
        }
        let (host, port) = host_port(&uri)?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if self.plain_http.allows(&host) => false,
            Some("http") => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("plain HTTP to {host} is not allowed"),
                ))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("scheme of {uri} is not allowed"),
                ))
            }
        };
        let route = self.proxy.route(&uri);
        let mut tcp = Tcp {
            pins: self.pins.clone(),
            // The proxy's own address is the operator's choice, never filtered.
            filter: match route {
                None => self.address_filter.clone(),
                Some(_) => None,
            },
        };
        if !https {
            let (stream, via_http_proxy) = match &route {
                // Absolute-form requests to the proxy (hyper-util writes them when the
                // connection says it is proxied).
                Some(route) => (
                    tower_service::Service::call(&mut tcp, route.uri.clone())
                        .await
                        .map_err(|e| proxy_error(route, e))?,
                    true,
                ),
                None => (
                    tower_service::Service::call(&mut tcp, uri.clone()).await?,
                    false,
                ),
            };
            return Ok(Conn {
                stream: Stream::Plain(stream.into_inner()),
                via_http_proxy,
            });
        }
        let tcp = match &route {
            Some(route) => {
                let mut tunnel = Tunnel::new(route.uri.clone(), tcp);
                if let Some(auth) = &route.authorization {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let target: Uri = format!("https://{}:{port}/", authority_host(&uri))
                    .parse()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                tower_service::Service::call(&mut tunnel, target)
                    .await
                    .map_err(|e| {
                        io::Error::other(format!(
                            "proxy {} refused or failed the CONNECT to {host}:{port}: {}",
                            route.uri.authority().map(|a| a.as_str()).unwrap_or("?"),
                            describe(&e)
                        ))
                    })?
            }
            None => tower_service::Service::call(&mut tcp, uri.clone()).await?,
        };
        let name = ServerName::try_from(host.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp.into_inner())
            .await?;
        Ok(Conn {
            stream: Stream::Tls(Box::new(tls)),
            via_http_proxy: false,
        })
    }
}

/// The host as written in a URI authority (IPv6 in brackets).
fn authority_host(uri: &Uri) -> &str {
    uri.host().unwrap_or_default()
}

fn proxy_error(route: &crate::proxy::ProxyRoute, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "connecting to proxy {}: {e}",
            route.uri.authority().map(|a| a.as_str()).unwrap_or("?")
        ),
    )
}

fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// The pooled client every Signet HTTP user shares the shape of.
pub type PooledClient = Client<Connector, Full<Bytes>>;

/// A pooled HTTP/1.1 client (keep-alive, 90 s idle, 16 idle connections per host).
pub fn pooled_client(connector: Connector) -> PooledClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(16)
        .build(connector)
}
