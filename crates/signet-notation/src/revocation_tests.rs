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
