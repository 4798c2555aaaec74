//! Notation's certificate-chain rules (code signing and timestamping).
//!
//! Follows notation-core-go's `x509` package (`ValidateCodeSigningCertChain`,
//! `ValidateTimestampingCertChain`): the chain is ordered leaf first and ends in a self-signed
//! root; every certificate is issued by (name match and signature verified with) the next one;
//! no certificate but the root is self-signed; CA certificates carry basic constraints with
//! `cA` set, a path length that allows the certificates below them and `keyCertSign`; the leaf
//! is not a CA, has `digitalSignature` (and no other usage but `nonRepudiation`), the extended
//! key usages of its kind and a supported key (RSA 2048/3072/4096, EC P-256/P-384/P-521).
//!
//! Signet is stricter than notation-go on one point: a code-signing leaf with
//! `anyExtendedKeyUsage` is rejected.

use aws_lc_rs::signature::{self as sig, VerificationAlgorithm};
use x509_parser::prelude::{
    AlgorithmIdentifier, SubjectPublicKeyInfo, X509Certificate, X509Extension, X509Version,
};

use crate::cert::Certificate;
use crate::{Instant, MAX_CHAIN_LENGTH};

const OID_KEY_USAGE: &str = "2.5.29.15";

/// Which kind of chain is validated; decides the leaf's extended key usage rules and whether
/// key usage must be critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    /// A signing certificate chain of a Notation signature.
    CodeSigning,
    /// The certificate chain of a timestamp authority (RFC 3161 token signer).
    Timestamping,
}

impl std::fmt::Display for ChainKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChainKind::CodeSigning => "code-signing",
            ChainKind::Timestamping => "timestamping",
        })
    }
}

/// Why a certificate chain breaks Notation's rules. Every variant that concerns one
/// certificate names it by its position in the chain (0 = leaf) and its subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("certificate chain must contain at least one certificate")]
    Empty,
    #[error("certificate chain has {len} certificates; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("certificate #{index} ({subject}): malformed extension: {reason}")]
    Malformed {
        index: usize,
        subject: String,
        reason: String,
    },
    #[error(
        "certificate #{index} ({subject}) was not valid at signing time {at}; it is valid from {not_before} to {not_after}"
    )]
    InvalidAtSigningTime {
        index: usize,
        subject: String,
        at: Instant,
        not_before: Instant,
        not_after: Instant,
    },
    #[error("invalid self-signed certificate #{index} ({subject}): {reason}")]
    InvalidSelfSigned {
        index: usize,
        subject: String,
        reason: String,
    },
    #[error(
        "root certificate #{index} ({subject}) is invalid or not self-signed; a chain must end with a valid self-signed root certificate: {reason}"
    )]
    RootNotSelfSigned {
        index: usize,
        subject: String,
        reason: String,
    },
    #[error("leaf certificate #0 ({subject}) is self-signed; a chain must not contain a self-signed leaf certificate")]
    SelfSignedLeaf { subject: String },
    #[error(
        "intermediate certificate #{index} ({subject}) is self-signed; a chain must not contain a self-signed intermediate certificate"
    )]
    SelfSignedIntermediate { index: usize, subject: String },
    #[error("certificate #{index} ({subject}) is not issued by certificate #{} ({issuer}): {reason}", index + 1)]
    NotIssuedBy {
        index: usize,
        subject: String,
        issuer: String,
        reason: String,
    },
    #[error("certificate #{index} ({subject}): basic constraints must be present with the ca field set to true")]
    CaBasicConstraints { index: usize, subject: String },
    #[error("certificate #{index} ({subject}): expected path length of {expected} but certificate has path length {actual}")]
    PathLength {
        index: usize,
        subject: String,
        expected: usize,
        actual: u32,
    },
    #[error("certificate #{index} ({subject}): a leaf certificate must not be a CA (basic constraints ca field must be false)")]
    LeafIsCa { index: usize, subject: String },
    #[error("certificate #{index} ({subject}): key usage extension must be present")]
    KeyUsageMissing { index: usize, subject: String },
    #[error("certificate #{index} ({subject}): key usage extension must be marked critical")]
    KeyUsageNotCritical { index: usize, subject: String },
    #[error("certificate #{index} ({subject}): key usage must have keyCertSign set")]
    KeyUsageNoCertSign { index: usize, subject: String },
    #[error("certificate #{index} ({subject}): key usage must have digitalSignature set")]
    KeyUsageNoDigitalSignature { index: usize, subject: String },
    #[error("certificate #{index} ({subject}): key usage must be digitalSignature only, but found {found}")]
    KeyUsageDisallowed {
        index: usize,
        subject: String,
        found: String,
    },
    #[error("certificate #{index} ({subject}): extended key usage must not contain {eku}")]
    ExtKeyUsageForbidden {
        index: usize,
        subject: String,
        eku: &'static str,
    },
    #[error("timestamp signing certificate #{index} ({subject}) must have and only have timeStamping as extended key usage")]
    TimestampingEku { index: usize, subject: String },
    #[error("timestamp signing certificate #{index} ({subject}) must have its extended key usage extension marked critical")]
    TimestampingEkuNotCritical { index: usize, subject: String },
    #[error("certificate #{index} ({subject}): {reason}")]
    UnsupportedKey {
        index: usize,
        subject: String,
        reason: String,
    },
}

/// Validates an ordered (leaf first) code-signing chain; with `signing_time`, every
/// certificate must be valid at that instant.
pub fn validate_code_signing_chain(
    chain: &[Certificate],
    signing_time: Option<Instant>,
) -> Result<(), ChainError> {
    validate_chain(chain, signing_time, ChainKind::CodeSigning)
}

/// Validates an ordered (leaf first) timestamping (TSA) chain; with `signing_time` (the
/// timestamp's time), every certificate must be valid at that instant.
pub fn validate_timestamping_chain(
    chain: &[Certificate],
    signing_time: Option<Instant>,
) -> Result<(), ChainError> {
    validate_chain(chain, signing_time, ChainKind::Timestamping)
}

/// Validates an ordered chain of the given kind.
pub fn validate_chain(
    chain: &[Certificate],
    signing_time: Option<Instant>,
    kind: ChainKind,
) -> Result<(), ChainError> {
    if chain.is_empty() {
        return Err(ChainError::Empty);
    }
    if chain.len() > MAX_CHAIN_LENGTH {
        return Err(ChainError::TooLong {
            len: chain.len(),
            max: MAX_CHAIN_LENGTH,
        });
    }
    let parsed: Vec<X509Certificate<'_>> = chain.iter().map(Certificate::x509).collect();

    if let [cert] = parsed.as_slice() {
        let subject = cert.subject().to_string();
        if let Err(reason) = verify_cert_signature(cert, cert.public_key()) {
            return Err(ChainError::InvalidSelfSigned {
                index: 0,
                subject,
                reason,
            });
        }
        if cert.subject().as_raw() != cert.issuer().as_raw() {
            return Err(ChainError::InvalidSelfSigned {
                index: 0,
                subject,
                reason: format!("issuer ({}) and subject are not the same", cert.issuer()),
            });
        }
        check_signing_time(cert, 0, signing_time)?;
        return validate_leaf(cert, 0, kind);
    }

    let last = parsed.len() - 1;
    for (i, cert) in parsed.iter().enumerate() {
        check_signing_time(cert, i, signing_time)?;
        let subject = || cert.subject().to_string();
        match parsed.get(i + 1) {
            None => {
                if let Err(reason) = is_issued_by(cert, cert) {
                    return Err(ChainError::RootNotSelfSigned {
                        index: i,
                        subject: subject(),
                        reason,
                    });
                }
            }
            Some(parent) => {
                if is_issued_by(cert, cert).is_ok() {
                    return Err(if i == 0 {
                        ChainError::SelfSignedLeaf { subject: subject() }
                    } else {
                        ChainError::SelfSignedIntermediate {
                            index: i,
                            subject: subject(),
                        }
                    });
                }
                if let Err(reason) = is_issued_by(cert, parent) {
                    return Err(ChainError::NotIssuedBy {
                        index: i,
                        subject: subject(),
                        issuer: parent.subject().to_string(),
                        reason,
                    });
                }
            }
        }
        if i == 0 {
            validate_leaf(cert, i, kind)?;
        } else {
            validate_ca(cert, i, i - 1, kind)?;
        }
    }
    debug_assert!(last >= 1);
    Ok(())
}

fn check_signing_time(
    cert: &X509Certificate<'_>,
    index: usize,
    signing_time: Option<Instant>,
) -> Result<(), ChainError> {
    if let Some(at) = signing_time {
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        if at < not_before || at > not_after {
            return Err(ChainError::InvalidAtSigningTime {
                index,
                subject: cert.subject().to_string(),
                at,
                not_before,
                not_after,
            });
        }
    }
    Ok(())
}

/// Go's `isIssuedBy`: `child.CheckSignatureFrom(parent)` and the names chain.
pub(crate) fn is_issued_by(
    child: &X509Certificate<'_>,
    parent: &X509Certificate<'_>,
) -> Result<(), String> {
    check_signature_from(child, parent)?;
    if parent.subject().as_raw() != child.issuer().as_raw() {
        return Err(format!(
            "issuer name ({}) does not match the subject of the issuing certificate ({})",
            child.issuer(),
            parent.subject()
        ));
    }
    Ok(())
}

/// Go's `CheckSignatureFrom`: the parent must be allowed to sign certificates, then the
/// signature must verify with its key.
pub(crate) fn check_signature_from(
    child: &X509Certificate<'_>,
    parent: &X509Certificate<'_>,
) -> Result<(), String> {
    let bc = parent.basic_constraints().map_err(|e| e.to_string())?;
    let violation = match bc {
        None => parent.version() == X509Version::V3,
        Some(bc) => !bc.value.ca,
    };
    let ku = parent.key_usage().map_err(|e| e.to_string())?;
    let ku_forbids = ku.is_some_and(|ku| ku.value.flags != 0 && !ku.value.key_cert_sign());
    if violation || ku_forbids {
        return Err("parent certificate cannot sign this kind of certificate".into());
    }
    verify_cert_signature(child, parent.public_key())
}

/// Verifies `cert`'s signature with `key`.
pub(crate) fn verify_cert_signature(
    cert: &X509Certificate<'_>,
    key: &SubjectPublicKeyInfo<'_>,
) -> Result<(), String> {
    let (scheme, hash) = cert_signature_scheme(&cert.signature_algorithm)?;
    verify_signature(
        key,
        scheme,
        hash,
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data,
    )
}

/// Hash functions accepted in signatures.
pub(crate) use crate::descriptor::DigestAlgorithm as HashAlg;

/// Signature schemes accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigScheme {
    RsaPkcs1,
    RsaPss,
    Ecdsa,
    Ed25519,
}

/// Maps a certificate signature algorithm to (scheme, hash). SHA-1 and MD5 are refused, as
/// Go's `crypto/x509` does.
pub(crate) fn cert_signature_scheme(
    alg: &AlgorithmIdentifier<'_>,
) -> Result<(SigScheme, HashAlg), String> {
    let oid = alg.algorithm.to_id_string();
    Ok(match oid.as_str() {
        "1.2.840.113549.1.1.11" => (SigScheme::RsaPkcs1, HashAlg::Sha256),
        "1.2.840.113549.1.1.12" => (SigScheme::RsaPkcs1, HashAlg::Sha384),
        "1.2.840.113549.1.1.13" => (SigScheme::RsaPkcs1, HashAlg::Sha512),
        "1.2.840.10045.4.3.2" => (SigScheme::Ecdsa, HashAlg::Sha256),
        "1.2.840.10045.4.3.3" => (SigScheme::Ecdsa, HashAlg::Sha384),
        "1.2.840.10045.4.3.4" => (SigScheme::Ecdsa, HashAlg::Sha512),
        // Ed25519 has no separate hash; the value is unused.
        "1.3.101.112" => (SigScheme::Ed25519, HashAlg::Sha512),
        "1.2.840.113549.1.1.10" => {
            let params = alg
                .parameters
                .as_ref()
                .ok_or("RSASSA-PSS without parameters")?;
            let params =
                x509_parser::signature_algorithm::RsaSsaPssParams::try_from(params.clone())
                    .map_err(|e| format!("bad RSASSA-PSS parameters: {e}"))?;
            let hash = HashAlg::from_oid(&params.hash_algorithm_oid().to_id_string())
                .ok_or("unsupported RSASSA-PSS hash")?;
            (SigScheme::RsaPss, hash)
        }
        "1.2.840.113549.1.1.5" | "1.2.840.113549.1.1.4" | "1.2.840.10045.4.1" | "1.3.14.3.2.29" => {
            return Err(format!("insecure signature algorithm {oid}"));
        }
        _ => return Err(format!("unsupported signature algorithm {oid}")),
    })
}

/// The named curve of an EC key, if it is one.
fn ec_curve(spki: &SubjectPublicKeyInfo<'_>) -> Option<String> {
    if spki.algorithm.algorithm.to_id_string() != "1.2.840.10045.2.1" {
        return None;
    }
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
}

/// Verifies `signature` over `msg` with `key` under (scheme, hash).
pub(crate) fn verify_signature(
    key: &SubjectPublicKeyInfo<'_>,
    scheme: SigScheme,
    hash: HashAlg,
    msg: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key_oid = key.algorithm.algorithm.to_id_string();
    let alg: &'static dyn VerificationAlgorithm = match scheme {
        SigScheme::RsaPkcs1 | SigScheme::RsaPss => {
            if key_oid != "1.2.840.113549.1.1.1" && key_oid != "1.2.840.113549.1.1.10" {
                return Err(format!(
                    "signature scheme {scheme:?} needs an RSA key, found {key_oid}"
                ));
            }
            match (scheme, hash) {
                (SigScheme::RsaPkcs1, HashAlg::Sha256) => &sig::RSA_PKCS1_2048_8192_SHA256,
                (SigScheme::RsaPkcs1, HashAlg::Sha384) => &sig::RSA_PKCS1_2048_8192_SHA384,
                (SigScheme::RsaPkcs1, HashAlg::Sha512) => &sig::RSA_PKCS1_2048_8192_SHA512,
                (_, HashAlg::Sha256) => &sig::RSA_PSS_2048_8192_SHA256,
                (_, HashAlg::Sha384) => &sig::RSA_PSS_2048_8192_SHA384,
                (_, HashAlg::Sha512) => &sig::RSA_PSS_2048_8192_SHA512,
            }
        }
        SigScheme::Ecdsa => {
            let curve = ec_curve(key)
                .ok_or_else(|| format!("ECDSA signature needs an EC key, found {key_oid}"))?;
            match (curve.as_str(), hash) {
                ("1.2.840.10045.3.1.7", HashAlg::Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
                ("1.2.840.10045.3.1.7", HashAlg::Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
                ("1.2.840.10045.3.1.7", HashAlg::Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
                ("1.3.132.0.34", HashAlg::Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
                ("1.3.132.0.34", HashAlg::Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
                ("1.3.132.0.34", HashAlg::Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
                ("1.3.132.0.35", HashAlg::Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
                ("1.3.132.0.35", HashAlg::Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
                ("1.3.132.0.35", HashAlg::Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
                _ => return Err(format!("unsupported EC curve {curve}")),
            }
        }
        SigScheme::Ed25519 => {
            if key_oid != "1.3.101.112" {
                return Err(format!(
                    "Ed25519 signature needs an Ed25519 key, found {key_oid}"
                ));
            }
            &sig::ED25519
        }
    };
    sig::UnparsedPublicKey::new(alg, &key.subject_public_key.data)
        .verify(msg, signature)
        .map_err(|_| "signature verification error".to_string())
}

fn find_extension<'a, 'b>(
    cert: &'b X509Certificate<'a>,
    oid: &str,
) -> Option<&'b X509Extension<'a>> {
    cert.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
}

fn malformed(cert: &X509Certificate<'_>, index: usize, e: impl std::fmt::Display) -> ChainError {
    ChainError::Malformed {
        index,
        subject: cert.subject().to_string(),
        reason: e.to_string(),
    }
}

/// Key usage must be present; critical for code signing (notation-core-go does not require
/// it to be critical for timestamping chains).
fn key_usage_present(
    cert: &X509Certificate<'_>,
    index: usize,
    kind: ChainKind,
) -> Result<(), ChainError> {
    let subject = || cert.subject().to_string();
    match find_extension(cert, OID_KEY_USAGE) {
        None => Err(ChainError::KeyUsageMissing {
            index,
            subject: subject(),
        }),
        Some(ext) if !ext.critical && kind == ChainKind::CodeSigning => {
            Err(ChainError::KeyUsageNotCritical {
                index,
                subject: subject(),
            })
        }
        Some(_) => Ok(()),
    }
}

/// Rules for a CA certificate (index ≥ 1); `expected_path_len` is the number of CA
/// certificates below it in the chain.
pub(crate) fn validate_ca(
    cert: &X509Certificate<'_>,
    index: usize,
    expected_path_len: usize,
    kind: ChainKind,
) -> Result<(), ChainError> {
    let subject = || cert.subject().to_string();
    let bc = cert
        .basic_constraints()
        .map_err(|e| malformed(cert, index, e))?;
    let Some(bc) = bc.filter(|bc| bc.value.ca) else {
        return Err(ChainError::CaBasicConstraints {
            index,
            subject: subject(),
        });
    };
    if let Some(max) = bc.value.path_len_constraint {
        if usize::try_from(max).unwrap_or(usize::MAX) < expected_path_len {
            return Err(ChainError::PathLength {
                index,
                subject: subject(),
                expected: expected_path_len,
                actual: max,
            });
        }
    }
    key_usage_present(cert, index, kind)?;
    let ku = cert.key_usage().map_err(|e| malformed(cert, index, e))?;
    if !ku.is_some_and(|ku| ku.value.key_cert_sign()) {
        return Err(ChainError::KeyUsageNoCertSign {
            index,
            subject: subject(),
        });
    }
    Ok(())
}

/// Rules for the leaf certificate (index 0).
pub(crate) fn validate_leaf(
    cert: &X509Certificate<'_>,
    index: usize,
    kind: ChainKind,
) -> Result<(), ChainError> {
    let subject = || cert.subject().to_string();
    // Basic constraints: if present, cA must be false.
    let bc = cert
        .basic_constraints()
        .map_err(|e| malformed(cert, index, e))?;
    if bc.is_some_and(|bc| bc.value.ca) {
        return Err(ChainError::LeafIsCa {
            index,
            subject: subject(),
        });
    }
    // Key usage.
    key_usage_present(cert, index, kind)?;
    let ku = cert
        .key_usage()
        .map_err(|e| malformed(cert, index, e))?
        .map(|ku| *ku.value)
        .unwrap_or(x509_parser::extensions::KeyUsage { flags: 0 });
    if !ku.digital_signature() {
        return Err(ChainError::KeyUsageNoDigitalSignature {
            index,
            subject: subject(),
        });
    }
    let disallowed: Vec<&str> = [
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if !disallowed.is_empty() {
        return Err(ChainError::KeyUsageDisallowed {
            index,
            subject: subject(),
            found: disallowed.join(", "),
        });
    }
    // Extended key usage.
    let eku = cert
        .extended_key_usage()
        .map_err(|e| malformed(cert, index, e))?;
    match kind {
        ChainKind::Timestamping => {
            let only_ts = eku.as_ref().is_some_and(|e| {
                let e = e.value;
                e.time_stamping
                    && !e.any
                    && !e.server_auth
                    && !e.client_auth
                    && !e.code_signing
                    && !e.email_protection
                    && !e.ocsp_signing
                    && e.other.is_empty()
            });
            if !only_ts {
                return Err(ChainError::TimestampingEku {
                    index,
                    subject: subject(),
                });
            }
            if eku.is_some_and(|e| !e.critical) {
                return Err(ChainError::TimestampingEkuNotCritical {
                    index,
                    subject: subject(),
                });
            }
        }
        ChainKind::CodeSigning => {
            if let Some(e) = eku {
                let e = e.value;
                let forbidden = [
                    (e.any, "anyExtendedKeyUsage"),
                    (e.server_auth, "serverAuth"),
                    (e.client_auth, "clientAuth"),
                    (e.email_protection, "emailProtection"),
                    (e.time_stamping, "timeStamping"),
                    (e.ocsp_signing, "OCSPSigning"),
                ];
                if let Some((_, name)) = forbidden.into_iter().find(|(set, _)| *set) {
                    return Err(ChainError::ExtKeyUsageForbidden {
                        index,
                        subject: subject(),
                        eku: name,
                    });
                }
            }
        }
    }
    // Key type and size.
    check_key(cert.public_key()).map_err(|reason| ChainError::UnsupportedKey {
        index,
        subject: subject(),
        reason,
    })
}

/// RSA 2048/3072/4096 or EC P-256/P-384/P-521, as notation-core-go's `ExtractKeySpec`.
fn check_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(), String> {
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => {
            let parsed = spki
                .parsed()
                .map_err(|e| format!("bad RSA public key: {e}"))?;
            let x509_parser::public_key::PublicKey::RSA(rsa) = parsed else {
                return Err("bad RSA public key".into());
            };
            let bits = rsa_bits(rsa.modulus);
            match bits {
                2048 | 3072 | 4096 => Ok(()),
                _ => Err(format!("rsa key size {bits} bits is not supported")),
            }
        }
        "1.2.840.10045.2.1" => match ec_curve(spki).as_deref() {
            Some("1.2.840.10045.3.1.7" | "1.3.132.0.34" | "1.3.132.0.35") => Ok(()),
            Some("1.3.132.0.33") => Err("ecdsa key size 224 bits is not supported".into()),
            Some(other) => Err(format!("ecdsa curve {other} is not supported")),
            None => Err("ecdsa key without a named curve is not supported".into()),
        },
        _ => Err(format!("unsupported public key type {oid}")),
    }
}

/// Bit length of a big-endian unsigned integer.
fn rsa_bits(modulus: &[u8]) -> usize {
    let trimmed: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(p) => modulus.get(p..).unwrap_or_default(),
        None => return 0,
    };
    match trimmed.first() {
        Some(first) => (trimmed.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{cases, vector};
    use serde_json::Value;

    fn load(rel: &str) -> Certificate {
        let bytes = std::fs::read(vector(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
        let mut certs =
            Certificate::parse_pem_or_der(&bytes).unwrap_or_else(|e| panic!("parse {rel}: {e}"));
        assert_eq!(certs.len(), 1, "{rel} holds one certificate");
        certs.remove(0)
    }

    /// The number in `name(…N)` / `name(expectedPathLen=N)`.
    fn paren_number(test: &str) -> Option<usize> {
        let inner = test.split_once('(')?.1.split_once(')')?.0;
        inner.rsplit('=').next()?.trim().parse().ok()
    }

    fn signing_time(case: &Value) -> Option<Instant> {
        let from_inputs = ["signingTime", "signing_time"]
            .iter()
            .find_map(|k| case["inputs"][k].as_str().map(str::to_owned));
        let from_test = case["source"]["test"].as_str().and_then(|t| {
            let rest = t.split_once("signingTime=")?.1;
            Some(rest.split(')').next()?.to_owned())
        });
        from_inputs.or(from_test).map(|s| {
            Instant::parse(&s, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("bad signing time {s}: {e}"))
        })
    }

    /// Runs one case the way the upstream test named in `source.test` does.
    fn run_case(case: &Value) -> Result<(), ChainError> {
        let id = case["id"].as_str().unwrap_or_default();
        let test = case["source"]["test"].as_str().unwrap_or_default();
        let chain: Vec<Certificate> = case["inputs"]["chain"]
            .as_array()
            .expect("inputs.chain")
            .iter()
            .map(|p| load(p.as_str().expect("chain path")))
            .collect();
        let lower = test.to_ascii_lowercase();
        let kind = if lower.contains("timestamp") || id.contains("-tsa-") {
            ChainKind::Timestamping
        } else {
            ChainKind::CodeSigning
        };
        if lower.contains("cacertificate") {
            let n = paren_number(test).expect("expected path length in test name");
            assert_eq!(chain.len(), 1, "{id}");
            return validate_ca(&chain[0].x509(), 1, n, kind);
        }
        if lower.contains("leafcertificate") {
            assert_eq!(chain.len(), 1, "{id}");
            return validate_leaf(&chain[0].x509(), 0, kind);
        }
        validate_chain(&chain, signing_time(case), kind)
    }

    #[test]
    fn conformance_cert_chain_cases() {
        let all = cases("cert-chain");
        let mut failures = Vec::new();
        for case in &all {
            let id = case["id"].as_str().unwrap_or_default();
            let want = case["expected_signet"]["valid"]
                .as_bool()
                .expect("expected_signet.valid");
            let got = run_case(case);
            if got.is_ok() != want {
                failures.push(format!("{id}: expected valid={want}, got {got:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases disagree:\n{}",
            failures.len(),
            all.len(),
            failures.join("\n")
        );
        assert!(all.len() >= 32);
    }

    #[test]
    fn specific_errors() {
        let leaf = "notation-core-go/_extracted_inline/x509/codeSigningLeafPem.pem";
        let i2 = "notation-core-go/_extracted_inline/x509/intermediateCertPem2.pem";
        let i1 = "notation-core-go/_extracted_inline/x509/intermediateCertPem1.pem";
        let root = "notation-core-go/_extracted_inline/x509/rootCertPem.pem";
        let chain: Vec<_> = [leaf, i2, i1, root].iter().map(|p| load(p)).collect();
        assert_eq!(validate_code_signing_chain(&chain, None), Ok(()));
        // A code-signing chain is not a timestamping chain.
        assert!(matches!(
            validate_timestamping_chain(&chain, None),
            Err(ChainError::TimestampingEku { index: 0, .. })
        ));
        let misordered = vec![
            chain[0].clone(),
            chain[2].clone(),
            chain[1].clone(),
            chain[3].clone(),
        ];
        assert!(matches!(
            validate_code_signing_chain(&misordered, None),
            Err(ChainError::NotIssuedBy { index: 0, .. })
        ));
        let no_root = &chain[..3];
        assert!(matches!(
            validate_code_signing_chain(no_root, None),
            Err(ChainError::RootNotSelfSigned { index: 2, .. })
        ));
        assert_eq!(
            validate_code_signing_chain(&[], None),
            Err(ChainError::Empty)
        );
        let long: Vec<_> = std::iter::repeat_n(chain[3].clone(), MAX_CHAIN_LENGTH + 1).collect();
        assert!(matches!(
            validate_code_signing_chain(&long, None),
            Err(ChainError::TooLong { .. })
        ));
        let early = time::macros::datetime!(2021-07-07 20:48:42 UTC);
        assert!(matches!(
            validate_code_signing_chain(&chain, Some(early)),
            Err(ChainError::InvalidAtSigningTime { index: 0, .. })
        ));
        let inside = time::macros::datetime!(2025-06-01 00:00:00 UTC);
        assert_eq!(validate_code_signing_chain(&chain, Some(inside)), Ok(()));
    }

    #[test]
    fn rsa_bits_counts() {
        assert_eq!(rsa_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(rsa_bits(&[0x01, 0]), 9);
        assert_eq!(rsa_bits(&[]), 0);
        assert_eq!(rsa_bits(&[0, 0]), 0);
    }
}
