//! The one place the CLI talks to `signet_notation`: loading trust policies and stores,
//! selecting statements, verifying envelopes, and turning verdicts into [`output`] values.
//!
//! Keeping the library's names here means a rename in the library touches one file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::bail;
use signet_notation::envelope::EnvelopeFormat;
use signet_notation::policy::{self, Level, PolicyError, Statement, TrustPolicyDocument};
use signet_notation::verifier::{
    self, ArtifactVerdict, Failure, SignatureReport, SignatureVerdict, Target, TrustStores,
    VerifyOptions,
};
use signet_notation::{Descriptor, ErrorCode, Instant};

use crate::input;
use crate::output::{ArtifactResult, ErrorInfo, SignatureResult};

pub use signet_notation::MAX_ENVELOPE_BYTES;

/// Which kind of trust policy document a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// `trustpolicy.json` / `trustpolicy.oci.json`.
    Oci,
    /// `trustpolicy.blob.json`.
    Blob,
}

/// A validated trust policy document and where it came from.
#[derive(Debug)]
pub struct LoadedPolicy {
    pub doc: TrustPolicyDocument,
}

/// Reads (≤ 1 MiB) and validates a trust policy document. Errors name the file.
pub fn load_policy(path: &Path, kind: PolicyKind) -> anyhow::Result<LoadedPolicy> {
    if kind == PolicyKind::Oci {
        // The service's loader, so `verify`, `policy check` and `serve --check-config`
        // accept exactly what `serve` does.
        return signet_engine::read_oci_policy(path)
            .map(|doc| LoadedPolicy { doc })
            .map_err(|e| anyhow::anyhow!("{e}"));
    }
    let bytes = input::read_file(path, input::MAX_POLICY_BYTES, "trust policy")?;
    match policy::parse_blob(&bytes) {
        Ok(doc) => Ok(LoadedPolicy { doc }),
        Err(e) => bail!(
            "trust policy {} is not valid: {}",
            path.display(),
            policy_error_text(&e)
        ),
    }
}

fn policy_error_text(e: &PolicyError) -> String {
    match e {
        PolicyError::Invalid(m)
        | PolicyError::NoApplicableStatement(m)
        | PolicyError::InvalidReference(m) => m.clone(),
    }
}

/// The statement that applies, or a NO_TRUST_POLICY result.
#[derive(Debug)]
pub enum Selected<'a> {
    Statement(&'a Statement),
    NoPolicy(ErrorInfo),
}

impl LoadedPolicy {
    /// The statement applicable to an OCI artifact reference `registry/repo@digest`.
    pub fn select_oci(&self, reference: &str) -> Selected<'_> {
        match self.doc.select_for_reference(reference) {
            Ok(s) => Selected::Statement(s),
            Err(e) => Selected::NoPolicy(no_policy(format!(
                "no trust policy statement applies to {reference} ({}); add its repository to the registryScopes of a statement, or a statement with scope \"*\"",
                policy_error_text(&e)
            ))),
        }
    }

    /// The named blob statement, or the global one.
    pub fn select_blob(&self, name: Option<&str>) -> Selected<'_> {
        match self.doc.select_blob(name) {
            Ok(s) => Selected::Statement(s),
            Err(e) => Selected::NoPolicy(no_policy(match name {
                Some(n) => format!(
                    "the blob trust policy has no statement named {n:?} ({}); check --policy-name",
                    policy_error_text(&e)
                ),
                None => format!(
                    "the blob trust policy has no global statement ({}); pass --policy-name or mark a statement \"globalPolicy\": true",
                    policy_error_text(&e)
                ),
            })),
        }
    }

    /// With a trust-store root: loads every store each statement names (for `policy check`).
    pub fn check_stores(&self, root: &Path) -> anyhow::Result<usize> {
        let mut n = 0;
        for st in &self.doc.statements {
            if st.level == Level::Skip {
                continue;
            }
            let stores = load_stores(root, st)?;
            if let Some(e) = stores.load_errors().next() {
                bail!("trust policy statement {:?}: {e}", st.name);
            }
            n += st.trust_stores.len();
        }
        Ok(n)
    }

    pub fn statement_count(&self) -> usize {
        self.doc.statements.len()
    }

    /// The `multiArch.statements` names this policy has no statement for (their option
    /// then applies to nothing: a typo would silently keep notation's behaviour).
    pub fn unknown_statements<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Vec<&'a str> {
        names
            .into_iter()
            .filter(|n| !self.doc.statements.iter().any(|s| &s.name == *n))
            .map(String::as_str)
            .collect()
    }
}

fn no_policy(message: String) -> ErrorInfo {
    ErrorInfo {
        code: ErrorCode::NoTrustPolicy.as_str().to_owned(),
        message,
    }
}

/// Whether the statement says not to verify at all.
pub fn is_skip(statement: &Statement) -> bool {
    statement.level == Level::Skip
}

/// Loads the stores a statement names from a trust-store root. A store that fails to load
/// is reported on stderr and fails the checks that need it (as notation does), so that an
/// `audit` statement still behaves as configured.
pub fn load_stores(root: &Path, statement: &Statement) -> anyhow::Result<TrustStores> {
    if !root.is_dir() {
        bail!(
            "trust store root {} is not a readable directory",
            root.display()
        );
    }
    Ok(TrustStores::load_for(root, statement))
}

/// [`load_stores`], warning on stderr about every store that failed to load.
pub fn load_stores_for_verification(
    root: &Path,
    statement: &Statement,
) -> anyhow::Result<TrustStores> {
    let stores = load_stores(root, statement)?;
    for e in stores.load_errors() {
        eprintln!(
            "warning: trust policy statement {:?}: {e}; signatures that need this store will fail",
            statement.name
        );
    }
    Ok(stores)
}

/// What one signature must be bound to.
#[derive(Debug, Clone)]
pub enum Subject<'a> {
    /// An OCI artifact, by its manifest descriptor.
    Oci {
        media_type: String,
        digest: String,
        size: i64,
    },
    /// A blob's content and, optionally, its expected media type.
    Blob {
        content: &'a [u8],
        media_type: Option<&'a str>,
    },
}

/// The clock and user metadata of a verification.
#[derive(Debug, Clone)]
pub struct Options {
    pub at: Instant,
    pub user_metadata: BTreeMap<String, String>,
}

/// One signature to verify: its digest (for reporting), media type and envelope bytes, or why
/// its envelope could not be obtained (reported as a failure with `code`).
#[derive(Debug, Clone)]
pub struct SignatureInput {
    pub digest: String,
    pub media_type: String,
    pub envelope: Result<Vec<u8>, (ErrorCode, String)>,
}

/// Verifies an artifact's signatures under a statement and builds its result.
pub fn verify_artifact(
    reference: &str,
    digest: Option<String>,
    subject: &Subject<'_>,
    signatures: Vec<SignatureInput>,
    statement: &Statement,
    stores: &TrustStores,
    options: &Options,
) -> ArtifactResult {
    let descriptor = match subject {
        Subject::Oci {
            media_type,
            digest,
            size,
        } => Some(Descriptor {
            media_type: media_type.clone(),
            digest: digest.clone(),
            size: *size,
            annotations: None,
            artifact_type: None,
        }),
        Subject::Blob { .. } => None,
    };
    let target = match (subject, &descriptor) {
        (_, Some(d)) => Target::Oci(d),
        (
            Subject::Blob {
                content,
                media_type,
            },
            None,
        ) => Target::Blob {
            content,
            media_type: *media_type,
        },
        (Subject::Oci { .. }, None) => unreachable!("an OCI subject always has a descriptor"),
    };
    let verify_options = VerifyOptions {
        at: options.at,
        user_metadata: &options.user_metadata,
        revocation: None,
    };
    let reports = signatures
        .into_iter()
        .map(|sig| {
            let verdict = match &sig.envelope {
                Err((code, message)) => failed(*code, message.clone()),
                Ok(_) if EnvelopeFormat::from_media_type(&sig.media_type).is_none() => failed(
                    ErrorCode::UnsupportedSignature,
                    format!(
                        "the signature has media type {:?}, which is not a Notation envelope (application/jose+json or application/cose expected)",
                        sig.media_type
                    ),
                ),
                Ok(bytes) if bytes.len() > MAX_ENVELOPE_BYTES => failed(
                    ErrorCode::SignatureInvalid,
                    format!(
                        "the envelope is {} bytes, over the limit of {MAX_ENVELOPE_BYTES} bytes",
                        bytes.len()
                    ),
                ),
                Ok(bytes) => verifier::verify_signature(
                    bytes,
                    &sig.media_type,
                    target,
                    statement,
                    stores,
                    &verify_options,
                ),
            };
            SignatureReport {
                digest: sig.digest,
                media_type: sig.media_type,
                verdict,
            }
        })
        .collect();
    artifact_result(reference, digest, statement, verifier::combine(reports))
}

/// The result for an artifact whose statement has level `skip`: verified, nothing checked.
pub fn skipped(reference: &str, digest: Option<String>, statement: &Statement) -> ArtifactResult {
    ArtifactResult {
        reference: reference.to_owned(),
        digest,
        verified: true,
        policy: Some(statement.name.clone()),
        level: Some(level_name(statement.level).to_owned()),
        signatures: Vec::new(),
        error: None,
        note: Some(format!(
            "trust policy statement {:?} has level \"skip\": signatures were not verified",
            statement.name
        )),
    }
}

fn failed(code: ErrorCode, message: String) -> SignatureVerdict {
    SignatureVerdict {
        verified: false,
        failure: Some(Failure {
            code,
            check: verifier::Check::Integrity,
            message,
        }),
        logged: Vec::new(),
        signer: None,
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Strict => "strict",
        Level::Permissive => "permissive",
        Level::Audit => "audit",
        Level::Skip => "skip",
    }
}

fn check_name(check: verifier::Check) -> &'static str {
    use verifier::Check::*;
    match check {
        Integrity => "integrity",
        Authenticity => "authenticity",
        TrustedIdentity => "trusted identity",
        AuthenticTimestamp => "authentic timestamp",
        Expiry => "expiry",
        Revocation => "revocation",
        UserMetadata => "user metadata",
    }
}

fn error_info(f: &Failure) -> ErrorInfo {
    ErrorInfo {
        code: f.code.as_str().to_owned(),
        message: f.message.clone(),
    }
}

fn artifact_result(
    reference: &str,
    digest: Option<String>,
    statement: &Statement,
    verdict: ArtifactVerdict,
) -> ArtifactResult {
    ArtifactResult {
        reference: reference.to_owned(),
        digest,
        verified: verdict.verified,
        policy: Some(statement.name.clone()),
        level: Some(level_name(statement.level).to_owned()),
        signatures: verdict
            .signatures
            .iter()
            .map(|s| SignatureResult {
                format: signet_engine::SignatureFormat::Notation,
                digest: s.digest.clone(),
                manifest: None,
                media_type: s.media_type.clone(),
                verified: s.verdict.verified,
                signer: s.verdict.signer.clone(),
                error: s.verdict.failure.as_ref().map(error_info),
                failed_check: s
                    .verdict
                    .failure
                    .as_ref()
                    .map(|f| check_name(f.check).to_owned()),
                logged: s
                    .verdict
                    .logged
                    .iter()
                    .map(|f| (check_name(f.check).to_owned(), error_info(f)))
                    .collect(),
            })
            .collect(),
        error: if verdict.verified {
            None
        } else {
            verdict.failure.as_ref().map(error_info)
        },
        note: None,
    }
}

/// The result of a registry verification by the engine, for the same rendering.
pub fn from_engine(v: &signet_engine::ImageVerdict) -> ArtifactResult {
    let info = |e: &signet_engine::VerdictError| ErrorInfo {
        code: e.code.as_str().to_owned(),
        message: e.message.clone(),
    };
    ArtifactResult {
        reference: v.reference.clone(),
        digest: v.digest.clone(),
        verified: v.verified,
        policy: v.policy.clone(),
        level: v.level.clone(),
        signatures: v
            .signatures
            .iter()
            .map(|s| SignatureResult {
                format: s.format,
                digest: s.digest.clone(),
                manifest: s.manifest.clone(),
                media_type: s.media_type.clone(),
                verified: s.verified,
                signer: s.signer.clone(),
                error: s.error.as_ref().map(info),
                failed_check: s.failed_check.map(|c| check_name(c).to_owned()),
                logged: s
                    .logged
                    .iter()
                    .map(|(c, e)| (check_name(*c).to_owned(), info(e)))
                    .collect(),
            })
            .collect(),
        error: v.error.as_ref().map(info),
        note: v.note.clone(),
    }
}

/// A result with no statement involved (bad reference, missing artifact, no policy).
pub fn failed_result(reference: &str, digest: Option<String>, error: ErrorInfo) -> ArtifactResult {
    ArtifactResult {
        reference: reference.to_owned(),
        digest,
        verified: false,
        policy: None,
        level: None,
        signatures: Vec::new(),
        error: Some(error),
        note: None,
    }
}

/// An [`ErrorInfo`] with a contract code.
pub fn error(code: ErrorCode, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo {
        code: code.as_str().to_owned(),
        message: message.into(),
    }
}

/// sha256 digest of bytes, `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    signet_notation::descriptor::DigestAlgorithm::Sha256.digest(bytes)
}

/// Validates an OCI digest string.
pub fn check_digest(digest: &str) -> Result<(), String> {
    signet_notation::descriptor::parse_digest(digest)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
