//! Keys and certificates that follow Notation's certificate rules.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

/// A key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
    P521,
}

impl KeyKind {
    /// The Notation algorithm name this key signs with.
    pub fn jws_alg(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "PS256",
            KeyKind::Rsa3072 => "PS384",
            KeyKind::Rsa4096 => "PS512",
            KeyKind::P256 => "ES256",
            KeyKind::P384 => "ES384",
            KeyKind::P521 => "ES512",
        }
    }

    /// The COSE algorithm identifier.
    pub fn cose_alg(self) -> i64 {
        match self {
            KeyKind::Rsa2048 => -37,
            KeyKind::Rsa3072 => -38,
            KeyKind::Rsa4096 => -39,
            KeyKind::P256 => -7,
            KeyKind::P384 => -35,
            KeyKind::P521 => -36,
        }
    }
}

/// A private key able to produce Notation signatures.
#[derive(Debug)]
pub(crate) enum SigningKey {
    Rsa(RsaKeyPair, &'static dyn sig::RsaEncoding),
    Ec(EcdsaKeyPair),
}

impl SigningKey {
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::Rsa(key, encoding) => {
                let mut out = vec![0; key.public_modulus_len()];
                key.sign(*encoding, &rng, message, &mut out).unwrap();
                out
            }
            SigningKey::Ec(key) => key.sign(&rng, message).unwrap().as_ref().to_vec(),
        }
    }
}

/// Generates a key: the rcgen key pair (for certificates) and the signer.
fn generate(kind: KeyKind) -> (KeyPair, SigningKey) {
    let rng = SystemRandom::new();
    let (pkcs8, signing) = match kind {
        KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => {
            let (size, encoding) = match kind {
                KeyKind::Rsa2048 => (aws_lc_rs::rsa::KeySize::Rsa2048, &sig::RSA_PSS_SHA256),
                KeyKind::Rsa3072 => (aws_lc_rs::rsa::KeySize::Rsa3072, &sig::RSA_PSS_SHA384),
                _ => (aws_lc_rs::rsa::KeySize::Rsa4096, &sig::RSA_PSS_SHA512),
            };
            let key = RsaKeyPair::generate(size).unwrap();
            let der = key.as_der().unwrap().as_ref().to_vec();
            (der, SigningKey::Rsa(key, encoding))
        }
        KeyKind::P256 | KeyKind::P384 | KeyKind::P521 => {
            let alg = match kind {
                KeyKind::P256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                KeyKind::P384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                _ => &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
            };
            let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            let der = doc.as_ref().to_vec();
            let key = EcdsaKeyPair::from_pkcs8(alg, &der).unwrap();
            (der, SigningKey::Ec(key))
        }
    };
    let rc = KeyPair::try_from(pkcs8.as_slice()).unwrap();
    (rc, signing)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "WA");
    dn.push(DnType::LocalityName, "Seattle");
    dn.push(DnType::OrganizationName, "Signet Test");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A root certificate authority for code-signing leaves.
#[derive(Debug)]
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

/// What a leaf certificate looks like.
#[derive(Debug, Clone)]
pub struct LeafOptions {
    pub common_name: String,
    pub key: KeyKind,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Adds a CRL distribution point (makes the chain revocable).
    pub crl_url: Option<String>,
    /// Adds an OCSP responder (authority information access; makes the chain revocable).
    pub ocsp_url: Option<String>,
}

impl LeafOptions {
    /// A leaf valid from 2020 to 2120.
    pub fn new(common_name: &str, key: KeyKind) -> Self {
        LeafOptions {
            common_name: common_name.to_owned(),
            key,
            not_before: rcgen::date_time_ymd(2020, 1, 1),
            not_after: rcgen::date_time_ymd(2120, 1, 1),
            crl_url: None,
            ocsp_url: None,
        }
    }
}

impl TestCa {
    /// A self-signed root valid from 2020 to 2120.
    pub fn new(common_name: &str, key: KeyKind) -> Self {
        let (key, _) = generate(key);
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2120, 1, 1);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        TestCa { params, key, der }
    }

    /// The root certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.der
    }

    /// The root certificate, PEM.
    pub fn cert_pem(&self) -> String {
        pem(&self.der)
    }

    /// A CRL signed by this CA, valid from `this_update` to `next_update`, listing the
    /// certificates (DER) in `revoked` as revoked at `this_update`.
    pub fn crl(
        &self,
        revoked: &[&[u8]],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Vec<u8> {
        use x509_parser::prelude::FromDer as _;
        let revoked_certs = revoked
            .iter()
            .map(|der| {
                let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
                rcgen::RevokedCertParams {
                    serial_number: cert.tbs_certificate.serial.to_bytes_be().into(),
                    revocation_time: this_update,
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                }
            })
            .collect();
        let params = rcgen::CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_params(&self.params, &self.key);
        params.signed_by(&issuer).unwrap().der().to_vec()
    }

    /// A delegated OCSP responder issued by this CA (with the id-kp-OCSPSigning extended key
    /// usage when `ocsp_signing`); its [`TestCa::delegated_ocsp_response`] answers for the CA.
    pub fn issue_ocsp_responder(&self, common_name: &str, ocsp_signing: bool) -> TestCa {
        let (key, _) = generate(KeyKind::P256);
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if ocsp_signing {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        }
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2120, 1, 1);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
        TestCa { params, key, der }
    }

    /// Like [`TestCa::ocsp_response`], signed by this delegated responder, which includes its
    /// certificate in the response.
    pub fn delegated_ocsp_response(
        &self,
        request_der: &[u8],
        status: OcspStatus,
        this_update: OffsetDateTime,
        next_update: Option<OffsetDateTime>,
    ) -> Vec<u8> {
        self.ocsp_response_inner(request_der, status, this_update, next_update, true)
    }

    /// A DER `OCSPResponse` signed by this CA (responder by name) to the DER `OCSPRequest`,
    /// with `status` for the certificate the request asks about.
    pub fn ocsp_response(
        &self,
        request_der: &[u8],
        status: OcspStatus,
        this_update: OffsetDateTime,
        next_update: Option<OffsetDateTime>,
    ) -> Vec<u8> {
        self.ocsp_response_inner(request_der, status, this_update, next_update, false)
    }

    fn ocsp_response_inner(
        &self,
        request_der: &[u8],
        status: OcspStatus,
        this_update: OffsetDateTime,
        next_update: Option<OffsetDateTime>,
        include_cert: bool,
    ) -> Vec<u8> {
        use der::{Decode as _, Encode as _};
        use x509_ocsp::{
            BasicOcspResponse, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
            OcspResponseStatus, ResponderId, ResponseBytes, ResponseData, RevokedInfo,
            SingleResponse, Version,
        };
        use x509_parser::prelude::FromDer as _;
        let time = |t: OffsetDateTime| {
            OcspGeneralizedTime(
                der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                    t.unix_timestamp() as u64,
                ))
                .unwrap(),
            )
        };
        let request = OcspRequest::from_der(request_der).unwrap();
        let cert_id = request.tbs_request.request_list[0].req_cert.clone();
        let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&self.der).unwrap();
        let name = x509_cert::name::Name::from_der(ca.subject().as_raw()).unwrap();
        let cert_status = match status {
            OcspStatus::Good => CertStatus::good(),
            OcspStatus::Revoked(at) => CertStatus::Revoked(RevokedInfo {
                revocation_time: time(at),
                revocation_reason: None,
            }),
            OcspStatus::Unknown => CertStatus::unknown(),
        };
        let data = ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByName(name),
            produced_at: time(this_update),
            responses: vec![SingleResponse {
                cert_id,
                cert_status,
                this_update: time(this_update),
                next_update: next_update.map(time),
                single_extensions: None,
            }],
            response_extensions: None,
        };
        let signature = rcgen::SigningKey::sign(&self.key, &data.to_der().unwrap()).unwrap();
        let alg = self.key.algorithm();
        let (oid, null) = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            ("1.2.840.10045.4.3.2", false)
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            ("1.2.840.10045.4.3.3", false)
        } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
            ("1.2.840.10045.4.3.4", false)
        } else {
            ("1.2.840.113549.1.1.11", true)
        };
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                oid: der::oid::ObjectIdentifier::new_unwrap(oid),
                parameters: null.then(|| der::Any::from(der::asn1::Null)),
            },
            signature: der::asn1::BitString::from_bytes(&signature).unwrap(),
            certs: include_cert.then(|| vec![x509_cert::Certificate::from_der(&self.der).unwrap()]),
        };
        OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1"),
                response: der::asn1::OctetString::new(basic.to_der().unwrap()).unwrap(),
            }),
        }
        .to_der()
        .unwrap()
    }

    /// Issues a code-signing leaf.
    pub fn issue(&self, options: &LeafOptions) -> TestSigner {
        let (leaf_key, signing) = generate(options.key);
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&options.common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.not_before = options.not_before;
        params.not_after = options.not_after;
        if let Some(url) = &options.crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        if let Some(url) = &options.ocsp_url {
            params.custom_extensions.push(ocsp_aia(url));
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let leaf = params.signed_by(&leaf_key, &issuer).unwrap();
        TestSigner {
            kind: options.key,
            key: signing,
            chain: vec![leaf.der().to_vec(), self.der.clone()],
        }
    }
}

/// A code-signing key with its certificate chain (leaf first, root last).
#[derive(Debug)]
pub struct TestSigner {
    pub(crate) kind: KeyKind,
    pub(crate) key: SigningKey,
    pub chain: Vec<Vec<u8>>,
}

impl TestSigner {
    /// The key type.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The leaf's public key bytes (for checks in tests).
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            SigningKey::Rsa(k, _) => k.public_key().as_ref().to_vec(),
            SigningKey::Ec(k) => k.public_key().as_ref().to_vec(),
        }
    }
}

/// The status an OCSP response gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    Good,
    /// Revoked at this instant.
    Revoked(OffsetDateTime),
    Unknown,
}

/// An authority information access extension naming one OCSP responder.
fn ocsp_aia(url: &str) -> rcgen::CustomExtension {
    use der::Encode as _;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax};
    let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1"),
        access_location: GeneralName::UniformResourceIdentifier(
            der::asn1::Ia5String::new(url).unwrap(),
        ),
    }]);
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia.to_der().unwrap())
}

/// PEM-encodes one DER certificate.
pub(crate) fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
