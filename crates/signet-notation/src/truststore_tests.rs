use super::*;
use crate::test_support::{cases, vector};
use std::os::unix::fs::symlink;

/// Splits `.../x509/<type>/<name>` into (root, type, name).
fn split_store_dir(dir: &Path) -> (PathBuf, StoreType, String) {
    let name = dir
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let ty_dir = dir.parent().expect("type dir");
    let ty =
        StoreType::parse(&ty_dir.file_name().expect("type").to_string_lossy()).expect("store type");
    let root = ty_dir
        .parent()
        .and_then(Path::parent)
        .expect("root")
        .to_owned();
    (root, ty, name)
}

#[test]
fn conformance_truststore_load_cases() {
    let all = cases("truststore-load");
    let mut failures = Vec::new();
    for case in &all {
        let id = case["id"].as_str().unwrap_or_default();
        let want = case["expected_signet"]["ok"]
            .as_bool()
            .expect("expected_signet.ok");
        let dir = vector(case["inputs"]["dir"].as_str().expect("inputs.dir"));
        let (root, ty, name) = split_store_dir(&dir);
        if let Some(t) = case["inputs"]["type"].as_str() {
            assert_eq!(StoreType::parse(t), Some(ty), "{id}");
        }
        let got = TrustStore::load(&root, ty, &name);
        if got.is_ok() != want {
            failures.push(format!("{id}: expected ok={want}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    assert!(all.len() >= 8);
}

fn store_files(rel: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(vector(rel))
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn kubernetes_layout_loads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("x509/ca/k8s");
    let data_dir = store.join("..2025_06_01_00_00_00.000000001");
    fs::create_dir_all(&data_dir).expect("mkdir");
    let files = store_files("notation-go/verifier/testdata/truststore/x509/ca/valid-trust-store");
    assert!(!files.is_empty());
    for f in &files {
        fs::copy(f, data_dir.join(f.file_name().expect("name"))).expect("copy");
    }
    symlink("..2025_06_01_00_00_00.000000001", store.join("..data")).expect("symlink");
    for f in &files {
        let name = f.file_name().expect("name");
        symlink(Path::new("..data").join(name), store.join(name)).expect("symlink");
    }
    // An unrelated sub-directory and a symlink to a directory are ignored too.
    fs::create_dir(store.join("subdir")).expect("mkdir");
    fs::write(store.join("subdir/garbage"), b"not a certificate").expect("write");
    symlink("subdir", store.join("link-to-dir")).expect("symlink");

    let loaded =
        TrustStore::load(tmp.path(), StoreType::Ca, "k8s").expect("kubernetes store loads");
    let direct = TrustStore::load(
        &vector("notation-go/verifier/testdata/truststore"),
        StoreType::Ca,
        "valid-trust-store",
    )
    .expect("direct store loads");
    assert_eq!(loaded.certificates, direct.certificates);
    assert_eq!(loaded.name, "k8s");
    assert_eq!(loaded.store_type, StoreType::Ca);
}

#[test]
fn errors_name_the_problem() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        TrustStore::load(tmp.path(), StoreType::Ca, "missing"),
        Err(TrustStoreError::NotFound { .. })
    ));
    assert!(matches!(
        TrustStore::load(tmp.path(), StoreType::Ca, "../x"),
        Err(TrustStoreError::InvalidName { .. })
    ));
    assert!(matches!(
        TrustStore::load(tmp.path(), StoreType::Ca, ".."),
        Err(TrustStoreError::InvalidName { .. })
    ));
    let empty = tmp.path().join("x509/ca/empty");
    fs::create_dir_all(&empty).expect("mkdir");
    assert!(matches!(
        TrustStore::load(tmp.path(), StoreType::Ca, "empty"),
        Err(TrustStoreError::Empty { .. })
    ));
    let big = tmp.path().join("x509/ca/big");
    fs::create_dir_all(&big).expect("mkdir");
    fs::write(
        big.join("huge.pem"),
        vec![b'A'; (MAX_CERT_FILE_BYTES + 1) as usize],
    )
    .expect("write");
    assert!(matches!(
        TrustStore::load(tmp.path(), StoreType::Ca, "big"),
        Err(TrustStoreError::FileTooLarge { .. })
    ));
    let dangling = tmp.path().join("x509/ca/dangling");
    fs::create_dir_all(&dangling).expect("mkdir");
    symlink("nowhere", dangling.join("cert.pem")).expect("symlink");
    let err =
        TrustStore::load(tmp.path(), StoreType::Ca, "dangling").expect_err("dangling symlink");
    assert!(err.to_string().contains("cert.pem"), "{err}");

    // Leaf certificate: the message names the file.
    let root = vector("notation-go/verifier/testdata/truststore");
    let err =
        TrustStore::load(&root, StoreType::Ca, "trust-store-with-leaf-certs").expect_err("leaf");
    assert!(
        matches!(err, TrustStoreError::NotCaOrSelfSigned { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("non-ca.crt"), "{err}");
    let err =
        TrustStore::load(&root, StoreType::Tsa, "test-nonSelfIssued").expect_err("not self-issued");
    assert!(matches!(err, TrustStoreError::NotRootCa { .. }), "{err:?}");
}

#[test]
fn no_validity_check_on_load() {
    // ca/valid-trust-store holds a certificate valid only from 2099.
    let root = vector("notation-go/verifier/testdata/truststore");
    let store = TrustStore::load(&root, StoreType::Ca, "valid-trust-store").expect("loads");
    assert!(!store.certificates.is_empty());
}
