//! The one place the CLI talks to `signet_notation`: loading trust policies and stores,
//! selecting statements, and verifying local artifacts through the verification core's
//! [`verifier::verify_artifact`] into the engine's verdict type ([`ImageVerdict`], rendered
//! by [`crate::output`]).
//!
//! Keeping the library's names here means a rename in the library touches one file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::bail;
use signet_engine::{ImageVerdict, VerdictError};
use signet_notation::policy::{self, Level, PolicyError, Statement, TrustPolicyDocument};
use signet_notation::revocation::RevocationSource;
use signet_notation::verifier::{
    self, ArtifactCheck, Check, Examine, Failure, TrustStores, VerifyOptions,
};
pub use signet_notation::verifier::{SignatureInput, Target};
use signet_notation::{ErrorCode, Instant};

use crate::input;

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
    NoPolicy(VerdictError),
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

fn no_policy(message: String) -> VerdictError {
    VerdictError::new(ErrorCode::NoTrustPolicy, message)
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

/// The clock, user metadata and revocation source of the CLI's local verifications
/// (`verify --oci-layout`, `blob verify`, `envelope verify`), handed to the verification
/// core as the engine hands its own.
#[derive(Debug)]
pub struct Options {
    pub at: Instant,
    pub user_metadata: BTreeMap<String, String>,
    /// Where CRLs and OCSP responses come from (the commands use [`OnlineRevocation`]);
    /// `None`: a chain with revocation information has an unknown revocation status.
    pub revocation: Option<Box<dyn RevocationSource>>,
}

/// Online revocation for the CLI's synchronous local verifications: the engine's HTTP source
/// (CRL cache, network guard, proxies) on a small runtime of its own, each fetch bounded by
/// the source's fetch timeout.
pub struct OnlineRevocation {
    // Declared before the runtime: dropped first, while the runtime is alive.
    source: signet_engine::revocation::BlockingSource,
    _runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for OnlineRevocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineRevocation").finish_non_exhaustive()
    }
}

impl OnlineRevocation {
    pub fn new(config: signet_engine::revocation::RevocationConfig) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
        // Every fetch is bounded by the fetch timeout; the deadline only caps the whole run.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
        let source = {
            let _context = runtime.enter();
            std::sync::Arc::new(signet_engine::revocation::HttpRevocationSource::new(config))
                .blocking(runtime.handle().clone(), deadline)
        };
        Ok(OnlineRevocation {
            source,
            _runtime: runtime,
        })
    }
}

impl RevocationSource for OnlineRevocation {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
        self.source.fetch_crl(url)
    }
    fn fetch_ocsp(&self, url: &str, request_der: &[u8]) -> Result<Vec<u8>, String> {
        self.source.fetch_ocsp(url, request_der)
    }
    fn crl_rejected(&self, url: &str) {
        self.source.crl_rejected(url)
    }
}

impl Options {
    /// `--at` (default: now) and `--user-metadata`, offline.
    pub fn offline(at: Option<Instant>, user_metadata: &[(String, String)]) -> Self {
        Options {
            at: input::now_or(at),
            user_metadata: user_metadata.iter().cloned().collect(),
            revocation: None,
        }
    }
}

/// A signature given as an envelope file: reported by the envelope's own digest.
pub fn envelope_file(envelope: Vec<u8>, media_type: &str) -> SignatureInput {
    SignatureInput {
        digest: sha256(&envelope),
        media_type: media_type.to_owned(),
        envelope: Ok(envelope),
    }
}

/// Verifies local artifacts under one trust policy: statement → `skip`? → stores (loaded once
/// per statement) → [`verifier::verify_artifact`] → [`ImageVerdict`].
#[derive(Debug)]
pub struct LocalVerifier {
    store_root: PathBuf,
    stores: HashMap<String, TrustStores>,
    options: Options,
}

impl LocalVerifier {
    pub fn new(store_root: &Path, options: Options) -> Self {
        LocalVerifier {
            store_root: store_root.to_owned(),
            stores: HashMap::new(),
            options,
        }
    }

    /// The verdict for `reference` under the selected statement. `signatures` is asked for
    /// only when signatures are to be verified; its `Err` is the verdict (e.g. a layout
    /// that cannot be read). Every signature is examined and reported.
    pub fn verify(
        &mut self,
        reference: &str,
        digest: Option<String>,
        selected: Selected<'_>,
        target: Target<'_>,
        signatures: impl FnOnce() -> Result<Vec<SignatureInput>, Box<ImageVerdict>>,
    ) -> anyhow::Result<ImageVerdict> {
        let statement = match selected {
            Selected::NoPolicy(e) => return Ok(ImageVerdict::failed(reference, digest, e)),
            Selected::Statement(s) => s,
        };
        if statement.level == Level::Skip {
            return Ok(ImageVerdict::skipped(reference, digest, statement));
        }
        if !self.stores.contains_key(&statement.name) {
            let loaded = load_stores_for_verification(&self.store_root, statement)?;
            self.stores.insert(statement.name.clone(), loaded);
        }
        let signatures = match signatures() {
            Ok(s) => s,
            Err(verdict) => return Ok(*verdict),
        };
        let options = VerifyOptions {
            at: self.options.at,
            user_metadata: &self.options.user_metadata,
            revocation: self.options.revocation.as_deref(),
        };
        let check = ArtifactCheck {
            target,
            statement,
            stores: &self.stores[&statement.name],
            options: &options,
        };
        let verdict = verifier::verify_artifact(&check, signatures, Examine::All);
        Ok(ImageVerdict::from_artifact(
            reference, digest, statement, &verdict, None,
        ))
    }
}

/// An envelope that could not be read, as the failure of its signature.
pub fn unreadable_envelope(message: String) -> Failure {
    Failure {
        code: ErrorCode::SignatureInvalid,
        check: Check::Integrity,
        message,
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
