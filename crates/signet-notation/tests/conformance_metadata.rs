//! The conformance cases that need `--user-metadata`, which the CONTRACT.md CLI of
//! `envelope verify` / `blob verify` does not have: driven through the library. And the check
//! that the repository's copy of the corpus (`testdata/conformance`) is still the shared one.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use signet_notation::policy::{parse_blob, parse_oci};
use signet_notation::verifier::{verify_signature, Target, TrustStores, VerifyOptions};
use signet_notation::Descriptor;

/// The repository's copy of the corpus, or `SIGNET_CONFORMANCE_DIR` when set.
fn conformance_dir() -> PathBuf {
    match std::env::var_os("SIGNET_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repository_copy(),
    }
}

fn repository_copy() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/conformance"
    ))
}

/// Sets the level of every statement, as the case's `policyLevelOverride` asks.
fn policy_bytes(path: &PathBuf, level: Option<&str>) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    if let Some(level) = level {
        for st in doc["trustPolicies"].as_array_mut().unwrap() {
            st["signatureVerification"]["level"] = Value::from(level);
        }
    }
    serde_json::to_vec(&doc).unwrap()
}

#[test]
fn user_metadata_cases_agree() {
    let dir = conformance_dir();
    let vectors = dir.join("vectors");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let mut ran = 0;
    for case in doc["cases"].as_array().unwrap() {
        let kind = case["kind"].as_str().unwrap();
        if !(kind == "oci-verify" || kind == "blob-verify")
            || case["signet"].get("unit_only").is_none()
        {
            continue;
        }
        let inputs = &case["inputs"];
        let id = case["id"].as_str().unwrap();
        let metadata: BTreeMap<String, String> =
            serde_json::from_value(inputs["userMetadata"].clone()).unwrap();
        let at = time::OffsetDateTime::parse(
            case["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let envelope = std::fs::read(vectors.join(inputs["envelope"].as_str().unwrap())).unwrap();
        let media_type = inputs["signatureMediaType"].as_str().unwrap();
        let policy_path = vectors.join(inputs["trustPolicy"].as_str().unwrap());
        let level = inputs["policyLevelOverride"].as_str();
        let store_root = tempfile::tempdir().unwrap();
        if let Some(stores) = inputs["trustStore"].as_object() {
            for (name, files) in stores {
                let d = store_root.path().join("x509").join(name);
                std::fs::create_dir_all(&d).unwrap();
                for f in files.as_array().unwrap() {
                    let src = vectors.join(f.as_str().unwrap());
                    std::fs::copy(&src, d.join(src.file_name().unwrap())).unwrap();
                }
            }
        }
        let root = match inputs["trustStoreRoot"].as_str() {
            Some(r) => vectors.join(r),
            None => store_root.path().to_path_buf(),
        };
        let options = VerifyOptions {
            at,
            user_metadata: &metadata,
            revocation: None,
        };
        let verdict = if kind == "oci-verify" {
            let policy = parse_oci(&policy_bytes(&policy_path, level)).unwrap();
            let statement = policy
                .select_for_reference(inputs["artifactReference"].as_str().unwrap())
                .unwrap();
            let stores = TrustStores::load_for(&root, statement);
            let descriptor: Descriptor =
                serde_json::from_value(inputs["targetDescriptor"].clone()).unwrap();
            verify_signature(
                &envelope,
                media_type,
                Target::Oci(&descriptor),
                statement,
                &stores,
                &options,
            )
        } else {
            let policy = parse_blob(&policy_bytes(&policy_path, level)).unwrap();
            let statement = policy
                .select_blob(inputs["trustPolicyName"].as_str())
                .unwrap();
            let stores = TrustStores::load_for(&root, statement);
            let blob = std::fs::read(vectors.join(inputs["blob"].as_str().unwrap())).unwrap();
            let media_type_of_blob = inputs["blobDescriptor"]["mediaType"].as_str();
            verify_signature(
                &envelope,
                media_type,
                Target::Blob {
                    content: &blob,
                    media_type: media_type_of_blob,
                },
                statement,
                &stores,
                &options,
            )
        };
        let expected = case["expected_signet"]["verified"].as_bool().unwrap();
        assert_eq!(verdict.verified, expected, "{id}: {:?}", verdict.failure);
        ran += 1;
    }
    assert_eq!(ran, 6, "the six user-metadata cases");
}

/// Every file under `root` (recursively), as paths relative to it, but the top-level
/// `README.md` (the repository's copy has its own).
fn corpus_files(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out.remove(Path::new("README.md"));
    out
}

/// The repository carries a copy of the shared corpus so that it tests itself with nothing
/// beside it; where the shared corpus is present (`../shared/conformance` beside the
/// repository), an update of it must not go unnoticed.
#[test]
fn shared_corpus_matches_the_repository_copy() {
    let copy = repository_copy();
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    let Ok(shared) = std::fs::canonicalize(&shared) else {
        eprintln!(
            "no shared corpus at {}: nothing to compare the repository copy with",
            shared.display()
        );
        return;
    };
    let ours = corpus_files(&copy);
    let theirs = corpus_files(&shared);
    let mut differences = Vec::new();
    for path in theirs.union(&ours) {
        let line = match (theirs.contains(path), ours.contains(path)) {
            (true, false) => "missing from the repository copy",
            (false, true) => "not in the shared corpus",
            _ if std::fs::read(shared.join(path)).unwrap()
                != std::fs::read(copy.join(path)).unwrap() =>
            {
                "differs"
            }
            _ => continue,
        };
        differences.push(format!("  {}: {line}", path.display()));
    }
    assert!(
        differences.is_empty(),
        "testdata/conformance is not a copy of {} ({} files):\n{}\nrefresh it as testdata/conformance/README.md says",
        shared.display(),
        differences.len(),
        differences.join("\n")
    );
    assert!(ours.len() > 200, "the corpus copy looks empty");
}
