//! A read-only OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`): resolves a
//! tag or digest to the artifact's manifest descriptor and finds its Notation signatures.
//!
//! Signatures are found two ways, as `notation` does for layouts:
//! - referrers: image manifests whose `subject.digest` is the artifact and whose
//!   `artifactType` (or, for older signers, `config.mediaType`) is the Notation signature type;
//! - the tag-schema index `sha256-<hex>`: an image index listing signature manifests.
//!
//! Every blob read is bounded in size and checked against its digest. The interface is small
//! on purpose ([`LayoutReference`], [`OciLayout::open`], [`OciLayout::resolve`],
//! [`OciLayout::signatures`]) so it can move into a registry crate unchanged.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use signet_notation::descriptor::{digest_matches, parse_digest};

use crate::input::{read_bounded, ReadError};

/// Artifact type (and legacy config media type) of a Notation signature manifest.
pub const NOTARY_SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation naming a tag in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Largest manifest, index or `index.json` read (4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Most signatures examined for one artifact.
pub const MAX_SIGNATURES: usize = 100;
/// Most blobs looked at when searching the blob store for referrers not listed in `index.json`.
const MAX_BLOB_SCAN: usize = 10_000;

/// An OCI content descriptor, as found in indexes and manifests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciDescriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<OciDescriptor>,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
    #[serde(default)]
    subject: Option<OciDescriptor>,
}

impl ImageManifest {
    fn is_notary_signature(&self) -> bool {
        self.artifact_type.as_deref() == Some(NOTARY_SIGNATURE_ARTIFACT_TYPE)
            || self
                .config
                .as_ref()
                .is_some_and(|c| c.media_type == NOTARY_SIGNATURE_ARTIFACT_TYPE)
    }
}

/// What part of a layout a reference selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Tag(String),
    Digest(String),
}

/// `PATH:TAG` or `PATH@sha256:HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutReference {
    pub path: PathBuf,
    pub selector: Selector,
}

impl LayoutReference {
    /// Parses `PATH:TAG` or `PATH@ALG:HEX`. The tag is what follows the last `:` after the
    /// last `/`.
    pub fn parse(reference: &str) -> Result<Self, LayoutError> {
        let invalid = |why: &str| LayoutError::InvalidReference(format!("{reference:?}: {why}"));
        if let Some((path, digest)) = reference.rsplit_once('@') {
            parse_digest(digest).map_err(|e| invalid(&e.to_string()))?;
            if path.is_empty() {
                return Err(invalid("the layout path is empty"));
            }
            return Ok(LayoutReference {
                path: PathBuf::from(path),
                selector: Selector::Digest(digest.to_owned()),
            });
        }
        let last_segment_start = reference.rfind('/').map_or(0, |i| i + 1);
        let Some(colon) = reference[last_segment_start..].rfind(':') else {
            return Err(invalid(
                "expected PATH:TAG or PATH@sha256:HEX (the tag or digest is missing)",
            ));
        };
        let (path, tag) = reference.split_at(last_segment_start + colon);
        let tag = &tag[1..];
        if path.is_empty() {
            return Err(invalid("the layout path is empty"));
        }
        if !valid_tag(tag) {
            return Err(invalid(&format!("{tag:?} is not a valid tag")));
        }
        Ok(LayoutReference {
            path: PathBuf::from(path),
            selector: Selector::Tag(tag.to_owned()),
        })
    }
}

/// OCI distribution-spec tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Why a layout could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// The reference is not `PATH:TAG` / `PATH@DIGEST`.
    InvalidReference(String),
    /// The layout directory or its `index.json` cannot be read.
    Unreadable { path: PathBuf, reason: String },
    /// The tag or digest is not in the layout.
    NotFound(String),
    /// Content is malformed, too large, or does not match its digest.
    Corrupt(String),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::InvalidReference(m) => write!(f, "invalid OCI layout reference {m}"),
            LayoutError::Unreadable { path, reason } => {
                write!(f, "cannot read OCI layout {}: {reason}", path.display())
            }
            LayoutError::NotFound(m) => write!(f, "{m}"),
            LayoutError::Corrupt(m) => write!(f, "corrupt OCI layout: {m}"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// One signature of an artifact, as stored in the layout.
#[derive(Debug, Clone)]
pub struct SignatureCandidate {
    /// Digest of the signature manifest.
    pub manifest_digest: String,
    /// Media type of the manifest's envelope layer (`application/jose+json`, `application/cose`,
    /// or whatever the layer says).
    pub envelope_media_type: String,
    /// The envelope bytes, digest-checked; or why they could not be read.
    pub envelope: Result<Vec<u8>, LayoutError>,
}

/// An opened OCI image layout.
#[derive(Debug)]
pub struct OciLayout {
    root: PathBuf,
    index: ImageIndex,
}

impl OciLayout {
    /// Opens the layout at `root`, reading its `index.json`.
    pub fn open(root: &Path) -> Result<Self, LayoutError> {
        let unreadable = |reason: String| LayoutError::Unreadable {
            path: root.to_path_buf(),
            reason,
        };
        if !root.is_dir() {
            return Err(unreadable("no such directory".into()));
        }
        let bytes = read_bounded(&root.join("index.json"), MAX_MANIFEST_BYTES)
            .map_err(|e| unreadable(format!("index.json: {e}")))?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| unreadable(format!("index.json is not a valid image index: {e}")))?;
        Ok(OciLayout {
            root: root.to_path_buf(),
            index,
        })
    }

    /// The descriptor of the manifest a tag or digest selects; its content is read and
    /// checked against the digest.
    pub fn resolve(&self, selector: &Selector) -> Result<OciDescriptor, LayoutError> {
        let descriptor = match selector {
            Selector::Tag(tag) => self
                .index
                .manifests
                .iter()
                .find(|d| ref_name(d) == Some(tag.as_str()))
                .cloned()
                .ok_or_else(|| {
                    LayoutError::NotFound(format!(
                        "tag {tag:?} is not in {}",
                        self.root.join("index.json").display()
                    ))
                })?,
            Selector::Digest(digest) => {
                match self.index.manifests.iter().find(|d| &d.digest == digest) {
                    Some(d) => d.clone(),
                    None => {
                        let bytes = self.read_blob_unchecked_size(digest)?;
                        let media_type = serde_json::from_slice::<ImageManifest>(&bytes)
                            .ok()
                            .and_then(|m| m.media_type)
                            .ok_or_else(|| {
                                LayoutError::Corrupt(format!(
                                    "{digest} is not a manifest with a mediaType"
                                ))
                            })?;
                        OciDescriptor {
                            media_type,
                            digest: digest.clone(),
                            size: bytes.len() as i64,
                            artifact_type: None,
                            annotations: None,
                        }
                    }
                }
            }
        };
        // Check the manifest content exists and matches the descriptor.
        self.read_blob(&descriptor, MAX_MANIFEST_BYTES)?;
        Ok(descriptor)
    }

    /// The Notation signatures of `subject` (referrers and the tag-schema index), deduplicated
    /// by manifest digest, at most [`MAX_SIGNATURES`].
    pub fn signatures(
        &self,
        subject: &OciDescriptor,
    ) -> Result<Vec<SignatureCandidate>, LayoutError> {
        let mut found = Found::default();

        // (a) referrers listed in index.json.
        for d in &self.index.manifests {
            if d.media_type != OCI_MANIFEST || d.digest == subject.digest {
                continue;
            }
            if let Some(m) = self.referrer_manifest(d, &subject.digest)? {
                found.push(&d.digest, m);
            }
        }

        // (b) the tag-schema index `sha256-<hex>`.
        let tag_schema = subject.digest.replacen(':', "-", 1);
        for d in &self.index.manifests {
            if ref_name(d) != Some(tag_schema.as_str()) {
                continue;
            }
            let bytes = self.read_blob(d, MAX_MANIFEST_BYTES)?;
            let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
                LayoutError::Corrupt(format!("tag-schema index {} is malformed: {e}", d.digest))
            })?;
            for sd in index.manifests.iter().take(MAX_SIGNATURES * 2) {
                if found.seen.contains(&sd.digest) {
                    continue;
                }
                let bytes = self.read_blob(sd, MAX_MANIFEST_BYTES)?;
                let m: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| {
                    LayoutError::Corrupt(format!(
                        "signature manifest {} is malformed: {e}",
                        sd.digest
                    ))
                })?;
                if m.is_notary_signature()
                    || sd.artifact_type.as_deref() == Some(NOTARY_SIGNATURE_ARTIFACT_TYPE)
                {
                    found.push(&sd.digest, m);
                }
            }
        }

        // Referrers stored as blobs but not listed in index.json.
        if found.manifests.is_empty() {
            for (digest, m) in self.scan_blobs_for_referrers(&subject.digest)? {
                found.push(&digest, m);
            }
        }

        let mut manifests = found.manifests;
        manifests.truncate(MAX_SIGNATURES);
        Ok(manifests
            .into_iter()
            .map(|(digest, m)| self.candidate(digest, m))
            .collect())
    }

    fn candidate(&self, manifest_digest: String, m: ImageManifest) -> SignatureCandidate {
        if m.layers.len() != 1 {
            return SignatureCandidate {
                manifest_digest,
                envelope_media_type: m
                    .layers
                    .first()
                    .map(|l| l.media_type.clone())
                    .unwrap_or_default(),
                envelope: Err(LayoutError::Corrupt(format!(
                    "a Notation signature manifest has exactly one layer, this one has {}",
                    m.layers.len()
                ))),
            };
        }
        let layer = &m.layers[0];
        SignatureCandidate {
            manifest_digest,
            envelope_media_type: layer.media_type.clone(),
            envelope: self.read_blob(layer, signet_notation::MAX_ENVELOPE_BYTES as u64),
        }
    }

    /// The manifest `d` if it is a Notation signature whose subject is `subject_digest`.
    fn referrer_manifest(
        &self,
        d: &OciDescriptor,
        subject_digest: &str,
    ) -> Result<Option<ImageManifest>, LayoutError> {
        if d.size < 0 || d.size as u64 > MAX_MANIFEST_BYTES {
            return Ok(None);
        }
        let bytes = self.read_blob(d, MAX_MANIFEST_BYTES)?;
        let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) else {
            return Ok(None);
        };
        let is_referrer = m
            .subject
            .as_ref()
            .is_some_and(|s| s.digest == subject_digest);
        Ok((is_referrer && m.is_notary_signature()).then_some(m))
    }

    fn scan_blobs_for_referrers(
        &self,
        subject_digest: &str,
    ) -> Result<Vec<(String, ImageManifest)>, LayoutError> {
        let mut found = Vec::new();
        let blobs = self.root.join("blobs");
        let Ok(algs) = fs::read_dir(&blobs) else {
            return Ok(found);
        };
        let mut scanned = 0usize;
        for alg in algs.flatten() {
            let Ok(entries) = fs::read_dir(alg.path()) else {
                continue;
            };
            let alg_name = alg.file_name().to_string_lossy().into_owned();
            for entry in entries.flatten() {
                scanned += 1;
                if scanned > MAX_BLOB_SCAN || found.len() >= MAX_SIGNATURES {
                    return Ok(found);
                }
                let digest = format!("{alg_name}:{}", entry.file_name().to_string_lossy());
                if parse_digest(&digest).is_err() || digest == subject_digest {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() || meta.len() > MAX_MANIFEST_BYTES {
                    continue;
                }
                let Ok(bytes) = read_bounded(&entry.path(), MAX_MANIFEST_BYTES) else {
                    continue;
                };
                if bytes.trim_ascii_start().first() != Some(&b'{') {
                    continue;
                }
                let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) else {
                    continue;
                };
                let is_signature_referrer = m.media_type.as_deref() == Some(OCI_MANIFEST)
                    && m.subject
                        .as_ref()
                        .is_some_and(|s| s.digest == subject_digest)
                    && m.is_notary_signature();
                if !is_signature_referrer {
                    continue;
                }
                if digest_matches(&digest, &bytes) != Ok(true) {
                    return Err(LayoutError::Corrupt(format!(
                        "blob {digest} does not match its digest"
                    )));
                }
                found.push((digest, m));
            }
        }
        Ok(found)
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, LayoutError> {
        let (alg, hex) = parse_digest(digest).map_err(|e| LayoutError::Corrupt(e.to_string()))?;
        Ok(self.root.join("blobs").join(alg.name()).join(hex))
    }

    /// Reads the blob a descriptor names: size bounded by `max` and equal to the descriptor's,
    /// content hashing to its digest.
    fn read_blob(&self, d: &OciDescriptor, max: u64) -> Result<Vec<u8>, LayoutError> {
        if d.size < 0 || d.size as u64 > max {
            return Err(LayoutError::Corrupt(format!(
                "blob {} has size {}, over the limit of {max} bytes",
                d.digest, d.size
            )));
        }
        let path = self.blob_path(&d.digest)?;
        let bytes = read_bounded(&path, max).map_err(|e| match e {
            ReadError::Io(err) if err.kind() == std::io::ErrorKind::NotFound => {
                LayoutError::NotFound(format!(
                    "blob {} is missing from the layout ({})",
                    d.digest,
                    path.display()
                ))
            }
            e => LayoutError::Corrupt(format!("blob {}: {e}", d.digest)),
        })?;
        if bytes.len() as u64 != d.size as u64 {
            return Err(LayoutError::Corrupt(format!(
                "blob {} is {} bytes, its descriptor says {}",
                d.digest,
                bytes.len(),
                d.size
            )));
        }
        if digest_matches(&d.digest, &bytes) != Ok(true) {
            return Err(LayoutError::Corrupt(format!(
                "blob {} does not match its digest",
                d.digest
            )));
        }
        Ok(bytes)
    }

    /// Reads a manifest blob by digest alone (its size is not known yet).
    fn read_blob_unchecked_size(&self, digest: &str) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(digest)?;
        let bytes = read_bounded(&path, MAX_MANIFEST_BYTES).map_err(|e| match e {
            ReadError::Io(err) if err.kind() == std::io::ErrorKind::NotFound => {
                LayoutError::NotFound(format!("{digest} is not in the layout"))
            }
            e => LayoutError::Corrupt(format!("blob {digest}: {e}")),
        })?;
        if digest_matches(digest, &bytes) != Ok(true) {
            return Err(LayoutError::Corrupt(format!(
                "blob {digest} does not match its digest"
            )));
        }
        Ok(bytes)
    }
}

/// Signature manifests found so far, deduplicated by digest, in discovery order.
#[derive(Default)]
struct Found {
    seen: HashSet<String>,
    manifests: Vec<(String, ImageManifest)>,
}

impl Found {
    fn push(&mut self, digest: &str, m: ImageManifest) {
        if self.seen.insert(digest.to_owned()) {
            self.manifests.push((digest.to_owned(), m));
        }
    }
}

fn ref_name(d: &OciDescriptor) -> Option<&str> {
    d.annotations
        .as_ref()
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .map(String::as_str)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

    #[test]
    fn parses_references() {
        let r = LayoutReference::parse("some/dir:v1").unwrap();
        assert_eq!(r.path, PathBuf::from("some/dir"));
        assert_eq!(r.selector, Selector::Tag("v1".into()));
        let r = LayoutReference::parse("./a:b/dir:v1.0").unwrap();
        assert_eq!(r.path, PathBuf::from("./a:b/dir"));
        assert_eq!(r.selector, Selector::Tag("v1.0".into()));
        let r = LayoutReference::parse(&format!("dir@{D}")).unwrap();
        assert_eq!(r.selector, Selector::Digest(D.into()));
        assert!(LayoutReference::parse("dir").is_err());
        assert!(LayoutReference::parse("dir@sha256:abc").is_err());
        assert!(LayoutReference::parse(":v1").is_err());
        assert!(LayoutReference::parse("dir:-bad").is_err());
    }

    #[test]
    fn missing_layout_is_unreadable() {
        let err = OciLayout::open(Path::new("/nonexistent/layout")).unwrap_err();
        assert!(matches!(err, LayoutError::Unreadable { .. }));
    }
}
