//! Notation trust policy documents (OCI and blob): validation, selection, levels, identities.
//!
//! Follows notation-go v1.3: documents are decoded as Go's `encoding/json` does (unknown
//! fields ignored, case-insensitive keys) and validated with the same rules; see
//! [`parse_oci`], [`parse_blob`], [`TrustPolicyDocument::select_for_reference`],
//! [`TrustPolicyDocument::select_blob`], [`resolve_actions`] and [`TrustedIdentity::matches`].
//! Nothing here panics on untrusted input; inputs are bounded ([`MAX_DOCUMENT_BYTES`],
//! [`MAX_STATEMENTS`], [`MAX_LIST_ENTRIES`]).

mod document;
mod identity;
mod json;
mod level;
mod select;

pub use document::{
    parse_blob, parse_oci, validate_scope_format, MAX_DOCUMENT_BYTES, MAX_LIST_ENTRIES,
    MAX_STATEMENTS,
};
pub use identity::DistinguishedName;
pub use level::{resolve_actions, VALIDATION_TYPES};
pub use select::{canonical_registry, canonical_repository, repository_of_reference};

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
    /// `x509.subject:<DN>`, parsed with Notation's DN rules.
    X509Subject(DistinguishedName),
    /// `<prefix>:<value>` with another prefix: accepted in a policy (as notation-go does),
    /// but Signet has no plugin to evaluate it, so it never matches.
    Other { prefix: String, value: String },
}

/// The prefix of subject identities.
pub const X509_SUBJECT_PREFIX: &str = "x509.subject";

impl TrustedIdentity {
    /// Parses one `trustedIdentities` entry: `*`, `x509.subject:<DN>` (DN checked with
    /// Notation's rules) or `<prefix>:<value>`.
    pub fn parse(identity: &str) -> Result<TrustedIdentity, String> {
        if identity.is_empty() {
            return Err(
                "has an empty trusted identity; remove it or write \"x509.subject:<DN>\""
                    .to_owned(),
            );
        }
        if identity == "*" {
            return Ok(TrustedIdentity::Any);
        }
        let Some((prefix, value)) = identity.split_once(':') else {
            return Err(format!(
                "has trusted identity {identity:?} missing separator ':'; write \"x509.subject:<DN>\""
            ));
        };
        if prefix != X509_SUBJECT_PREFIX {
            return Ok(TrustedIdentity::Other {
                prefix: prefix.to_owned(),
                value: value.to_owned(),
            });
        }
        if value.is_empty() {
            return Err(format!(
                "has trusted identity {identity:?} without an identity value; write the subject DN after \"x509.subject:\""
            ));
        }
        DistinguishedName::parse(value)
            .map(TrustedIdentity::X509Subject)
            .map_err(|e| {
                format!("has trusted identity {identity:?} with invalid identity value: {e}")
            })
    }

    /// Whether the leaf certificate satisfies this identity.
    pub fn matches(&self, leaf: &Certificate) -> bool {
        match self {
            TrustedIdentity::Any => true,
            TrustedIdentity::X509Subject(dn) => dn.matches_certificate(leaf),
            TrustedIdentity::Other { .. } => false,
        }
    }
}

impl std::fmt::Display for TrustedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustedIdentity::Any => f.write_str("*"),
            TrustedIdentity::X509Subject(dn) => write!(f, "{X509_SUBJECT_PREFIX}:{dn}"),
            TrustedIdentity::Other { prefix, value } => write!(f, "{prefix}:{value}"),
        }
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

impl Statement {
    /// Whether the leaf certificate satisfies some trusted identity of the statement
    /// (`*` matches every leaf; a `skip` statement has no identities and matches none).
    pub fn trusts_identity(&self, leaf: &Certificate) -> bool {
        self.trusted_identities.iter().any(|id| id.matches(leaf))
    }

    /// Whether this is the blob global policy.
    pub fn is_global(&self) -> bool {
        matches!(self.scope, Scope::Blob { global: true })
    }
}

/// Why a document is invalid, an artifact cannot be looked up, or no statement applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is not a valid trust policy (malformed JSON, too large, or a rule of
    /// the Notation trust policy specification is broken). The message names the statement
    /// and field at fault.
    #[error("invalid trust policy: {0}")]
    Invalid(String),
    /// The document is valid but no statement applies to the artifact (or the named blob
    /// policy does not exist).
    #[error("no applicable trust policy: {0}")]
    NoApplicableStatement(String),
    /// The artifact reference (or blob policy name) given for selection is malformed.
    #[error("invalid artifact reference: {0}")]
    InvalidReference(String),
}

impl PolicyError {
    /// Whether the trust policy document itself is at fault (as opposed to the lookup).
    pub fn is_invalid_document(&self) -> bool {
        matches!(self, PolicyError::Invalid(_))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::{cases, vector};

    #[test]
    fn conformance_trusted_identity_match() {
        let all = cases("trusted-identity-match");
        let mut agree = 0;
        for case in &all {
            let id = case["id"].as_str().unwrap_or("?");
            let pem = std::fs::read(vector(case["inputs"]["leafCert"].as_str().unwrap())).unwrap();
            let leaf = Certificate::parse_pem(&pem).unwrap().remove(0);
            let parsed: Result<Vec<TrustedIdentity>, String> = case["inputs"]["trustedIdentities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| TrustedIdentity::parse(v.as_str().unwrap()))
                .collect();
            // As notation-go: an identity that does not parse fails the whole check.
            let got = parsed
                .map(|ids| ids.iter().any(|i| i.matches(&leaf)))
                .unwrap_or(false);
            assert_eq!(
                got,
                case["expected_signet"]["match"].as_bool().unwrap(),
                "{id}"
            );
            agree += 1;
        }
        eprintln!("trusted-identity-match: {agree}/{} agree", all.len());
    }

    /// Self-signed test certificate (no key kept), subject
    /// `DC=example,DC=com,C=US,ST=WA,O=Org,OU=Team A,OU=Team B,CN=Signer,emailAddress=signer@example.com`.
    const REPEATED_AND_UNCOMMON: &str = "-----BEGIN CERTIFICATE-----\nMIICsTCCAlegAwIBAgIUeKSZ4UsPhTuxSodAaVY7vBULEBwwCgYIKoZIzj0EAwIw\ngawxFzAVBgoJkiaJk/IsZAEZFgdleGFtcGxlMRMwEQYKCZImiZPyLGQBGRYDY29t\nMQswCQYDVQQGEwJVUzELMAkGA1UECAwCV0ExDDAKBgNVBAoMA09yZzEPMA0GA1UE\nCwwGVGVhbSBBMQ8wDQYDVQQLDAZUZWFtIEIxDzANBgNVBAMMBlNpZ25lcjEhMB8G\nCSqGSIb3DQEJARYSc2lnbmVyQGV4YW1wbGUuY29tMCAXDTI2MTIwMjAxNTg1OVoY\nDzIxMjYxMTA4MDE1ODU5WjCBrDEXMBUGCgmSJomT8ixkARkWB2V4YW1wbGUxEzAR\nBgoJkiaJk/IsZAEZFgNjb20xCzAJBgNVBAYTAlVTMQswCQYDVQQIDAJXQTEMMAoG\nA1UECgwDT3JnMQ8wDQYDVQQLDAZUZWFtIEExDzANBgNVBAsMBlRlYW0gQjEPMA0G\nA1UEAwwGU2lnbmVyMSEwHwYJKoZIhvcNAQkBFhJzaWduZXJAZXhhbXBsZS5jb20w\nWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATrbDV6SBq0073ZXooz/uK++mT6RBKN\ntdf508ggUL8VAs+PDJvirUPoawrfSbIchHaYyhoalX9CW2c19HZhYkjxo1MwUTAd\nBgNVHQ4EFgQUEMserEWdReQh5aG0E74JTJeLBAAwHwYDVR0jBBgwFoAUEMserEWd\nReQh5aG0E74JTJeLBAAwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF\nAiEAzjQ/fL8FILF6t73hhS2VCfylJa2FCLbqr9m+rQqU96ICIB6kqnFl6bx6r0kG\nZ751B0hjcpP0qwcIh7AKiseLKl2V\n-----END CERTIFICATE-----";

    /// Self-signed test certificate (no key kept), subject
    /// `DC=example,DC=com,C=US,ST=WA,O=Org,OU=Team A,CN=Signer,emailAddress=signer@example.com`.
    const UNCOMMON: &str = "-----BEGIN CERTIFICATE-----\nMIICjzCCAjWgAwIBAgIUUTqydZdYHi69Svbxcg7XdfB/TJkwCgYIKoZIzj0EAwIw\ngZsxFzAVBgoJkiaJk/IsZAEZFgdleGFtcGxlMRMwEQYKCZImiZPyLGQBGRYDY29t\nMQswCQYDVQQGEwJVUzELMAkGA1UECAwCV0ExDDAKBgNVBAoMA09yZzEPMA0GA1UE\nCwwGVGVhbSBBMQ8wDQYDVQQDDAZTaWduZXIxITAfBgkqhkiG9w0BCQEWEnNpZ25l\nckBleGFtcGxlLmNvbTAgFw0yNjEyMDUxMzE5MTRaGA8yMTI2MTExMTEzMTkxNFow\ngZsxFzAVBgoJkiaJk/IsZAEZFgdleGFtcGxlMRMwEQYKCZImiZPyLGQBGRYDY29t\nMQswCQYDVQQGEwJVUzELMAkGA1UECAwCV0ExDDAKBgNVBAoMA09yZzEPMA0GA1UE\nCwwGVGVhbSBBMQ8wDQYDVQQDDAZTaWduZXIxITAfBgkqhkiG9w0BCQEWEnNpZ25l\nckBleGFtcGxlLmNvbTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOfOZxOCltu8\nRxJC+ADIq7NwSuYPfghWtb6uHPG/75Zh76vOKIJfPqr+WQAystnZBEul0leL8uYv\nXp4GT1hBm+WjUzBRMB0GA1UdDgQWBBROdX/xHI8yY3QjXLTUyCXRA6+owTAfBgNV\nHSMEGDAWgBROdX/xHI8yY3QjXLTUyCXRA6+owTAPBgNVHRMBAf8EBTADAQH/MAoG\nCCqGSM49BAMCA0gAMEUCIQDnT0qvfySkU/v54IW6K0Sedq7cELshcxxFa6/J/MAY\nhAIgHMeET9jYfqqskuwE3hEXC42B8MEahNJ56ZyDUK1AL7o=\n-----END CERTIFICATE-----";

    /// Self-signed test certificate (no key kept), subject `C=US,ST=WA,O=Org,CN=Bad=#CN`.
    const EQUALS_HASH: &str = "-----BEGIN CERTIFICATE-----\nMIIByzCCAXGgAwIBAgIUGeVOkTeAu3O7/9jCdo2+iEZgnDswCgYIKoZIzj0EAwIw\nOjELMAkGA1UEBhMCVVMxCzAJBgNVBAgMAldBMQwwCgYDVQQKDANPcmcxEDAOBgNV\nBAMMB0JhZD0jQ04wIBcNMjYxMjAyMDE1ODU5WhgPMjEyNjExMDgwMTU4NTlaMDox\nCzAJBgNVBAYTAlVTMQswCQYDVQQIDAJXQTEMMAoGA1UECgwDT3JnMRAwDgYDVQQD\nDAdCYWQ9I0NOMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjQz1EDwoq5eqjLww\nJuiFG0KeyFGGrgGGYjVPKaAgc+5itJ8iWgjwomscRZITs54AJpL5k+1jf21aVnwe\nE6/rL6NTMFEwHQYDVR0OBBYEFO95U30MRMkVkKLxGlUxBlEcZJ+ZMB8GA1UdIwQY\nMBaAFO95U30MRMkVkKLxGlUxBlEcZJ+ZMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI\nzj0EAwIDSAAwRQIgd0WUp8Kcyo7AntMw6fRPmvqBQgZW0Gnrdd1WRRwgQ9cCIQC8\n8feuMvLJLilweZJEHSRLhi5omy56hpF822mxDR6Nkg==\n-----END CERTIFICATE-----";

    fn leaf(pem: &str) -> Certificate {
        Certificate::parse_pem(pem.as_bytes()).unwrap().remove(0)
    }

    fn id(s: &str) -> TrustedIdentity {
        TrustedIdentity::parse(s).unwrap()
    }

    #[test]
    fn deviation_b_uncommon_attributes_match() {
        let cert = leaf(UNCOMMON);
        for ok in [
            "x509.subject:C=US,ST=WA,O=Org",
            "x509.subject:C=US,S=WA,O=Org,CN=Signer",
            "x509.subject:C=US,ST=WA,O=Org,OU=Team A",
            "x509.subject:C=US,ST=WA,O=Org,emailAddress=signer@example.com",
            "x509.subject:C=US,ST=WA,O=Org,E=signer@example.com",
            "x509.subject:C=US,ST=WA,O=Org,1.2.840.113549.1.9.1=signer@example.com",
            "x509.subject:C=US,ST=WA,O=Org,DC=example",
            "x509.subject:C=US,ST=WA,O=Org,dc=com",
            "x509.subject:C=US,ST=WA,O=Org,L=",
        ] {
            assert!(id(ok).matches(&cert), "{ok}");
        }
        for no in [
            "x509.subject:C=US,ST=WA,O=Other",
            "x509.subject:C=US,ST=WA,O=Org,OU=Team C",
            "x509.subject:C=US,ST=WA,O=Org,cn=Signer",
            "x509.subject:C=US,ST=WA,O=Org,DC=org",
            "x509.subject:C=US,ST=WA,O=Org,L=Seattle",
            "x509.subject:C=US,ST=WA,O=Org,CN=Signer\\ ",
            "other:C=US,ST=WA,O=Org",
        ] {
            assert!(!id(no).matches(&cert), "{no}");
        }
        assert!(id("*").matches(&cert));
    }

    /// A repeated standard attribute type (two `OU`s) makes the subject one notation-go
    /// refuses to match: no `x509.subject` identity matches it, whatever it names.
    #[test]
    fn repeated_standard_attribute_matches_no_subject_identity() {
        let cert = leaf(REPEATED_AND_UNCOMMON);
        for no in [
            "x509.subject:C=US,ST=WA,O=Org",
            "x509.subject:C=US,ST=WA,O=Org,OU=Team A",
            "x509.subject:C=US,ST=WA,O=Org,OU=Team B",
        ] {
            assert!(!id(no).matches(&cert), "{no}");
        }
        assert!(id("*").matches(&cert));
    }

    #[test]
    fn equals_hash_in_leaf_subject_never_matches() {
        let cert = leaf(EQUALS_HASH);
        assert!(!id("x509.subject:C=US,ST=WA,O=Org").matches(&cert));
        assert!(id("*").matches(&cert));
    }
}
