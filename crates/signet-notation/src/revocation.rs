//! Certificate revocation checking of a signing certificate chain, as notation-core-go's
//! `revocation` package does it, with the fetching left to the caller.
//!
//! For every certificate of the chain but the root, the revocation information the
//! certificate names is fetched through a [`RevocationSource`] and validated here:
//!
//! - OCSP when the certificate names an OCSP responder (authority information access);
//!   an OCSP check that ends in "unknown" (fetch failure, bad response) falls back to the
//!   certificate's CRLs when it has some;
//! - otherwise its CRL distribution points (every `http`/`https` URI of every point): the
//!   CRL must be signed by the certificate's issuer (the next certificate of the chain), be
//!   current (`thisUpdate <= at <= nextUpdate`), not be a delta CRL nor carry an unknown
//!   critical extension; the certificate is revoked when its serial number is listed, unless
//!   the entry's invalidity date is after the authentic signing time (signing-authority
//!   scheme);
//! - a certificate without either is not revocable and counts as good.
//!
//! The chain's result: revoked if some certificate is revoked, else unknown if the status of
//! some certificate is unknown, else good.

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::cert::Certificate;
use crate::chain::{cert_signature_scheme, verify_signature};
use crate::{format_rfc3339, Instant};

/// Largest CRL accepted (notation-core-go's bound: 32 MiB).
pub const MAX_CRL_BYTES: usize = 32 * 1024 * 1024;

/// Largest OCSP response accepted.
pub const MAX_OCSP_RESPONSE_BYTES: usize = 64 * 1024;

/// Where revocation information comes from: the caller fetches, this module validates.
///
/// Implementations bound the size and the time of each fetch; an `Err` makes the status of
/// the certificate unknown.
pub trait RevocationSource: std::fmt::Debug + Send + Sync {
    /// The DER CRL published at `url`.
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String>;
    /// The DER `OCSPResponse` of the responder at `url` to the DER `OCSPRequest`.
    fn fetch_ocsp(&self, url: &str, request_der: &[u8]) -> Result<Vec<u8>, String>;
    /// The CRL last fetched from `url` did not validate (bad signature, wrong issuer,
    /// expired, unsupported): a caching source drops it, so a forged or stale CRL does not
    /// outlive this check.
    fn crl_rejected(&self, _url: &str) {}
}

/// The revocation status of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationResult {
    /// No certificate of the chain is revoked, and the status of every revocable one is known.
    Ok,
    /// A certificate is revoked.
    Revoked {
        /// The revoked certificate's subject.
        subject: String,
        /// Where that was found (CRL or OCSP URL) and when it was revoked.
        detail: String,
    },
    /// The status of a certificate could not be established.
    Unknown {
        /// The certificate's subject.
        subject: String,
        /// Why: the URL and what went wrong.
        reason: String,
    },
}

/// The status of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CertStatus {
    Good,
    NonRevocable,
    Revoked(String),
    Unknown(String),
}

/// Checks the revocation status of `chain` (leaf first, root last) at `at`.
///
/// `signing_time` is the authentic signing time of a signing-authority signature: a revoked
/// entry whose invalidity date is after it does not revoke the signature.
pub fn check_chain(
    chain: &[Certificate],
    source: &dyn RevocationSource,
    at: Instant,
    signing_time: Option<Instant>,
) -> RevocationResult {
    let mut unknown = None;
    // The root (last) certificate is never checked: nothing above it could revoke it.
    for pair in chain.windows(2) {
        let (cert, issuer) = (&pair[0], &pair[1]);
        match cert_status(cert, issuer, source, at, signing_time) {
            CertStatus::Good | CertStatus::NonRevocable => {}
            CertStatus::Revoked(detail) => {
                return RevocationResult::Revoked {
                    subject: cert.subject(),
                    detail,
                }
            }
            CertStatus::Unknown(reason) => {
                unknown.get_or_insert(RevocationResult::Unknown {
                    subject: cert.subject(),
                    reason,
                });
            }
        }
    }
    unknown.unwrap_or(RevocationResult::Ok)
}

/// The `nextUpdate` of a DER CRL, when it parses and has one (for caches: the CRL itself is
/// validated by [`check_chain`] on every use).
pub fn crl_next_update(der: &[u8]) -> Option<Instant> {
    let (_, crl) = CertificateRevocationList::from_der(der).ok()?;
    crl.next_update().map(|t| t.to_datetime())
}

/// Whether some certificate of `chain` names revocation information (a CRL distribution
/// point or an OCSP responder).
pub fn is_revocable(chain: &[Certificate]) -> bool {
    chain.iter().any(|c| {
        let x509 = c.x509();
        has_crl_extension(&x509) || !ocsp_urls(&x509).is_empty()
    })
}

fn has_crl_extension(cert: &X509Certificate<'_>) -> bool {
    cert.extensions().iter().any(|ext| {
        matches!(
            ext.parsed_extension(),
            x509_parser::extensions::ParsedExtension::CRLDistributionPoints(_)
        )
    })
}

/// The URIs of the certificate's CRL distribution points.
fn crl_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            urls.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    urls
}

/// The URIs of the certificate's OCSP responders.
fn ocsp_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in &aia.accessdescs {
                if desc.access_method == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                {
                    if let GeneralName::URI(uri) = &desc.access_location {
                        urls.push((*uri).to_owned());
                    }
                }
            }
        }
    }
    urls
}

fn cert_status(
    cert: &Certificate,
    issuer: &Certificate,
    source: &dyn RevocationSource,
    at: Instant,
    signing_time: Option<Instant>,
) -> CertStatus {
    let x509 = cert.x509();
    let issuer_x509 = issuer.x509();
    let ocsp = ocsp_urls(&x509);
    let crls = crl_urls(&x509);
    let has_crl = has_crl_extension(&x509);

    let mut ocsp_failure = None;
    if !ocsp.is_empty() {
        match ocsp_status(&x509, &issuer_x509, &ocsp, source, at, signing_time) {
            CertStatus::Unknown(reason) if has_crl => ocsp_failure = Some(reason),
            status => return status,
        }
    }
    if !has_crl {
        return CertStatus::NonRevocable;
    }
    let status = crl_status(&x509, &issuer_x509, &crls, source, at, signing_time);
    match (status, ocsp_failure) {
        (CertStatus::Unknown(crl), Some(ocsp)) => {
            CertStatus::Unknown(format!("{ocsp}; falling back to CRL: {crl}"))
        }
        (status, _) => status,
    }
}

/// OCSP: the first responder that answers with a valid response decides; when none does,
/// the status is unknown (which falls back to CRLs when the certificate has some).
fn ocsp_status(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    urls: &[String],
    source: &dyn RevocationSource,
    at: Instant,
    signing_time: Option<Instant>,
) -> CertStatus {
    let (cert_id, request) = match ocsp::request(cert, issuer) {
        Ok(r) => r,
        Err(e) => return CertStatus::Unknown(format!("OCSP: {e}")),
    };
    let mut failures = Vec::new();
    for url in urls {
        let checked = source
            .fetch_ocsp(url, &request)
            .map_err(|e| format!("the OCSP request failed: {e}"))
            .and_then(|der| ocsp::check_response(&der, &cert_id, issuer, at, signing_time));
        match checked {
            Ok(ocsp::Status::Good) => return CertStatus::Good,
            Ok(ocsp::Status::Revoked(detail)) => {
                return CertStatus::Revoked(format!("OCSP {url}: {detail}"))
            }
            Ok(ocsp::Status::Unknown) => failures.push(format!(
                "OCSP {url}: the responder does not know the certificate"
            )),
            Err(e) => failures.push(format!("OCSP {url}: {e}")),
        }
    }
    CertStatus::Unknown(failures.join("; "))
}

fn crl_status(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    urls: &[String],
    source: &dyn RevocationSource,
    at: Instant,
    signing_time: Option<Instant>,
) -> CertStatus {
    if urls.is_empty() {
        return CertStatus::Unknown(
            "the certificate's CRL distribution points name no URI".to_owned(),
        );
    }
    // A certificate pointing at delta CRLs (freshest CRL) may be revoked in a delta only.
    if cert
        .extensions()
        .iter()
        .any(|e| e.oid.to_id_string() == "2.5.29.46")
    {
        return CertStatus::Unknown(
            "the certificate names delta CRLs (freshest CRL), which are not supported".to_owned(),
        );
    }
    // Every URI is checked: the distribution points do not say which reasons each covers.
    for url in urls {
        let checked = match source.fetch_crl(url) {
            Err(e) => Err(format!("fetching the CRL failed: {e}")),
            Ok(der) => {
                let checked = check_crl(&der, cert, issuer, at, signing_time);
                if checked.is_err() {
                    source.crl_rejected(url);
                }
                checked
            }
        };
        match checked {
            Ok(None) => {}
            Ok(Some(revoked)) => return CertStatus::Revoked(format!("CRL {url}: {revoked}")),
            Err(e) => return CertStatus::Unknown(format!("CRL {url}: {e}")),
        }
    }
    CertStatus::Good
}

/// Validates a CRL for `cert` and looks the certificate up: `Ok(None)` when not revoked,
/// `Ok(Some(when))` when revoked.
fn check_crl(
    der: &[u8],
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    at: Instant,
    signing_time: Option<Instant>,
) -> Result<Option<String>, String> {
    if der.len() > MAX_CRL_BYTES {
        return Err(format!(
            "the CRL is {} bytes, more than the {} MiB limit",
            der.len(),
            MAX_CRL_BYTES / 1024 / 1024
        ));
    }
    let crl = match CertificateRevocationList::from_der(der) {
        Ok((&[], crl)) => crl,
        Ok((rest, _)) => return Err(format!("{} bytes follow the DER CRL", rest.len())),
        Err(e) => return Err(format!("not a DER CRL: {e}")),
    };

    // Issued and signed by the certificate's issuer.
    if crl.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(format!(
            "the CRL is issued by {:?}, not by the certificate's issuer {:?}",
            crl.issuer().to_string(),
            issuer.subject().to_string()
        ));
    }
    if let Ok(Some(ku)) = issuer.key_usage() {
        if ku.value.flags != 0 && !ku.value.crl_sign() {
            return Err("the issuer's key usage does not allow signing CRLs".to_owned());
        }
    }
    let (scheme, hash) = cert_signature_scheme(&crl.signature_algorithm)?;
    verify_signature(
        issuer.public_key(),
        scheme,
        hash,
        crl.tbs_cert_list.as_ref(),
        &crl.signature_value.data,
    )
    .map_err(|e| format!("the CRL is not signed by the certificate's issuer: {e}"))?;

    // Current.
    let this_update = crl.last_update().to_datetime();
    if at < this_update {
        return Err(format!(
            "the CRL is not valid yet: thisUpdate is {}",
            format_rfc3339(this_update)
        ));
    }
    if let Some(next) = crl.next_update() {
        let next = next.to_datetime();
        if at > next {
            return Err(format!(
                "the CRL expired: nextUpdate was {}",
                format_rfc3339(next)
            ));
        }
    }

    // Extensions: delta CRLs are not supported, nor unknown critical extensions.
    for ext in crl.extensions() {
        match ext.oid.to_id_string().as_str() {
            // Delta CRL indicator, freshest CRL.
            "2.5.29.27" | "2.5.29.46" => return Err("delta CRLs are not supported".to_owned()),
            // Issuing distribution point: every distribution point is checked anyway.
            "2.5.29.28" => {}
            oid if ext.critical => {
                return Err(format!(
                    "the CRL has an unsupported critical extension {oid}"
                ))
            }
            _ => {}
        }
    }

    let serial = &cert.tbs_certificate.serial;
    for entry in crl.iter_revoked_certificates() {
        if entry.serial() != serial {
            continue;
        }
        let mut invalidity = None;
        for ext in entry.extensions() {
            match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::InvalidityDate(t) => {
                    invalidity = Some(t.to_datetime())
                }
                _ if ext.critical => {
                    return Err(format!(
                        "the CRL entry has an unsupported critical extension {}",
                        ext.oid.to_id_string()
                    ))
                }
                _ => {}
            }
        }
        if let (Some(signed), Some(invalid)) = (signing_time, invalidity) {
            if signed < invalid {
                // Signed before the key became invalid.
                continue;
            }
        }
        return Ok(Some(format!(
            "revoked at {}",
            format_rfc3339(entry.revocation_date.to_datetime())
        )));
    }
    Ok(None)
}

/// OCSP requests and responses (RFC 6960).
mod ocsp {
    use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};
    use der::asn1::{Null, OctetString};
    use der::oid::ObjectIdentifier;
    use der::{Any, Decode as _, Encode as _};
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::AlgorithmIdentifierOwned;
    use x509_ocsp::{
        BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus,
        Request, ResponderId, TbsRequest, Version,
    };
    use x509_parser::prelude::{FromDer as _, X509Certificate};

    use crate::chain::{cert_signature_scheme, verify_cert_signature, verify_signature};
    use crate::{format_rfc3339, Instant};

    const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    const ID_PKIX_OCSP_BASIC: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
    const ID_KP_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";

    pub(super) enum Status {
        Good,
        Revoked(String),
        Unknown,
    }

    fn sha1(bytes: &[u8]) -> Vec<u8> {
        digest(&SHA1_FOR_LEGACY_USE_ONLY, bytes).as_ref().to_vec()
    }

    /// The certificate's ID (SHA-1 hashes of the issuer's name and key, as RFC 5019 asks)
    /// and the DER request for it.
    pub(super) fn request(
        cert: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
    ) -> Result<(CertId, Vec<u8>), String> {
        let e = |e: der::Error| format!("cannot build the OCSP request: {e}");
        let cert_id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: SHA1,
                parameters: Some(Any::from(Null)),
            },
            issuer_name_hash: OctetString::new(sha1(issuer.subject().as_raw())).map_err(e)?,
            issuer_key_hash: OctetString::new(sha1(&issuer.public_key().subject_public_key.data))
                .map_err(e)?,
            serial_number: SerialNumber::new(cert.tbs_certificate.raw_serial()).map_err(e)?,
        };
        let request = OcspRequest {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: cert_id.clone(),
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        };
        Ok((cert_id, request.to_der().map_err(e)?))
    }

    fn instant(t: &x509_ocsp::OcspGeneralizedTime) -> Instant {
        let secs = i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        Instant::from_unix_timestamp(secs).unwrap_or(Instant::UNIX_EPOCH)
    }

    /// Validates a DER `OCSPResponse` for `cert_id`: a successful basic response signed by the
    /// issuer or by a responder the issuer delegated to (id-kp-OCSPSigning), current at `at`.
    pub(super) fn check_response(
        der: &[u8],
        cert_id: &CertId,
        issuer: &X509Certificate<'_>,
        at: Instant,
        signing_time: Option<Instant>,
    ) -> Result<Status, String> {
        if der.len() > super::MAX_OCSP_RESPONSE_BYTES {
            return Err(format!(
                "the OCSP response is {} bytes, too large",
                der.len()
            ));
        }
        let response =
            OcspResponse::from_der(der).map_err(|e| format!("not a DER OCSP response: {e}"))?;
        if response.response_status != OcspResponseStatus::Successful {
            return Err(format!(
                "the responder answered {:?}",
                response.response_status
            ));
        }
        let bytes = response
            .response_bytes
            .ok_or("the OCSP response has no response bytes")?;
        if bytes.response_type != ID_PKIX_OCSP_BASIC {
            return Err(format!(
                "unsupported OCSP response type {}",
                bytes.response_type
            ));
        }
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
            .map_err(|e| format!("not a DER basic OCSP response: {e}"))?;

        // The signature, by the issuer or its delegated responder.
        let tbs = basic
            .tbs_response_data
            .to_der()
            .map_err(|e| e.to_string())?;
        let alg_der = basic
            .signature_algorithm
            .to_der()
            .map_err(|e| e.to_string())?;
        let (_, alg) = x509_parser::x509::AlgorithmIdentifier::from_der(&alg_der)
            .map_err(|e| format!("bad signature algorithm: {e}"))?;
        let (scheme, hash) = cert_signature_scheme(&alg)?;
        let signature = basic
            .signature
            .as_bytes()
            .ok_or("the OCSP signature is not whole bytes")?;
        let responder = &basic.tbs_response_data.responder_id;
        let is_responder = |c: &X509Certificate<'_>| match responder {
            ResponderId::ByName(name) => name
                .to_der()
                .is_ok_and(|n| n.as_slice() == c.subject().as_raw()),
            ResponderId::ByKey(hash) => {
                hash.as_bytes() == sha1(&c.public_key().subject_public_key.data).as_slice()
            }
        };
        let delegated: Vec<Vec<u8>> = basic
            .certs
            .iter()
            .flatten()
            .filter_map(|c| c.to_der().ok())
            .collect();
        let mut signed = false;
        if is_responder(issuer) {
            verify_signature(issuer.public_key(), scheme, hash, &tbs, signature)
                .map_err(|e| format!("the OCSP response signature is invalid: {e}"))?;
            signed = true;
        } else {
            for der in &delegated {
                let Ok((_, c)) = X509Certificate::from_der(der) else {
                    continue;
                };
                if !is_responder(&c) {
                    continue;
                }
                let eku_ok = matches!(c.extended_key_usage(), Ok(Some(eku))
                    if eku.value.other.iter().any(|o| o.to_id_string() == ID_KP_OCSP_SIGNING)
                        || eku.value.ocsp_signing);
                let valid = at >= c.validity().not_before.to_datetime()
                    && at <= c.validity().not_after.to_datetime();
                if !eku_ok || !valid {
                    return Err(
                        "the OCSP responder certificate is not a current OCSP signing certificate"
                            .to_owned(),
                    );
                }
                if c.issuer().as_raw() != issuer.subject().as_raw()
                    || verify_cert_signature(&c, issuer.public_key()).is_err()
                {
                    return Err(
                        "the OCSP responder certificate is not issued by the certificate's issuer"
                            .to_owned(),
                    );
                }
                verify_signature(c.public_key(), scheme, hash, &tbs, signature)
                    .map_err(|e| format!("the OCSP response signature is invalid: {e}"))?;
                signed = true;
                break;
            }
        }
        if !signed {
            return Err(
                "the OCSP response is signed neither by the issuer nor by a responder it delegated to"
                    .to_owned(),
            );
        }

        let single = basic
            .tbs_response_data
            .responses
            .iter()
            .find(|r| {
                r.cert_id.hash_algorithm.oid == cert_id.hash_algorithm.oid
                    && r.cert_id.issuer_name_hash == cert_id.issuer_name_hash
                    && r.cert_id.issuer_key_hash == cert_id.issuer_key_hash
                    && r.cert_id.serial_number == cert_id.serial_number
            })
            .ok_or("the OCSP response is not about the certificate")?;
        let this_update = instant(&single.this_update);
        if at < this_update {
            return Err(format!(
                "the OCSP response is not valid yet: thisUpdate is {}",
                format_rfc3339(this_update)
            ));
        }
        if let Some(next) = &single.next_update {
            let next = instant(next);
            if at > next {
                return Err(format!(
                    "the OCSP response expired: nextUpdate was {}",
                    format_rfc3339(next)
                ));
            }
        }
        Ok(match &single.cert_status {
            CertStatus::Good(_) => Status::Good,
            CertStatus::Revoked(info) => {
                let when = instant(&info.revocation_time);
                if signing_time.is_some_and(|t| t < when) {
                    // Signed before the revocation.
                    Status::Good
                } else {
                    Status::Revoked(format!("revoked at {}", format_rfc3339(when)))
                }
            }
            CertStatus::Unknown(_) => Status::Unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use time::macros::datetime;

    use super::*;
    use crate::test_support::vector;

    const LEAF_URL: &str = "http://localhost:10086/leaf.crl";
    const INTERMEDIATE_URL: &str = "http://localhost:10086/intermediate.crl";

    /// Serves CRLs from a map; anything else fails. Records rejected CRLs.
    #[derive(Debug, Default)]
    struct MapSource(HashMap<String, Vec<u8>>, std::sync::Mutex<Vec<String>>);

    impl RevocationSource for MapSource {
        fn crl_rejected(&self, url: &str) {
            self.1.lock().unwrap().push(url.to_owned());
        }
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
            self.0
                .get(url)
                .cloned()
                .ok_or_else(|| format!("connection refused ({url})"))
        }
        fn fetch_ocsp(&self, url: &str, _request_der: &[u8]) -> Result<Vec<u8>, String> {
            Err(format!("connection refused ({url})"))
        }
    }

    fn crl(name: &str) -> Vec<u8> {
        std::fs::read(vector(&format!(
            "notation/test/e2e/testdata/config/crl/{name}"
        )))
        .expect("read CRL vector")
    }

    fn chain() -> Vec<Certificate> {
        let pem = std::fs::read(vector(
            "notation/test/e2e/testdata/config/crl/certchain_with_crl.pem",
        ))
        .expect("read chain");
        let chain = Certificate::parse_pem(&pem).expect("parse chain");
        assert_eq!(chain.len(), 3);
        chain
    }

    fn source(leaf: &str, intermediate: &str) -> MapSource {
        let mut map = HashMap::new();
        map.insert(LEAF_URL.to_owned(), crl(leaf));
        map.insert(INTERMEDIATE_URL.to_owned(), crl(intermediate));
        MapSource(map, Default::default())
    }

    /// Inside the CRLs' validity (2024-11-11 .. 2124-10-18), after leaf_expired.crl's.
    const AT: Instant = datetime!(2025-06-01 00:00 UTC);

    #[test]
    fn good_crls_are_ok() {
        let result = check_chain(&chain(), &source("leaf.crl", "intermediate.crl"), AT, None);
        assert_eq!(result, RevocationResult::Ok);
    }

    #[test]
    fn revoked_leaf() {
        let result = check_chain(
            &chain(),
            &source("leaf_revoked.crl", "intermediate.crl"),
            AT,
            None,
        );
        let RevocationResult::Revoked { subject, detail } = result else {
            panic!("expected revoked, got {result:?}")
        };
        assert!(subject.contains("CN=LeafCert"), "{subject}");
        assert!(detail.contains(LEAF_URL), "{detail}");
        assert!(detail.contains("2024-11-11T05:30:52Z"), "{detail}");
    }

    #[test]
    fn revoked_intermediate() {
        let result = check_chain(
            &chain(),
            &source("leaf.crl", "intermediate_revoked.crl"),
            AT,
            None,
        );
        let RevocationResult::Revoked { subject, .. } = result else {
            panic!("expected revoked, got {result:?}")
        };
        assert!(subject.contains("CN=IntermediateCA"), "{subject}");
    }

    #[test]
    fn revoked_wins_over_unknown() {
        let mut src = source("leaf_expired.crl", "intermediate_revoked.crl");
        src.0.remove(LEAF_URL);
        let result = check_chain(&chain(), &src, AT, None);
        assert!(
            matches!(result, RevocationResult::Revoked { .. }),
            "{result:?}"
        );
    }

    #[test]
    fn expired_crl_vector_is_unknown() {
        // leaf_expired.crl (nextUpdate 2023-12-25) was signed by an earlier IntermediateCA key
        // than the one in certchain_with_crl.pem: unknown either way, as in notation-go.
        let result = check_chain(
            &chain(),
            &source("leaf_expired.crl", "intermediate.crl"),
            AT,
            None,
        );
        let RevocationResult::Unknown { subject, .. } = result else {
            panic!("expected unknown, got {result:?}")
        };
        assert!(subject.contains("CN=LeafCert"), "{subject}");
    }

    #[test]
    fn expired_crl_is_unknown() {
        use signet_testkit::{KeyKind, LeafOptions, TestCa};
        let ca = TestCa::new("Root", KeyKind::P256);
        let mut options = LeafOptions::new("Leaf", KeyKind::P256);
        options.crl_url = Some("http://crl.test/root.crl".into());
        let chain = testkit_chain(&ca.issue(&options));
        let mut src = MapSource::default();
        src.0.insert(
            "http://crl.test/root.crl".into(),
            ca.crl(
                &[],
                datetime!(2023-12-24 08:15:42 UTC),
                datetime!(2023-12-25 08:15:42 UTC),
            ),
        );
        let result = check_chain(&chain, &src, AT, None);
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("expired") && reason.contains("2023-12-25T08:15:42Z")),
            "{result:?}"
        );
        // Within its validity the same CRL is fine.
        let result = check_chain(&chain, &src, datetime!(2023-12-24 12:00 UTC), None);
        assert_eq!(result, RevocationResult::Ok);
    }

    fn testkit_chain(signer: &signet_testkit::TestSigner) -> Vec<Certificate> {
        signer
            .chain
            .iter()
            .map(|d| Certificate::from_der(d.clone()).unwrap())
            .collect()
    }

    #[test]
    fn crl_not_yet_valid_is_unknown() {
        let result = check_chain(
            &chain(),
            &source("leaf.crl", "intermediate.crl"),
            datetime!(2024-11-01 00:00 UTC),
            None,
        );
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("not valid yet")),
            "{result:?}"
        );
    }

    #[test]
    fn fetch_failure_is_unknown() {
        let mut src = source("leaf.crl", "intermediate.crl");
        src.0.remove(INTERMEDIATE_URL);
        let result = check_chain(&chain(), &src, AT, None);
        let RevocationResult::Unknown { subject, reason } = result else {
            panic!("expected unknown, got {result:?}")
        };
        assert!(subject.contains("CN=IntermediateCA"), "{subject}");
        assert!(reason.contains("connection refused"), "{reason}");
        // The intermediate names an OCSP responder; its failure is reported too.
        assert!(reason.contains("OCSP"), "{reason}");
    }

    #[test]
    fn bad_signature_is_unknown() {
        let mut src = source("leaf.crl", "intermediate.crl");
        let leaf = src.0.get_mut(LEAF_URL).unwrap();
        let last = leaf.len() - 1;
        leaf[last] ^= 0x01;
        let result = check_chain(&chain(), &src, AT, None);
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("not signed by")),
            "{result:?}"
        );
        assert_eq!(*src.1.lock().unwrap(), vec![LEAF_URL.to_owned()]);
    }

    #[test]
    fn crl_of_another_issuer_is_unknown() {
        // The root's CRL served for the leaf: wrong issuer.
        let result = check_chain(
            &chain(),
            &source("intermediate.crl", "intermediate.crl"),
            AT,
            None,
        );
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("issued by")),
            "{result:?}"
        );
    }

    #[test]
    fn garbage_and_oversized_crls_are_unknown() {
        let mut src = source("leaf.crl", "intermediate.crl");
        src.0.insert(LEAF_URL.to_owned(), b"not a crl".to_vec());
        let result = check_chain(&chain(), &src, AT, None);
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("not a DER CRL")),
            "{result:?}"
        );
        src.0
            .insert(LEAF_URL.to_owned(), vec![0; MAX_CRL_BYTES + 1]);
        let result = check_chain(&chain(), &src, AT, None);
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("limit")),
            "{result:?}"
        );
    }

    #[test]
    fn non_revocable_chain_is_ok() {
        let ca = signet_testkit::TestCa::new("Root", signet_testkit::KeyKind::P256);
        let signer = ca.issue(&signet_testkit::LeafOptions::new(
            "Leaf",
            signet_testkit::KeyKind::P256,
        ));
        let chain: Vec<Certificate> = signer
            .chain
            .iter()
            .map(|d| Certificate::from_der(d.clone()).unwrap())
            .collect();
        assert!(!is_revocable(&chain));
        assert_eq!(
            check_chain(&chain, &MapSource::default(), AT, None),
            RevocationResult::Ok
        );
        assert!(is_revocable(&self::chain()));
    }

    #[test]
    fn testkit_crl_revokes_leaf() {
        use signet_testkit::{KeyKind, LeafOptions, TestCa};
        let ca = TestCa::new("Root", KeyKind::P384);
        let mut options = LeafOptions::new("Leaf", KeyKind::P256);
        options.crl_url = Some("http://crl.test/root.crl".into());
        let signer = ca.issue(&options);
        let chain: Vec<Certificate> = signer
            .chain
            .iter()
            .map(|d| Certificate::from_der(d.clone()).unwrap())
            .collect();
        let this = datetime!(2025-01-01 00:00 UTC);
        let next = datetime!(2026-01-01 00:00 UTC);
        let mut src = MapSource::default();
        src.0
            .insert("http://crl.test/root.crl".into(), ca.crl(&[], this, next));
        assert_eq!(check_chain(&chain, &src, AT, None), RevocationResult::Ok);
        src.0.insert(
            "http://crl.test/root.crl".into(),
            ca.crl(&[&signer.chain[0]], this, next),
        );
        assert!(matches!(
            check_chain(&chain, &src, AT, None),
            RevocationResult::Revoked { .. }
        ));
        // Another CA's CRL (same name, other key) does not verify.
        let other = TestCa::new("Root", KeyKind::P384);
        src.0.insert(
            "http://crl.test/root.crl".into(),
            other.crl(&[], this, next),
        );
        assert!(
            matches!(&check_chain(&chain, &src, AT, None), RevocationResult::Unknown { reason, .. } if reason.contains("not signed by")),
        );
    }

    /// An OCSP responder answering with the CA's response (`status`, or down), and an
    /// optional CRL.
    #[derive(Debug)]
    struct Responder<'a> {
        ca: &'a signet_testkit::TestCa,
        status: Option<signet_testkit::OcspStatus>,
        next_update: Option<Instant>,
        crl: Option<Vec<u8>>,
    }

    impl RevocationSource for Responder<'_> {
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
            self.crl
                .clone()
                .ok_or_else(|| format!("connection refused ({url})"))
        }
        fn fetch_ocsp(&self, url: &str, request_der: &[u8]) -> Result<Vec<u8>, String> {
            assert_eq!(url, "http://ocsp.test");
            let status = self
                .status
                .ok_or_else(|| format!("connection refused ({url})"))?;
            Ok(self.ca.ocsp_response(
                request_der,
                status,
                datetime!(2025-05-31 00:00 UTC),
                self.next_update,
            ))
        }
    }

    fn ocsp_chain(
        ca: &signet_testkit::TestCa,
        crl: bool,
    ) -> (signet_testkit::TestSigner, Vec<Certificate>) {
        use signet_testkit::{KeyKind, LeafOptions};
        let mut options = LeafOptions::new("Leaf", KeyKind::P256);
        options.ocsp_url = Some("http://ocsp.test".into());
        if crl {
            options.crl_url = Some("http://crl.test/root.crl".into());
        }
        let signer = ca.issue(&options);
        let chain = testkit_chain(&signer);
        (signer, chain)
    }

    #[test]
    fn ocsp() {
        use signet_testkit::{KeyKind, OcspStatus, TestCa};
        let ca = TestCa::new("Root", KeyKind::P256);
        let (_, chain) = ocsp_chain(&ca, false);
        assert!(is_revocable(&chain));
        let next = Some(datetime!(2025-06-07 00:00 UTC));
        let check = |status, next_update, signing_time| {
            let source = Responder {
                ca: &ca,
                status,
                next_update,
                crl: None,
            };
            check_chain(&chain, &source, AT, signing_time)
        };

        assert_eq!(
            check(Some(OcspStatus::Good), next, None),
            RevocationResult::Ok
        );
        assert_eq!(
            check(Some(OcspStatus::Good), None, None),
            RevocationResult::Ok
        );

        let revoked_at = datetime!(2025-05-01 00:00 UTC);
        let result = check(Some(OcspStatus::Revoked(revoked_at)), next, None);
        assert!(
            matches!(&result, RevocationResult::Revoked { subject, detail }
                if subject.contains("CN=Leaf") && detail.contains("OCSP http://ocsp.test") && detail.contains("2025-05-01T00:00:00Z")),
            "{result:?}"
        );
        // A signing-authority signature made before the revocation stays good.
        assert_eq!(
            check(
                Some(OcspStatus::Revoked(revoked_at)),
                next,
                Some(datetime!(2025-04-01 00:00 UTC))
            ),
            RevocationResult::Ok
        );
        assert!(matches!(
            check(
                Some(OcspStatus::Revoked(revoked_at)),
                next,
                Some(datetime!(2025-05-02 00:00 UTC))
            ),
            RevocationResult::Revoked { .. }
        ));

        let unknown = |r: RevocationResult, what: &str| match r {
            RevocationResult::Unknown { reason, .. } => {
                assert!(reason.contains(what), "{reason:?} lacks {what:?}")
            }
            other => panic!("expected unknown ({what}), got {other:?}"),
        };
        unknown(
            check(Some(OcspStatus::Unknown), next, None),
            "does not know",
        );
        unknown(
            check(
                Some(OcspStatus::Good),
                Some(datetime!(2025-05-31 12:00 UTC)),
                None,
            ),
            "expired",
        );
        unknown(check(None, next, None), "connection refused");

        // Signed by another key under the issuer's name.
        let impostor = TestCa::new("Root", KeyKind::P256);
        let source = Responder {
            ca: &impostor,
            status: Some(OcspStatus::Good),
            next_update: next,
            crl: None,
        };
        unknown(
            check_chain(&chain, &source, AT, None),
            "signature is invalid",
        );
        // Signed by an unrelated responder.
        let other = TestCa::new("Other", KeyKind::P256);
        let source = Responder {
            ca: &other,
            status: Some(OcspStatus::Good),
            next_update: next,
            crl: None,
        };
        unknown(check_chain(&chain, &source, AT, None), "signed neither");
    }

    #[test]
    fn ocsp_failure_falls_back_to_crl() {
        use signet_testkit::{KeyKind, OcspStatus, TestCa};
        let ca = TestCa::new("Root", KeyKind::P256);
        let (signer, chain) = ocsp_chain(&ca, true);
        let (this, next) = (
            datetime!(2025-05-01 00:00 UTC),
            datetime!(2025-07-01 00:00 UTC),
        );
        let source = |status, crl| Responder {
            ca: &ca,
            status,
            next_update: None,
            crl,
        };
        // OCSP answers: the CRL is not consulted.
        assert_eq!(
            check_chain(&chain, &source(Some(OcspStatus::Good), None), AT, None),
            RevocationResult::Ok
        );
        // Responder down: the CRL decides.
        assert_eq!(
            check_chain(
                &chain,
                &source(None, Some(ca.crl(&[], this, next))),
                AT,
                None
            ),
            RevocationResult::Ok
        );
        let revoked = ca.crl(&[&signer.chain[0]], this, next);
        assert!(matches!(
            check_chain(&chain, &source(None, Some(revoked)), AT, None),
            RevocationResult::Revoked { .. }
        ));
        // Both fail: unknown, with both reasons.
        let result = check_chain(&chain, &source(None, None), AT, None);
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("OCSP") && reason.contains("falling back to CRL")),
            "{result:?}"
        );
    }

    /// An OCSP responder answering through a delegated responder certificate.
    #[derive(Debug)]
    struct Delegated<'a>(&'a signet_testkit::TestCa);

    impl RevocationSource for Delegated<'_> {
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
            Err(format!("connection refused ({url})"))
        }
        fn fetch_ocsp(&self, _url: &str, request_der: &[u8]) -> Result<Vec<u8>, String> {
            Ok(self.0.delegated_ocsp_response(
                request_der,
                signet_testkit::OcspStatus::Revoked(datetime!(2025-05-01 00:00 UTC)),
                datetime!(2025-05-31 00:00 UTC),
                None,
            ))
        }
    }

    #[test]
    fn delegated_ocsp_responder() {
        use signet_testkit::{KeyKind, TestCa};
        let ca = TestCa::new("Root", KeyKind::P256);
        let (_, chain) = ocsp_chain(&ca, false);
        let responder = ca.issue_ocsp_responder("OCSP Responder", true);
        let result = check_chain(&chain, &Delegated(&responder), AT, None);
        assert!(
            matches!(result, RevocationResult::Revoked { .. }),
            "{result:?}"
        );
        // Without id-kp-OCSPSigning it may not answer for the CA.
        let responder = ca.issue_ocsp_responder("OCSP Responder", false);
        let result = check_chain(&chain, &Delegated(&responder), AT, None);
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("not a current OCSP signing")),
            "{result:?}"
        );
        // Issued by another CA.
        let other = TestCa::new("Other", KeyKind::P256);
        let responder = other.issue_ocsp_responder("OCSP Responder", true);
        let result = check_chain(&chain, &Delegated(&responder), AT, None);
        assert!(
            matches!(&result, RevocationResult::Unknown { reason, .. } if reason.contains("not issued by")),
            "{result:?}"
        );
    }

    #[test]
    fn delta_crls_are_unknown() {
        // notation-core-go's certificate pointing at a delta CRL; issuer is irrelevant: the
        // status is unknown before anything is fetched.
        let der = std::fs::read(vector(
            "notation-core-go/revocation/crl/testdata/certificateWithDeltaCRL.cer",
        ))
        .expect("read certificate");
        let cert = Certificate::parse_pem_or_der(&der).expect("parse certificate")[0].clone();
        let issuer = chain().pop().unwrap();
        let status = cert_status(&cert, &issuer, &MapSource::default(), AT, None);
        assert!(
            matches!(&status, CertStatus::Unknown(reason) if reason.contains("delta CRLs")),
            "{status:?}"
        );
    }
}
