//! Trust material as one immutable value: the OCI trust policy and, per statement, its stores.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use signet_notation::policy::{self, Level, Statement, TrustPolicyDocument};
use signet_notation::truststore::TrustStore;
use signet_notation::verifier::TrustStores;
use signet_registry::Reference;

use crate::{codes, VerdictError};

/// A digest used only to ask the policy which statement applies to a repository before the
/// real digest is known (selection depends on `registry/repo` alone).
const SELECTION_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The trust policy and the trust stores of each statement, loaded and validated; immutable.
/// A reload builds a new snapshot aside and swaps it in with [`Engine::set_trust`](crate::Engine::set_trust).
#[derive(Debug, Clone)]
pub struct TrustSnapshot {
    pub policy: Arc<TrustPolicyDocument>,
    /// Increases with every reload; part of every cache key.
    pub generation: u64,
    /// The stores of every non-skip statement, by statement name.
    stores: Arc<HashMap<String, Arc<TrustStores>>>,
    /// Stores that failed to load: (statement, why). Empty for [`TrustSnapshot::load`].
    load_errors: Arc<Vec<(String, String)>>,
}

/// Why trust material could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The policy file could not be read.
    #[error("cannot read trust policy {path}: {message}")]
    Unreadable { path: String, message: String },
    /// The policy document is not a valid OCI trust policy.
    #[error("{0}")]
    Invalid(String),
    /// A store named by a statement failed to load.
    #[error("trust policy statement {statement:?}: {message}")]
    Store { statement: String, message: String },
}

impl TrustSnapshot {
    /// Reads and validates an OCI trust policy and loads every store it names from `store_root`.
    /// Any invalid policy or store that fails to load is an error (the old snapshot stays).
    pub fn load(
        policy_path: &Path,
        store_root: &Path,
        generation: u64,
    ) -> Result<Self, TrustError> {
        let bytes = read_policy(policy_path)?;
        let doc = policy::parse_oci(&bytes).map_err(|e| {
            TrustError::Invalid(format!(
                "trust policy {} is not valid: {e}",
                policy_path.display()
            ))
        })?;
        let snapshot = Self::from_document(doc, store_root, generation);
        if let Some((statement, message)) = snapshot.load_errors.first() {
            return Err(TrustError::Store {
                statement: statement.clone(),
                message: message.clone(),
            });
        }
        Ok(snapshot)
    }

    /// [`TrustSnapshot::load`] with stores that live in memory (e.g. fetched from Key Vault)
    /// besides the files: a store the policy names is taken from `extra` when it is there
    /// (by type and name), else loaded from `store_root`. Any error fails, as in `load`.
    pub fn load_with_stores(
        policy_path: &Path,
        store_root: &Path,
        extra: &[TrustStore],
        generation: u64,
    ) -> Result<Self, TrustError> {
        if extra.is_empty() {
            return Self::load(policy_path, store_root, generation);
        }
        let bytes = read_policy(policy_path)?;
        let policy = policy::parse_oci(&bytes).map_err(|e| {
            TrustError::Invalid(format!(
                "trust policy {} is not valid: {e}",
                policy_path.display()
            ))
        })?;
        let mut stores = HashMap::new();
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
                    Some(s) => loaded.push(s.clone()),
                    None => {
                        loaded.push(TrustStore::load(store_root, r.store_type, &r.name).map_err(
                            |e| TrustError::Store {
                                statement: st.name.clone(),
                                message: e.to_string(),
                            },
                        )?)
                    }
                }
            }
            stores.insert(st.name.clone(), Arc::new(TrustStores::from_stores(loaded)));
        }
        Ok(TrustSnapshot {
            policy: Arc::new(policy),
            generation,
            stores: Arc::new(stores),
            load_errors: Arc::new(Vec::new()),
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
            policy: Arc::new(policy),
            generation,
            stores: Arc::new(stores),
            load_errors: Arc::new(load_errors),
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

    /// The statement that applies to the repository of `reference`.
    pub fn select(&self, reference: &Reference) -> Result<&Statement, VerdictError> {
        let digest = reference.digest().unwrap_or(SELECTION_DIGEST);
        self.policy
            .select_for_reference(&format!("{}@{digest}", reference.name()))
            .map_err(|e| codes::policy(&e))
    }
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

        // Without the in-memory store the policy cannot load.
        assert!(TrustSnapshot::load(&policy, &root, 1).is_err());
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
    }
}
