//! The checks of one verification, each returning the [`Failure`] it found.

use std::collections::BTreeMap;

use super::{Check, Failure, Target, TrustStores};
use crate::cert::Certificate;
use crate::descriptor::parse_digest;
use crate::envelope::{Envelope, EnvelopeError, EnvelopeFormat, SigningScheme};
use crate::policy::Statement;
use crate::revocation::{self, RevocationResult, RevocationSource};
use crate::truststore::StoreType;
use crate::{ErrorCode, Instant, MAX_ENVELOPE_BYTES};

pub(super) fn fail(code: ErrorCode, check: Check, message: impl Into<String>) -> Failure {
    Failure {
        code,
        check,
        message: message.into(),
    }
}

pub(super) use crate::format_rfc3339 as rfc3339;

/// Decodes the envelope and checks its signature, its signed attributes and its chain's
/// shape: everything notation-go calls integrity. Certificate validity in time is not part of
/// it (see [`super::timestamp::authentic_timestamp`]).
pub(super) fn integrity(bytes: &[u8], media_type: &str) -> Result<Envelope, Failure> {
    let Some(format) = EnvelopeFormat::from_media_type(media_type) else {
        return Err(fail(
            ErrorCode::UnsupportedSignature,
            Check::Integrity,
            format!("signature envelope media type {media_type:?} is not supported; Notation signatures are application/cose or application/jose+json"),
        ));
    };
    let integrity_failure = |e: EnvelopeError| fail(e.code(), Check::Integrity, e.to_string());
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(integrity_failure(EnvelopeError::TooLarge(bytes.len())));
    }
    let envelope = Envelope::parse(format, bytes).map_err(integrity_failure)?;
    envelope.verify_signature().map_err(integrity_failure)?;

    let signed = &envelope.signed;
    let signing_time = match signed.signing_scheme {
        SigningScheme::X509 => signed.signing_time,
        SigningScheme::X509SigningAuthority => signed.authentic_signing_time,
    };
    if let (Some(signing_time), Some(expiry)) = (signing_time, signed.expiry) {
        if expiry <= signing_time {
            return Err(fail(
                ErrorCode::SignatureInvalid,
                Check::Integrity,
                format!(
                    "the signature's expiry {} is not after its signing time {}",
                    rfc3339(expiry),
                    rfc3339(signing_time)
                ),
            ));
        }
    }
    // The chain's structure and signatures only, at no particular time, as notation-core-go's
    // envelope verification does: whether the certificates were valid when the signature was
    // made (or are valid now) is the authentic-timestamp check, which the level may enforce,
    // log or skip.
    crate::chain::validate_code_signing_chain(&envelope.certificate_chain, None).map_err(|e| {
        fail(
            ErrorCode::SignatureInvalid,
            Check::Integrity,
            format!("the signature's certificate chain is invalid: {e}"),
        )
    })?;
    Ok(envelope)
}

/// A Notation payload (`application/vnd.cncf.notary.payload.v1+json`). Fields default like
/// Go's `encoding/json` so that an incomplete payload fails the descriptor comparison.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Payload {
    #[serde(default)]
    target_artifact: PayloadDescriptor,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadDescriptor {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

pub(super) fn decode_payload(envelope: &Envelope) -> Result<Payload, Failure> {
    serde_json::from_slice(&envelope.payload).map_err(|e| {
        fail(
            ErrorCode::SignatureInvalid,
            Check::Integrity,
            format!("the signed payload is not a Notation payload ({{\"targetArtifact\": descriptor}}): {e}"),
        )
    })
}

/// Signet runs no verification plugins and knows no extended critical attributes: an
/// envelope that requires either cannot be verified as its signer intended.
pub(super) fn unsupported_attributes(envelope: &Envelope) -> Result<(), Failure> {
    let signed = &envelope.signed;
    if let Some(plugin) = &signed.verification_plugin {
        return Err(fail(
            ErrorCode::UnsupportedSignature,
            Check::Integrity,
            format!("the signature requires the verification plugin {plugin:?}; Signet runs no plugins, so it cannot be verified"),
        ));
    }
    if signed.verification_plugin_min_version.is_some() {
        return Err(fail(
            ErrorCode::UnsupportedSignature,
            Check::Integrity,
            "the signature requires a minimum verification plugin version; Signet runs no plugins, so it cannot be verified",
        ));
    }
    if let Some(attr) = signed.extended.iter().find(|a| a.critical) {
        return Err(fail(
            ErrorCode::UnsupportedSignature,
            Check::Integrity,
            format!(
                "the signature carries the unknown critical attribute {:?}; it cannot be verified",
                attr.key
            ),
        ));
    }
    Ok(())
}

/// The certificates of the statement's trust stores of `store_type`. A named store that
/// failed to load fails the whole lookup, as in notation-go.
pub(super) fn trusted_certificates<'a>(
    statement: &Statement,
    stores: &'a TrustStores,
    store_type: StoreType,
) -> Result<Vec<&'a Certificate>, String> {
    let mut certificates = Vec::new();
    for r in statement
        .trust_stores
        .iter()
        .filter(|r| r.store_type == store_type)
    {
        match stores.get(r) {
            Some(Ok(store)) => certificates.extend(store.certificates.iter()),
            Some(Err(e)) => {
                return Err(format!(
                    "trust store {}:{} could not be loaded: {e}",
                    store_type.as_str(),
                    r.name
                ))
            }
            None => {
                return Err(format!(
                    "trust store {}:{} is not loaded",
                    store_type.as_str(),
                    r.name
                ))
            }
        }
    }
    Ok(certificates)
}

pub(super) fn authenticity(
    envelope: &Envelope,
    statement: &Statement,
    stores: &TrustStores,
    store_type: StoreType,
) -> Result<(), Failure> {
    let untrusted =
        |message: String| fail(ErrorCode::UntrustedSigner, Check::Authenticity, message);
    let trusted = trusted_certificates(statement, stores, store_type).map_err(untrusted)?;
    if trusted.is_empty() {
        return Err(untrusted(format!(
            "the trust policy statement {:?} names no {} trust store, which signatures of this signing scheme need",
            statement.name,
            store_type.as_str()
        )));
    }
    if trusted
        .iter()
        .any(|t| envelope.certificate_chain.iter().any(|c| c == *t))
    {
        return Ok(());
    }
    Err(untrusted(format!(
        "the signing certificate chain ({}) is not anchored in any {} trust store of the trust policy statement {:?}; add the signer's root certificate to one of them",
        describe_chain(&envelope.certificate_chain),
        store_type.as_str(),
        statement.name
    )))
}

fn describe_chain(chain: &[Certificate]) -> String {
    match chain.first() {
        Some(leaf) if chain.len() > 1 => format!(
            "leaf {:?}, root {:?}",
            leaf.subject(),
            chain.last().map(Certificate::subject).unwrap_or_default()
        ),
        Some(leaf) => format!("{:?}", leaf.subject()),
        None => "empty".into(),
    }
}

pub(super) fn trusted_identity(envelope: &Envelope, statement: &Statement) -> Result<(), Failure> {
    let Some(leaf) = envelope.certificate_chain.first() else {
        return Err(fail(
            ErrorCode::UntrustedIdentity,
            Check::TrustedIdentity,
            "the signature has no signing certificate",
        ));
    };
    if statement
        .trusted_identities
        .iter()
        .any(|identity| identity.matches(leaf))
    {
        return Ok(());
    }
    Err(fail(
        ErrorCode::UntrustedIdentity,
        Check::TrustedIdentity,
        format!(
            "the signing certificate's subject {:?} matches none of the trusted identities of the trust policy statement {:?}",
            leaf.subject(),
            statement.name
        ),
    ))
}

/// Revocation status needs OCSP responses or CRLs, which this crate does not fetch. A chain
/// with no revocation information is non-revocable (as in notation-go); one with it is
/// "unknown" until a caller supplies responses, so enforcing levels fail closed.
pub(super) fn revocation(
    envelope: &Envelope,
    source: Option<&dyn RevocationSource>,
    at: Instant,
) -> Result<(), Failure> {
    let chain = &envelope.certificate_chain;
    let Some(source) = source else {
        if let Some(cert) = chain
            .iter()
            .find(|c| revocation::is_revocable(std::slice::from_ref(c)))
        {
            return Err(fail(
                ErrorCode::RevocationUnknown,
                Check::Revocation,
                format!(
                    "the revocation status of certificate {:?} is unknown: online revocation checking is not available in this build; set `revocation: log` or `skip` in the trust policy override to accept it",
                    cert.subject()
                ),
            ));
        }
        return Ok(());
    };
    // As notation-go: the invalidity date of a revoked entry is compared with the authentic
    // signing time of signing-authority signatures only.
    let signing_time = match envelope.signed.signing_scheme {
        SigningScheme::X509SigningAuthority => envelope.signed.authentic_signing_time,
        SigningScheme::X509 => None,
    };
    match revocation::check_chain(chain, source, at, signing_time) {
        RevocationResult::Ok => Ok(()),
        RevocationResult::Revoked { subject, detail } => Err(fail(
            ErrorCode::CertificateRevoked,
            Check::Revocation,
            format!("certificate {subject:?} of the signing chain is revoked ({detail}); re-sign the artifact with a valid certificate"),
        )),
        RevocationResult::Unknown { subject, reason } => Err(fail(
            ErrorCode::RevocationUnknown,
            Check::Revocation,
            format!("the revocation status of certificate {subject:?} is unknown: {reason}; set `revocation: log` or `skip` in the trust policy override to accept it"),
        )),
    }
}

pub(super) fn target_matches(payload: &Payload, target: Target<'_>) -> Result<(), Failure> {
    let signed = &payload.target_artifact;
    let mismatch = |what: &str, signed_value: &str, actual: &str| {
        fail(
            ErrorCode::SignatureInvalid,
            Check::Integrity,
            format!("the signature is for another artifact: its {what} is {signed_value:?}, the artifact's is {actual:?}"),
        )
    };
    match target {
        Target::Oci(descriptor) => {
            if signed.digest != descriptor.digest {
                return Err(mismatch("digest", &signed.digest, &descriptor.digest));
            }
            if signed.media_type != descriptor.media_type {
                return Err(mismatch(
                    "media type",
                    &signed.media_type,
                    &descriptor.media_type,
                ));
            }
            if signed.size != descriptor.size {
                return Err(mismatch(
                    "size",
                    &signed.size.to_string(),
                    &descriptor.size.to_string(),
                ));
            }
        }
        Target::Blob {
            content,
            media_type,
        } => {
            let actual = match parse_digest(&signed.digest) {
                Ok((alg, _)) => alg.digest(content),
                Err(e) => {
                    return Err(fail(
                        ErrorCode::SignatureInvalid,
                        Check::Integrity,
                        format!("the signed payload's digest is invalid: {e}"),
                    ))
                }
            };
            if signed.digest != actual {
                return Err(mismatch("digest", &signed.digest, &actual));
            }
            let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
            if signed.size != size {
                return Err(mismatch(
                    "size",
                    &signed.size.to_string(),
                    &size.to_string(),
                ));
            }
            if let Some(media_type) = media_type {
                if signed.media_type != media_type {
                    return Err(mismatch("media type", &signed.media_type, media_type));
                }
            }
        }
    }
    Ok(())
}

pub(super) fn user_metadata(
    payload: &Payload,
    required: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    for (key, value) in required {
        if payload.target_artifact.annotations.get(key) != Some(value) {
            return Err(fail(
                ErrorCode::SignatureInvalid,
                Check::UserMetadata,
                format!("the signature does not carry the required user metadata {key}={value}"),
            ));
        }
    }
    Ok(())
}
