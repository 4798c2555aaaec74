//! Notation trust policy documents (OCI and blob), validation, selection, levels, identities.
//!
//! OWNER: policy helper.
