//! The OCI layout reader against the real layouts of the conformance corpus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use signet::oci_layout::{LayoutError, LayoutReference, OciLayout, Selector};

const SUBJECT: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

fn layouts() -> PathBuf {
    let base = match std::env::var_os("SIGNET_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance"),
    };
    base.join("vectors/notation/test/e2e/testdata/registry/oci_layout")
}

fn open(name: &str) -> OciLayout {
    OciLayout::open(&layouts().join(name)).unwrap()
}

#[test]
fn resolves_tag_and_digest() {
    let layout = open("e2e-valid-signature");
    let d = layout.resolve(&Selector::Tag("v1".into())).unwrap();
    assert_eq!(d.digest, SUBJECT);
    assert_eq!(d.size, 517);
    assert_eq!(d.media_type, "application/vnd.oci.image.manifest.v1+json");
    let by_digest = layout.resolve(&Selector::Digest(SUBJECT.into())).unwrap();
    assert_eq!(by_digest.digest, SUBJECT);
    assert!(matches!(
        layout.resolve(&Selector::Tag("v2".into())),
        Err(LayoutError::NotFound(_))
    ));
}

#[test]
fn finds_signatures_through_referrers_and_tag_schema_deduplicated() {
    let layout = open("e2e-valid-multiple-signatures");
    let target = layout.resolve(&Selector::Tag("v1".into())).unwrap();
    let sigs = layout.signatures(&target).unwrap();
    let mut digests: Vec<_> = sigs.iter().map(|s| s.manifest_digest.as_str()).collect();
    digests.sort_unstable();
    assert_eq!(
        digests,
        [
            "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f",
            "sha256:c3ebe4a20b6832328fc5078a7795ddc1114b896e13fca2add38109c3866b5fbf"
        ]
    );
    for s in &sigs {
        assert_eq!(s.envelope_media_type, "application/jose+json");
        let env = s.envelope.as_ref().unwrap();
        assert!(env.starts_with(b"{"));
    }
}

#[test]
fn unsigned_layout_has_no_signatures() {
    let layout = open("e2e");
    let target = layout.resolve(&Selector::Tag("v1".into())).unwrap();
    assert!(layout.signatures(&target).unwrap().is_empty());
}

#[test]
fn non_envelope_layer_is_reported_with_its_media_type() {
    let layout = open("e2e-invalid-signature");
    let target = layout.resolve(&Selector::Tag("v1".into())).unwrap();
    let sigs = layout.signatures(&target).unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(
        sigs[0].envelope_media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
}

#[test]
fn tampered_blob_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("layout");
    copy_dir(&layouts().join("e2e-valid-signature"), &dst);
    let layout = OciLayout::open(&dst).unwrap();
    let target = layout.resolve(&Selector::Tag("v1".into())).unwrap();
    let sigs = layout.signatures(&target).unwrap();
    assert_eq!(sigs.len(), 1);
    // Tamper with the envelope blob: same size, different content.
    let sig = &sigs[0];
    let env = sig.envelope.as_ref().unwrap();
    let hex = signet::verification::sha256(env);
    let path = dst
        .join("blobs/sha256")
        .join(hex.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let sigs = layout.signatures(&target).unwrap();
    assert!(matches!(sigs[0].envelope, Err(LayoutError::Corrupt(_))));
}

#[test]
fn parses_layout_references() {
    let r = LayoutReference::parse(&format!("dir@{SUBJECT}")).unwrap();
    assert_eq!(r.selector, Selector::Digest(SUBJECT.into()));
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}
