//! Debian's `docker-registry` (distribution 2.8) as a child process: TLS with the test PKI,
//! htpasswd or token auth, storage in a temporary directory; killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use super::http::send;
use super::tls::TestPki;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How the registry authenticates clients.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    None,
    /// htpasswd (bcrypt) with one user.
    Htpasswd {
        username: String,
        password: String,
    },
    /// Bearer tokens from a token server.
    Token {
        realm: String,
        service: String,
        issuer: String,
    },
}

/// A running registry.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub host: String,
    pub auth: RegistryAuth,
    child: Child,
    _dir: tempfile::TempDir,
    pub log: PathBuf,
}

/// Whether the real registry is installed (`.ci/install-deps`).
pub fn available() -> bool {
    std::path::Path::new(REGISTRY_BIN).exists()
}

/// A free port on 127.0.0.1 (bound and released: a small race, fine for tests).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Registry {
    pub async fn start(pki: &TestPki, auth: RegistryAuth) -> Registry {
        assert!(
            available(),
            "{REGISTRY_BIN} missing: run .ci/install-deps (apt-get install docker-registry apache2-utils)"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        std::fs::write(p("server.crt"), &pki.server_cert_pem).unwrap();
        std::fs::write(p("server.key"), &pki.server_key_pem).unwrap();
        std::fs::create_dir(p("storage")).unwrap();
        let auth_yaml = match &auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Htpasswd { username, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", username, password])
                    .output()
                    .expect("htpasswd (apache2-utils) must be installed");
                assert!(out.status.success());
                std::fs::write(p("htpasswd"), &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: signet-test\n    path: {}\n",
                    p("htpasswd").display()
                )
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
            } => {
                std::fs::write(p("token-ca.pem"), &pki.ca_pem).unwrap();
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    p("token-ca.pem").display()
                )
            }
        };
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  tls:\n    certificate: {}\n    key: {}\n{auth_yaml}",
            p("storage").display(),
            p("server.crt").display(),
            p("server.key").display(),
        );
        std::fs::write(p("config.yml"), config).unwrap();
        let log = p("registry.log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(p("config.yml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(p("registry.err")).unwrap())
            .spawn()
            .unwrap();
        let registry = Registry {
            host,
            auth,
            child,
            _dir: dir,
            log,
        };
        registry.wait_ready(&pki.client_config()).await;
        registry
    }

    async fn wait_ready(&self, tls: &Arc<rustls::ClientConfig>) {
        let url = format!("https://{}/v2/", self.host);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&self.host).await.is_ok() {
                let answer = send(tls, Method::GET, &url, &[], Vec::new()).await;
                if answer.status.as_u16() == 200 || answer.status.as_u16() == 401 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let err =
            std::fs::read_to_string(self._dir.path().join("registry.err")).unwrap_or_default();
        panic!("registry on {} did not become ready: {err}", self.host);
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.host)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
