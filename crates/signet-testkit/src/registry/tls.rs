//! Test PKI for registry TLS and token signing: one CA, a server certificate for
//! 127.0.0.1/localhost, and a token-signing certificate (ES256) for distribution's token auth.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The harness's PKI.
#[derive(Debug)]
pub struct TestPki {
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
    /// Token-signing certificate (DER) and its PKCS#8 P-256 key.
    pub token_cert_der: Vec<u8>,
    pub token_key_pkcs8: Vec<u8>,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Signet Registry Test");
    dn.push(DnType::CommonName, cn);
    dn
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

impl TestPki {
    pub fn new() -> TestPki {
        TestPki::with_server_names(&[])
    }

    /// As [`TestPki::new`], the server certificate also naming `names` (fakes of public
    /// services reached through pinned addresses, e.g. `login.microsoftonline.com`).
    pub fn with_server_names(names: &[&str]) -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.distinguished_name = dn("Signet Test Registry CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca, &ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server_names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        server_names.extend(names.iter().map(|n| (*n).to_owned()));
        let mut server = CertificateParams::new(server_names).unwrap();
        server.distinguished_name = dn("localhost");
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        let token_key = KeyPair::generate().unwrap();
        let mut token = CertificateParams::default();
        token.distinguished_name = dn("Signet Test Token Signer");
        token.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let token_cert = token.signed_by(&token_key, &issuer).unwrap();

        TestPki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
            token_cert_der: token_cert.der().to_vec(),
            token_key_pkcs8: token_key.serialize_der(),
        }
    }

    /// A rustls server configuration with the server certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A rustls client configuration trusting only the test CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_der.clone()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}
