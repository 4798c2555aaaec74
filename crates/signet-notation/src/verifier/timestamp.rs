//! The authentic-timestamp check: when the signing certificates must be valid, and when a
//! trusted TSA's timestamp stands in for "now".

use super::steps::{fail, rfc3339, trusted_certificates};
use super::{Check, Failure, TrustStores};
use crate::cert::Certificate;
use crate::envelope::{Envelope, SigningScheme};
use crate::policy::{Statement, VerifyTimestamp};
use crate::truststore::StoreType;
use crate::{ErrorCode, Instant};

pub(super) fn authentic_timestamp(
    envelope: &Envelope,
    statement: &Statement,
    stores: &TrustStores,
    at: Instant,
) -> Result<(), Failure> {
    let chain = &envelope.certificate_chain;
    if envelope.signed.signing_scheme == SigningScheme::X509SigningAuthority {
        let Some(signing_time) = envelope.signed.authentic_signing_time else {
            return Err(fail(
                ErrorCode::SignatureInvalid,
                Check::AuthenticTimestamp,
                "the signature has no authentic signing time",
            ));
        };
        if let Some(cert) = chain.iter().find(|c| !c.is_valid_at(signing_time)) {
            let state = if signing_time < cert.not_before() {
                "was not valid yet"
            } else {
                "had expired"
            };
            return Err(fail(
                ErrorCode::CertificateExpired,
                Check::AuthenticTimestamp,
                format!(
                    "certificate {:?} {state} when the signature was produced at {} (authentic signing time); {}; re-sign the artifact with a certificate valid at signing time",
                    cert.subject(),
                    rfc3339(signing_time),
                    validity(cert)
                ),
            ));
        }
        return Ok(());
    }

    let tsa_in_policy = statement
        .trust_stores
        .iter()
        .any(|r| r.store_type == StoreType::Tsa);
    let chain_expired = chain.iter().any(|c| at > c.not_after());
    let use_timestamp = tsa_in_policy
        && match statement.verify_timestamp {
            VerifyTimestamp::Always => true,
            VerifyTimestamp::AfterCertExpiry => chain_expired,
        };

    if !use_timestamp {
        for cert in chain {
            if at < cert.not_before() {
                return Err(fail(
                    ErrorCode::CertificateExpired,
                    Check::AuthenticTimestamp,
                    format!(
                        "certificate {:?} is not valid yet at the verification time {}: {}",
                        cert.subject(),
                        rfc3339(at),
                        validity(cert)
                    ),
                ));
            }
            if at > cert.not_after() {
                return Err(fail(
                    ErrorCode::CertificateExpired,
                    Check::AuthenticTimestamp,
                    format!(
                        "certificate {:?} has expired at the verification time {}: {}, and no timestamp of a trusted TSA was consulted; re-sign with a valid certificate (and `--timestamp-url`), or add a tsa trust store to the policy",
                        cert.subject(),
                        rfc3339(at),
                        validity(cert)
                    ),
                ));
            }
        }
        return Ok(());
    }

    let timestamp_failure = |message: String| {
        fail(
            ErrorCode::TimestampInvalid,
            Check::AuthenticTimestamp,
            message,
        )
    };
    let Some(token) = envelope.unsigned.timestamp_token.as_deref() else {
        return Err(timestamp_failure(
            "no timestamp countersignature was found in the signature, but the trust policy requires one (tsa trust store configured)".into(),
        ));
    };
    let tsa_roots: Vec<Certificate> = trusted_certificates(statement, stores, StoreType::Tsa)
        .map_err(timestamp_failure)?
        .into_iter()
        .cloned()
        .collect();
    if tsa_roots.is_empty() {
        return Err(timestamp_failure(format!(
            "the trust policy statement {:?} names tsa trust stores, but they hold no certificate",
            statement.name
        )));
    }
    let stamp = crate::timestamp::verify_timestamp(token, &envelope.signature, &tsa_roots)
        .map_err(|e| {
            timestamp_failure(format!("the timestamp countersignature is invalid: {e}"))
        })?;
    let earliest = stamp.time - stamp.accuracy;
    let latest = stamp.time + stamp.accuracy;
    // No comparison with the envelope's signing time, as in notation-go: `notation sign`
    // timestamps right after signing with one-second resolution and accuracy, so such a
    // comparison would refuse nearly every real timestamp. The countersignature binds the
    // signature bytes; what the timestamp proves is checked against the chain below.
    for cert in chain {
        let state = if earliest < cert.not_before() {
            "may be before the start of"
        } else if latest > cert.not_after() {
            "may be after the end of"
        } else {
            continue;
        };
        return Err(fail(
            ErrorCode::CertificateExpired,
            Check::AuthenticTimestamp,
            format!(
                "the timestamp {} (accuracy {}) {state} the validity of certificate {:?}: {}; re-sign the artifact with a certificate valid at signing time",
                rfc3339(stamp.time),
                stamp.accuracy,
                cert.subject(),
                validity(cert)
            ),
        ));
    }
    Ok(())
}

/// "its validity period is <notBefore> to <notAfter>", for messages.
fn validity(cert: &Certificate) -> String {
    format!(
        "its validity period is {} to {}",
        rfc3339(cert.not_before()),
        rfc3339(cert.not_after())
    )
}
