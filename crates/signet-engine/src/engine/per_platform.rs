//! Multi-arch images: an image index decided by its own signature or by the signatures of
//! the platform manifests it lists, as the statement's [`MultiArchPolicy`] asks
//! (see [`crate::multiarch`]).

use futures_util::future::join_all;
use signet_notation::Descriptor;
use signet_registry::Reference;
use tokio::time::Instant;

use super::{Ask, Engine, VerdictKey};
use crate::multiarch::{self, MultiArchMode, MultiArchPolicy, MAX_PLATFORM_MANIFESTS};
use crate::{codes, ImageVerdict, VerdictError};

impl Engine {
    /// The verdict for one resolved artifact under `statement`: its own signatures, or for
    /// an index under a per-platform mode, its platform manifests' signatures.
    pub(super) async fn decide(
        &self,
        ask: Ask<'_>,
        reference: &Reference,
        desc: &Descriptor,
    ) -> ImageVerdict {
        let statement = ask.statement;
        let policy = self
            .multi_arch
            .get(&statement.name)
            .cloned()
            .unwrap_or_default();
        if policy.mode == MultiArchMode::Index || !signet_registry::is_index(&desc.media_type) {
            return self.run(ask, reference, desc).await;
        }
        let index_verdict = if policy.mode == MultiArchMode::IndexOrPlatforms {
            let v = self.run(ask, reference, desc).await;
            // Verified, or unknown for now (registry trouble, deadline): that is the answer.
            if v.verified || !v.is_cacheable() {
                return v;
            }
            Some(v)
        } else {
            None
        };
        let mut verdict = self.platforms(ask, reference, desc, &policy).await;
        if let Some(index) = index_verdict {
            if !verdict.verified {
                if let (Some(e), Some(ie)) = (&mut verdict.error, &index.error) {
                    e.message = format!(
                        "the index {} has no valid signature of its own ({}: {}), and {}",
                        desc.digest,
                        ie.code.as_str(),
                        ie.message,
                        e.message
                    );
                }
                let mut signatures = index.signatures;
                signatures.append(&mut verdict.signatures);
                verdict.signatures = signatures;
            }
        }
        verdict
    }

    /// Every selected platform manifest of the index `desc` must verify.
    async fn platforms(
        &self,
        ask: Ask<'_>,
        reference: &Reference,
        desc: &Descriptor,
        policy: &MultiArchPolicy,
    ) -> ImageVerdict {
        let Ask {
            image,
            statement,
            deadline,
            ..
        } = ask;
        let digest = Some(desc.digest.clone());
        let entries = {
            let _permit = match self.permit(deadline).await {
                Ok(p) => p,
                Err(e) => return ImageVerdict::failed(image, digest, e),
            };
            let started = Instant::now();
            let entries = self.client.index_entries(reference, desc, deadline).await;
            self.counters.registry_call("index", started.elapsed());
            match entries {
                Ok(e) => e,
                Err(e) => return ImageVerdict::failed(image, digest, codes::registry(&e)),
            }
        };
        let selected = multiarch::select(&entries, policy);
        let refusal = if selected.is_empty() {
            Some(codes::no_platform_manifest(&desc.digest, &policy.platforms))
        } else if selected.len() > MAX_PLATFORM_MANIFESTS {
            Some(codes::too_many_platforms(
                &desc.digest,
                selected.len(),
                MAX_PLATFORM_MANIFESTS,
            ))
        } else {
            selected
                .iter()
                .find(|e| signet_registry::is_index(&e.descriptor.media_type))
                .map(|e| codes::nested_index(&desc.digest, &e.descriptor.digest))
        };
        let level = Some(statement.level.as_str().to_owned());
        if let Some(error) = refusal {
            let mut v = ImageVerdict::failed(image, digest, error);
            v.policy = Some(statement.name.clone());
            v.level = level;
            return v;
        }

        let verdicts = join_all(selected.iter().map(|entry| {
            // What notation compares is the manifest's media type, digest and size.
            let platform = Descriptor {
                annotations: None,
                artifact_type: None,
                ..entry.descriptor.clone()
            };
            async move { self.platform_verdict(ask, reference, &platform).await }
        }))
        .await;

        let mut signatures = Vec::new();
        let mut failure: Option<VerdictError> = None;
        for (entry, v) in selected.iter().zip(verdicts) {
            if !v.verified && failure.is_none() {
                let e = v.error.clone().unwrap_or_else(|| {
                    codes::internal("a platform manifest was not verified, no reason given")
                });
                failure = Some(VerdictError {
                    code: e.code,
                    message: format!(
                        "platform {} (manifest {}) is not verified: {}",
                        multiarch::entry_name(entry),
                        entry.descriptor.digest,
                        e.message
                    ),
                });
            }
            signatures.extend(v.signatures);
        }
        ImageVerdict {
            reference: image.to_owned(),
            digest,
            verified: failure.is_none(),
            policy: Some(statement.name.clone()),
            level,
            signatures,
            error: failure,
            note: None,
        }
    }

    /// One platform manifest's verdict, through the verdict cache (shared with references
    /// that name the platform manifest directly).
    async fn platform_verdict(
        &self,
        ask: Ask<'_>,
        reference: &Reference,
        platform: &Descriptor,
    ) -> ImageVerdict {
        let Ask {
            trust, statement, ..
        } = ask;
        let key = VerdictKey {
            name: reference.name(),
            digest: platform.digest.clone(),
            statement: statement.name.clone(),
            generation: trust.generation,
        };
        let platform_reference = reference.with_digest(&platform.digest);
        let (verdict, _) = self
            .through_cache(key, self.run(ask, &platform_reference, platform))
            .await;
        verdict.verdict().clone()
    }
}
