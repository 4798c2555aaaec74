//! Machinery of the notation differential test: a PKI whose validity we control, an
//! `openssl ts` TSA on 127.0.0.1 (optionally shifted in time by libfaketime), OCI layouts, the
//! real registry, `notation sign`, and the verification matrix.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};
use signet_testkit::registry::push::Pusher;
use signet_testkit::registry::registry::{Registry, RegistryAuth};
use signet_testkit::registry::tls::TestPki;
use time::OffsetDateTime;

mod differences;

use differences::LISTED_DIFFERENCES;

const VERSION: &str = "v1.3.2";
const USER: &str = "oracle";
const PASS: &str = "oracle-pass";
/// How long the short-lived leaf stays valid after it is made: long enough to sign with it.
const SHORT_LIVED_SECS: i64 = 20;
/// Bounded parallelism of the verification matrix (2 cores shared with other work).
const WORKERS: usize = 3;
pub(crate) const MINIMUM_PAIRS: usize = 200;

/// Finds the notation binary, or says loudly why the test does not run.
pub(crate) fn find_notation() -> Option<PathBuf> {
    let candidates =
        std::env::var_os("SIGNET_NOTATION")
            .map(PathBuf::from)
            .into_iter()
            .chain(std::env::var_os("HOME").map(|h| {
                PathBuf::from(h).join(format!(".cache/signet/notation-{VERSION}/notation"))
            }))
            .chain(std::env::var_os("PATH").into_iter().flat_map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("notation"))
                    .collect::<Vec<_>>()
            }));
    for candidate in candidates {
        if let Ok(out) = Command::new(&candidate).arg("version").output() {
            let text = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && text.contains(VERSION) {
                return Some(candidate);
            }
        }
    }
    let why = format!(
        "the notation CLI {VERSION} was not found ($SIGNET_NOTATION, ~/.cache/signet/notation-{VERSION}/notation, PATH); run .ci/install-deps"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("\n!!!!!!!! SKIPPING the notation differential test: {why} !!!!!!!!\n");
    None
}

// ---------------------------------------------------------------------------------------
// PKI

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Rsa2048,
    Rsa3072,
    P256,
    P384,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Rsa2048 => "rsa2048",
            Key::Rsa3072 => "rsa3072",
            Key::P256 => "p256",
            Key::P384 => "p384",
        }
    }

    fn generate(self) -> KeyPair {
        match self {
            Key::Rsa2048 | Key::Rsa3072 => {
                let size = if self == Key::Rsa2048 {
                    aws_lc_rs::rsa::KeySize::Rsa2048
                } else {
                    aws_lc_rs::rsa::KeySize::Rsa3072
                };
                use aws_lc_rs::encoding::AsDer as _;
                let key = aws_lc_rs::rsa::KeyPair::generate(size).unwrap();
                KeyPair::try_from(key.as_der().unwrap().as_ref()).unwrap()
            }
            Key::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            Key::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        }
    }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "WA");
    dn.push(DnType::LocalityName, "Seattle");
    dn.push(DnType::OrganizationName, "Signet Oracle");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// The `x509.subject` identity of a leaf made by [`Ca::leaf`].
fn subject_identity(common_name: &str) -> String {
    format!("x509.subject:C=US, ST=WA, L=Seattle, O=Signet Oracle, CN={common_name}")
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(common_name: &str, key: Key) -> Ca {
        let key = key.generate();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2120, 1, 1);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A code-signing leaf: (private key PEM, chain PEM leaf first).
    fn leaf(
        &self,
        common_name: &str,
        key: Key,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        any_eku: bool,
    ) -> (String, String) {
        let leaf_key = key.generate();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        if any_eku {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::Any);
        }
        params.not_before = not_before;
        params.not_after = not_after;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&leaf_key, &issuer).unwrap();
        (
            leaf_key.serialize_pem(),
            format!("{}{}", cert.pem(), self.pem),
        )
    }
}

// ---------------------------------------------------------------------------------------
// TSA: `openssl ts -reply` behind a tiny HTTP server; the path picks the clock.

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `faketime -f OFFSET openssl ...` (libfaketime works for C programs).
fn openssl_at(dir: &Path, offset: Option<&str>, args: &[&str]) {
    let mut cmd = match offset {
        Some(o) => {
            let mut c = Command::new("faketime");
            c.args(["-f", o, "openssl"]);
            c
        }
        None => Command::new("openssl"),
    };
    run(cmd.args(args).current_dir(dir));
}

pub(crate) struct Tsa {
    pub url: String,
    pub root: PathBuf,
}

/// The clocks the TSA can answer with (URL path → libfaketime offset).
const TSA_CLOCKS: &[(&str, Option<&str>)] = &[
    ("now", None),
    ("two-days-ago", Some("-2d")),
    ("in-two-days", Some("+2d")),
];

fn start_tsa(dir: &Path) -> Tsa {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("ext.cnf"),
        "[ leaf ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = critical, timeStamping\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ts.cnf"),
        "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\ndir = .\nserial = ./tsaserial\ncrypto_device = builtin\ndefault_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\nsigner_digest = sha256\naccuracy = secs:1\nordering = yes\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
    )
    .unwrap();
    std::fs::write(dir.join("tsaserial"), "01\n").unwrap();
    // Made 30 days in the past so that the TSA's own chain is valid at every TSA clock.
    let past = Some("-30d");
    openssl_at(
        dir,
        past,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-subj",
            "/CN=Signet Oracle TSA Root",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl_at(
        dir,
        past,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=Signet Oracle TSA",
        ],
    );
    openssl_at(
        dir,
        past,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "leaf",
            "-out",
            "leaf.pem",
        ],
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serve_dir = dir.to_path_buf();
    let counter = Arc::new(Mutex::new(0u64));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let dir = serve_dir.clone();
            let counter = counter.clone();
            std::thread::spawn(move || serve_tsa(stream, &dir, &counter));
        }
    });
    Tsa {
        url,
        root: dir.join("root.pem"),
    }
}

fn serve_tsa(mut stream: std::net::TcpStream, dir: &Path, counter: &Mutex<u64>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (pos + 4, length);
        }
        assert!(buf.len() < 1 << 16, "TSA request head too large");
    };
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let offset = TSA_CLOCKS
        .iter()
        .find(|(name, _)| path.trim_start_matches('/') == *name)
        .map(|(_, o)| *o)
        .unwrap_or(None);
    let id = {
        let mut c = counter.lock().unwrap();
        *c += 1;
        *c
    };
    let query = format!("req-{id}.tsq");
    let reply = format!("resp-{id}.tsr");
    std::fs::write(dir.join(&query), &buf[head_end..head_end + length]).unwrap();
    openssl_at(
        dir,
        offset,
        &[
            "ts",
            "-reply",
            "-queryfile",
            &query,
            "-signer",
            "leaf.pem",
            "-inkey",
            "leaf.key",
            "-chain",
            "root.pem",
            "-config",
            "ts.cnf",
            "-out",
            &reply,
        ],
    );
    let body = std::fs::read(dir.join(&reply)).unwrap();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

// ---------------------------------------------------------------------------------------
// Artifacts

fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Writes an OCI layout holding one small image tagged `v1`; returns its manifest digest.
fn write_layout(dir: &Path, salt: &str) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> String {
        let hex = sha256_hex(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    let layer = format!("layer of {salt}").into_bytes();
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "comment": salt}).to_string().into_bytes();
    let layer_digest = put(&layer);
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let digest = put(&manifest);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "v1"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    digest
}

/// Where a signed artifact lives.
#[derive(Debug, Clone)]
enum Location {
    Layout { path: PathBuf, digest: String },
    Registry { reference: String },
}

/// One way of signing (what `notation sign` is asked to do).
#[derive(Debug, Clone)]
struct SignSpec {
    name: String,
    format: &'static str,
    key: Key,
    leaf: LeafValidity,
    expiry: Option<&'static str>,
    metadata: bool,
    tsa_clock: Option<&'static str>,
    registry: bool,
    /// The leaf also carries anyExtendedKeyUsage.
    any_eku: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeafValidity {
    /// 2020..2120
    Long,
    /// from a day ago until a few seconds after it is made
    ShortLived,
    /// from an hour ago to 2120 (a TSA two days ago is before it)
    FromAnHourAgo,
    /// 2020 until in an hour (a TSA in two days is after it)
    UntilInAnHour,
}

fn sign_specs() -> Vec<SignSpec> {
    let base = |name: &str, format: &'static str, key: Key| SignSpec {
        name: format!("{name}-{format}-{}", key.name()),
        format,
        key,
        leaf: LeafValidity::Long,
        expiry: None,
        metadata: false,
        tsa_clock: None,
        registry: false,
        any_eku: false,
    };
    let mut specs = Vec::new();
    for format in ["jws", "cose"] {
        // The expired-chain ones first: their leaf is only valid for a few seconds.
        specs.push(SignSpec {
            leaf: LeafValidity::ShortLived,
            ..base("expired-chain", format, Key::P256)
        });
        specs.push(SignSpec {
            leaf: LeafValidity::ShortLived,
            tsa_clock: Some("now"),
            ..base("expired-chain-timestamped", format, Key::P256)
        });
    }
    for format in ["jws", "cose"] {
        for key in [Key::Rsa2048, Key::Rsa3072, Key::P256, Key::P384] {
            specs.push(base("plain", format, key));
        }
        specs.push(SignSpec {
            expiry: Some("24h"),
            ..base("expiry-24h", format, Key::P256)
        });
        specs.push(SignSpec {
            expiry: Some("1s"),
            ..base("expiry-1s", format, Key::P256)
        });
        specs.push(SignSpec {
            metadata: true,
            ..base("user-metadata", format, Key::P384)
        });
        specs.push(SignSpec {
            tsa_clock: Some("now"),
            ..base("timestamped", format, Key::Rsa2048)
        });
        specs.push(SignSpec {
            leaf: LeafValidity::FromAnHourAgo,
            tsa_clock: Some("two-days-ago"),
            ..base("timestamp-before-leaf", format, Key::P256)
        });
        specs.push(SignSpec {
            leaf: LeafValidity::UntilInAnHour,
            tsa_clock: Some("in-two-days"),
            ..base("timestamp-after-leaf", format, Key::P256)
        });
        specs.push(SignSpec {
            any_eku: true,
            ..base("any-eku", format, Key::P256)
        });
        specs.push(SignSpec {
            registry: true,
            ..base("registry", format, Key::P256)
        });
        specs.push(SignSpec {
            registry: true,
            metadata: true,
            tsa_clock: Some("now"),
            ..base("registry-timestamped-metadata", format, Key::Rsa3072)
        });
    }
    specs
}

/// A signature notation made, ready to verify.
#[derive(Debug, Clone)]
struct Signed {
    spec: SignSpec,
    location: Location,
    scope: String,
    /// The signing CA (PEM), for `ca:good`.
    ca_pem: String,
    leaf_cn: String,
    /// The leaf's notAfter, for the expired-chain wait.
    leaf_not_after: OffsetDateTime,
}

struct Env {
    notation: PathBuf,
    root: PathBuf,
    tsa: Tsa,
    registry_ca: PathBuf,
    docker_config: PathBuf,
    other_ca_pem: String,
}

fn notation_command(env: &Env, config_home: &Path) -> Command {
    let mut cmd = Command::new(&env.notation);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", config_home)
        .env("XDG_CONFIG_HOME", config_home)
        .env("XDG_CACHE_HOME", config_home.join("cache"))
        .env("NOTATION_EXPERIMENTAL", "1")
        .env("SSL_CERT_FILE", &env.registry_ca);
    cmd
}

fn sign(
    env: &Env,
    cas: &BTreeMap<&'static str, Ca>,
    spec: &SignSpec,
    location: &Location,
) -> Signed {
    let now = OffsetDateTime::now_utc();
    let (not_before, not_after) = match spec.leaf {
        LeafValidity::Long => (
            rcgen::date_time_ymd(2020, 1, 1),
            rcgen::date_time_ymd(2120, 1, 1),
        ),
        LeafValidity::ShortLived => (
            now - time::Duration::days(1),
            now + time::Duration::seconds(SHORT_LIVED_SECS),
        ),
        LeafValidity::FromAnHourAgo => (
            now - time::Duration::hours(1),
            rcgen::date_time_ymd(2120, 1, 1),
        ),
        LeafValidity::UntilInAnHour => (
            rcgen::date_time_ymd(2020, 1, 1),
            now + time::Duration::hours(1),
        ),
    };
    let ca = &cas[spec.key.name()];
    let leaf_cn = format!("oracle {}", spec.name);
    let (key_pem, chain_pem) = ca.leaf(&leaf_cn, spec.key, not_before, not_after, spec.any_eku);
    let dir = env.root.join("sign").join(&spec.name);
    let config = dir.join("notation");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(dir.join("leaf.key"), key_pem).unwrap();
    std::fs::write(dir.join("leaf.crt"), chain_pem).unwrap();
    let keys = json!({"default": "oracle", "keys": [{
        "name": "oracle",
        "keyPath": dir.join("leaf.key"),
        "certPath": dir.join("leaf.crt"),
    }]});
    std::fs::write(config.join("signingkeys.json"), keys.to_string()).unwrap();
    let mut cmd = notation_command(env, &dir);
    cmd.args(["sign", "--signature-format", spec.format]);
    if let Some(expiry) = spec.expiry {
        cmd.args(["--expiry", expiry]);
    }
    if spec.metadata {
        cmd.args(["--user-metadata", "team=oracle"]);
    }
    if let Some(clock) = spec.tsa_clock {
        cmd.arg("--timestamp-url")
            .arg(format!("{}/{clock}", env.tsa.url))
            .arg("--timestamp-root-cert")
            .arg(&env.tsa.root);
    }
    let scope = match location {
        Location::Layout { path, digest } => {
            cmd.arg("--oci-layout")
                .arg(format!("{}@{digest}", path.display()));
            format!("local/oracle/{}", spec.name)
        }
        Location::Registry { reference } => {
            cmd.args(["--username", USER, "--password", PASS])
                .arg(reference);
            reference.split('@').next().unwrap().to_owned()
        }
    };
    run(&mut cmd);
    Signed {
        spec: spec.clone(),
        location: location.clone(),
        scope,
        ca_pem: ca.pem.clone(),
        leaf_cn,
        leaf_not_after: not_after,
    }
}

// ---------------------------------------------------------------------------------------
// Trust policies

/// One verification setting: a trust policy (given the signature's scope and leaf) and the
/// `--user-metadata` asked for.
pub(crate) struct Check {
    pub name: &'static str,
    policy: fn(&str, &str) -> Value,
    metadata: Option<&'static str>,
}

fn statement(name: &str, scope: &str, level: Value, stores: &[&str], identities: &[&str]) -> Value {
    let mut s = json!({
        "name": name,
        "registryScopes": [scope],
        "signatureVerification": level,
    });
    if !stores.is_empty() {
        s["trustStores"] = json!(stores);
    }
    if !identities.is_empty() {
        s["trustedIdentities"] = json!(identities);
    }
    s
}

fn doc(statements: Vec<Value>) -> Value {
    json!({"version": "1.0", "trustPolicies": statements})
}

fn simple(scope: &str, level: &str, stores: &[&str]) -> Value {
    doc(vec![statement(
        "s",
        scope,
        json!({"level": level}),
        stores,
        &["*"],
    )])
}

fn overridden(scope: &str, level: &str, check: &str, action: &str, stores: &[&str]) -> Value {
    doc(vec![statement(
        "s",
        scope,
        json!({"level": level, "override": {check: action}}),
        stores,
        &["*"],
    )])
}

pub(crate) fn checks() -> Vec<Check> {
    macro_rules! check {
        ($name:literal, $metadata:expr, |$scope:ident, $cn:ident| $body:expr) => {
            Check {
                name: $name,
                policy: |$scope: &str, $cn: &str| {
                    let _ = ($scope, $cn);
                    $body
                },
                metadata: $metadata,
            }
        };
    }
    vec![
        check!("strict", None, |s, cn| simple(s, "strict", &["ca:good"])),
        check!("permissive", None, |s, cn| simple(
            s,
            "permissive",
            &["ca:good"]
        )),
        check!("audit", None, |s, cn| simple(s, "audit", &["ca:good"])),
        check!("skip", None, |s, cn| doc(vec![
            json!({"name": "s", "registryScopes": [s], "signatureVerification": {"level": "skip"}})
        ])),
        check!("strict-untrusted-store", None, |s, cn| simple(
            s,
            "strict",
            &["ca:other"]
        )),
        check!("permissive-untrusted-store", None, |s, cn| simple(
            s,
            "permissive",
            &["ca:other"]
        )),
        check!("audit-untrusted-store", None, |s, cn| simple(
            s,
            "audit",
            &["ca:other"]
        )),
        check!(
            "strict-untrusted-store-authenticity-logged",
            None,
            |s, cn| overridden(s, "strict", "authenticity", "log", &["ca:other"])
        ),
        check!(
            "permissive-untrusted-store-authenticity-skipped",
            None,
            |s, cn| overridden(s, "permissive", "authenticity", "skip", &["ca:other"])
        ),
        check!("strict-both-stores", None, |s, cn| simple(
            s,
            "strict",
            &["ca:other", "ca:good"]
        )),
        check!("strict-identity-match", None, |s, cn| doc(vec![statement(
            "s",
            s,
            json!({"level": "strict"}),
            &["ca:good"],
            &[&subject_identity(cn)]
        )])),
        check!("strict-identity-mismatch", None, |s, cn| doc(vec![
            statement(
                "s",
                s,
                json!({"level": "strict"}),
                &["ca:good"],
                &[&subject_identity("somebody else")]
            )
        ])),
        check!("audit-identity-mismatch", None, |s, cn| doc(vec![
            statement(
                "s",
                s,
                json!({"level": "audit"}),
                &["ca:good"],
                &[&subject_identity("somebody else")]
            )
        ])),
        check!("scope-mismatch", None, |s, cn| simple(
            "local/elsewhere",
            "strict",
            &["ca:good"]
        )),
        check!("scope-wildcard", None, |s, cn| simple(
            "*",
            "strict",
            &["ca:good"]
        )),
        check!("scope-specific-beats-wildcard", None, |s, cn| doc(vec![
            statement(
                "wild",
                "*",
                json!({"level": "strict"}),
                &["ca:good"],
                &["*"]
            ),
            statement(
                "specific",
                s,
                json!({"level": "strict"}),
                &["ca:other"],
                &["*"]
            ),
        ])),
        check!("strict-missing-store", None, |s, cn| simple(
            s,
            "strict",
            &["ca:missing"]
        )),
        check!("strict-kubernetes-mounted-store", None, |s, cn| simple(
            s,
            "strict",
            &["ca:kubernetes"]
        )),
        check!("strict-signing-authority-store", None, |s, cn| simple(
            s,
            "strict",
            &["signingAuthority:good"]
        )),
        check!("strict-expiry-logged", None, |s, cn| overridden(
            s,
            "strict",
            "expiry",
            "log",
            &["ca:good"]
        )),
        check!("strict-authentic-timestamp-logged", None, |s, cn| {
            overridden(s, "strict", "authenticTimestamp", "log", &["ca:good"])
        }),
        check!("strict-with-tsa-store", None, |s, cn| simple(
            s,
            "strict",
            &["ca:good", "tsa:tsa"]
        )),
        check!("permissive-with-tsa-store", None, |s, cn| simple(
            s,
            "permissive",
            &["ca:good", "tsa:tsa"]
        )),
        check!(
            "strict-with-tsa-store-after-cert-expiry",
            None,
            |s, cn| doc(vec![statement(
                "s",
                s,
                json!({"level": "strict", "verifyTimestamp": "afterCertExpiry"}),
                &["ca:good", "tsa:tsa"],
                &["*"]
            )])
        ),
        check!("strict-metadata-present", Some("team=oracle"), |s, cn| {
            simple(s, "strict", &["ca:good"])
        }),
        check!(
            "strict-metadata-absent",
            Some("team=somebody-else"),
            |s, cn| simple(s, "strict", &["ca:good"])
        ),
        check!("invalid-level", None, |s, cn| simple(
            s,
            "paranoid",
            &["ca:good"]
        )),
        check!("invalid-duplicate-scope", None, |s, cn| doc(vec![
            statement("a", s, json!({"level": "strict"}), &["ca:good"], &["*"]),
            statement("b", s, json!({"level": "audit"}), &["ca:good"], &["*"]),
        ])),
    ]
}

// ---------------------------------------------------------------------------------------
// Verdicts

/// What one tool concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Verified,
    /// Failed; the check / code where it is named.
    Failed(Option<String>),
    /// The trust policy or configuration was refused (Signet exit 2; notation names it).
    Refused,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Verified => write!(f, "verified"),
            Verdict::Failed(Some(c)) => write!(f, "failed {c}"),
            Verdict::Failed(None) => write!(f, "failed"),
            Verdict::Refused => write!(f, "refused"),
        }
    }
}

/// Maps notation's output (`--verbose`, with the artifact's names cut out) to a verdict: a
/// refused configuration, or a failure with the contract codes that match the check notation
/// names (`level=error msg=<check> validation failed. Failure reason: <reason>`), `|`-separated.
fn notation_code(message: &str) -> Verdict {
    let failed_check = message.lines().rev().find_map(|line| {
        let rest = line.split_once("level=error msg=")?.1;
        let (check, reason) = rest.split_once(" validation failed")?;
        Some((check.to_owned(), reason.to_ascii_lowercase()))
    });
    if let Some((check, reason)) = failed_check {
        let codes = match check.as_str() {
            "integrity" => "SIGNATURE_INVALID",
            "authenticity" if reason.contains("trusted identities") => "UNTRUSTED_IDENTITY",
            "authenticity" => "UNTRUSTED_SIGNER",
            "authenticTimestamp" if reason.contains("validity period") => "CERTIFICATE_EXPIRED",
            "authenticTimestamp" if reason.contains("no timestamp countersignature") => {
                "TIMESTAMP_INVALID"
            }
            "authenticTimestamp" => "TIMESTAMP_INVALID|CERTIFICATE_EXPIRED",
            "expiry" => "SIGNATURE_EXPIRED",
            "revocation" => "CERTIFICATE_REVOKED|REVOCATION_UNKNOWN",
            _ => return Verdict::Failed(None),
        };
        return Verdict::Failed(Some(codes.to_owned()));
    }
    let m = message.to_ascii_lowercase();
    if m.contains("no applicable trust policy") {
        return Verdict::Failed(Some("NO_TRUST_POLICY".into()));
    }
    if m.contains("user defined metadata") || m.contains("user metadata") {
        return Verdict::Failed(Some("USER_METADATA".into()));
    }
    if m.contains("signature verification failed") {
        return Verdict::Failed(None);
    }
    // Everything notation rejects before verifying a signature: the policy document.
    Verdict::Refused
}

/// Cuts the artifact's names (which contain words like "metadata") and notation's
/// experimental-feature warning out of its message before it is classified.
fn scrub(message: &str, target: &str, scope: &str) -> String {
    message
        .lines()
        .filter(|l| !l.starts_with("Warning: This feature is experimental"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(target, "<artifact>")
        .replace(scope, "<scope>")
}

fn signet_verdict(code: Option<i32>, stdout: &str) -> Verdict {
    match code {
        Some(0) => Verdict::Verified,
        Some(1) => {
            let v: Value = serde_json::from_str(stdout).unwrap_or(Value::Null);
            let err = &v["results"][0]["error"];
            let code = err["code"].as_str().map(str::to_owned);
            let message = err["message"].as_str().unwrap_or("").to_ascii_lowercase();
            if message.contains("user metadata") {
                return Verdict::Failed(Some("USER_METADATA".into()));
            }
            Verdict::Failed(code)
        }
        _ => Verdict::Refused,
    }
}

/// Whether two verdicts agree: same verdict; the same code where both name one.
fn agree(notation: &Verdict, signet: &Verdict) -> bool {
    match (notation, signet) {
        (Verdict::Failed(None), Verdict::Failed(_)) => true,
        (Verdict::Failed(Some(n)), Verdict::Failed(Some(s))) => n.split('|').any(|c| c == s),
        (a, b) => a == b,
    }
}

pub(crate) struct Outcome {
    pub case: String,
    pub notation: Verdict,
    pub notation_message: String,
    pub signet: Verdict,
    pub signet_output: String,
}

fn write_store(dir: &Path, signed: &Signed, env: &Env) {
    let put = |kind: &str, name: &str, file: &str, pem: &str| {
        let d = dir.join("truststore/x509").join(kind).join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), pem).unwrap();
    };
    put("ca", "good", "root.crt", &signed.ca_pem);
    put("ca", "other", "other.crt", &env.other_ca_pem);
    put("signingAuthority", "good", "root.crt", &signed.ca_pem);
    put(
        "tsa",
        "tsa",
        "tsa-root.crt",
        &std::fs::read_to_string(&env.tsa.root).unwrap(),
    );
    // `ca:kubernetes` holds the signing CA laid out like a ConfigMap volume mount: the file
    // sits in a `..<timestamp>` directory, `..data` links to it, the name links through it.
    let k8s = dir.join("truststore/x509/ca/kubernetes");
    let data = "..2026_01_01_00_00_00.000000001";
    std::fs::create_dir_all(k8s.join(data)).unwrap();
    std::fs::write(k8s.join(data).join("root.crt"), &signed.ca_pem).unwrap();
    std::os::unix::fs::symlink(data, k8s.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/root.crt", k8s.join("root.crt")).unwrap();
}

/// Runs `notation verify`: (the instant it ran, RFC 3339; its verdict; its output).
fn run_notation(
    env: &Env,
    signed: &Signed,
    check: &Check,
    home: &Path,
    target: &str,
) -> (String, Verdict, String) {
    let mut cmd = notation_command(env, home);
    // --verbose makes notation log why each signature failed (the check it names).
    cmd.args(["verify", "--verbose"]);
    if let Some(m) = check.metadata {
        cmd.args(["--user-metadata", m]);
    }
    match &signed.location {
        Location::Layout { .. } => {
            cmd.args(["--oci-layout", "--scope", &signed.scope]);
        }
        Location::Registry { .. } => {
            cmd.args(["--username", USER, "--password", PASS]);
        }
    }
    cmd.arg(target);
    let at = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let out = cmd.output().unwrap();
    let message = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
    .trim()
    .to_owned();
    let verdict = if out.status.success() {
        Verdict::Verified
    } else {
        notation_code(&scrub(&message, target, &signed.scope))
    };
    (at, verdict, message)
}

/// A Signet-only run at a chosen `--at`, judged against notation's answer for another pair.
#[derive(Debug, Clone)]
struct Replay {
    label: &'static str,
    at: &'static str,
    /// The pair (`variant/check`) whose notation answer this run must match.
    notation_case: String,
}

/// The `--at` replays: each `plain-*` signature (chain valid 2020..2120) verified by Signet
/// when its chain is not yet valid and when it has expired must get the answer notation gave,
/// at the real clock, for the expired-chain signature of the same format under the same
/// policy: notation-go treats "not valid at the verification time" alike on both sides.
const REPLAY_INSTANTS: &[(&str, &str)] = &[
    ("not-yet-valid", "2019-06-01T00:00:00Z"),
    ("expired", "2121-06-01T00:00:00Z"),
];

fn verify_pair(
    env: &Env,
    signed: &Signed,
    check: &Check,
    index: usize,
    replay: Option<&Replay>,
) -> Outcome {
    let case = match replay {
        Some(r) => format!("{}@{}/{}", signed.spec.name, r.label, check.name),
        None => format!("{}/{}", signed.spec.name, check.name),
    };
    let home = env.root.join("verify").join(format!("{index:04}"));
    let config = home.join("notation");
    std::fs::create_dir_all(&config).unwrap();
    write_store(&config, signed, env);
    let policy = (check.policy)(&signed.scope, &signed.leaf_cn);
    std::fs::write(config.join("trustpolicy.json"), policy.to_string()).unwrap();

    let target = match &signed.location {
        Location::Layout { path, digest } => format!("{}@{digest}", path.display()),
        Location::Registry { reference } => reference.clone(),
    };
    let (at, notation, notation_message) = match replay {
        // Filled in from the pair the replay copies.
        Some(r) => (r.at.to_owned(), Verdict::Refused, String::new()),
        None => run_notation(env, signed, check, &home, &target),
    };

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
    cmd.env_remove("XDG_CONFIG_HOME")
        .arg("verify")
        .arg("--trust-policy")
        .arg(config.join("trustpolicy.json"))
        .arg("--trust-store")
        .arg(config.join("truststore"))
        .arg("--at")
        .arg(&at)
        .args(["--output", "json"]);
    if let Some(m) = check.metadata {
        cmd.args(["--user-metadata", m]);
    }
    match &signed.location {
        Location::Layout { .. } => {
            cmd.args(["--oci-layout", "--scope", &signed.scope]);
        }
        Location::Registry { .. } => {
            cmd.arg("--docker-config")
                .arg(&env.docker_config)
                .arg("--registry-ca")
                .arg(&env.registry_ca);
        }
    }
    cmd.arg(&target);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let signet = signet_verdict(out.status.code(), &stdout);
    Outcome {
        case,
        notation,
        notation_message,
        signet,
        signet_output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

// ---------------------------------------------------------------------------------------
// The run

pub(crate) async fn run_oracle(notation: PathBuf) -> String {
    let workdir = tempfile::tempdir().unwrap();
    let root = workdir.path().to_path_buf();
    if std::env::var_os("SIGNET_ORACLE_KEEP").is_some() {
        eprintln!("notation oracle: keeping {}", root.display());
        std::mem::forget(workdir);
    }
    let pki = TestPki::new();
    let registry = Registry::start(
        &pki,
        RegistryAuth::Htpasswd {
            username: USER.into(),
            password: PASS.into(),
        },
    )
    .await;
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    };
    let pusher = Pusher::new(
        &registry.url(),
        pki.client_config(),
        Some(format!("Basic {basic}")),
    );
    let registry_ca = root.join("registry-ca.pem");
    std::fs::write(&registry_ca, &pki.ca_pem).unwrap();
    let docker_config = root.join("docker-config.json");
    std::fs::write(
        &docker_config,
        json!({"auths": {registry.host.clone(): {"auth": basic}}}).to_string(),
    )
    .unwrap();

    let specs = sign_specs();
    let mut locations = Vec::new();
    for spec in &specs {
        let location = if spec.registry {
            let repo = format!("oracle/{}", spec.name);
            let image = pusher.image(&repo, "v1").await;
            Location::Registry {
                reference: format!("{}/{repo}@{}", registry.host, image.digest),
            }
        } else {
            let path = root.join("layouts").join(&spec.name);
            let digest = write_layout(&path, &spec.name);
            Location::Layout { path, digest }
        };
        locations.push(location);
    }

    let env = Arc::new(Env {
        notation,
        tsa: start_tsa(&root.join("tsa")),
        root: root.clone(),
        registry_ca,
        docker_config,
        other_ca_pem: Ca::new("Signet Oracle Other CA", Key::P256).pem,
    });
    let summary = tokio::task::spawn_blocking(move || run_matrix(&env, &specs, &locations))
        .await
        .unwrap();
    drop(registry);
    summary
}

fn run_matrix(env: &Arc<Env>, specs: &[SignSpec], locations: &[Location]) -> String {
    let mut cas = BTreeMap::new();
    for key in [Key::Rsa2048, Key::Rsa3072, Key::P256, Key::P384] {
        cas.insert(
            key.name(),
            Ca::new(&format!("Signet Oracle {} CA", key.name()), key),
        );
    }
    let signed: Vec<Signed> = specs
        .iter()
        .zip(locations)
        .map(|(spec, location)| sign(env, &cas, spec, location))
        .collect();

    // Preconditions of the time-dependent cases: the short-lived leaves have expired and the
    // one-second signature expiries have passed.
    let latest = signed
        .iter()
        .filter(|s| s.spec.leaf == LeafValidity::ShortLived)
        .map(|s| s.leaf_not_after)
        .max();
    if let Some(until) = latest {
        let until = until + time::Duration::seconds(2);
        let now = OffsetDateTime::now_utc();
        if until > now {
            std::thread::sleep((until - now).try_into().unwrap());
        }
    }
    std::thread::sleep(std::time::Duration::from_secs(2));

    let checks = Arc::new(checks());
    let mut pairs: Vec<(usize, usize, Option<Replay>)> = Vec::new();
    for s in 0..signed.len() {
        for c in 0..checks.len() {
            pairs.push((s, c, None));
        }
    }
    let total = pairs.len();
    for (s, spec) in signed.iter().enumerate() {
        if !spec.spec.name.starts_with("plain-") {
            continue;
        }
        for (c, check) in checks.iter().enumerate() {
            // The store layout is a separate, listed difference (D3).
            if check.name == "strict-kubernetes-mounted-store" {
                continue;
            }
            for (label, at) in REPLAY_INSTANTS {
                // `verifyTimestamp: afterCertExpiry` verifies a timestamp only once the chain
                // has expired (notation-go's verifier.go): a not-yet-valid chain is checked at
                // the verification time, as under a policy without a tsa store.
                let reference = if *label == "not-yet-valid"
                    && check.name == "strict-with-tsa-store-after-cert-expiry"
                {
                    "strict"
                } else {
                    check.name
                };
                let notation_case = format!("expired-chain-{}-p256/{reference}", spec.spec.format);
                pairs.push((
                    s,
                    c,
                    Some(Replay {
                        label,
                        at,
                        notation_case,
                    }),
                ));
            }
        }
    }
    let replays = pairs.len() - total;
    let signed = Arc::new(signed);
    let queue = Arc::new(Mutex::new(
        pairs.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (env, signed, checks, queue, results) = (
                env.clone(),
                signed.clone(),
                checks.clone(),
                queue.clone(),
                results.clone(),
            );
            std::thread::spawn(move || loop {
                let Some((index, (s, c, replay))) = queue.lock().unwrap().pop() else {
                    return;
                };
                let outcome = verify_pair(&env, &signed[s], &checks[c], index, replay.as_ref());
                results.lock().unwrap().push((outcome, replay));
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let outcomes: Vec<(Outcome, Option<Replay>)> =
        Arc::try_unwrap(results).ok().unwrap().into_inner().unwrap();
    let by_case: BTreeMap<String, (Verdict, String)> = outcomes
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(o, _)| {
            (
                o.case.clone(),
                (o.notation.clone(), o.notation_message.clone()),
            )
        })
        .collect();
    let mut outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|(mut o, replay)| {
            if let Some(r) = replay {
                let (verdict, message) = by_case[&r.notation_case].clone();
                o.notation = verdict;
                o.notation_message =
                    format!("(notation's answer for {}) {message}", r.notation_case);
            }
            o
        })
        .collect();
    outcomes.sort_by(|a, b| a.case.cmp(&b.case));
    if let Some(path) = std::env::var_os("SIGNET_ORACLE_DUMP") {
        let dump: Vec<Value> = outcomes
            .iter()
            .map(|o| json!({"case": o.case, "notation": o.notation.to_string(), "signet": o.signet.to_string(),
                            "notation_message": o.notation_message, "signet_output": o.signet_output}))
            .collect();
        std::fs::write(path, serde_json::to_string_pretty(&dump).unwrap()).unwrap();
    }
    judge(&outcomes, total, replays)
}

fn judge(outcomes: &[Outcome], total: usize, replays: usize) -> String {
    let mut report = String::new();
    let mut problems = Vec::new();
    let (mut agreed, mut listed) = (0, 0);
    for o in outcomes {
        let listed_expectation = LISTED_DIFFERENCES
            .iter()
            .find(|d| differences::matches(d.case, &o.case));
        let agrees = agree(&o.notation, &o.signet);
        if agrees {
            agreed += 1;
        } else if let Some(d) = listed_expectation.filter(|_| !agrees) {
            listed += 1;
            let expected_signet = match d.signet.strip_prefix('=') {
                Some(check) => {
                    let variant = o.case.split('/').next().unwrap_or("");
                    let reference = format!("{variant}/{check}");
                    outcomes
                        .iter()
                        .find(|r| r.case == reference)
                        .map(|r| r.signet.to_string())
                        .unwrap_or_else(|| format!("<no case {reference}>"))
                }
                None => d.signet.to_owned(),
            };
            if (d.notation != "*" && d.notation != o.notation.to_string())
                || expected_signet != o.signet.to_string()
            {
                problems.push(format!(
                    "{}: listed as notation `{}` / signet `{}` in docs/notation-differences.md, got notation `{}` / signet `{}`\n  notation: {}\n  signet: {}",
                    o.case, d.notation, expected_signet, o.notation, o.signet, o.notation_message, o.signet_output
                ));
            }
        } else {
            problems.push(format!(
                "{}: notation `{}`, signet `{}`\n  notation: {}\n  signet: {}",
                o.case, o.notation, o.signet, o.notation_message, o.signet_output
            ));
        }
    }
    let _ = writeln!(
        report,
        "notation oracle: {total} signature x policy pairs (+ {replays} Signet runs at --at instants judged against notation's expired-chain answers); {agreed} agree, {listed} listed differences (differences.rs)"
    );
    for o in outcomes {
        let _ = writeln!(
            report,
            "  {:<70} notation {:<28} signet {}",
            o.case,
            o.notation.to_string(),
            o.signet
        );
    }
    assert!(total >= MINIMUM_PAIRS, "only {total} pairs");
    assert!(
        problems.is_empty(),
        "{report}\n{} unexplained disagreement(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    report
}
