//! What a new user tries in the first hour, run as the built binary against the real
//! `docker-registry`, with nothing but the environment a laptop or a proxied cluster has:
//! notation's configuration directory, Docker's `config.json` with a credential helper,
//! `HTTPS_PROXY` / `NO_PROXY` (a CONNECT proxy run by the test) and `SSL_CERT_FILE`.
//! Every process gets its own explicit environment (no process-wide variables are set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use signet_testkit::registry as support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use signet_testkit::{EnvelopeKind, KeyKind, LeafOptions, TestCa};
use support::proxy::Proxy;
use support::push::{Pusher, SigStyle};
use support::registry::{Registry, RegistryAuth};
use support::tls::TestPki;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A laptop: HOME with Docker's config (credsStore), XDG_CONFIG_HOME with notation's
/// configuration, a bin directory holding the credential helper, the registry's CA in a file.
struct Laptop {
    root: tempfile::TempDir,
    home: PathBuf,
    xdg: PathBuf,
    bin: PathBuf,
    ca_file: PathBuf,
}

impl Laptop {
    fn new(registry_host: &str, pki: &TestPki, signing_ca: &TestCa) -> Laptop {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let xdg = root.path().join("xdg");
        let bin = root.path().join("bin");
        let notation = xdg.join("notation");
        std::fs::create_dir_all(notation.join("truststore/x509/ca/test")).unwrap();
        std::fs::write(
            notation.join("truststore/x509/ca/test/ca.pem"),
            signing_ca.cert_pem(),
        )
        .unwrap();
        let policy = serde_json::json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "team", "registryScopes": [format!("{registry_host}/team/app")],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:test"], "trustedIdentities": ["*"]
            }]
        });
        std::fs::write(notation.join("trustpolicy.oci.json"), policy.to_string()).unwrap();
        // notation prefers trustpolicy.oci.json; this one would fail if it were read.
        std::fs::write(notation.join("trustpolicy.json"), "not a policy").unwrap();
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::write(
            home.join(".docker/config.json"),
            serde_json::json!({"auths": {registry_host: {}}, "credsStore": "desktop"}).to_string(),
        )
        .unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let ca_file = root.path().join("corporate-ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).unwrap();
        let laptop = Laptop {
            root,
            home,
            xdg,
            bin,
            ca_file,
        };
        laptop.helper(&format!(
            r#"read url
if [ "$url" = "{registry_host}" ]; then
  printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASS}"}}' "$url"
else
  echo "credentials not found in native keychain"; exit 1
fi"#
        ));
        laptop
    }

    fn helper(&self, body: &str) {
        let path = self.bin.join("docker-credential-desktop");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs `signet ARGS` with exactly this environment plus `env`.
    async fn signet(&self, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_signet"));
        command
            .args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.xdg)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .current_dir(self.root.path());
        for (k, v) in env {
            command.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn first_result(stdout: &str) -> Value {
    let v: Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    v["results"][0].clone()
}

async fn signed_registry() -> (TestPki, Registry, TestCa) {
    let pki = TestPki::new();
    let reg = Registry::start(
        &pki,
        RegistryAuth::Htpasswd {
            username: USER.into(),
            password: PASS.into(),
        },
    )
    .await;
    let pusher = Pusher::new(
        &reg.url(),
        pki.client_config(),
        Some(format!("Basic {}", b64(&format!("{USER}:{PASS}")))),
    );
    let ca = TestCa::new("First Hour CA", KeyKind::P256);
    let signer = ca.issue(&LeafOptions::new("first hour signer", KeyKind::P256));
    let image = pusher.image("team/app", "v1").await;
    pusher
        .signature(
            "team/app",
            &image,
            &signer,
            EnvelopeKind::Cose,
            SigStyle::Current,
            true,
        )
        .await;
    (pki, reg, ca)
}

#[tokio::test]
async fn notation_defaults_credential_helper_proxy_and_ssl_cert_file() {
    let (pki, reg, ca) = signed_registry().await;
    let laptop = Laptop::new(&reg.host, &pki, &ca);
    let reference = format!("{}/team/app:v1", reg.host);
    let proxy = Proxy::start(None).await;
    let proxy_url = proxy.url();
    let ca_file = laptop.ca_file.display().to_string();
    let env = [
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("SSL_CERT_FILE", ca_file.as_str()),
    ];

    // No --trust-policy, --trust-store, --docker-config, --registry-ca: everything from the
    // environment, the proxy included; the text output says which notation files were used.
    let (code, stdout, stderr) = laptop.signet(&["verify", &reference], &env).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let notation = laptop.xdg.join("notation");
    assert!(
        stderr.contains(&notation.join("trustpolicy.oci.json").display().to_string())
            && stderr.contains(&notation.join("truststore").display().to_string()),
        "{stderr}"
    );
    assert!(proxy.connects() >= 1, "{:?}", proxy.seen());
    for seen in proxy.seen() {
        assert_eq!(seen.method, "CONNECT");
        assert_eq!(seen.target, reg.host);
        assert!(seen.header("authorization").is_none(), "{seen:?}");
    }

    // The lower-case form, and NO_PROXY: straight to the registry.
    let before = proxy.connects();
    let (code, stdout, stderr) = laptop
        .signet(
            &["verify", "--output", "json", &reference],
            &[
                ("https_proxy", proxy_url.as_str()),
                ("NO_PROXY", "localhost,127.0.0.1"),
                ("SSL_CERT_FILE", ca_file.as_str()),
            ],
        )
        .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(first_result(&stdout)["verified"], true);
    assert_eq!(proxy.connects(), before, "NO_PROXY was not honoured");
    let (code, _, _) = laptop
        .signet(
            &["verify", &reference],
            &[
                ("https_proxy", proxy_url.as_str()),
                ("SSL_CERT_FILE", ca_file.as_str()),
            ],
        )
        .await;
    assert_eq!(code, Some(0));
    assert!(proxy.connects() > before, "https_proxy was not honoured");

    // SSL_CERT_DIR works as well.
    let cert_dir = laptop.root.path().join("certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    std::fs::copy(&laptop.ca_file, cert_dir.join("corporate.pem")).unwrap();
    let cert_dir = cert_dir.display().to_string();
    let (code, stdout, stderr) = laptop
        .signet(
            &["verify", &reference],
            &[("SSL_CERT_DIR", cert_dir.as_str())],
        )
        .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");

    // Without the CA in SSL_CERT_FILE the registry's certificate is not trusted.
    let (code, stdout, _) = laptop
        .signet(&["verify", "--output", "json", &reference], &[])
        .await;
    assert_eq!(code, Some(1));
    assert_eq!(
        first_result(&stdout)["error"]["code"],
        "REGISTRY_ERROR",
        "{stdout}"
    );

    // An unusable proxy is a clear error, not a bypass.
    let (code, stdout, _) = laptop
        .signet(
            &["verify", "--output", "json", &reference],
            &[
                ("HTTPS_PROXY", "socks5://127.0.0.1:1"),
                ("SSL_CERT_FILE", ca_file.as_str()),
            ],
        )
        .await;
    assert_eq!(code, Some(1));
    let message = first_result(&stdout)["error"]["message"].to_string();
    assert!(message.contains("not supported"), "{message}");

    // The credential helper fails: REGISTRY_AUTH_FAILED naming the helper and what it said.
    laptop.helper("echo 'keychain is locked' >&2; exit 1");
    let (code, stdout, _) = laptop
        .signet(
            &["verify", "--output", "json", &reference],
            &[("SSL_CERT_FILE", ca_file.as_str())],
        )
        .await;
    assert_eq!(code, Some(1));
    let result = first_result(&stdout);
    assert_eq!(result["error"]["code"], "REGISTRY_AUTH_FAILED", "{stdout}");
    let message = result["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("docker-credential-desktop") && message.contains("keychain is locked"),
        "{message}"
    );
}

#[tokio::test]
async fn without_notation_configuration_the_error_says_where_it_looked() {
    let root = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let root = root.path().to_owned();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
                .args(["verify", "registry.example/app:v1"])
                .env_clear()
                .env("HOME", &root)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected: &Path = &root.path().join(".config/notation");
    assert!(
        stderr.contains(&expected.display().to_string())
            && stderr.contains("trustpolicy.oci.json")
            && stderr.contains("--trust-policy"),
        "{stderr}"
    );
}
