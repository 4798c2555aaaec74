//! TLS 1.3 only (rustls on aws-lc-rs), HTTP/1.1, the server certificate from files, and a
//! required client certificate verified against the configured CA (Gatekeeper's `ca.crt`).
//!
//! The whole `rustls::ServerConfig` lives in an [`ArcSwap`]: a reload builds a new one from
//! the files, and only if that succeeds does the next handshake use it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::reload::{fingerprint, Fingerprint, Reloadable};

/// Where the TLS material is.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM certificate chain of the server (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificate(s) client certificates must chain to; `None` only with the
    /// explicit insecure opt-out (no client authentication).
    pub client_ca: Option<PathBuf>,
}

impl TlsSettings {
    fn files(&self) -> Vec<(PathBuf, bool)> {
        let mut v = vec![(self.cert.clone(), false), (self.key.clone(), false)];
        if let Some(ca) = &self.client_ca {
            v.push((ca.clone(), false));
        }
        v
    }

    fn dirs(&self) -> Vec<(PathBuf, bool)> {
        self.files()
            .into_iter()
            .map(|(f, _)| (parent(&f), false))
            .collect()
    }
}

fn parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads the PEM certificates of `path` (at least one).
pub fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// Builds the server's TLS configuration from the files (validates everything).
pub fn build_server_config(s: &TlsSettings) -> Result<ServerConfig, String> {
    let certs = read_certs(&s.cert, "server certificate")?;
    let key_bytes =
        std::fs::read(&s.key).map_err(|e| format!("server key {}: {e}", s.key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| format!("server key {}: not a PEM private key: {e}", s.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS 1.3: {e}"))?;
    let builder = match &s.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca, "client CA")? {
                roots
                    .add(c)
                    .map_err(|e| format!("client CA {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("client CA {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("server certificate and key {}: {e}", s.key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The live TLS configuration and how to reload it.
#[derive(Debug)]
pub struct LiveTls {
    settings: TlsSettings,
    current: ArcSwap<ServerConfig>,
    applied: Mutex<(Fingerprint, Option<Fingerprint>)>,
}

impl LiveTls {
    /// Loads the files once; an error here is fatal at start.
    pub fn load(settings: TlsSettings) -> Result<Arc<LiveTls>, String> {
        let fp = fingerprint(&settings.files());
        let config = build_server_config(&settings)?;
        Ok(Arc::new(LiveTls {
            settings,
            current: ArcSwap::from_pointee(config),
            applied: Mutex::new((fp, None)),
        }))
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Whether client certificates are required.
    pub fn client_auth(&self) -> bool {
        self.settings.client_ca.is_some()
    }

    /// Rebuilds if the files changed; keeps the old configuration when the new one is bad.
    pub fn reload(&self) -> Result<bool, String> {
        let mut applied = match self.applied.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let fp = fingerprint(&self.settings.files());
        if applied.0 == fp || applied.1 == Some(fp) {
            return Ok(false);
        }
        match build_server_config(&self.settings) {
            Ok(config) => {
                self.current.store(Arc::new(config));
                *applied = (fp, None);
                Ok(true)
            }
            Err(e) => {
                applied.1 = Some(fp);
                Err(e)
            }
        }
    }

    /// The reloadable watching the certificate, key and client CA directories.
    pub fn reloadable(self: &Arc<Self>) -> Reloadable {
        let me = self.clone();
        Reloadable {
            name: "tls",
            watch: self.settings.dirs(),
            reload: Arc::new(move || me.reload()),
        }
    }
}
