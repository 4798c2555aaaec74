//! Pushing images and Notation signatures with the distribution API (blob upload POST/PUT,
//! manifest PUT), maintaining the tag-schema index `sha256-<hex>` like ORAS's fallback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{EnvelopeKind, SignOptions, TestSigner};
use http::Method;
use serde_json::{json, Value};
use signet_notation::descriptor::DigestAlgorithm;
use signet_notation::Descriptor;

use super::http::send;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const NOTATION: &str = "application/vnd.cncf.notary.signature";
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The shape of a signature manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigStyle {
    /// `artifactType: application/vnd.cncf.notary.signature`, empty config.
    Current,
    /// config `mediaType: application/vnd.cncf.notary.signature` (Notation before OCI 1.1).
    Legacy,
}

/// Tag-schema entries per (repository, subject digest).
type TagSchemaEntries = HashMap<(String, String), Vec<Value>>;

/// A pushed signature.
#[derive(Debug, Clone)]
pub struct PushedSignature {
    /// The signature manifest's descriptor, with `artifactType` (as a referrers list shows it).
    pub manifest: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub envelope: Vec<u8>,
    pub envelope_digest: String,
    pub envelope_media_type: String,
}

impl PushedSignature {
    /// The descriptor as a referrers/index entry.
    pub fn entry(&self) -> Value {
        serde_json::to_value(&self.manifest).unwrap()
    }
}

/// Pushes to one registry (directly, or through a front).
#[derive(Debug, Clone)]
pub struct Pusher {
    pub base: String,
    tls: Arc<rustls::ClientConfig>,
    authorization: Option<String>,
    /// Tag-schema entries per (repository, subject digest).
    tag_schema: Arc<Mutex<TagSchemaEntries>>,
}

impl Pusher {
    pub fn new(
        base: &str,
        tls: Arc<rustls::ClientConfig>,
        authorization: Option<String>,
    ) -> Pusher {
        Pusher {
            base: base.to_owned(),
            tls,
            authorization,
            tag_schema: Arc::default(),
        }
    }

    fn headers(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut h: Vec<(&'static str, String)> = extra.to_vec();
        if let Some(a) = &self.authorization {
            h.push(("authorization", a.clone()));
        }
        h
    }

    /// Uploads a blob (monolithic: POST then PUT with the digest); returns its digest.
    pub async fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = DigestAlgorithm::Sha256.digest(bytes);
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let a = send(
            &self.tls,
            Method::POST,
            &url,
            &self.headers(&[]),
            Vec::new(),
        )
        .await;
        assert_eq!(a.status.as_u16(), 202, "blob upload start: {:?}", a);
        let location = a
            .headers
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={}", digest.replace(':', "%3A"));
        let a = send(
            &self.tls,
            Method::PUT,
            &put,
            &self.headers(&[("content-type", "application/octet-stream".into())]),
            bytes.to_vec(),
        )
        .await;
        assert_eq!(a.status.as_u16(), 201, "blob upload: {:?}", a);
        digest
    }

    /// PUTs a manifest under `reference` (a tag or its digest).
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Descriptor {
        let digest = DigestAlgorithm::Sha256.digest(bytes);
        let reference = if reference.is_empty() {
            digest.as_str()
        } else {
            reference
        };
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let a = send(
            &self.tls,
            Method::PUT,
            &url,
            &self.headers(&[("content-type", media_type.into())]),
            bytes.to_vec(),
        )
        .await;
        assert_eq!(a.status.as_u16(), 201, "manifest PUT {url}: {:?}", a);
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size: bytes.len() as i64,
            annotations: None,
            artifact_type: None,
        }
    }

    /// Pushes a small image (config + one layer) tagged `tag`; returns its manifest descriptor.
    pub async fn image(&self, repo: &str, tag: &str) -> Descriptor {
        let layer = format!("layer of {repo}:{tag} {}", unique()).into_bytes();
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "created_by": unique()}).to_string().into_bytes();
        let layer_digest = self.blob(repo, &layer).await;
        let config_digest = self.blob(repo, &config).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        self.manifest(repo, tag, OCI_MANIFEST, &bytes).await
    }

    /// Signs `subject` and pushes the signature manifest (no tag); when `tag_schema`, also
    /// updates the `sha256-<hex>` index.
    pub async fn signature(
        &self,
        repo: &str,
        subject: &Descriptor,
        signer: &TestSigner,
        kind: EnvelopeKind,
        style: SigStyle,
        tag_schema: bool,
    ) -> PushedSignature {
        let envelope = signer.sign(&SignOptions::new(
            kind,
            &subject.media_type,
            &subject.digest,
            subject.size,
        ));
        self.signature_with_envelope(
            repo,
            subject,
            envelope,
            kind.media_type(),
            style,
            tag_schema,
        )
        .await
    }

    /// Pushes a signature manifest around given envelope bytes.
    pub async fn signature_with_envelope(
        &self,
        repo: &str,
        subject: &Descriptor,
        envelope: Vec<u8>,
        envelope_media_type: &str,
        style: SigStyle,
        tag_schema: bool,
    ) -> PushedSignature {
        let envelope_digest = self.blob(repo, &envelope).await;
        let (config, artifact_type) = match style {
            SigStyle::Current => {
                let digest = self.blob(repo, b"{}").await;
                (
                    json!({"mediaType": EMPTY, "digest": digest, "size": 2}),
                    Some(NOTATION),
                )
            }
            SigStyle::Legacy => {
                let digest = self.blob(repo, b"{}").await;
                (
                    json!({"mediaType": NOTATION, "digest": digest, "size": 2}),
                    None,
                )
            }
        };
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [{"mediaType": envelope_media_type, "digest": envelope_digest, "size": envelope.len()}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
            "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[\"00\"]", "test.unique": unique()},
        });
        if let Some(at) = artifact_type {
            manifest["artifactType"] = json!(at);
        }
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let mut desc = self.manifest(repo, "", OCI_MANIFEST, &bytes).await;
        desc.artifact_type = Some(NOTATION.to_owned());
        let pushed = PushedSignature {
            manifest: desc,
            manifest_bytes: bytes,
            envelope,
            envelope_digest,
            envelope_media_type: envelope_media_type.to_owned(),
        };
        if tag_schema {
            self.add_to_tag_schema(repo, &subject.digest, pushed.entry())
                .await;
        }
        pushed
    }

    /// Adds an entry to the tag-schema index of `subject` and re-PUTs it.
    pub async fn add_to_tag_schema(&self, repo: &str, subject: &str, entry: Value) {
        let entries = {
            let mut map = self.tag_schema.lock().unwrap();
            let list = map
                .entry((repo.to_owned(), subject.to_owned()))
                .or_default();
            list.push(entry);
            list.clone()
        };
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
        let tag = subject.replace(':', "-");
        self.manifest(repo, &tag, OCI_INDEX, &serde_json::to_vec(&index).unwrap())
            .await;
    }
}

/// A process-unique string (keeps pushed content distinct).
pub fn unique() -> String {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    signet_notation::descriptor::hex(&b)
}
