//! Named trust stores in Notation's layout: `ROOT/x509/{ca,signingAuthority,tsa}/NAME/`.
//!
//! OWNER: chain helper. Contract: `StoreType { Ca, SigningAuthority, Tsa }` (+ `as_str`,
//! `parse`), `TrustStore { store_type, name, certificates: Vec<Certificate> }`,
//! `TrustStore::load(root: &Path, StoreType, name: &str) -> Result<TrustStore, TrustStoreError>`.
