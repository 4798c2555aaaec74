//! An artifact's signatures, one after another, under one statement: the sequence the engine
//! and every CLI path run, so that what is refused before parsing, the options a signature is
//! verified with (clock, user metadata, revocation source) and how the signatures combine
//! are decided here once.

use super::{
    combine, verify_signature, ArtifactVerdict, Check, Failure, SignatureReport, SignatureVerdict,
    Target, TrustStores, VerifyOptions,
};
use crate::envelope::EnvelopeFormat;
use crate::policy::Statement;
use crate::{ErrorCode, MAX_ENVELOPE_BYTES};

/// One signature of an artifact as the caller obtained it: the envelope's bytes, or why they
/// could not be obtained (reported as this signature's failure).
#[derive(Debug, Clone)]
pub struct SignatureInput {
    /// Digest of the signature manifest (or of the envelope where there is none).
    pub digest: String,
    /// The envelope media type.
    pub media_type: String,
    pub envelope: Result<Vec<u8>, Failure>,
}

/// How many signatures [`verify_artifact`] examines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Examine {
    /// Every signature (the CLI reports each).
    All,
    /// Until one verifies (notation's behaviour; the service stops fetching there).
    UntilVerified,
}

/// The statement, stores, target and options one artifact is verified with.
#[derive(Debug, Clone, Copy)]
pub struct ArtifactCheck<'a> {
    pub target: Target<'a>,
    pub statement: &'a Statement,
    pub stores: &'a TrustStores,
    pub options: &'a VerifyOptions<'a>,
}

impl ArtifactCheck<'_> {
    /// Verifies one signature: an envelope that is not a Notation media type or is over
    /// [`MAX_ENVELOPE_BYTES`] fails before it is parsed.
    pub fn verify_one(&self, input: SignatureInput) -> SignatureReport {
        let verdict = match &input.envelope {
            Err(failure) => failed(failure.clone()),
            Ok(_) if EnvelopeFormat::from_media_type(&input.media_type).is_none() => {
                failed(Failure {
                    code: ErrorCode::UnsupportedSignature,
                    check: Check::Integrity,
                    message: format!(
                        "the signature has media type {:?}, which is not a Notation envelope (application/jose+json or application/cose expected)",
                        input.media_type
                    ),
                })
            }
            Ok(bytes) if bytes.len() > MAX_ENVELOPE_BYTES => failed(Failure {
                code: ErrorCode::SignatureInvalid,
                check: Check::Integrity,
                message: format!(
                    "the envelope is {} bytes, over the limit of {MAX_ENVELOPE_BYTES} bytes",
                    bytes.len()
                ),
            }),
            Ok(bytes) => verify_signature(
                bytes,
                &input.media_type,
                self.target,
                self.statement,
                self.stores,
                self.options,
            ),
        };
        SignatureReport {
            digest: input.digest,
            media_type: input.media_type,
            verdict,
        }
    }
}

/// Verifies an artifact's signatures in order and combines them ([`combine`]): verified when
/// one verifies.
pub fn verify_artifact(
    check: &ArtifactCheck<'_>,
    signatures: impl IntoIterator<Item = SignatureInput>,
    examine: Examine,
) -> ArtifactVerdict {
    let mut reports = Vec::new();
    for input in signatures {
        let report = check.verify_one(input);
        let verified = report.verdict.verified;
        reports.push(report);
        if verified && examine == Examine::UntilVerified {
            break;
        }
    }
    combine(reports)
}

/// A signature that failed before verification could start.
pub fn failed(failure: Failure) -> SignatureVerdict {
    SignatureVerdict {
        verified: false,
        failure: Some(failure),
        logged: Vec::new(),
        signer: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Descriptor;

    fn statement() -> Statement {
        let doc = crate::policy::parse_oci(
            br#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}"#,
        )
        .unwrap();
        doc.statements.into_iter().next().unwrap()
    }

    fn input(media_type: &str, envelope: Result<Vec<u8>, Failure>) -> SignatureInput {
        SignatureInput {
            digest: "sha256:00".into(),
            media_type: media_type.into(),
            envelope,
        }
    }

    #[test]
    fn refuses_before_parsing_and_reports_every_signature() {
        let statement = statement();
        let stores = TrustStores::default();
        let metadata = BTreeMap::new();
        let options = VerifyOptions {
            at: time::OffsetDateTime::UNIX_EPOCH,
            user_metadata: &metadata,
            revocation: None,
        };
        let subject = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: "sha256:11".into(),
            size: 1,
            annotations: None,
            artifact_type: None,
        };
        let check = ArtifactCheck {
            target: Target::Oci(&subject),
            statement: &statement,
            stores: &stores,
            options: &options,
        };
        let unobtained = Failure {
            code: ErrorCode::RegistryError,
            check: Check::Integrity,
            message: "could not fetch".into(),
        };
        let verdict = verify_artifact(
            &check,
            [
                input("application/vnd.cncf.notary.signature", Ok(b"{}".to_vec())),
                input("application/cose", Err(unobtained.clone())),
                input("application/cose", Ok(vec![0; MAX_ENVELOPE_BYTES + 1])),
            ],
            Examine::UntilVerified,
        );
        assert!(!verdict.verified);
        let codes: Vec<_> = verdict
            .signatures
            .iter()
            .map(|s| s.verdict.failure.as_ref().unwrap().code)
            .collect();
        assert_eq!(
            codes,
            [
                ErrorCode::UnsupportedSignature,
                ErrorCode::RegistryError,
                ErrorCode::SignatureInvalid
            ]
        );
        assert_eq!(verdict.signatures[1].verdict.failure, Some(unobtained));
    }
}
