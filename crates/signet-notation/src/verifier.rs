//! From (envelope, artifact, trust policy statement, trust stores, clock) to a verdict.
//!
//! The steps follow Notation's order: integrity, authenticity, (trusted identity),
//! authentic timestamp, expiry, revocation. Each step's failure is enforced, logged or
//! skipped according to the statement's [`Actions`](crate::policy::Actions).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::cert::Certificate;
use crate::descriptor::{parse_digest, Descriptor};
use crate::envelope::{Envelope, EnvelopeError, EnvelopeFormat, SigningScheme};
use crate::policy::{Action, Actions, Level, Statement, TrustStoreRef, VerifyTimestamp};
use crate::truststore::{StoreType, TrustStore, TrustStoreError};
use crate::{ErrorCode, Instant, MAX_ENVELOPE_BYTES};

/// The trust stores named by a statement, loaded.
#[derive(Debug, Clone, Default)]
pub struct TrustStores {
    stores: HashMap<(StoreType, String), TrustStore>,
}

impl TrustStores {
    /// Wraps already loaded stores.
    pub fn from_stores(stores: impl IntoIterator<Item = TrustStore>) -> Self {
        TrustStores {
            stores: stores
                .into_iter()
                .map(|s| ((s.store_type, s.name.clone()), s))
                .collect(),
        }
    }

    /// Loads exactly the stores `statement` names from a Notation trust-store root
    /// (other stores under the root are not read: they may be broken and must not matter).
    pub fn load_for(root: &Path, statement: &Statement) -> Result<Self, TrustStoreError> {
        let mut stores = Vec::new();
        for r in &statement.trust_stores {
            stores.push(TrustStore::load(root, r.store_type, &r.name)?);
        }
        Ok(Self::from_stores(stores))
    }

    /// The store a reference names, if loaded.
    pub fn get(&self, r: &TrustStoreRef) -> Option<&TrustStore> {
        self.stores.get(&(r.store_type, r.name.clone()))
    }
}

/// What the signature must be bound to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An OCI artifact: the payload's descriptor must carry the same digest, media type and size.
    Oci(&'a Descriptor),
    /// A blob: the payload's digest is recomputed over the content with the payload's own
    /// digest algorithm; the media type is compared only when given.
    Blob {
        content: &'a [u8],
        media_type: Option<&'a str>,
    },
}

/// Per-call options.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// "Now" for every time-dependent check.
    pub at: Instant,
    /// Pairs the payload's `targetArtifact.annotations` must contain.
    pub user_metadata: &'a BTreeMap<String, String>,
}

/// Notation's validation steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    Integrity,
    Authenticity,
    TrustedIdentity,
    AuthenticTimestamp,
    Expiry,
    Revocation,
    UserMetadata,
}

/// A failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: ErrorCode,
    pub check: Check,
    /// Plain words: what failed and, where it helps, what to do.
    pub message: String,
}

/// The outcome for one signature.
#[derive(Debug, Clone)]
pub struct SignatureVerdict {
    pub verified: bool,
    /// The enforced failure, when not verified.
    pub failure: Option<Failure>,
    /// Failures of checks whose action is `log`.
    pub logged: Vec<Failure>,
    /// The leaf certificate's subject, once the envelope decoded.
    pub signer: Option<String>,
}

/// Verifies one signature envelope under one trust policy statement.
///
/// Never panics and never returns early with "verified" on doubt: every path that does not
/// complete the enforced checks ends in a [`Failure`].
pub fn verify_signature(
    envelope: &[u8],
    media_type: &str,
    target: Target<'_>,
    statement: &Statement,
    stores: &TrustStores,
    options: &VerifyOptions<'_>,
) -> SignatureVerdict {
    let mut run = Run {
        actions: statement.actions,
        logged: Vec::new(),
        signer: None,
    };
    let result = run.verify(envelope, media_type, target, statement, stores, options);
    SignatureVerdict {
        verified: result.is_ok(),
        failure: result.err(),
        logged: run.logged,
        signer: run.signer,
    }
}

/// The state of one verification: the actions in force and what was logged so far.
struct Run {
    actions: Actions,
    logged: Vec<Failure>,
    signer: Option<String>,
}

impl Run {
    /// Applies `action` to a failed check: enforce fails, log records, skip ignores.
    fn apply(&mut self, action: Action, failure: Failure) -> Result<(), Failure> {
        match action {
            Action::Enforce => Err(failure),
            Action::Log => {
                self.logged.push(failure);
                Ok(())
            }
            Action::Skip => Ok(()),
        }
    }

    fn verify(
        &mut self,
        bytes: &[u8],
        media_type: &str,
        target: Target<'_>,
        statement: &Statement,
        stores: &TrustStores,
        options: &VerifyOptions<'_>,
    ) -> Result<(), Failure> {
        if statement.level == Level::Skip {
            return Ok(());
        }
        let at = options.at;
        let envelope = integrity(bytes, media_type)?;
        self.signer = envelope.certificate_chain.first().map(Certificate::subject);
        let payload = decode_payload(&envelope)?;
        unsupported_attributes(&envelope)?;

        // Authenticity: some certificate of the chain is one of the trusted certificates of
        // the stores whose type fits the signing scheme.
        let wanted_type = match envelope.signed.signing_scheme {
            SigningScheme::X509 => StoreType::Ca,
            SigningScheme::X509SigningAuthority => StoreType::SigningAuthority,
        };
        if let Err(f) = authenticity(&envelope, statement, stores, wanted_type) {
            self.apply(self.actions.authenticity, f)?;
        } else if let Err(f) = trusted_identity(&envelope, statement) {
            // notation-go records an identity mismatch under the authenticity action.
            self.apply(self.actions.authenticity, f)?;
        }

        if let Some(expiry) = envelope.signed.expiry {
            if at >= expiry {
                let f = fail(
                    ErrorCode::SignatureExpired,
                    Check::Expiry,
                    format!(
                        "the signature expired at {}; re-sign the artifact or relax `expiry` in the trust policy statement {:?}",
                        rfc3339(expiry),
                        statement.name
                    ),
                );
                self.apply(self.actions.expiry, f)?;
            }
        }

        if let Err(f) = authentic_timestamp(&envelope, statement, stores, at) {
            self.apply(self.actions.authentic_timestamp, f)?;
        }

        if self.actions.revocation != Action::Skip {
            if let Err(f) = revocation(&envelope) {
                self.apply(self.actions.revocation, f)?;
            }
        }

        // Binding to the artifact and user metadata are enforced at every level but skip.
        target_matches(&payload, target)?;
        user_metadata(&payload, options.user_metadata)?;
        Ok(())
    }
}

fn fail(code: ErrorCode, check: Check, message: impl Into<String>) -> Failure {
    Failure {
        code,
        check,
        message: message.into(),
    }
}

fn rfc3339(t: Instant) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Decodes the envelope and checks its signature, its signed attributes and its chain's
/// shape: everything notation-go calls integrity.
fn integrity(bytes: &[u8], media_type: &str) -> Result<Envelope, Failure> {
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
    crate::chain::validate_code_signing_chain(&envelope.certificate_chain, signing_time).map_err(
        |e| {
            fail(
                ErrorCode::SignatureInvalid,
                Check::Integrity,
                format!("the signature's certificate chain is invalid: {e}"),
            )
        },
    )?;
    Ok(envelope)
}

/// A Notation payload (`application/vnd.cncf.notary.payload.v1+json`). Fields default like
/// Go's `encoding/json` so that an incomplete payload fails the descriptor comparison.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
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

fn decode_payload(envelope: &Envelope) -> Result<Payload, Failure> {
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
fn unsupported_attributes(envelope: &Envelope) -> Result<(), Failure> {
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

fn stores_of_type<'a>(
    statement: &'a Statement,
    stores: &'a TrustStores,
    store_type: StoreType,
) -> impl Iterator<Item = &'a TrustStore> + 'a {
    statement
        .trust_stores
        .iter()
        .filter(move |r| r.store_type == store_type)
        .filter_map(|r| stores.get(r))
}

fn authenticity(
    envelope: &Envelope,
    statement: &Statement,
    stores: &TrustStores,
    store_type: StoreType,
) -> Result<(), Failure> {
    let mut any_trusted = false;
    for store in stores_of_type(statement, stores, store_type) {
        for trusted in &store.certificates {
            any_trusted = true;
            if envelope.certificate_chain.iter().any(|c| c == trusted) {
                return Ok(());
            }
        }
    }
    let message = if any_trusted {
        format!(
            "the signing certificate chain ({}) is not anchored in any {} trust store of the trust policy statement {:?}; add the signer's root certificate to one of them",
            describe_chain(&envelope.certificate_chain),
            store_type.as_str(),
            statement.name
        )
    } else {
        format!(
            "the trust policy statement {:?} names no {} trust store with certificates, which signatures of this signing scheme need",
            statement.name,
            store_type.as_str()
        )
    };
    Err(fail(
        ErrorCode::UntrustedSigner,
        Check::Authenticity,
        message,
    ))
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

fn trusted_identity(envelope: &Envelope, statement: &Statement) -> Result<(), Failure> {
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

fn authentic_timestamp(
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
            return Err(fail(
                ErrorCode::CertificateExpired,
                Check::AuthenticTimestamp,
                format!(
                    "certificate {:?} was not valid when the signature was produced at {}",
                    cert.subject(),
                    rfc3339(signing_time)
                ),
            ));
        }
        return Ok(());
    }

    let tsa_roots: Vec<Certificate> = stores_of_type(statement, stores, StoreType::Tsa)
        .flat_map(|s| s.certificates.iter().cloned())
        .collect();
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
                        "certificate {:?} is not valid yet: its validity starts at {}",
                        cert.subject(),
                        rfc3339(cert.not_before())
                    ),
                ));
            }
            if at > cert.not_after() {
                return Err(fail(
                    ErrorCode::CertificateExpired,
                    Check::AuthenticTimestamp,
                    format!(
                        "certificate {:?} expired at {} and the signature carries no timestamp that a trusted TSA vouches for; re-sign with a valid certificate (and `--timestamp-url`), or add a tsa trust store to the policy",
                        cert.subject(),
                        rfc3339(cert.not_after())
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
    if tsa_roots.is_empty() {
        return Err(timestamp_failure(format!(
            "the trust policy statement {:?} names tsa trust stores, but they hold no certificate",
            statement.name
        )));
    }
    let stamp = crate::timestamp::verify_timestamp(token, &envelope.signature, &tsa_roots, at)
        .map_err(|e| {
            timestamp_failure(format!("the timestamp countersignature is invalid: {e}"))
        })?;
    let earliest = stamp.time - stamp.accuracy;
    let latest = stamp.time + stamp.accuracy;
    if let Some(signing_time) = envelope.signed.signing_time {
        if earliest < signing_time {
            return Err(timestamp_failure(format!(
                "the timestamp {} is not bounded after the signing time {}",
                rfc3339(stamp.time),
                rfc3339(signing_time)
            )));
        }
    }
    for cert in chain {
        if earliest < cert.not_before() || latest > cert.not_after() {
            return Err(fail(
                ErrorCode::CertificateExpired,
                Check::AuthenticTimestamp,
                format!(
                    "the timestamp {} is not within the validity of certificate {:?} ({} to {})",
                    rfc3339(stamp.time),
                    cert.subject(),
                    rfc3339(cert.not_before()),
                    rfc3339(cert.not_after())
                ),
            ));
        }
    }
    Ok(())
}

/// Revocation status needs OCSP responses or CRLs, which this crate does not fetch. A chain
/// with no revocation information is non-revocable (as in notation-go); one with it is
/// "unknown" until a caller supplies responses, so enforcing levels fail closed.
fn revocation(envelope: &Envelope) -> Result<(), Failure> {
    for cert in &envelope.certificate_chain {
        let x509 = cert.x509();
        let revocable = x509.extensions().iter().any(|ext| {
            use x509_parser::extensions::ParsedExtension;
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(_) => true,
                ParsedExtension::AuthorityInfoAccess(aia) => aia.accessdescs.iter().any(|d| {
                    d.access_method == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                }),
                _ => false,
            }
        });
        if revocable {
            return Err(fail(
                ErrorCode::RevocationUnknown,
                Check::Revocation,
                format!(
                    "the revocation status of certificate {:?} is unknown: online revocation checking is not available in this build; set `revocation: log` or `skip` in the trust policy override to accept it",
                    cert.subject()
                ),
            ));
        }
    }
    Ok(())
}

fn target_matches(payload: &Payload, target: Target<'_>) -> Result<(), Failure> {
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

fn user_metadata(payload: &Payload, required: &BTreeMap<String, String>) -> Result<(), Failure> {
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

/// One examined signature of an artifact.
#[derive(Debug, Clone)]
pub struct SignatureReport {
    /// Digest of the signature manifest (or of the envelope blob where there is none).
    pub digest: String,
    pub media_type: String,
    pub verdict: SignatureVerdict,
}

/// The outcome for an artifact with any number of signatures.
#[derive(Debug, Clone)]
pub struct ArtifactVerdict {
    pub verified: bool,
    pub failure: Option<Failure>,
    pub signatures: Vec<SignatureReport>,
}

/// The artifact is verified if one signature verifies; otherwise the reported failure is the
/// one that got furthest through the steps ([`ErrorCode::progress`]); with no signature at
/// all it is `SIGNATURE_NOT_FOUND`.
pub fn combine(signatures: Vec<SignatureReport>) -> ArtifactVerdict {
    if signatures.iter().any(|s| s.verdict.verified) {
        return ArtifactVerdict {
            verified: true,
            failure: None,
            signatures,
        };
    }
    let failure = signatures
        .iter()
        .filter_map(|s| s.verdict.failure.as_ref())
        // `max_by_key` keeps the last of equals; reverse so the first signature wins ties.
        .rev()
        .max_by_key(|f| f.code.progress())
        .cloned()
        .unwrap_or_else(|| Failure {
            code: ErrorCode::SignatureNotFound,
            check: Check::Integrity,
            message: "no Notation signature was found for the artifact; sign it with `notation sign` or check the reference".into(),
        });
    ArtifactVerdict {
        verified: false,
        failure: Some(failure),
        signatures,
    }
}
