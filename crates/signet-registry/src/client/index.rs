//! Image indexes (OCI image index, Docker manifest list): fetching one by digest and listing
//! its platform manifests, for the engine's multi-arch verification.

use serde::Deserialize;
use signet_notation::Descriptor;
use tokio::time::Instant;

use super::{check_digest, found, with_deadline, Inner, Req, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES};
use super::{MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_OCI_INDEX};
use crate::error::RegistryError;
use crate::reference::Reference;
use crate::RegistryClient;

/// Entries of an index read at most (the rest makes the index refused as malformed): an
/// index is at most [`MAX_MANIFEST_BYTES`], and nothing real lists more.
pub const MAX_INDEX_ENTRIES: usize = 4096;

/// Whether `media_type` is an image index (OCI) or a manifest list (Docker).
pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_LIST
}

/// The platform an index entry is for (`os/architecture[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/architecture` or `os/architecture/variant`, as `docker --platform` writes it.
    pub fn name(&self) -> String {
        match self.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// One manifest an index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Its descriptor (media type, digest, size, annotations).
    pub descriptor: Descriptor,
    /// Its platform, when the index names one.
    pub platform: Option<Platform>,
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    manifests: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(flatten)]
    descriptor: Descriptor,
    #[serde(default)]
    platform: Option<Platform>,
}

/// Parses an index body into its entries; `what` names it in errors.
pub fn parse_index_entries(
    host: &str,
    what: &str,
    body: &[u8],
) -> Result<Vec<IndexEntry>, RegistryError> {
    let malformed = |message: String| RegistryError::Malformed {
        host: host.to_owned(),
        what: what.to_owned(),
        message,
    };
    let raw: RawIndex = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if raw.manifests.len() > MAX_INDEX_ENTRIES {
        return Err(malformed(format!(
            "it lists {} manifests, more than the {MAX_INDEX_ENTRIES} read",
            raw.manifests.len()
        )));
    }
    raw.manifests
        .into_iter()
        .map(|e| {
            signet_notation::descriptor::parse_digest(&e.descriptor.digest)
                .map_err(|err| malformed(format!("entry {}: {err}", e.descriptor.digest)))?;
            if e.descriptor.size < 0 {
                return Err(malformed(format!(
                    "entry {} has a negative size",
                    e.descriptor.digest
                )));
            }
            Ok(IndexEntry {
                descriptor: e.descriptor,
                platform: e.platform,
            })
        })
        .collect()
}

impl RegistryClient {
    /// Fetches the index `index` (a resolved descriptor of an index or manifest list) from
    /// the repository of `repository`, checked against its digest and size, within the
    /// body budget, and lists its entries.
    pub async fn index_entries(
        &self,
        repository: &Reference,
        index: &Descriptor,
        deadline: Instant,
    ) -> Result<Vec<IndexEntry>, RegistryError> {
        with_deadline(deadline, "fetching the image index", async {
            self.inner.index_entries(repository, index, deadline).await
        })
        .await
    }
}

impl Inner {
    async fn index_entries(
        &self,
        repository: &Reference,
        index: &Descriptor,
        deadline: Instant,
    ) -> Result<Vec<IndexEntry>, RegistryError> {
        let what = format!("image index {}", index.digest);
        let size = u64::try_from(index.size).unwrap_or(u64::MAX);
        if size > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                host: repository.api_host().to_owned(),
                what,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let got = self
            .execute(Req {
                reference: repository,
                method: http::Method::GET,
                path: format!("/v2/{}/manifests/{}", repository.repository(), index.digest),
                accept: MANIFEST_ACCEPT,
                limit: MAX_MANIFEST_BYTES,
                what: &what,
                deadline,
            })
            .await?;
        if !found(&got, &what)? {
            return Err(RegistryError::NotFound {
                repository: repository.name(),
                what,
            });
        }
        check_digest(&what, &index.digest, &got.body)?;
        if got.body.len() as u64 != size {
            return Err(RegistryError::SizeMismatch {
                what,
                expected: size,
                actual: got.body.len() as u64,
            });
        }
        parse_index_entries(&got.host, &what, &got.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_oci_and_docker_entries_with_platforms() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
          "manifests":[
            {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000001","size":7,
             "platform":{"architecture":"arm","os":"linux","variant":"v7"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000002","size":8}
          ]}"#;
        let entries = parse_index_entries("h", "index", body).unwrap_or_default();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].platform.as_ref().map(Platform::name).as_deref(),
            Some("linux/arm/v7")
        );
        assert_eq!(entries[1].platform, None);
        assert!(parse_index_entries(
            "h",
            "index",
            br#"{"manifests":[{"mediaType":"x","digest":"nope","size":1}]}"#
        )
        .is_err());
        assert!(is_index(MEDIA_TYPE_DOCKER_LIST));
    }
}
