//! The trust stores a statement names, loaded once and shared by every verification under it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::policy::{Statement, TrustStoreRef};
use crate::truststore::{StoreType, TrustStore, TrustStoreError};

/// The trust stores named by a statement. A store that failed to load is kept as its error:
/// like notation-go, the failure surfaces in the check that needs the store (authenticity
/// for `ca`/`signingAuthority`, the authentic timestamp for `tsa`), not before.
#[derive(Debug, Clone, Default)]
pub struct TrustStores {
    stores: HashMap<(StoreType, String), Result<TrustStore, Arc<TrustStoreError>>>,
}

impl TrustStores {
    /// Wraps already loaded stores.
    pub fn from_stores(stores: impl IntoIterator<Item = TrustStore>) -> Self {
        TrustStores {
            stores: stores
                .into_iter()
                .map(|s| ((s.store_type, s.name.clone()), Ok(s)))
                .collect(),
        }
    }

    /// Loads exactly the stores `statement` names from a Notation trust-store root
    /// (other stores under the root are not read: they may be broken and must not matter).
    /// Failures are kept; see [`TrustStores::load_errors`].
    pub fn load_for(root: &Path, statement: &Statement) -> Self {
        let stores = statement
            .trust_stores
            .iter()
            .map(|r| {
                let loaded = TrustStore::load(root, r.store_type, &r.name).map_err(Arc::new);
                ((r.store_type, r.name.clone()), loaded)
            })
            .collect();
        TrustStores { stores }
    }

    /// The stores that failed to load, with why.
    pub fn load_errors(&self) -> impl Iterator<Item = &TrustStoreError> {
        self.stores
            .values()
            .filter_map(|s| s.as_ref().err().map(|e| &**e))
    }

    /// The store a reference names: `None` when it was never loaded, `Some(Err)` when it
    /// failed to load.
    pub fn get(&self, r: &TrustStoreRef) -> Option<Result<&TrustStore, &TrustStoreError>> {
        self.stores
            .get(&(r.store_type, r.name.clone()))
            .map(|s| s.as_ref().map_err(|e| &**e))
    }
}
