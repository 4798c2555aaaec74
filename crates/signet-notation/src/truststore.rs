//! Named trust stores in Notation's layout: `ROOT/x509/{ca,signingAuthority,tsa}/NAME/`.
//!
//! OWNER: chain helper. The names below are the contract others code against; bodies are stubs.

use std::path::{Path, PathBuf};

use crate::cert::Certificate;

/// The three store types of Notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreType {
    /// `ca`: roots of code-signing chains (scheme `notary.x509`).
    Ca,
    /// `signingAuthority`: roots of signing-authority chains (scheme `notary.x509.signingAuthority`).
    SigningAuthority,
    /// `tsa`: roots of timestamping chains.
    Tsa,
}

impl StoreType {
    /// The directory and policy prefix name (`ca`, `signingAuthority`, `tsa`).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreType::Ca => "ca",
            StoreType::SigningAuthority => "signingAuthority",
            StoreType::Tsa => "tsa",
        }
    }

    /// Inverse of [`StoreType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ca" => Some(StoreType::Ca),
            "signingAuthority" => Some(StoreType::SigningAuthority),
            "tsa" => Some(StoreType::Tsa),
            _ => None,
        }
    }
}

/// One named trust store, loaded.
#[derive(Debug, Clone)]
pub struct TrustStore {
    pub store_type: StoreType,
    pub name: String,
    pub certificates: Vec<Certificate>,
}

/// Why a named store could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    #[error("trust store {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl TrustStore {
    /// Loads `root/x509/<type>/<name>/`.
    pub fn load(
        root: &Path,
        store_type: StoreType,
        name: &str,
    ) -> Result<TrustStore, TrustStoreError> {
        Err(TrustStoreError::Invalid {
            path: root.join("x509").join(store_type.as_str()).join(name),
            reason: "not implemented yet".into(),
        })
    }
}
