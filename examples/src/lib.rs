//! Signet's local end-to-end demo, as a library (the `local-demo` binary and the end-to-end
//! test both drive it).
//!
//! On one machine, without Docker or a cloud account:
//! 1. starts Debian's real `docker-registry` (distribution 2.8) on 127.0.0.1 with TLS and
//!    htpasswd auth ([`signet_testkit::registry`]);
//! 2. creates a signing CA and a signer, pushes `net-monitor:v1` with a Notation signature
//!    (COSE, found through the tag-schema index) and `net-monitor:unsigned` without one
//!    (and, for load tests, more signed images: `bench:N`, `cold:N`);
//! 3. writes a trust policy, a trust store, a Docker `config.json`, the registry's CA and the
//!    server / Gatekeeper client certificates into a temporary directory;
//! 4. starts `signet serve` (a built binary) on them and waits for `/readyz`;
//! 5. calls it the way Gatekeeper does ([`Demo::gatekeeper_calls`]): mTLS, a
//!    `ProviderRequest` to `/v1/verify` and `/v1/mutate`, `AdmissionReview`s to `/v1/admit`.
//!
//! Everything it started stops when the [`Demo`] is dropped.

pub mod delay;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use signet_testkit::registry::registry::{available, free_port, REGISTRY_BIN};
use signet_testkit::registry::{Pusher, Registry, RegistryAuth, SigStyle, TestPki};
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, TestCa, TestSigner};

/// The demo's repository.
pub const REPO: &str = "net-monitor";
/// The registry's (htpasswd) user and password.
pub const REGISTRY_USER: &str = "demo";
const REGISTRY_PASSWORD: &str = "demo-registry-password";
/// The signer's certificate subject (the trust policy's trusted identity).
pub const SIGNER_SUBJECT: &str =
    "C=US, ST=WA, L=Seattle, O=Signet Test, CN=net-monitor release signer";
/// The name Gatekeeper uses for the service (a SAN of the server certificate), and
/// `localhost` (what `signet-loadtest` checks by default).
pub const SERVER_NAME: &str = "signet.signet-system.svc";

/// What to set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `signet` binary to run `serve` with.
    pub signet: PathBuf,
    /// Extra signed images `bench:0` … `bench:N-1` (for load tests).
    pub bench_images: usize,
    /// Extra signed images `cold:0` … `cold:N-1` that the demo itself never requests (for
    /// cold-latency measurements).
    pub cold_images: usize,
    /// `signet serve`'s log level (`info` logs one line per request).
    pub log_level: String,
}

impl Options {
    /// The plain demo: no extra images, log level `info`.
    pub fn new(signet: impl Into<PathBuf>) -> Options {
        Options {
            signet: signet.into(),
            bench_images: 0,
            cold_images: 0,
            log_level: "info".into(),
        }
    }
}

/// The files the demo wrote (all under [`Files::dir`]).
#[derive(Debug, Clone)]
pub struct Files {
    pub dir: PathBuf,
    /// `signet serve --config`.
    pub config: PathBuf,
    pub trust_policy: PathBuf,
    /// Trust-store root: `x509/ca/net-monitor/ca.crt`.
    pub trust_store: PathBuf,
    /// Registry credentials (Docker `config.json`).
    pub docker_config: PathBuf,
    /// The registry's TLS CA.
    pub registry_ca: PathBuf,
    /// The CA of the server certificate (Gatekeeper's `caBundle`).
    pub server_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The CA of Gatekeeper's client certificate (`tls.clientCAFile`).
    pub client_ca: PathBuf,
    /// Gatekeeper's client certificate and key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// `signet serve`'s log (stderr).
    pub serve_log: PathBuf,
}

/// A pushed image.
#[derive(Debug, Clone)]
pub struct Image {
    /// `127.0.0.1:PORT/repo:tag`
    pub reference: String,
    pub digest: String,
}

/// A running `signet serve`, killed on drop.
#[derive(Debug)]
pub struct SignetServe {
    child: Child,
    /// The mTLS listener.
    pub addr: SocketAddr,
    /// The plain-HTTP probe / metrics listener.
    pub probes: SocketAddr,
}

impl SignetServe {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SignetServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the demo started; stops it all on drop (server first, then the registry,
/// then the files).
#[derive(Debug)]
pub struct Demo {
    pub serve: SignetServe,
    pub registry: Registry,
    pub files: Files,
    /// `127.0.0.1:PORT`
    pub registry_host: String,
    pub signed: Image,
    pub unsigned: Image,
    /// `127.0.0.1:PORT/bench` when bench images were pushed (tags `0`…`N-1`).
    pub bench: Option<(String, usize)>,
    /// `127.0.0.1:PORT/cold` when cold images were pushed (tags `0`…`N-1`).
    pub cold: Option<(String, usize)>,
    /// How long the set-up took.
    pub setup_time: Duration,
    _registry_pki: TestPki,
    _dir: tempfile::TempDir,
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// A CA for the service's TLS (server side and Gatekeeper's client side).
struct TlsCa {
    pem: String,
    key: KeyPair,
    params: CertificateParams,
}

impl TlsCa {
    fn new(cn: &str) -> anyhow::Result<TlsCa> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key)?.pem();
        Ok(TlsCa { pem, key, params })
    }

    /// (certificate PEM, key PEM)
    fn issue(&self, cn: &str, names: &[&str]) -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut p =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        p.distinguished_name.push(DnType::CommonName, cn);
        let issuer = Issuer::from_params(&self.params, &self.key);
        Ok((p.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
    }
}

async fn push_signed(
    pusher: &Pusher,
    signer: &TestSigner,
    host: &str,
    repo: &str,
    tag: &str,
) -> Image {
    let desc = pusher.image(repo, tag).await;
    pusher
        .signature(
            repo,
            &desc,
            signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    Image {
        reference: format!("{host}/{repo}:{tag}"),
        digest: desc.digest,
    }
}

impl Demo {
    /// Sets everything up and starts `signet serve`; `progress` gets one line per step.
    pub async fn start(options: &Options, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Demo> {
        let started = Instant::now();
        if !available() {
            bail!("{REGISTRY_BIN} is not installed: run `bash .ci/install-deps` (apt-get install docker-registry apache2-utils)");
        }
        if Command::new("htpasswd").arg("-h").output().is_err() {
            bail!("htpasswd is not installed: run `bash .ci/install-deps` (apt-get install apache2-utils)");
        }
        if !options.signet.is_file() {
            bail!(
                "no signet binary at {} (build it: cargo build --release -p signet)",
                options.signet.display()
            );
        }

        // 1. The registry.
        let registry_pki = TestPki::new();
        let registry = Registry::start(
            &registry_pki,
            RegistryAuth::Htpasswd {
                username: REGISTRY_USER.into(),
                password: REGISTRY_PASSWORD.into(),
            },
        )
        .await;
        let host = registry.host.clone();
        progress(&format!(
            "registry   docker-registry (distribution 2.8) at {} (TLS, htpasswd user {REGISTRY_USER:?})",
            registry.url()
        ));

        // 2. Signer and images.
        let ca = TestCa::new("net-monitor demo signing CA", KeyKind::Rsa3072);
        let signer = ca.issue(&LeafOptions::new(
            "net-monitor release signer",
            KeyKind::Rsa3072,
        ));
        let auth = format!(
            "Basic {}",
            b64(&format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"))
        );
        let pusher = Pusher::new(&registry.url(), registry_pki.client_config(), Some(auth));
        let signed = push_signed(&pusher, &signer, &host, REPO, "v1").await;
        progress(&format!(
            "pushed     {}  {}  + Notation signature (COSE, RSA-3072, {SIGNER_SUBJECT:?})",
            signed.reference, signed.digest
        ));
        let desc = pusher.image(REPO, "unsigned").await;
        let unsigned = Image {
            reference: format!("{host}/{REPO}:unsigned"),
            digest: desc.digest,
        };
        progress(&format!(
            "pushed     {}  {}  (no signature)",
            unsigned.reference, unsigned.digest
        ));
        let mut scopes = vec![format!("{host}/{REPO}")];
        let mut extra = |repo: &str, n: usize| -> Option<(String, usize)> {
            (n > 0).then(|| {
                scopes.push(format!("{host}/{repo}"));
                (format!("{host}/{repo}"), n)
            })
        };
        let bench = extra("bench", options.bench_images);
        let cold = extra("cold", options.cold_images);
        for (set, n) in [
            ("bench", options.bench_images),
            ("cold", options.cold_images),
        ] {
            for i in 0..n {
                push_signed(&pusher, &signer, &host, set, &i.to_string()).await;
            }
            if n > 0 {
                progress(&format!(
                    "pushed     {host}/{set}:0 … {host}/{set}:{}  ({n} signed images)",
                    n - 1
                ));
            }
        }

        // 3. Files.
        let dir = tempfile::Builder::new().prefix("signet-demo-").tempdir()?;
        let d = dir.path().to_path_buf();
        let files = Files {
            config: d.join("signet.yaml"),
            trust_policy: d.join("trust/trustpolicy.json"),
            trust_store: d.join("trust/store"),
            docker_config: d.join("registry/config.json"),
            registry_ca: d.join("registry/ca.crt"),
            server_ca: d.join("pki/ca.crt"),
            server_cert: d.join("pki/server.crt"),
            server_key: d.join("pki/server.key"),
            client_ca: d.join("pki/client-ca.crt"),
            client_cert: d.join("pki/client.crt"),
            client_key: d.join("pki/client.key"),
            serve_log: d.join("serve.log"),
            dir: d,
        };
        let policy = json!({"version": "1.0", "trustPolicies": [{
            "name": "net-monitor",
            "registryScopes": scopes,
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:net-monitor"],
            "trustedIdentities": [format!("x509.subject: {SIGNER_SUBJECT}")],
        }]});
        write(&files.trust_policy, serde_json::to_vec_pretty(&policy)?)?;
        write(
            &files.trust_store.join("x509/ca/net-monitor/ca.crt"),
            ca.cert_pem(),
        )?;
        let docker = json!({"auths": {&host: {"auth": b64(&format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"))}}});
        write(&files.docker_config, serde_json::to_vec_pretty(&docker)?)?;
        write(&files.registry_ca, &registry_pki.ca_pem)?;
        let server_ca = TlsCa::new("Signet demo server CA")?;
        let (cert, key) = server_ca.issue(
            "signet.signet-system",
            &[SERVER_NAME, "localhost", "127.0.0.1"],
        )?;
        write(&files.server_ca, &server_ca.pem)?;
        write(&files.server_cert, cert)?;
        write(&files.server_key, key)?;
        let client_ca = TlsCa::new("Signet demo Gatekeeper CA")?;
        let (cert, key) = client_ca.issue(
            "gatekeeper",
            &["gatekeeper-webhook-service.gatekeeper-system.svc"],
        )?;
        write(&files.client_ca, &client_ca.pem)?;
        write(&files.client_cert, cert)?;
        write(&files.client_key, key)?;
        let (listen, probes) = (free_port(), free_port());
        let config = format!(
            "listen: 127.0.0.1:{listen}\n\
             metricsListen: 127.0.0.1:{probes}\n\
             tls:\n  certFile: {}\n  keyFile: {}\n  clientCAFile: {}\n\
             trust:\n  policyFile: {}\n  storeRoot: {}\n\
             registry:\n  dockerConfig: {}\n  caFiles: [{}]\n\
             log:\n  level: {}\n",
            files.server_cert.display(),
            files.server_key.display(),
            files.client_ca.display(),
            files.trust_policy.display(),
            files.trust_store.display(),
            files.docker_config.display(),
            files.registry_ca.display(),
            options.log_level,
        );
        write(&files.config, config)?;
        progress(&format!(
            "wrote      trust policy, trust store, docker config, registry CA, server and client certificates under {}",
            files.dir.display()
        ));

        // 4. signet serve.
        let child = Command::new(&options.signet)
            .arg("serve")
            .arg("--config")
            .arg(&files.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&files.serve_log)?)
            .spawn()
            .with_context(|| format!("starting {}", options.signet.display()))?;
        let mut serve = SignetServe {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], listen)),
            probes: SocketAddr::from(([127, 0, 0, 1], probes)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = serve.child.try_wait()? {
                bail!(
                    "signet serve exited ({status}):\n{}",
                    std::fs::read_to_string(&files.serve_log).unwrap_or_default()
                );
            }
            if let Ok((200, _)) = probe(serve.probes, "/readyz").await {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "signet serve not ready after 30 s:\n{}",
                    std::fs::read_to_string(&files.serve_log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        progress(&format!(
            "started    signet serve (pid {}) on https://{} (mTLS), probes http://{}: /readyz 200",
            serve.pid(),
            serve.addr,
            serve.probes
        ));
        Ok(Demo {
            serve,
            registry,
            files,
            registry_host: host,
            signed,
            unsigned,
            bench,
            cold,
            setup_time: started.elapsed(),
            _registry_pki: registry_pki,
            _dir: dir,
        })
    }

    /// Gatekeeper's client configuration: TLS 1.3, the server CA, the client certificate.
    pub fn gatekeeper_tls(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&self.files.server_ca)? {
            roots.add(c?)?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(&self.files.client_cert)?
                    .collect::<Result<Vec<_>, _>>()?,
                PrivateKeyDer::from_pem_file(&self.files.client_key)?,
            )?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Calls the service like Gatekeeper (one keep-alive mTLS connection): `/v1/verify` and
    /// `/v1/mutate` with both images, then `/v1/admit` with a Pod running both, and one
    /// running only the signed image.
    pub async fn gatekeeper_calls(&self) -> anyhow::Result<Report> {
        let mut conn = Connection::open(self.serve.addr, self.gatekeeper_tls()?).await?;
        let keys = [
            self.signed.reference.as_str(),
            self.unsigned.reference.as_str(),
        ];
        let t = Instant::now();
        let verify = conn.post("/v1/verify", &provider_request(&keys)).await?;
        let verify_time = t.elapsed();
        let mutate = conn.post("/v1/mutate", &provider_request(&keys)).await?;
        let admit_both = conn
            .post("/v1/admit", &admission_review("u-both", &keys))
            .await?;
        let admit_signed = conn
            .post("/v1/admit", &admission_review("u-signed", &keys[..1]))
            .await?;
        Ok(Report {
            signed: self.signed.clone(),
            unsigned: self.unsigned.clone(),
            verify,
            verify_time,
            mutate,
            admit_both,
            admit_signed,
        })
    }
}

/// A `ProviderRequest` (`externaldata.gatekeeper.sh/v1beta1`).
pub fn provider_request(keys: &[&str]) -> String {
    json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
           "request": {"keys": keys}})
    .to_string()
}

/// An `AdmissionReview` (`admission.k8s.io/v1`) creating Pod `net-monitor` with these images.
pub fn admission_review(uid: &str, images: &[&str]) -> String {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                       "resource": {"group": "", "version": "v1", "resource": "pods"},
                       "namespace": "demo", "operation": "CREATE",
                       "object": {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": "net-monitor", "namespace": "demo"},
                                  "spec": {"containers": containers}}}})
    .to_string()
}

/// One keep-alive mTLS connection to the service.
#[derive(Debug)]
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(
        addr: SocketAddr,
        tls: Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<Connection> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(ServerName::try_from(SERVER_NAME)?, tcp)
            .await
            .context("TLS handshake with signet serve")?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { sender })
    }

    /// POSTs a JSON body; the answer must be 200 with a JSON body.
    pub async fn post(&mut self, path: &str, body: &str) -> anyhow::Result<Value> {
        let req = http::Request::post(path)
            .header("host", SERVER_NAME)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if status != http::StatusCode::OK {
            bail!(
                "POST {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        serde_json::from_slice(&bytes).with_context(|| format!("POST {path}: not JSON"))
    }
}

/// A plain-HTTP GET (the probe listener): (status, body).
pub async fn probe(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// What the service answered.
#[derive(Debug, Clone)]
pub struct Report {
    pub signed: Image,
    pub unsigned: Image,
    /// `ProviderResponse` of `/v1/verify` (both images).
    pub verify: Value,
    /// How long `/v1/verify` took (both images cold: the first contact with the registry).
    pub verify_time: Duration,
    /// `ProviderResponse` of `/v1/mutate` (both images).
    pub mutate: Value,
    /// `AdmissionReview` answer for a Pod with both images.
    pub admit_both: Value,
    /// `AdmissionReview` answer for a Pod with the signed image only.
    pub admit_signed: Value,
}

fn item<'a>(response: &'a Value, key: &str) -> Option<&'a Value> {
    response["response"]["items"]
        .as_array()?
        .iter()
        .find(|i| i["key"] == key)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

impl Report {
    /// Where the answers differ from the expected outcome (empty: as expected): the signed
    /// image verified (with its digest) and pinned, the unsigned one refused with
    /// `SIGNATURE_NOT_FOUND`, the Pod with both images denied because of the unsigned one
    /// only, the Pod with the signed image admitted.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match item(&self.verify, &self.signed.reference).map(|i| &i["value"]) {
            Some(v) if v["verified"] == true && v["digest"] == self.signed.digest.as_str() => {}
            other => p.push(format!(
                "verify: {} should be verified with digest {}; got {other:?}",
                self.signed.reference, self.signed.digest
            )),
        }
        match item(&self.verify, &self.unsigned.reference).map(|i| &i["value"]) {
            Some(v) if v["verified"] == false && v["error"]["code"] == "SIGNATURE_NOT_FOUND" => {}
            other => p.push(format!(
                "verify: {} should be refused with SIGNATURE_NOT_FOUND; got {other:?}",
                self.unsigned.reference
            )),
        }
        let pinned = format!("{}@{}", self.signed.reference, self.signed.digest);
        match item(&self.mutate, &self.signed.reference) {
            Some(i) if i["value"] == pinned.as_str() => {}
            other => p.push(format!("mutate: expected {pinned}; got {other:?}")),
        }
        let r = &self.admit_both["response"];
        let msg = text(&r["status"]["message"]);
        if r["allowed"] != false
            || !msg.contains(&self.unsigned.reference)
            || !msg.contains("SIGNATURE_NOT_FOUND")
            || msg.contains(&format!("{}:", self.signed.reference))
        {
            p.push(format!(
                "admit: the Pod with both images should be denied for {} only; got {r}",
                self.unsigned.reference
            ));
        }
        if self.admit_both["response"]["uid"] != "u-both" {
            p.push("admit: the answer does not echo the request uid".into());
        }
        if self.admit_signed["response"]["allowed"] != true {
            p.push(format!(
                "admit: the Pod with only {} should be allowed; got {}",
                self.signed.reference, self.admit_signed["response"]
            ));
        }
        p
    }

    /// The answers, for a person.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "\n1. Gatekeeper external data: POST /v1/verify (ProviderRequest, 2 keys, {} ms)",
            self.verify_time.as_millis()
        ));
        for image in [&self.signed, &self.unsigned] {
            let Some(v) = item(&self.verify, &image.reference).map(|i| &i["value"]) else {
                line(format!("   ??        {}: no answer", image.reference));
                continue;
            };
            if v["verified"] == true {
                let sig = &v["signatures"][0];
                line(format!("   ADMITTED  {}", image.reference));
                line(format!("             digest {}", text(&v["digest"])));
                line(format!(
                    "             signature {} ({}) by {}",
                    text(&sig["digest"]),
                    text(&sig["mediaType"]),
                    text(&sig["signer"])
                ));
            } else {
                line(format!("   DENIED    {}", image.reference));
                line(format!(
                    "             {}: {}",
                    text(&v["error"]["code"]),
                    text(&v["error"]["message"])
                ));
            }
        }
        line(
            "\n2. POST /v1/mutate (ProviderRequest, 2 keys): images pinned to their digests".into(),
        );
        for image in [&self.signed, &self.unsigned] {
            match item(&self.mutate, &image.reference) {
                Some(i) if i["value"].is_string() => line(format!(
                    "   {}\n     -> {}",
                    image.reference,
                    text(&i["value"])
                )),
                Some(i) => line(format!(
                    "   {}\n     -> error: {}",
                    image.reference,
                    text(&i["error"])
                )),
                None => line(format!("   {}: no answer", image.reference)),
            }
        }
        line(
            "\n3. Admission webhook: POST /v1/admit (AdmissionReview, Pod demo/net-monitor)".into(),
        );
        for (what, review) in [
            ("both images", &self.admit_both),
            ("net-monitor:v1 only", &self.admit_signed),
        ] {
            let r = &review["response"];
            if r["allowed"] == true {
                line(format!("   Pod with {what}: ALLOWED"));
            } else {
                line(format!(
                    "   Pod with {what}: DENIED (HTTP {} in the review)",
                    r["status"]["code"]
                ));
                line(format!("     {}", text(&r["status"]["message"])));
            }
        }
        out
    }
}

/// The `signet` binary next to this executable (`target/release/local-demo` →
/// `target/release/signet`), if there is one.
pub fn signet_beside_current_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("signet"), dir.parent()?.join("signet")]
        .into_iter()
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn report(unsigned_code: &str, pod_allowed: bool) -> Report {
        let signed = Image {
            reference: "r.example/net-monitor:v1".into(),
            digest: "sha256:aa".into(),
        };
        let unsigned = Image {
            reference: "r.example/net-monitor:unsigned".into(),
            digest: "sha256:bb".into(),
        };
        let verified = json!({"verified": true, "digest": "sha256:aa",
            "signatures": [{"digest": "sha256:cc", "mediaType": "application/cose", "signer": "CN=x"}]});
        let refused = json!({"verified": false, "digest": "sha256:bb",
            "error": {"code": unsigned_code, "message": "m"}});
        let message = format!(
            "signet: Pod net-monitor denied: 1 image(s) failed signature verification: {}: {unsigned_code}: m",
            unsigned.reference
        );
        Report {
            verify: json!({"response": {"items": [
                {"key": signed.reference, "value": verified},
                {"key": unsigned.reference, "value": refused}]}}),
            verify_time: Duration::from_millis(1),
            mutate: json!({"response": {"items": [
                {"key": signed.reference, "value": format!("{}@sha256:aa", signed.reference)}]}}),
            admit_both: json!({"response": {"uid": "u-both", "allowed": pod_allowed,
                "status": {"code": 403, "message": message}}}),
            admit_signed: json!({"response": {"uid": "u-signed", "allowed": true}}),
            signed,
            unsigned,
        }
    }

    #[test]
    fn expected_outcome_has_no_problems() {
        let r = report("SIGNATURE_NOT_FOUND", false);
        assert!(r.problems().is_empty(), "{:?}", r.problems());
        let text = r.render();
        assert!(
            text.contains("ADMITTED  r.example/net-monitor:v1"),
            "{text}"
        );
        assert!(
            text.contains("DENIED    r.example/net-monitor:unsigned"),
            "{text}"
        );
    }

    #[test]
    fn unexpected_outcomes_are_problems() {
        assert_eq!(report("VERIFICATION_FAILED", false).problems().len(), 2);
        assert_eq!(report("SIGNATURE_NOT_FOUND", true).problems().len(), 1);
    }
}
