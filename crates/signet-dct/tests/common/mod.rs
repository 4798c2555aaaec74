//! The real Notary v1 server and client for the DCT tests, and a front that serves chosen
//! metadata in place of the server's (tampered, replayed).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use signet_dct::{DctConfig, DctVerifier, ProxySettings, RepositoryConfig};
use signet_testkit::registry::http::send;
use signet_testkit::registry::server::{respond, serve, Handler, Server};
use signet_testkit::registry::tls::TestPki;

pub const NOTARY_VERSION: &str = "v0.7.0";
pub const ROOT_PASSPHRASE: &str = "root-passphrase";

fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SIGNET_NOTARY_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
    PathBuf::from(home).join(format!(".cache/signet/notary-{NOTARY_VERSION}/bin"))
}

/// Whether the binaries are installed; in CI their absence fails the test.
pub fn available() -> bool {
    let dir = bin_dir();
    let present = dir.join("notary-server").exists() && dir.join("notary").exists();
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "notary {NOTARY_VERSION} missing in {}: .ci/install-deps builds it",
            dir.display()
        );
        // Written to the process's stderr directly, past the test harness's capture.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: notary {NOTARY_VERSION} is not installed in {} (run .ci/install-deps)",
            dir.display()
        );
    }
    present
}

/// A running notary-server (memory storage, local ed25519 signing, TLS), killed on drop.
pub struct Notary {
    pub pki: TestPki,
    pub url: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Notary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Notary {
    pub async fn start() -> Option<Notary> {
        if !available() {
            return None;
        }
        Some(Notary::start_with(TestPki::new(), None).await)
    }

    /// Starts with `pki`; with `token_realm`, the server requires bearer tokens from it
    /// (distribution's token auth, as Docker Hub's and ACR's Notary servers do).
    pub async fn start_with(pki: TestPki, token_realm: Option<String>) -> Notary {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.crt"), &pki.server_cert_pem).unwrap();
        std::fs::write(dir.path().join("server.key"), &pki.server_key_pem).unwrap();
        std::fs::write(dir.path().join("ca.crt"), &pki.ca_pem).unwrap();
        let port = signet_testkit::registry::registry::free_port();
        let mut config = serde_json::json!({
            "server": {
                "http_addr": format!("127.0.0.1:{port}"),
                "tls_cert_file": dir.path().join("server.crt"),
                "tls_key_file": dir.path().join("server.key"),
            },
            "trust_service": {"type": "local"},
            "logging": {"level": "info"},
            "storage": {"backend": "memory"},
        });
        if let Some(realm) = token_realm {
            config["auth"] = serde_json::json!({
                "type": "token",
                "options": {
                    "realm": realm,
                    "service": signet_testkit::registry::token::SERVICE,
                    "issuer": signet_testkit::registry::token::ISSUER,
                    "rootcertbundle": dir.path().join("ca.crt"),
                    "autoredirect": false,
                },
            });
        }
        std::fs::write(dir.path().join("server.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(bin_dir().join("notary-server"))
            .arg("-config")
            .arg(dir.path().join("server.json"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let notary = Notary {
            pki,
            url: format!("https://127.0.0.1:{port}"),
            dir,
            child,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return notary;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "notary-server did not listen on {port}: {}",
            std::fs::read_to_string(notary.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// A client with its own trust directory.
    pub fn client(&self, name: &str) -> Client {
        let trust_dir = self.dir.path().join(format!("trust-{name}"));
        std::fs::create_dir_all(&trust_dir).unwrap();
        Client {
            server: self.url.clone(),
            ca: self.dir.path().join("ca.crt"),
            trust_dir,
        }
    }

    /// Fetches one role's metadata as the server serves it.
    pub async fn fetch(&self, gun: &str, role: &str) -> Vec<u8> {
        let answer = send(
            &self.pki.client_config(),
            Method::GET,
            &format!("{}/v2/{gun}/_trust/tuf/{role}.json", self.url),
            &[],
            Vec::new(),
        )
        .await;
        assert!(answer.status.is_success(), "{role}: {}", answer.status);
        answer.body.to_vec()
    }
}

/// The real `notary` CLI with one trust directory.
pub struct Client {
    server: String,
    ca: PathBuf,
    pub trust_dir: PathBuf,
}

impl Client {
    pub fn run(&self, args: &[&str]) -> String {
        self.run_with_input(args, "")
    }

    /// Runs with `input` on standard input (answers to the client's confirmations).
    pub fn run_with_input(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(bin_dir().join("notary"))
            .arg("-s")
            .arg(&self.server)
            .arg("-d")
            .arg(&self.trust_dir)
            .arg("--tlscacert")
            .arg(&self.ca)
            .args(args)
            .env("NOTARY_ROOT_PASSPHRASE", ROOT_PASSPHRASE)
            .env("NOTARY_TARGETS_PASSPHRASE", "targets-passphrase")
            .env("NOTARY_SNAPSHOT_PASSPHRASE", "snapshot-passphrase")
            .env("NOTARY_DELEGATION_PASSPHRASE", "delegation-passphrase")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "notary {args:?} failed: {text}");
        text
    }

    pub fn init(&self, gun: &str) {
        self.run(&["init", gun]);
    }

    /// Stages a tag for `digest` (`sha256:HEX`) of `size` bytes, in `role` if given.
    pub fn add(&self, gun: &str, tag: &str, digest: &str, size: u64, role: Option<&str>) {
        let hex = digest.trim_start_matches("sha256:");
        let size = size.to_string();
        let mut args = vec!["addhash", gun, tag, size.as_str(), "--sha256", hex];
        if let Some(role) = role {
            args.extend(["--roles", role]);
        }
        self.run(&args);
    }

    pub fn publish(&self, gun: &str) {
        self.run(&["publish", gun]);
    }

    /// Adds `targets/releases` with a new P-256 key and certificate, imports the key, and
    /// publishes, as `docker trust signer add` does.
    pub fn add_releases_delegation(&self, gun: &str, dir: &Path) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["releaser".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.join(format!("releaser-{}.crt", gun.replace('/', "_")));
        let key_path = dir.join(format!("releaser-{}.key", gun.replace('/', "_")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        self.run(&[
            "delegation",
            "add",
            gun,
            "targets/releases",
            cert_path.to_str().unwrap(),
            "--all-paths",
        ]);
        self.run(&[
            "key",
            "import",
            key_path.to_str().unwrap(),
            "--role",
            "targets/releases",
        ]);
        self.publish(gun);
    }

    /// The root key's canonical ID, as `notary key list` prints it.
    pub fn root_key_id(&self) -> String {
        let list = self.run(&["key", "list"]);
        list.lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some("root"))
                    .then(|| fields.find(|f| f.len() == 64))
                    .flatten()
            })
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no root key in {list}"))
    }
}

/// The PEM certificate of the root key in `root.json`.
pub fn root_certificate_pem(root_json: &[u8]) -> String {
    use base64::Engine;
    let root: serde_json::Value = serde_json::from_slice(root_json).unwrap();
    let id = root["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap();
    let public = root["signed"]["keys"][id]["keyval"]["public"]
        .as_str()
        .unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(public)
        .unwrap();
    String::from_utf8(pem).unwrap()
}

/// A verifier for one scope against `server`, anchored by root key IDs and certificates.
pub fn verifier(
    scope: &str,
    server: &str,
    ca_pem: &str,
    root_keys: Vec<String>,
    root_certificates: Vec<String>,
) -> DctVerifier {
    let config = DctConfig {
        repositories: vec![RepositoryConfig {
            scope: scope.to_owned(),
            server: server.to_owned(),
            root_keys,
            root_certificates,
            server_ca: Some(ca_pem.to_owned()),
            danger_plain_http: false,
        }],
        migration_until: None,
        timeout_seconds: Some(10),
    };
    // Hermetic: whatever proxy the environment names, the tests talk to 127.0.0.1 directly.
    DctVerifier::new(config.validate().unwrap())
        .unwrap()
        .with_proxy(ProxySettings::default())
}

/// A TLS front before the Notary server: passes requests through, except for roles whose
/// metadata the test replaced.
pub struct Front {
    pub url: String,
    overrides: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    _server: Server,
}

impl Front {
    pub async fn start(notary: &Notary) -> Front {
        let overrides: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let upstream = notary.url.clone();
        let client_tls = notary.pki.client_config();
        let map = overrides.clone();
        let handler: Handler = Arc::new(move |req: http::Request<hyper::body::Incoming>| {
            let upstream = upstream.clone();
            let client_tls = client_tls.clone();
            let map = map.clone();
            Box::pin(async move {
                let path = req.uri().path().to_owned();
                let role = path
                    .split_once("/_trust/tuf/")
                    .map(|(_, r)| r.trim_end_matches(".json").to_owned());
                if let Some(bytes) = role.and_then(|r| map.lock().unwrap().get(&r).cloned()) {
                    return respond(200, &[("content-type", "application/json".into())], bytes);
                }
                let answer = send(
                    &client_tls,
                    Method::GET,
                    &format!("{upstream}{path}"),
                    &[],
                    Vec::new(),
                )
                .await;
                respond(
                    answer.status.as_u16(),
                    &[],
                    Bytes::from(answer.body.to_vec()),
                )
            })
        });
        let server = serve(Some(notary.pki.server_config()), handler).await;
        Front {
            url: format!("https://127.0.0.1:{}", server.addr.port()),
            overrides,
            _server: server,
        }
    }

    pub fn set(&self, role: &str, bytes: Vec<u8>) {
        self.overrides
            .lock()
            .unwrap()
            .insert(role.to_owned(), bytes);
    }

    pub fn clear(&self) {
        self.overrides.lock().unwrap().clear();
    }
}

/// A CA that issues repository root certificates (CN = the GUN, as Notary requires).
pub struct TestRootCa {
    pub cert_pem: String,
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
}

impl TestRootCa {
    pub fn new(common_name: &str) -> TestRootCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestRootCa {
            cert_pem: cert.pem(),
            key,
            params,
        }
    }

    /// A P-256 root key (PKCS#8 PEM) and its certificate for `gun`, issued by this CA.
    pub fn issue_root(&self, gun: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, gun);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(365);
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (key.serialize_pem(), cert.pem())
    }
}

/// An HTTP CONNECT proxy (RFC 9110 §9.3.6) that tunnels to any target and records them.
pub struct ConnectProxy {
    pub addr: std::net::SocketAddr,
    pub targets: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConnectProxy {
    pub async fn start() -> ConnectProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = targets.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if client.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let mut words = head.split_whitespace();
                    if words.next() != Some("CONNECT") {
                        let _ = client
                            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                            .await;
                        return;
                    }
                    let target = words.next().unwrap_or("").to_owned();
                    log.lock().unwrap().push(target.clone());
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                        .await;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        ConnectProxy {
            addr,
            targets,
            task,
        }
    }
}
