//! A forward proxy for tests, as a corporate or AKS egress proxy behaves: `CONNECT host:port`
//! opens a blind tunnel; an absolute-form request (`GET http://host/path`) is forwarded to its
//! host in origin form. Every request head the proxy itself reads is recorded, so tests can
//! count tunnels and check that nothing but `Proxy-Authorization` was offered to the proxy.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request head the proxy read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySeen {
    /// `CONNECT`, `GET`, `POST`, …
    pub method: String,
    /// `host:port` for CONNECT, the absolute URL otherwise.
    pub target: String,
    /// Header lines as received (name lower-cased, value).
    pub headers: Vec<(String, String)>,
}

impl ProxySeen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running proxy on 127.0.0.1; stops accepting on drop.
#[derive(Debug)]
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<ProxySeen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts the proxy. With `required_auth` (`Basic …`), requests without that
    /// `Proxy-Authorization` get `407`.
    pub async fn start(required_auth: Option<String>) -> Proxy {
        Proxy::start_with_routes(required_auth, std::collections::HashMap::new()).await
    }

    /// Like [`Proxy::start`], resolving `host:port` targets through `routes` first (a proxy
    /// that reaches `login.microsoftonline.com:443` where a test's fake listens).
    pub async fn start_with_routes(
        required_auth: Option<String>,
        routes: std::collections::HashMap<String, std::net::SocketAddr>,
    ) -> Proxy {
        let routes = Arc::new(routes);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                let required_auth = required_auth.clone();
                let routes = routes.clone();
                tokio::spawn(async move {
                    let _ = handle(tcp, log, required_auth, routes).await;
                });
            }
        });
        Proxy { addr, seen, task }
    }

    /// `http://127.0.0.1:PORT`, as `HTTPS_PROXY` would name it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request head read so far.
    pub fn seen(&self) -> Vec<ProxySeen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many CONNECT tunnels were asked for.
    pub fn connects(&self) -> usize {
        self.seen().iter().filter(|s| s.method == "CONNECT").count()
    }
}

async fn read_head(tcp: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn handle(
    mut client: TcpStream,
    log: Arc<Mutex<Vec<ProxySeen>>>,
    required_auth: Option<String>,
    routes: Arc<std::collections::HashMap<String, std::net::SocketAddr>>,
) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client).await?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let version = parts.next().unwrap_or("HTTP/1.1").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let seen = ProxySeen {
        method: method.clone(),
        target: target.clone(),
        headers: headers.clone(),
    };
    log.lock().unwrap().push(seen.clone());
    if let Some(required) = &required_auth {
        if seen.header("proxy-authorization") != Some(required.as_str()) {
            client
                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await?;
            return Ok(());
        }
    }
    if method == "CONNECT" {
        let connected = match routes.get(&target) {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(target.as_str()).await,
        };
        let Ok(mut upstream) = connected else {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        };
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    // Absolute form: http://host[:port]/path → connect to host, send origin form.
    let Some(after) = target.strip_prefix("http://") else {
        client
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let (authority, path) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    let upstream_addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut upstream = TcpStream::connect(upstream_addr.as_str()).await?;
    // One request per connection: the proxy reads (and records) every request head, so it
    // asks the origin to close after answering, and the client opens a new connection.
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for (name, value) in &headers {
        if matches!(
            name.as_str(),
            "proxy-authorization" | "proxy-connection" | "connection" | "keep-alive"
        ) {
            continue;
        }
        forwarded.push_str(&format!("{name}: {value}\r\n"));
    }
    forwarded.push_str("connection: close\r\n\r\n");
    upstream.write_all(forwarded.as_bytes()).await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
