//! `signet-loadtest`: drives `signet serve` the way Gatekeeper does (HTTP/1.1 keep-alive
//! over TLS 1.3 with a client certificate), N connections in parallel, requests of K keys,
//! bounded by a request count and a time limit, loopback targets only; reports throughput
//! and latency percentiles. `floor` runs a minimal hyper + rustls server answering a fixed
//! ProviderResponse: the cost of TLS + HTTP + JSON alone. `certs` writes a test PKI.
//! `compare` measures a target against the floor in one run, interleaved (target, floor,
//! floor, target, … on the same connection counts, so that other load on a shared machine
//! falls on both alike), and reports the throughput and p99 ratios per keys-per-request;
//! with `--pid` also the target's resident memory.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

#[derive(Debug, Parser)]
#[command(name = "signet-loadtest", about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a test PKI into DIR: ca.crt, server.{crt,key} (localhost), client-ca.crt, client.{crt,key}.
    Certs {
        dir: PathBuf,
        /// Server certificates issued by the one server CA: `server.*`, then `server-1.*`,
        /// … (for certificate rotation).
        #[arg(long, default_value_t = 1)]
        servers: usize,
    },
    /// Serve a fixed ProviderResponse over mTLS 1.3 (the floor).
    Floor {
        #[arg(long, default_value = "127.0.0.1:9443")]
        listen: SocketAddr,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        client_ca: PathBuf,
    },
    /// Send load to a target and to the floor, interleaved, and report the ratios.
    Compare {
        /// The server measured (e.g. `signet serve`).
        #[arg(long)]
        target: SocketAddr,
        /// The floor (`signet-loadtest floor`, same certificates).
        #[arg(long)]
        floor: SocketAddr,
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value = "localhost")]
        server_name: String,
        /// Keys per request, one comparison each.
        #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
        keys: Vec<usize>,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 50)]
        images: usize,
        #[arg(long, default_value = "registry.example/app")]
        image: String,
        /// Seconds per slice; each round is a target slice and a floor slice.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Rounds per keys-per-request (the order alternates: target first, then floor first).
        #[arg(long, default_value_t = 4)]
        rounds: u64,
        #[arg(long, default_value_t = 10)]
        warmup: u64,
        /// The target's process id: its resident memory (VmRSS, VmHWM) is reported.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Send load.
    Run {
        #[arg(long)]
        addr: SocketAddr,
        /// CA bundle of the server certificate.
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Server name to check (SNI).
        #[arg(long, default_value = "localhost")]
        server_name: String,
        #[arg(long, default_value = "/v1/verify")]
        path: String,
        /// Keep-alive connections in parallel.
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Keys per ProviderRequest.
        #[arg(long, default_value_t = 1)]
        keys: usize,
        /// Distinct images cycled through (keys repeat across requests: a warm cache).
        #[arg(long, default_value_t = 50)]
        images: usize,
        /// Image reference prefix; `:N` is appended.
        #[arg(long, default_value = "registry.example/app")]
        image: String,
        /// Stop after this many requests in total...
        #[arg(long, default_value_t = 20_000)]
        requests: u64,
        /// ...or after this many seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Requests not measured at the start (per connection).
        #[arg(long, default_value_t = 10)]
        warmup: u64,
        /// Read every answer and count the items that are not verified (`errorAnswers`).
        #[arg(long)]
        check_answers: bool,
        /// Keys are digest references `IMAGE@sha256:<N as 64 hex digits>` instead of tags
        /// `IMAGE:N` (digests a registry does not have: cached failures, cheap to make many).
        #[arg(long)]
        digests: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Cmd::Certs { dir, servers } => certs(&dir, servers),
        Cmd::Floor {
            listen,
            cert,
            key,
            client_ca,
        } => rt.block_on(floor(listen, &cert, &key, &client_ca)),
        Cmd::Compare {
            target,
            floor,
            ca,
            cert,
            key,
            server_name,
            keys,
            connections,
            images,
            image,
            seconds,
            rounds,
            warmup,
            pid,
        } => {
            for a in [target, floor] {
                if !a.ip().is_loopback() {
                    bail!("refusing {a}: load is only ever sent to loopback addresses");
                }
            }
            let config = client_config(&ca, &cert, &key)?;
            let base = RunArgs {
                addr: target,
                config,
                server_name,
                path: "/v1/verify".into(),
                connections,
                keys: 1,
                images,
                image,
                requests: u64::MAX,
                seconds,
                warmup,
                check_answers: false,
                digests: false,
            };
            rt.block_on(compare(base, floor, &keys, rounds, pid))
        }
        Cmd::Run {
            addr,
            ca,
            cert,
            key,
            server_name,
            path,
            connections,
            keys,
            images,
            image,
            requests,
            seconds,
            warmup,
            check_answers,
            digests,
        } => {
            if !addr.ip().is_loopback() {
                bail!("refusing {addr}: load is only ever sent to loopback addresses");
            }
            let config = client_config(&ca, &cert, &key)?;
            rt.block_on(run(RunArgs {
                addr,
                config,
                server_name,
                path,
                connections,
                keys,
                images,
                image,
                requests,
                seconds,
                warmup,
                check_answers,
                digests,
            }))
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_certs(p: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(p).with_context(|| p.display().to_string())?;
    Ok(CertificateDer::pem_slice_iter(&bytes).collect::<Result<_, _>>()?)
}

fn read_key(p: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let bytes = std::fs::read(p).with_context(|| p.display().to_string())?;
    Ok(PrivateKeyDer::from_pem_slice(&bytes)?)
}

fn client_config(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(ca)? {
        roots.add(c)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(read_certs(cert)?, read_key(key)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certs(dir: &Path, servers: usize) -> anyhow::Result<()> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    std::fs::create_dir_all(dir)?;
    let ca = |cn: &str| -> anyhow::Result<(CertificateParams, KeyPair, String)> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = p.self_signed(&key)?.pem();
        Ok((p, key, pem))
    };
    let leaf = |issuer: &(CertificateParams, KeyPair, String),
                cn: &str,
                names: Vec<String>|
     -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(names)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        let iss = Issuer::from_params(&issuer.0, &issuer.1);
        Ok((p.signed_by(&key, &iss)?.pem(), key.serialize_pem()))
    };
    let server_ca = ca("loadtest server CA")?;
    let client_ca = ca("loadtest client CA")?;
    let server = leaf(
        &server_ca,
        "localhost",
        vec!["localhost".into(), "127.0.0.1".into()],
    )?;
    let client = leaf(&client_ca, "gatekeeper", vec!["gatekeeper".into()])?;
    for (name, content) in [
        ("ca.crt", &server_ca.2),
        ("server.crt", &server.0),
        ("server.key", &server.1),
        ("client-ca.crt", &client_ca.2),
        ("client.crt", &client.0),
        ("client.key", &client.1),
    ] {
        std::fs::write(dir.join(name), content)?;
    }
    for i in 1..servers {
        let server = leaf(
            &server_ca,
            "localhost",
            vec!["localhost".into(), "127.0.0.1".into()],
        )?;
        std::fs::write(dir.join(format!("server-{i}.crt")), &server.0)?;
        std::fs::write(dir.join(format!("server-{i}.key")), &server.1)?;
    }
    println!("wrote {}", dir.display());
    Ok(())
}

async fn floor(
    listen: SocketAddr,
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(client_ca)? {
        roots.add(c)?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(cert)?, read_key(key)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("floor listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    // Read and parse the body like the real server, answer a fixed item per key.
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    let keys: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| serde_json::from_value(v["request"]["keys"].clone()).ok())
                        .unwrap_or_default();
                    let items: Vec<_> = keys
                    .iter()
                    .map(|k| serde_json::json!({"key": k, "value": {"verified": false, "isSuccess": false,
                        "digest": null, "error": {"code": "INTERNAL", "message": "floor"}, "signatures": [],
                        "traceID": "00000000000000000000000000000000", "timestamp": "2026-01-01T00:00:00Z"}}))
                    .collect();
                    let out = serde_json::json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1",
                    "kind": "ProviderResponse", "response": {"idempotent": false, "items": items}});
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                        out.to_string(),
                    ))))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

struct RunArgs {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    server_name: String,
    path: String,
    connections: usize,
    keys: usize,
    images: usize,
    image: String,
    requests: u64,
    seconds: u64,
    warmup: u64,
    check_answers: bool,
    digests: bool,
}

/// What one load run measured.
#[derive(Debug, Default)]
struct Measured {
    /// Latency of every measured request, sorted.
    latencies: Vec<Duration>,
    /// The time over which they were measured (the longest connection's window).
    window: Duration,
    errors: u64,
    /// Items not verified (with `check_answers`).
    error_answers: u64,
    wall: Duration,
}

impl Measured {
    fn absorb(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        self.latencies.sort();
        self.window += other.window;
        self.errors += other.errors;
        self.error_answers += other.error_answers;
        self.wall += other.wall;
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let n = self.latencies.len();
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    fn requests_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// Resident memory of a process, KiB: (VmRSS, VmHWM).
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn compare(
    base: RunArgs,
    floor: SocketAddr,
    keys: &[usize],
    rounds: u64,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let target = base.addr;
    let base = Arc::new(base);
    if let Some(pid) = pid {
        if let Some((rss, hwm)) = rss_kib(pid) {
            println!("{{\"rssBeforeKiB\":{rss},\"hwmBeforeKiB\":{hwm}}}");
        }
    }
    for &k in keys {
        let (mut t, mut f) = (Measured::default(), Measured::default());
        for round in 0..rounds.max(1) {
            let order = if round % 2 == 0 {
                [target, floor]
            } else {
                [floor, target]
            };
            for addr in order {
                let args = RunArgs {
                    addr,
                    config: base.config.clone(),
                    server_name: base.server_name.clone(),
                    path: base.path.clone(),
                    connections: base.connections,
                    keys: k,
                    images: base.images,
                    image: base.image.clone(),
                    requests: base.requests,
                    seconds: base.seconds,
                    warmup: base.warmup,
                    check_answers: false,
                    digests: false,
                };
                let m = measure(Arc::new(args)).await?;
                if addr == target {
                    t.absorb(m);
                } else {
                    f.absorb(m);
                }
            }
        }
        let (trps, frps) = (t.requests_per_second(), f.requests_per_second());
        let (tp99, fp99) = (t.percentile_ms(0.99), f.percentile_ms(0.99));
        println!(
            "{{\"keysPerRequest\":{k},\"connections\":{},\"rounds\":{rounds},\"secondsPerSlice\":{},\"target\":{{\"requests\":{},\"errors\":{},\"requestsPerSecond\":{trps:.0},\"p50ms\":{:.3},\"p99ms\":{tp99:.3},\"maxMs\":{:.3}}},\"floor\":{{\"requests\":{},\"errors\":{},\"requestsPerSecond\":{frps:.0},\"p50ms\":{:.3},\"p99ms\":{fp99:.3},\"maxMs\":{:.3}}},\"throughputRatio\":{:.3},\"p99Ratio\":{:.3}}}",
            base.connections,
            base.seconds,
            t.latencies.len(),
            t.errors,
            t.percentile_ms(0.5),
            t.percentile_ms(1.0),
            f.latencies.len(),
            f.errors,
            f.percentile_ms(0.5),
            f.percentile_ms(1.0),
            trps / frps.max(1e-9),
            tp99 / fp99.max(1e-9),
        );
    }
    if let Some(pid) = pid {
        if let Some((rss, hwm)) = rss_kib(pid) {
            println!("{{\"rssAfterKiB\":{rss},\"hwmAfterKiB\":{hwm}}}");
        }
    }
    Ok(())
}

async fn run(a: RunArgs) -> anyhow::Result<()> {
    let a = Arc::new(a);
    let m = measure(a.clone()).await?;
    let rps = m.requests_per_second();
    println!(
        "{{\"path\":\"{}\",\"connections\":{},\"keysPerRequest\":{},\"measuredRequests\":{},\"errors\":{},\"errorAnswers\":{},\"wallSeconds\":{:.2},\"requestsPerSecond\":{:.0},\"keysPerSecond\":{:.0},\"p50ms\":{:.3},\"p99ms\":{:.3},\"maxMs\":{:.3}}}",
        a.path, a.connections, a.keys, m.latencies.len(), m.errors, m.error_answers, m.wall.as_secs_f64(),
        rps, rps * a.keys as f64, m.percentile_ms(0.50), m.percentile_ms(0.99), m.percentile_ms(1.0)
    );
    Ok(())
}

async fn measure(a: Arc<RunArgs>) -> anyhow::Result<Measured> {
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let error_answers = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (a, issued, errors, error_answers) = (
            a.clone(),
            issued.clone(),
            errors.clone(),
            error_answers.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<Duration> = Vec::new();
            let Ok(mut sender) = connect(&a).await else {
                errors.fetch_add(1, Ordering::Relaxed);
                return (lat, Duration::ZERO);
            };
            let mut n = 0u64;
            let mut measured_since = None;
            loop {
                let seq = issued.fetch_add(1, Ordering::Relaxed);
                if Instant::now() >= stop_at || seq >= a.requests {
                    break;
                }
                let keys: Vec<String> = (0..a.keys)
                    .map(|k| {
                        // Consecutive requests, whichever connection sends them, name
                        // consecutive images: all of them are named once before any twice.
                        let i = (seq as usize * a.keys + k) % a.images.max(1);
                        if a.digests {
                            format!("{}@sha256:{i:064x}", a.image)
                        } else {
                            format!("{}:{i}", a.image)
                        }
                    })
                    .collect();
                let body = serde_json::json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1",
                    "kind": "ProviderRequest", "request": {"keys": keys}})
                .to_string();
                let req = http::Request::post(a.path.as_str())
                    .header("host", a.server_name.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_default();
                let t = Instant::now();
                let ok = match sender.send_request(req).await {
                    Ok(resp) => {
                        let success = resp.status().is_success();
                        match resp.into_body().collect().await {
                            Ok(body) if success => {
                                if a.check_answers {
                                    let bad = not_verified(&body.to_bytes(), a.keys);
                                    error_answers.fetch_add(bad, Ordering::Relaxed);
                                }
                                true
                            }
                            _ => false,
                        }
                    }
                    Err(_) => false,
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                    match connect(&a).await {
                        Ok(s) => sender = s,
                        Err(_) => break,
                    }
                }
                n += 1;
                if n > a.warmup {
                    measured_since.get_or_insert_with(Instant::now);
                    lat.push(t.elapsed());
                }
            }
            (lat, measured_since.map(|s| s.elapsed()).unwrap_or_default())
        }));
    }
    let mut all = Vec::new();
    let mut window = Duration::ZERO;
    for t in tasks {
        let (lat, w) = t.await?;
        all.extend(lat);
        window = window.max(w);
    }
    let wall = started.elapsed();
    all.sort();
    Ok(Measured {
        latencies: all,
        window,
        errors: errors.load(Ordering::Relaxed),
        error_answers: error_answers.load(Ordering::Relaxed),
        wall,
    })
}

/// Items of a `ProviderResponse` that are not verified (all `keys` when it does not parse).
fn not_verified(body: &[u8], keys: usize) -> u64 {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return keys as u64;
    };
    let Some(items) = v["response"]["items"].as_array() else {
        return keys as u64;
    };
    let missing = keys.saturating_sub(items.len()) as u64;
    missing
        + items
            .iter()
            .filter(|i| i["value"]["verified"] != serde_json::Value::Bool(true))
            .count() as u64
}

async fn connect(
    a: &RunArgs,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(a.addr).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(a.config.clone())
        .connect(ServerName::try_from(a.server_name.clone())?, tcp)
        .await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
