//! Access to the conformance corpus (`testdata/conformance` in the repository) for the
//! unit-level case kinds.

use std::path::PathBuf;

use serde_json::Value;

/// The repository's copy of the corpus, or `SIGNET_CONFORMANCE_DIR` when set.
pub(crate) fn conformance_dir() -> PathBuf {
    match std::env::var_os("SIGNET_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/conformance"
        )),
    }
}

/// `vectors/<rel>`.
pub(crate) fn vector(rel: &str) -> PathBuf {
    conformance_dir().join("vectors").join(rel)
}

/// Every case of `kind` in `cases.json`; panics when there is none (a renamed kind must not
/// make a test vacuous).
pub(crate) fn cases(kind: &str) -> Vec<Value> {
    let path = conformance_dir().join("cases.json");
    let text = std::fs::read_to_string(&path).expect("read cases.json");
    let doc: Value = serde_json::from_str(&text).expect("parse cases.json");
    let cases: Vec<Value> = doc["cases"]
        .as_array()
        .expect("cases array")
        .iter()
        .filter(|c| c["kind"] == kind)
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "no conformance case of kind {kind}");
    cases
}
