//! TLS client configurations: Mozilla + system + configured roots, aws-lc-rs provider.

use std::sync::{Arc, OnceLock};

use rustls_pki_types::CertificateDer;

use crate::HttpConfigError;

/// The system's trusted roots, read once: the platform store, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR` where set (as OpenSSL reads them). Unreadable entries are logged and skipped.
pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a system CA certificate could not be read; it is not trusted");
        }
        found.certs
    })
}

/// A client configuration trusting the Mozilla roots, the system roots and `extra`.
/// ALPN offers HTTP/1.1 only (the clients speak HTTP/1.1).
pub fn client_config(
    extra: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, HttpConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // A system store may hold certificates webpki cannot use (e.g. v1 roots): those are
    // skipped, as every other TLS client on the machine would skip them for server auth.
    roots.add_parsable_certificates(system_roots().iter().cloned());
    add_all(&mut roots, extra)?;
    build(roots)
}

/// A client configuration trusting exactly `roots` (tests; nothing else on the machine).
pub fn client_config_exact(
    roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, HttpConfigError> {
    let mut store = rustls::RootCertStore::empty();
    add_all(&mut store, roots)?;
    build(store)
}

fn add_all(
    store: &mut rustls::RootCertStore,
    certs: &[CertificateDer<'static>],
) -> Result<(), HttpConfigError> {
    for cert in certs {
        store
            .add(cert.clone())
            .map_err(|e| HttpConfigError(format!("CA certificate: {e}")))?;
    }
    Ok(())
}

fn build(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, HttpConfigError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpConfigError(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Parses PEM certificates (every `CERTIFICATE` block); at least one is required.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, HttpConfigError> {
    use rustls_pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| HttpConfigError(format!("CA PEM: {e}")))?;
    if certs.is_empty() {
        return Err(HttpConfigError("CA PEM holds no certificate".to_owned()));
    }
    Ok(certs)
}
