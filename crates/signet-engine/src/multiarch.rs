//! Multi-arch images: what verifies a reference that names an image index (OCI index or
//! Docker manifest list), chosen per trust-policy statement.
//!
//! The choice lives in Signet's service configuration (keyed by statement name), not in the
//! trust policy document, so the document stays one that `notation` itself accepts.
//!
//! | mode | an index is verified when |
//! |---|---|
//! | [`MultiArchMode::Index`] (default) | the index itself carries a valid signature |
//! | [`MultiArchMode::Platforms`] | every platform manifest it lists (or those of the configured platforms) carries a valid signature |
//! | [`MultiArchMode::IndexOrPlatforms`] | either of the above |
//!
//! Platform manifests are selected from the index's entries: attestation manifests
//! (`vnd.docker.reference.type: attestation-manifest`, platform `unknown/unknown`) are never
//! selected; an entry without a platform is always selected (a runtime may pick it on any
//! node, so it must be signed); with `platforms`, an entry is selected when its platform
//! matches one of them (`linux/arm64` matches every variant, `linux/arm/v7` only `v7`).
//! At most [`MAX_PLATFORM_MANIFESTS`] are verified; an index that selects more is refused.
//! A nested index among the selected entries is refused (not verified per platform).

use signet_registry::{IndexEntry, Platform};

/// Platform manifests verified for one index at most.
pub const MAX_PLATFORM_MANIFESTS: usize = 64;

/// What verifies an image index (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArchMode {
    /// The index's own signature (as notation does).
    #[default]
    Index,
    /// Every selected platform manifest's own signature.
    Platforms,
    /// The index's signature, else every selected platform manifest's.
    IndexOrPlatforms,
}

impl MultiArchMode {
    /// The configuration's spelling: `index`, `platforms`, `indexOrPlatforms`.
    pub fn as_str(self) -> &'static str {
        match self {
            MultiArchMode::Index => "index",
            MultiArchMode::Platforms => "platforms",
            MultiArchMode::IndexOrPlatforms => "indexOrPlatforms",
        }
    }

    /// Parses the configuration's spelling.
    pub fn parse(s: &str) -> Option<MultiArchMode> {
        match s {
            "index" => Some(MultiArchMode::Index),
            "platforms" => Some(MultiArchMode::Platforms),
            "indexOrPlatforms" => Some(MultiArchMode::IndexOrPlatforms),
            _ => None,
        }
    }
}

/// The multi-arch option of one trust-policy statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiArchPolicy {
    pub mode: MultiArchMode,
    /// `os/architecture[/variant]`; empty: every platform the index lists.
    pub platforms: Vec<String>,
}

/// Checks a platform written `os/architecture[/variant]`.
pub fn check_platform(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a platform like linux/amd64 or linux/arm/v7 (os/architecture[/variant])"
        ))
    }
}

fn matches(wanted: &str, platform: &Platform) -> bool {
    let mut parts = wanted.split('/');
    let (Some(os), Some(arch)) = (parts.next(), parts.next()) else {
        return false;
    };
    let variant = parts.next();
    os.eq_ignore_ascii_case(&platform.os)
        && arch.eq_ignore_ascii_case(&platform.architecture)
        && variant.is_none_or(|v| {
            platform
                .variant
                .as_deref()
                .is_some_and(|pv| pv.eq_ignore_ascii_case(v))
        })
}

fn is_attestation(entry: &IndexEntry) -> bool {
    let annotated = entry
        .descriptor
        .annotations
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    let unknown = entry
        .platform
        .as_ref()
        .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
    annotated || unknown
}

/// The entries whose signatures decide under `policy` (see the module docs).
pub(crate) fn select<'a>(
    entries: &'a [IndexEntry],
    policy: &MultiArchPolicy,
) -> Vec<&'a IndexEntry> {
    entries
        .iter()
        .filter(|e| !is_attestation(e))
        .filter(|e| match &e.platform {
            None => true,
            Some(p) => {
                policy.platforms.is_empty() || policy.platforms.iter().any(|w| matches(w, p))
            }
        })
        .collect()
}

/// How an entry is named in messages: `linux/arm64` or `(no platform)`.
pub(crate) fn entry_name(entry: &IndexEntry) -> String {
    entry
        .platform
        .as_ref()
        .map(Platform::name)
        .unwrap_or_else(|| "(no platform)".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use signet_notation::Descriptor;

    fn entry(platform: Option<(&str, &str, Option<&str>)>, attestation: bool) -> IndexEntry {
        IndexEntry {
            descriptor: Descriptor {
                media_type: signet_registry::MEDIA_TYPE_OCI_MANIFEST.into(),
                digest: "sha256:00".into(),
                size: 1,
                annotations: attestation.then(|| {
                    [(
                        "vnd.docker.reference.type".to_owned(),
                        "attestation-manifest".to_owned(),
                    )]
                    .into()
                }),
                artifact_type: None,
            },
            platform: platform.map(|(os, arch, variant)| Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(str::to_owned),
            }),
        }
    }

    #[test]
    fn selection_follows_platforms_and_skips_attestations() {
        let entries = vec![
            entry(Some(("linux", "amd64", None)), false),
            entry(Some(("linux", "arm64", Some("v8"))), false),
            entry(Some(("linux", "arm", Some("v7"))), false),
            entry(Some(("unknown", "unknown", None)), false),
            entry(Some(("linux", "amd64", None)), true),
            entry(None, false),
        ];
        let all = MultiArchPolicy {
            mode: MultiArchMode::Platforms,
            platforms: vec![],
        };
        assert_eq!(select(&entries, &all).len(), 4);
        let some = MultiArchPolicy {
            mode: MultiArchMode::Platforms,
            platforms: vec!["linux/arm64".into(), "linux/arm/v6".into()],
        };
        let names: Vec<String> = select(&entries, &some)
            .into_iter()
            .map(entry_name)
            .collect();
        assert_eq!(names, vec!["linux/arm64/v8", "(no platform)"]);
        assert!(check_platform("linux/amd64").is_ok());
        assert!(check_platform("linux/arm/v7").is_ok());
        assert!(check_platform("linux").is_err());
        assert!(check_platform("linux//x").is_err());
        assert_eq!(
            MultiArchMode::parse("indexOrPlatforms"),
            Some(MultiArchMode::IndexOrPlatforms)
        );
    }
}
