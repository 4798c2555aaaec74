//! Running `signet serve` as a process and talking to it the way Gatekeeper does:
//! HTTP/1.1 over TLS 1.3 with a client certificate, the server's CA bundle and a hostname
//! check. Shared by the `serve_*` test files.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;

/// A CA and what it issued.
pub struct Ca {
    pub pem: String,
    key: KeyPair,
    params: CertificateParams,
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { pem, key, params }
    }

    /// (certificate PEM, key PEM) for these DNS names / IPs.
    pub fn issue(&self, cn: &str, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let issuer = Issuer::from_params(&self.params, &self.key);
        (
            p.signed_by(&key, &issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    }
}

/// The PKI of a test: the server's CA and certificate, Gatekeeper's CA and client
/// certificate, and a foreign CA's client certificate.
pub struct Pki {
    pub server_ca: Ca,
    pub server: (String, String),
    pub client_ca: Ca,
    pub client: (String, String),
    pub foreign: (String, String),
}

impl Pki {
    pub fn new() -> Pki {
        let server_ca = Ca::new("Signet Test Server CA");
        let server = server_ca.issue(
            "signet.signet-system",
            &["signet.signet-system.svc", "localhost"],
        );
        let client_ca = Ca::new("Gatekeeper Test CA");
        let client = client_ca.issue(
            "gatekeeper",
            &["gatekeeper-webhook-service.gatekeeper-system.svc"],
        );
        let foreign = Ca::new("Foreign CA").issue(
            "gatekeeper",
            &["gatekeeper-webhook-service.gatekeeper-system.svc"],
        );
        Pki {
            server_ca,
            server,
            client_ca,
            client,
            foreign,
        }
    }
}

/// Writes `files` into a directory the Kubernetes way: `DIR/..TIMESTAMP/<files>`,
/// `DIR/..data -> ..TIMESTAMP`, `DIR/<name> -> ..data/<name>`; a second call swaps `..data`
/// atomically (rename of a new symlink) and removes the old timestamped directory.
pub fn k8s_mount(dir: &Path, files: &[(&str, &[u8])]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir).unwrap();
    let stamp = format!("..2026_{}", N.fetch_add(1, Ordering::SeqCst));
    std::fs::create_dir(dir.join(&stamp)).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(&stamp).join(name), bytes).unwrap();
    }
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::os::unix::fs::symlink(&stamp, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
}

/// A running `signet serve`.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    pub probes: Option<SocketAddr>,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub dir: PathBuf,
}

impl Serve {
    /// Starts `signet serve ARGS` and waits for its "serving" log line.
    pub fn start(dir: &Path, args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
            .arg("serve")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("\"serving\"") {
                        let _ = tx.send(line.clone());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("signet serve did not start: {:#?}", logs.lock().unwrap());
            }
        };
        let v: Value = serde_json::from_str(&line).unwrap();
        let addr = v["fields"]["listen"].as_str().unwrap().parse().unwrap();
        let probes = v["fields"]["probes"].as_str().and_then(|s| s.parse().ok());
        Serve {
            child,
            addr,
            probes,
            logs,
            dir: dir.to_path_buf(),
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit (at most `limit`).
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files of a standard setup under `dir`; returns the config file path.
/// `policy` is the trust policy document's bytes.
pub fn setup(dir: &Path, pki: &Pki, policy: &[u8], extra_yaml: &str) -> PathBuf {
    k8s_mount(
        &dir.join("tls"),
        &[
            ("tls.crt", pki.server.0.as_bytes()),
            ("tls.key", pki.server.1.as_bytes()),
        ],
    );
    k8s_mount(
        &dir.join("gatekeeper-ca"),
        &[("ca.crt", pki.client_ca.pem.as_bytes())],
    );
    k8s_mount(&dir.join("policy"), &[("trustpolicy.json", policy)]);
    std::fs::create_dir_all(dir.join("truststore/x509/ca/test")).unwrap();
    let cfg = dir.join("signet.yaml");
    let d = dir.display();
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:0\nmetricsListen: 127.0.0.1:0\n\
             tls:\n  certFile: {d}/tls/tls.crt\n  keyFile: {d}/tls/tls.key\n  clientCAFile: {d}/gatekeeper-ca/ca.crt\n\
             trust:\n  policyFile: {d}/policy/trustpolicy.json\n  storeRoot: {d}/truststore\n\
             reload:\n  debounce: 100ms\n  pollInterval: 2s\n\
             {extra_yaml}"
        ),
    )
    .unwrap();
    cfg
}

/// Client TLS settings like Gatekeeper's: TLS 1.3, the server's CA bundle, optionally a
/// client certificate.
pub fn client_config(ca_pem: &str, cert: Option<&(String, String)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Opens one keep-alive connection (TLS, SNI/hostname `host`).
pub async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<(Sender, Vec<u8>), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    connect_over(tcp, config, host).await
}

/// A TCP connection from a chosen local address (e.g. `127.0.0.2`: another peer as the
/// server counts peers).
pub async fn tcp_from(local: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match local {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(addr).await
}

/// [`connect`] over an existing TCP connection.
pub async fn connect_over(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<(Sender, Vec<u8>), String> {
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = connector
        .connect(ServerName::try_from(host.to_owned()).unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, peer))
}

/// One request on a connection.
pub async fn send(
    sender: &mut Sender,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, Value), String> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "signet.signet-system.svc")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, v))
}

/// Connects and sends one request.
pub async fn call(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, Value), String> {
    let (mut s, _) = connect(addr, config, "signet.signet-system.svc").await?;
    send(&mut s, method, path, body).await
}

/// A plain-HTTP GET on the probe listener.
pub async fn probe(addr: SocketAddr, path: &str) -> (u16, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    probe_over(tcp, path).await
}

/// [`probe`] over an existing TCP connection.
pub async fn probe_over(tcp: TcpStream, path: &str) -> (u16, String) {
    let (mut s, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = s.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub fn provider_request(keys: &[&str]) -> String {
    serde_json::json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
                       "request": {"keys": keys}})
    .to_string()
}

/// Polls `f` until it returns true (at most `limit`).
pub async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
