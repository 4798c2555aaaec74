//! Access to the shared conformance corpus (`../shared/conformance` beside the repository)
//! for the unit-level case kinds.

use std::path::PathBuf;

use serde_json::Value;

/// `shared/conformance`, found from `SIGNET_CONFORMANCE_DIR` or by walking up from this crate.
/// Panics when it cannot be found: the corpus is required, never silently skipped.
pub(crate) fn conformance_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SIGNET_CONFORMANCE_DIR") {
        return PathBuf::from(dir);
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared/conformance/cases.json");
        if candidate.is_file() {
            return dir.join("shared/conformance");
        }
        if !dir.pop() {
            panic!(
                "shared/conformance not found above {}; set SIGNET_CONFORMANCE_DIR",
                env!("CARGO_MANIFEST_DIR")
            );
        }
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
