//! Trust material as one immutable value: the OCI trust policy and, per statement, its stores.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use signet_notation::policy::{self, Level, Statement, TrustPolicyDocument};
use signet_notation::truststore::TrustStore;
use signet_notation::verifier::TrustStores;
use signet_registry::Reference;

use crate::{codes, VerdictError};

/// The trust policy and the trust stores of each statement, loaded and validated; immutable.
/// A reload builds a new snapshot aside and swaps it in with [`Engine::set_trust`](crate::Engine::set_trust).
#[derive(Debug, Clone)]
pub struct TrustSnapshot {
    pub policy: Arc<TrustPolicyDocument>,
    /// Increases with every reload; part of every cache key.
    pub generation: u64,
    /// The policy's statements, in its order, each shareable by a verification.
    statements: Arc<Vec<Arc<Statement>>>,
    /// The stores of every non-skip statement, by statement name.
    stores: Arc<HashMap<String, Arc<TrustStores>>>,
    /// Stores named by the policy that are missing, empty or unreadable: (statement, why).
    load_errors: Arc<Vec<(String, String)>>,
    /// The policy's scopes in canonical form, made at the first selection, with the address
    /// of the policy they were made from (`policy` is a public field: a replaced policy is
    /// not answered from the index of the old one).
    selector: OnceLock<(usize, Arc<Selector>)>,
}

/// Statement selection without canonicalising every scope of the policy for every key.
#[derive(Debug, Default)]
struct Selector {
    /// Canonical scope → statement index; `None` when two statements name it (ambiguous:
    /// the document's own selection gives the error).
    exact: HashMap<String, Option<usize>>,
    /// The last statement with the `*` scope, as the document's selection takes it.
    wildcard: Option<usize>,
}

impl Selector {
    fn of(policy: &TrustPolicyDocument) -> Selector {
        let mut s = Selector::default();
        for (i, st) in policy.statements.iter().enumerate() {
            let policy::Scope::Registry(scopes) = &st.scope else {
                continue;
            };
            for scope in scopes {
                if scope == "*" {
                    s.wildcard = Some(i);
                } else {
                    s.exact
                        .entry(policy::canonical_repository(scope))
                        .and_modify(|e| {
                            if *e != Some(i) {
                                *e = None;
                            }
                        })
                        .or_insert(Some(i));
                }
            }
        }
        s
    }
}

/// Why trust material could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The policy file could not be read.
    #[error("cannot read trust policy file {path}: {message}")]
    Unreadable { path: String, message: String },
    /// The policy document is not a valid OCI trust policy.
    #[error("{0}")]
    Invalid(String),
    /// A store named by a statement failed to load (no longer returned by the loaders:
    /// such a store is absent from the snapshot and listed in its load errors).
    #[error("trust policy statement {statement:?}: {message}")]
    Store { statement: String, message: String },
}

impl TrustSnapshot {
    /// Reads and validates an OCI trust policy and loads every store it names from
    /// `store_root`. Only an unreadable or invalid policy is an error (the caller keeps the
    /// trust in use: a typo must not take admission down). A store that is missing, empty
    /// or unreadable is absent from the snapshot — checks that need it fail
    /// (`UNTRUSTED_SIGNER`) — and listed in [`TrustSnapshot::load_errors`], which makes the
    /// engine not ready: removing trust material takes effect instead of leaving the old
    /// snapshot in use forever.
    pub fn load(
        policy_path: &Path,
        store_root: &Path,
        generation: u64,
    ) -> Result<Self, TrustError> {
        Self::load_with_stores(policy_path, store_root, &[], generation)
    }

    /// [`TrustSnapshot::load`] with stores that live in memory (e.g. fetched from Key Vault)
    /// besides the files: a store the policy names is taken from `extra` when it is there
    /// (by type and name), else loaded from `store_root`. The snapshot holds exactly these:
    /// a store dropped from `extra` (a disabled or deleted Key Vault certificate) is not
    /// carried over from an older snapshot.
    pub fn load_with_stores(
        policy_path: &Path,
        store_root: &Path,
        extra: &[TrustStore],
        generation: u64,
    ) -> Result<Self, TrustError> {
        let policy = read_document(policy_path)?;
        let mut stores = HashMap::new();
        let mut load_errors = Vec::new();
        for st in &policy.statements {
            if st.level == Level::Skip {
                continue;
            }
            let mut loaded = Vec::new();
            for r in &st.trust_stores {
                let found = extra
                    .iter()
                    .find(|s| s.store_type == r.store_type && s.name == r.name);
                match found {
                    // Every certificate of the store was dropped at its source (disabled or
                    // deleted in the vault): as unusable as an emptied file store.
                    Some(s) if s.certificates.is_empty() => load_errors.push((
                        st.name.clone(),
                        format!(
                            "trust store {}:{} holds no certificate: its source no longer offers any (disabled or deleted?)",
                            r.store_type.as_str(),
                            r.name
                        ),
                    )),
                    Some(s) => loaded.push(s.clone()),
                    None => match TrustStore::load(store_root, r.store_type, &r.name) {
                        Ok(s) => loaded.push(s),
                        Err(e) => load_errors.push((
                            st.name.clone(),
                            format!(
                                "trust store {}:{} is not usable: {e}",
                                r.store_type.as_str(),
                                r.name
                            ),
                        )),
                    },
                }
            }
            stores.insert(st.name.clone(), Arc::new(TrustStores::from_stores(loaded)));
        }
        Ok(TrustSnapshot {
            statements: Arc::new(policy.statements.iter().cloned().map(Arc::new).collect()),
            policy: Arc::new(policy),
            generation,
            stores: Arc::new(stores),
            load_errors: Arc::new(load_errors),
            selector: OnceLock::new(),
        })
    }

    /// A snapshot of an already validated document; stores that fail to load are tolerated
    /// (the check needing such a store fails, as in notation) and listed in
    /// [`TrustSnapshot::load_errors`]. For the CLI; a service uses [`TrustSnapshot::load`].
    pub fn from_document(policy: TrustPolicyDocument, store_root: &Path, generation: u64) -> Self {
        let mut stores = HashMap::new();
        let mut load_errors = Vec::new();
        for st in &policy.statements {
            if st.level == Level::Skip {
                continue;
            }
            let loaded = TrustStores::load_for(store_root, st);
            for e in loaded.load_errors() {
                load_errors.push((st.name.clone(), e.to_string()));
            }
            stores.insert(st.name.clone(), Arc::new(loaded));
        }
        TrustSnapshot {
            statements: Arc::new(policy.statements.iter().cloned().map(Arc::new).collect()),
            policy: Arc::new(policy),
            generation,
            stores: Arc::new(stores),
            load_errors: Arc::new(load_errors),
            selector: OnceLock::new(),
        }
    }

    /// The stores of a (non-skip) statement.
    pub fn stores_for(&self, statement: &str) -> Option<&Arc<TrustStores>> {
        self.stores.get(statement)
    }

    /// Stores that failed to load, as (statement name, reason).
    pub fn load_errors(&self) -> &[(String, String)] {
        &self.load_errors
    }

    /// Why this snapshot cannot give every verdict its policy asks for (a store it names is
    /// missing, empty or unreadable); `None` when complete.
    pub fn incomplete_reason(&self) -> Option<String> {
        if self.load_errors.is_empty() {
            return None;
        }
        let each: Vec<String> = self
            .load_errors
            .iter()
            .map(|(statement, why)| format!("statement {statement:?}: {why}"))
            .collect();
        Some(format!(
            "trust material incomplete (generation {}): {}; signatures that need it are not trusted (UNTRUSTED_SIGNER) until the store is restored",
            self.generation,
            each.join("; ")
        ))
    }

    /// The statement that applies to the repository of `reference`; both the reference and
    /// the policy's scopes are compared in canonical form (host case, port 443, Docker Hub
    /// aliases: [`policy::canonical_repository`]).
    pub fn select(&self, reference: &Reference) -> Result<Arc<Statement>, VerdictError> {
        self.select_repository(&reference.name())
    }

    /// [`TrustSnapshot::select`] for a repository name `registry/repo`: the same answer as
    /// [`TrustPolicyDocument::select_for_repository`], from an index of the canonical scopes
    /// (an ambiguous or unknown name goes to the document's own selection for its error).
    /// The document's own statement, shared: a verification holds it (not its name), so what
    /// it verifies under cannot go missing halfway.
    pub fn select_repository(&self, name: &str) -> Result<Arc<Statement>, VerdictError> {
        let policy_at = Arc::as_ptr(&self.policy) as usize;
        let (made_from, selector) = self
            .selector
            .get_or_init(|| (policy_at, Arc::new(Selector::of(&self.policy))));
        if *made_from == policy_at && policy::validate_scope_format(name).is_ok() {
            let found = match selector.exact.get(&policy::canonical_repository(name)) {
                Some(exact) => *exact,
                None => selector.wildcard,
            };
            if let Some(st) = found.and_then(|i| self.statements.get(i)) {
                return Ok(st.clone());
            }
        }
        let selected = self
            .policy
            .select_for_repository(name)
            .map_err(|e| codes::policy(&e))?;
        let shared = self
            .policy
            .statements
            .iter()
            .position(|s| std::ptr::eq(s, selected))
            .and_then(|i| self.statements.get(i));
        Ok(match shared {
            Some(s) => s.clone(),
            None => Arc::new(selected.clone()),
        })
    }
}

/// Reads, parses and validates an OCI trust policy, including that no two statements name
/// the same repository once scopes are in canonical form.
/// Reads and validates an OCI trust policy file: the one loader of the service and every
/// CLI command (size-bounded; Notation's rules, and two statements naming one repository in
/// canonical form refused). Errors name the file and what is wrong.
pub fn read_oci_policy(policy_path: &Path) -> Result<TrustPolicyDocument, TrustError> {
    read_document(policy_path)
}

fn read_document(policy_path: &Path) -> Result<TrustPolicyDocument, TrustError> {
    let bytes = read_policy(policy_path)?;
    let doc = policy::parse_oci(&bytes).map_err(|e| {
        let message = match e {
            policy::PolicyError::Invalid(m)
            | policy::PolicyError::NoApplicableStatement(m)
            | policy::PolicyError::InvalidReference(m) => m,
        };
        TrustError::Invalid(format!(
            "trust policy {} is not valid: {message}",
            policy_path.display()
        ))
    })?;
    if let Some((a, b, repository)) = doc.canonical_scope_conflict() {
        return Err(TrustError::Invalid(format!(
            "trust policy {} is not valid: statements {a:?} and {b:?} both name the repository {repository:?} (registry scopes are compared with the host lower-cased, port 443 dropped and Docker Hub aliases as docker.io/library/...); keep it in one statement",
            policy_path.display()
        )));
    }
    Ok(doc)
}

fn read_policy(path: &Path) -> Result<Vec<u8>, TrustError> {
    let unreadable = |message: String| TrustError::Unreadable {
        path: path.display().to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(policy::MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() > policy::MAX_DOCUMENT_BYTES {
        return Err(unreadable(format!(
            "larger than the limit of {} bytes",
            policy::MAX_DOCUMENT_BYTES
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_notation::cert::Certificate;
    use signet_notation::truststore::StoreType;

    #[test]
    fn in_memory_stores_join_the_file_stores() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = dir.path().join("trustpolicy.json");
        std::fs::write(
            &policy,
            r#"{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],
               "signatureVerification":{"level":"strict"},
               "trustStores":["ca:files","ca:vault"],"trustedIdentities":["*"]}]}"#,
        )
        .expect("policy");
        let root = dir.path().join("store");
        let files = root.join("x509/ca/files");
        std::fs::create_dir_all(&files).expect("dirs");
        let file_ca = signet_testkit::TestCa::new("File CA", signet_testkit::KeyKind::P256);
        std::fs::write(files.join("ca.pem"), file_ca.cert_pem()).expect("ca");
        let vault_ca = signet_testkit::TestCa::new("Vault CA", signet_testkit::KeyKind::P256);
        let vault = TrustStore {
            store_type: StoreType::Ca,
            name: "vault".into(),
            certificates: vec![Certificate::from_der(vault_ca.cert_der().to_vec()).expect("der")],
        };

        // Without the in-memory store the snapshot lacks it (and says so).
        let partial = TrustSnapshot::load(&policy, &root, 1).expect("policy loads");
        assert_eq!(partial.load_errors().len(), 1);
        assert!(partial.incomplete_reason().unwrap().contains("ca:vault"));
        let snap = TrustSnapshot::load_with_stores(&policy, &root, &[vault], 2).expect("loads");
        assert_eq!(snap.generation, 2);
        assert!(snap.load_errors().is_empty());
        let stores = snap.stores_for("p").expect("stores");
        for name in ["files", "vault"] {
            let r = signet_notation::policy::TrustStoreRef {
                store_type: StoreType::Ca,
                name: name.into(),
            };
            assert!(matches!(stores.get(&r), Some(Ok(_))), "{name}");
        }

        // The in-memory store is withdrawn (disabled in Key Vault): the next snapshot does
        // not carry it over.
        let withdrawn = TrustSnapshot::load_with_stores(&policy, &root, &[], 3).expect("loads");
        assert_eq!(withdrawn.load_errors().len(), 1);
        let vault = signet_notation::policy::TrustStoreRef {
            store_type: StoreType::Ca,
            name: "vault".into(),
        };
        assert!(withdrawn
            .stores_for("p")
            .expect("stores")
            .get(&vault)
            .is_none());
    }
}
