//! RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`).
//!
//! Follows notation-go (`verifier.verifyTimestamp`, tspclient-go): the token is a CMS
//! `SignedData` over a `TSTInfo` whose message imprint is the hash of the envelope's
//! signature value; its single signer's signed attributes bind the content type and the
//! digest of the `TSTInfo`; the signature over them verifies with the TSA certificate; the
//! TSA chain is built from the token's certificates up to a trusted TSA root and must pass
//! notation's timestamping chain rules at the timestamp's time.

use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence, Tagged};

use cms::cert::x509::ext::pkix::name::GeneralName;
use cms::cert::x509::ext::Extensions;
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use x509_parser::prelude::FromDer;

use crate::cert::Certificate;
use crate::chain::{self, ChainError, HashAlg, SigScheme};
use crate::{Instant, MAX_CHAIN_LENGTH};

/// Largest timestamp token accepted (DER bytes).
pub const MAX_TOKEN_BYTES: usize = 256 * 1024;

/// Most certificates a token may carry.
pub const MAX_TOKEN_CERTIFICATES: usize = 2 * MAX_CHAIN_LENGTH;

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_CT_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_ATTR_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_ATTR_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_ATTR_SIGNING_CERT: &str = "1.2.840.113549.1.9.16.2.12";
const OID_ATTR_SIGNING_CERT_V2: &str = "1.2.840.113549.1.9.16.2.47";

/// A timestamp that verified: the time the TSA asserts, its accuracy, and the TSA chain
/// (signer first, ending in the trusted root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    pub time: Instant,
    pub accuracy: time::Duration,
    pub tsa_chain: Vec<Certificate>,
}

impl VerifiedTimestamp {
    /// The earliest instant the timestamp may stand for (`time - accuracy`).
    pub fn earliest(&self) -> Instant {
        self.time.saturating_sub(self.accuracy)
    }

    /// The latest instant the timestamp may stand for (`time + accuracy`).
    pub fn latest(&self) -> Instant {
        self.time.saturating_add(self.accuracy)
    }
}

/// Why a timestamp token does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("timestamp token is {len} bytes; at most {max} are allowed")]
    TooLarge { len: usize, max: usize },
    #[error("timestamp token is malformed: {0}")]
    Malformed(String),
    #[error("timestamp token is not CMS SignedData (content type {0})")]
    NotSignedData(String),
    #[error("timestamp token does not encapsulate a TSTInfo (content type {0})")]
    NotTstInfo(String),
    #[error("timestamp token must have exactly one signer, found {0}")]
    SignerCount(usize),
    #[error("TSTInfo version must be 1, found {0}")]
    UnsupportedVersion(String),
    #[error("unsupported hash algorithm {0}")]
    UnsupportedHash(String),
    #[error("timestamp message imprint does not match the hash of the signature")]
    ImprintMismatch,
    #[error("invalid TSTInfo genTime: {0}")]
    BadGenTime(String),
    #[error("invalid TSTInfo accuracy: {0}")]
    BadAccuracy(String),
    #[error("timestamp signer has no signed attributes")]
    MissingSignedAttributes,
    #[error("timestamp signer's signed attribute {0} is missing or malformed")]
    BadSignedAttribute(&'static str),
    #[error(
        "timestamp signer's content-type attribute does not match the encapsulated content type"
    )]
    ContentTypeMismatch,
    #[error("timestamp signer's message-digest attribute does not match the TSTInfo")]
    MessageDigestMismatch,
    #[error("timestamp token carries {count} certificates; at most {max} are allowed")]
    TooManyCertificates { count: usize, max: usize },
    #[error("timestamp token certificate is invalid: {0}")]
    BadCertificate(String),
    #[error("timestamp signer's certificate is not in the token")]
    SignerCertificateNotFound,
    #[error("timestamp signing-certificate attribute does not identify the signer's certificate")]
    SigningCertificateMismatch,
    #[error("unsupported timestamp signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    #[error("timestamp token signature is invalid: {0}")]
    SignatureInvalid(String),
    #[error("timestamp signer ({subject}) does not chain to a trusted TSA root")]
    Untrusted { subject: String },
    #[error("timestamp certificate chain is invalid: {0}")]
    Chain(#[from] ChainError),
}

/// TSTInfo (RFC 3161 §2.4.2), with `genTime` kept raw: `der`'s GeneralizedTime refuses
/// fractional seconds, which RFC 3161 allows and TSAs use.
#[derive(Clone, Debug, Sequence)]
struct TstInfo {
    version: der::asn1::Int,
    policy: ObjectIdentifier,
    message_imprint: x509_tsp::MessageImprint,
    serial_number: der::asn1::Int,
    gen_time: Any,
    #[asn1(optional = "true")]
    accuracy: Option<x509_tsp::Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<der::asn1::Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Extensions>,
}

/// ESSCertIDv2 (RFC 5035); hashAlgorithm defaults to SHA-256.
#[derive(Clone, Debug, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

#[derive(Clone, Debug, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// ESSCertID (RFC 2634): SHA-1 hash.
#[derive(Clone, Debug, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

#[derive(Clone, Debug, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

fn malformed(e: impl std::fmt::Display) -> TimestampError {
    TimestampError::Malformed(e.to_string())
}

/// A timestamp token decoded but not verified: what `envelope inspect` shows.
#[derive(Debug, Clone)]
pub struct TimestampSummary {
    /// `genTime`.
    pub time: Instant,
    pub accuracy: time::Duration,
    /// The message-imprint hash algorithm (`sha256`, ...).
    pub hash_algorithm: &'static str,
    /// Subject of the signer's certificate, when the token carries it.
    pub tsa_subject: Option<String>,
}

/// The decoded parts of a token that verification and inspection share.
struct ParsedToken {
    signed_data: SignedData,
    econtent_type: ObjectIdentifier,
    tst_bytes: Vec<u8>,
    tst: TstInfo,
    imprint_hash: HashAlg,
    time: Instant,
    accuracy: time::Duration,
    certs: Vec<Certificate>,
}

fn parse_token(token_der: &[u8]) -> Result<ParsedToken, TimestampError> {
    if token_der.len() > MAX_TOKEN_BYTES {
        return Err(TimestampError::TooLarge {
            len: token_der.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    // ContentInfo → SignedData → TSTInfo.
    let ci = ContentInfo::from_der(token_der).map_err(malformed)?;
    if ci.content_type.to_string() != OID_SIGNED_DATA {
        return Err(TimestampError::NotSignedData(ci.content_type.to_string()));
    }
    let signed_data: SignedData = ci.content.decode_as().map_err(malformed)?;
    let econtent_type = signed_data.encap_content_info.econtent_type;
    if econtent_type.to_string() != OID_CT_TST_INFO {
        return Err(TimestampError::NotTstInfo(econtent_type.to_string()));
    }
    let econtent = signed_data
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("no encapsulated TSTInfo"))?;
    let tst_bytes = econtent
        .decode_as::<OctetString>()
        .map_err(malformed)?
        .into_bytes();
    let tst = TstInfo::from_der(&tst_bytes).map_err(malformed)?;
    if tst.version.as_bytes() != [1] {
        return Err(TimestampError::UnsupportedVersion(format!(
            "{:?}",
            tst.version.as_bytes()
        )));
    }
    let imprint_oid = tst.message_imprint.hash_algorithm.oid.to_string();
    let imprint_hash =
        HashAlg::from_oid(&imprint_oid).ok_or(TimestampError::UnsupportedHash(imprint_oid))?;
    let time = parse_generalized_time(&tst.gen_time)?;
    let accuracy = accuracy_of(tst.accuracy.as_ref())?;

    let mut certs = Vec::new();
    if let Some(set) = &signed_data.certificates {
        if set.0.len() > MAX_TOKEN_CERTIFICATES {
            return Err(TimestampError::TooManyCertificates {
                count: set.0.len(),
                max: MAX_TOKEN_CERTIFICATES,
            });
        }
        for choice in set.0.iter() {
            if let CertificateChoices::Certificate(c) = choice {
                let der = c
                    .to_der()
                    .map_err(|e| TimestampError::BadCertificate(e.to_string()))?;
                certs.push(
                    Certificate::from_der(der)
                        .map_err(|e| TimestampError::BadCertificate(e.to_string()))?,
                );
            }
        }
    }
    Ok(ParsedToken {
        signed_data,
        econtent_type,
        tst_bytes,
        tst,
        imprint_hash,
        time,
        accuracy,
        certs,
    })
}

/// Decodes a timestamp token without verifying it (for display).
pub fn inspect_timestamp(token_der: &[u8]) -> Result<TimestampSummary, TimestampError> {
    let token = parse_token(token_der)?;
    let tsa_subject = match token.signed_data.signer_infos.0.iter().next() {
        Some(signer) => find_signer(&signer.sid, &token.certs)?.map(|c| c.subject()),
        None => None,
    };
    Ok(TimestampSummary {
        time: token.time,
        accuracy: token.accuracy,
        hash_algorithm: token.imprint_hash.name(),
        tsa_subject,
    })
}

/// Verifies an RFC 3161 timestamp token (`token_der`, a CMS ContentInfo) countersigning
/// `signature` (the envelope's signature value), against trusted TSA roots (a `tsa` store).
/// Like notation-go, a timestamp later than "now" is not refused: the TSA vouches for it.
pub fn verify_timestamp(
    token_der: &[u8],
    signature: &[u8],
    tsa_roots: &[Certificate],
) -> Result<VerifiedTimestamp, TimestampError> {
    let ParsedToken {
        signed_data: sd,
        econtent_type,
        tst_bytes,
        tst,
        imprint_hash,
        time,
        accuracy,
        certs,
    } = parse_token(token_der)?;
    if imprint_hash.hash(signature) != tst.message_imprint.hashed_message.as_bytes() {
        return Err(TimestampError::ImprintMismatch);
    }

    // 3. The signer and its signed attributes.
    let signers: Vec<&SignerInfo> = sd.signer_infos.0.iter().collect();
    let [signer] = signers.as_slice() else {
        return Err(TimestampError::SignerCount(signers.len()));
    };
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or(TimestampError::MissingSignedAttributes)?;
    let attr_value = |oid: &str, name: &'static str| -> Result<Option<Any>, TimestampError> {
        let mut found = attrs.iter().filter(|a| a.oid.to_string() == oid);
        let Some(attr) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() || attr.values.len() != 1 {
            return Err(TimestampError::BadSignedAttribute(name));
        }
        Ok(attr.values.iter().next().cloned())
    };
    let content_type = attr_value(OID_ATTR_CONTENT_TYPE, "content-type")?
        .ok_or(TimestampError::BadSignedAttribute("content-type"))?
        .decode_as::<ObjectIdentifier>()
        .map_err(|_| TimestampError::BadSignedAttribute("content-type"))?;
    if content_type != econtent_type {
        return Err(TimestampError::ContentTypeMismatch);
    }
    let digest_oid = signer.digest_alg.oid.to_string();
    let digest_hash =
        HashAlg::from_oid(&digest_oid).ok_or(TimestampError::UnsupportedHash(digest_oid))?;
    let message_digest = attr_value(OID_ATTR_MESSAGE_DIGEST, "message-digest")?
        .ok_or(TimestampError::BadSignedAttribute("message-digest"))?
        .decode_as::<OctetString>()
        .map_err(|_| TimestampError::BadSignedAttribute("message-digest"))?;
    if digest_hash.hash(&tst_bytes) != message_digest.as_bytes() {
        return Err(TimestampError::MessageDigestMismatch);
    }

    // 4. The signer's certificate among the token's.
    let signer_cert =
        find_signer(&signer.sid, &certs)?.ok_or(TimestampError::SignerCertificateNotFound)?;
    check_signing_certificate_attr(&attr_value, &signer_cert)?;

    // 5. The signature over the DER of the signed attributes.
    let signed_attrs_der = attrs.to_der().map_err(malformed)?;
    let (scheme, hash) = signer_scheme(signer, digest_hash)?;
    let x = signer_cert.x509();
    chain::verify_signature(
        x.public_key(),
        scheme,
        hash,
        &signed_attrs_der,
        signer.signature.as_bytes(),
    )
    .map_err(TimestampError::SignatureInvalid)?;

    // 6. The TSA chain, to a trusted root, valid at the timestamp's time.
    let tsa_chain = build_chain(&signer_cert, &certs, tsa_roots)?;
    chain::validate_timestamping_chain(&tsa_chain, Some(time))?;

    Ok(VerifiedTimestamp {
        time,
        accuracy,
        tsa_chain,
    })
}

/// Parses a DER GeneralizedTime `YYYYMMDDHHMMSS[.f+]Z`.
fn parse_generalized_time(any: &Any) -> Result<Instant, TimestampError> {
    let bad = |why: &str| TimestampError::BadGenTime(why.to_owned());
    if any.tag() != der::Tag::GeneralizedTime {
        return Err(bad("not a GeneralizedTime"));
    }
    let s = std::str::from_utf8(any.value()).map_err(|_| bad("not ASCII"))?;
    let s = s.strip_suffix('Z').ok_or_else(|| bad("must end in Z"))?;
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    if main.len() != 14 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("must be YYYYMMDDHHMMSS"));
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, TimestampError> {
        main.get(r)
            .and_then(|p| p.parse::<u32>().ok())
            .ok_or_else(|| bad("bad digits"))
    };
    let year = i32::try_from(num(0..4)?).map_err(|_| bad("year"))?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).map_err(|_| bad("month"))?)
        .map_err(|_| bad("month"))?;
    let byte = |v: u32| u8::try_from(v).map_err(|_| bad("field out of range"));
    let date = time::Date::from_calendar_date(year, month, byte(num(6..8)?)?)
        .map_err(|e| bad(&e.to_string()))?;
    let mut nanos = 0u32;
    if let Some(f) = frac {
        // DER: at least one digit, no trailing zero.
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) || f.ends_with('0')
        {
            return Err(bad("bad fractional seconds"));
        }
        let digits: u32 = f.parse().map_err(|_| bad("bad fractional seconds"))?;
        nanos = digits * 10u32.pow(9 - f.len() as u32);
    }
    let t = time::Time::from_hms_nano(
        byte(num(8..10)?)?,
        byte(num(10..12)?)?,
        byte(num(12..14)?)?,
        nanos,
    )
    .map_err(|e| bad(&e.to_string()))?;
    Ok(time::PrimitiveDateTime::new(date, t).assume_utc())
}

fn accuracy_of(acc: Option<&x509_tsp::Accuracy>) -> Result<time::Duration, TimestampError> {
    let Some(acc) = acc else {
        return Ok(time::Duration::ZERO);
    };
    let sub = |v: Option<i16>, name: &str| -> Result<i64, TimestampError> {
        match v {
            None => Ok(0),
            Some(v) if (1..=999).contains(&v) => Ok(i64::from(v)),
            Some(v) => Err(TimestampError::BadAccuracy(format!(
                "{name} {v} not in 1..999"
            ))),
        }
    };
    let seconds = i64::try_from(acc.seconds.unwrap_or(0))
        .ok()
        .filter(|s| *s <= 1_000_000_000)
        .ok_or_else(|| TimestampError::BadAccuracy("seconds too large".into()))?;
    Ok(time::Duration::seconds(seconds)
        + time::Duration::milliseconds(sub(acc.millis, "millis")?)
        + time::Duration::microseconds(sub(acc.micros, "micros")?))
}

/// The certificate named by the signer identifier (issuer + serial, or subject key id).
fn find_signer(
    sid: &SignerIdentifier,
    certs: &[Certificate],
) -> Result<Option<Certificate>, TimestampError> {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            let issuer = isn.issuer.to_der().map_err(malformed)?;
            let serial = isn.serial_number.as_bytes();
            Ok(certs
                .iter()
                .find(|c| {
                    let x = c.x509();
                    x.issuer().as_raw() == issuer.as_slice() && x.raw_serial() == serial
                })
                .cloned())
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            let want = ski.0.as_bytes();
            Ok(certs
                .iter()
                .find(|c| {
                    c.x509().extensions().iter().any(|e| {
                        e.oid.to_id_string() == "2.5.29.14"
                            && matches!(
                                e.parsed_extension(),
                                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) if k.0 == want
                            )
                    })
                })
                .cloned())
        }
    }
}

/// Looks up the single value of a signed attribute by OID (dotted) and display name.
type AttrLookup<'a> = dyn Fn(&str, &'static str) -> Result<Option<Any>, TimestampError> + 'a;

/// RFC 3161 requires the ESS signing-certificate (v1 or v2) attribute; its first entry must
/// be the hash of the signer's certificate.
fn check_signing_certificate_attr(
    attr_value: &AttrLookup<'_>,
    signer_cert: &Certificate,
) -> Result<(), TimestampError> {
    if let Some(v2) = attr_value(OID_ATTR_SIGNING_CERT_V2, "signing-certificate-v2")? {
        let sc: SigningCertificateV2 = v2
            .decode_as()
            .map_err(|_| TimestampError::BadSignedAttribute("signing-certificate-v2"))?;
        let first = sc
            .certs
            .first()
            .ok_or(TimestampError::BadSignedAttribute("signing-certificate-v2"))?;
        let hash = match &first.hash_algorithm {
            None => HashAlg::Sha256,
            Some(alg) => {
                let oid = alg.oid.to_string();
                HashAlg::from_oid(&oid).ok_or(TimestampError::UnsupportedHash(oid))?
            }
        };
        if hash.hash(signer_cert.der()) != first.cert_hash.as_bytes() {
            return Err(TimestampError::SigningCertificateMismatch);
        }
        return Ok(());
    }
    if let Some(v1) = attr_value(OID_ATTR_SIGNING_CERT, "signing-certificate")? {
        let sc: SigningCertificate = v1
            .decode_as()
            .map_err(|_| TimestampError::BadSignedAttribute("signing-certificate"))?;
        let first = sc
            .certs
            .first()
            .ok_or(TimestampError::BadSignedAttribute("signing-certificate"))?;
        let sha1 = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            signer_cert.der(),
        );
        if sha1.as_ref() != first.cert_hash.as_bytes() {
            return Err(TimestampError::SigningCertificateMismatch);
        }
        return Ok(());
    }
    Err(TimestampError::BadSignedAttribute("signing-certificate"))
}

/// (scheme, hash) of the signer's signature algorithm; `rsaEncryption` and
/// `id-ecPublicKey` take the hash from the digest algorithm.
fn signer_scheme(
    signer: &SignerInfo,
    digest_hash: HashAlg,
) -> Result<(SigScheme, HashAlg), TimestampError> {
    let oid = signer.signature_algorithm.oid.to_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => return Ok((SigScheme::RsaPkcs1, digest_hash)),
        "1.2.840.10045.2.1" => return Ok((SigScheme::Ecdsa, digest_hash)),
        _ => {}
    }
    let der = signer.signature_algorithm.to_der().map_err(malformed)?;
    let (_, alg) = x509_parser::x509::AlgorithmIdentifier::from_der(&der)
        .map_err(|_| TimestampError::UnsupportedSignatureAlgorithm(oid.clone()))?;
    chain::cert_signature_scheme(&alg)
        .map_err(|_| TimestampError::UnsupportedSignatureAlgorithm(oid))
}

/// Builds signer → … → trusted root from the token's certificates, as Go's `x509.Verify`
/// with the TSA roots as the root pool: the chain ends at a root that is byte-equal to the
/// last certificate or that issued it.
fn build_chain(
    signer: &Certificate,
    certs: &[Certificate],
    roots: &[Certificate],
) -> Result<Vec<Certificate>, TimestampError> {
    let untrusted = || TimestampError::Untrusted {
        subject: signer.subject(),
    };
    let mut chain = vec![signer.clone()];
    while chain.len() <= MAX_CHAIN_LENGTH {
        let current = chain.last().cloned().ok_or_else(untrusted)?;
        if roots.contains(&current) {
            return Ok(chain);
        }
        let cx = current.x509();
        if let Some(root) = roots
            .iter()
            .find(|r| chain::is_issued_by(&cx, &r.x509()).is_ok())
        {
            chain.push(root.clone());
            return Ok(chain);
        }
        let next = certs
            .iter()
            .filter(|c| !chain.contains(c))
            .find(|c| chain::is_issued_by(&cx, &c.x509()).is_ok());
        match next {
            Some(c) => chain.push(c.clone()),
            None => return Err(untrusted()),
        }
    }
    Err(untrusted())
}

#[cfg(test)]
#[path = "timestamp_tests.rs"]
mod tests;
