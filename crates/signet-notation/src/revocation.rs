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
#[path = "revocation_tests.rs"]
mod tests;
