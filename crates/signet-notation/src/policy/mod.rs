//! Notation trust policy documents (OCI and blob): validation, selection, levels, identities.
//!
//! OWNER: policy helper. The names below are the contract others code against; bodies are stubs.

use crate::cert::Certificate;
use crate::truststore::StoreType;

/// A verification level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Strict,
    Permissive,
    Audit,
    Skip,
}

/// What a failed check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fails verification.
    Enforce,
    /// Logged; verification goes on.
    Log,
    /// Not performed.
    Skip,
}

/// The action of each validation, after level and overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    pub integrity: Action,
    pub authenticity: Action,
    pub authentic_timestamp: Action,
    pub expiry: Action,
    pub revocation: Action,
}

/// `signatureVerification.verifyTimestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyTimestamp {
    #[default]
    Always,
    AfterCertExpiry,
}

/// A `type:name` entry of `trustStores`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustStoreRef {
    pub store_type: StoreType,
    pub name: String,
}

/// A `trustedIdentities` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedIdentity {
    /// `*`
    Any,
    /// `x509.subject:<DN>`; the string is the DN as written.
    X509Subject(String),
}

impl TrustedIdentity {
    /// Whether the leaf certificate satisfies this identity.
    pub fn matches(&self, leaf: &Certificate) -> bool {
        let _ = leaf;
        matches!(self, TrustedIdentity::Any)
    }
}

/// What a statement applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// OCI: `registryScopes`.
    Registry(Vec<String>),
    /// Blob: `globalPolicy`.
    Blob { global: bool },
}

/// One trust policy statement, validated.
#[derive(Debug, Clone)]
pub struct Statement {
    pub name: String,
    pub scope: Scope,
    pub level: Level,
    pub actions: Actions,
    pub verify_timestamp: VerifyTimestamp,
    pub trust_stores: Vec<TrustStoreRef>,
    pub trusted_identities: Vec<TrustedIdentity>,
}

/// A validated trust policy document (OCI or blob).
#[derive(Debug, Clone)]
pub struct TrustPolicyDocument {
    pub version: String,
    pub statements: Vec<Statement>,
}

/// Why a document is invalid or no statement applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid trust policy: {0}")]
    Invalid(String),
    #[error("no applicable trust policy: {0}")]
    NoApplicableStatement(String),
}

/// Parses and validates an OCI trust policy (`trustpolicy.json` / `trustpolicy.oci.json`).
pub fn parse_oci(bytes: &[u8]) -> Result<TrustPolicyDocument, PolicyError> {
    let _ = bytes;
    Err(PolicyError::Invalid("not implemented yet".into()))
}

/// Parses and validates a blob trust policy (`trustpolicy.blob.json`).
pub fn parse_blob(bytes: &[u8]) -> Result<TrustPolicyDocument, PolicyError> {
    let _ = bytes;
    Err(PolicyError::Invalid("not implemented yet".into()))
}

impl TrustPolicyDocument {
    /// OCI: the statement applicable to an artifact reference (`registry/repo[:tag|@digest]`);
    /// an exact repository scope beats `*`.
    pub fn select_for_reference(&self, reference: &str) -> Result<&Statement, PolicyError> {
        Err(PolicyError::NoApplicableStatement(reference.to_owned()))
    }

    /// Blob: the named statement, or the global one when `name` is `None`.
    pub fn select_blob(&self, name: Option<&str>) -> Result<&Statement, PolicyError> {
        Err(PolicyError::NoApplicableStatement(
            name.unwrap_or("").to_owned(),
        ))
    }
}
