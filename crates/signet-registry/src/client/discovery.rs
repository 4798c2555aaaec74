//! Finding a digest's Notation signatures: the OCI referrers API (paginated, filtered by us
//! when the registry did not) with the tag-schema fallback, and the checks every signature
//! manifest must pass (digest, size, subject, one envelope layer).

use super::*;

impl Inner {
    pub(super) async fn signatures(
        self: &Arc<Self>,
        repository: &Reference,
        subject: &Descriptor,
        deadline: Instant,
    ) -> Result<Signatures, RegistryError> {
        parse_digest(&subject.digest).map_err(|e| RegistryError::Malformed {
            host: repository.api_host().to_owned(),
            what: "subject descriptor".into(),
            message: e.to_string(),
        })?;
        let host = self.host(repository.api_host())?;
        let known = host
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .referrers;
        let now = Instant::now();
        let listed = match known {
            ReferrersSupport::FallbackUntil(until) if now < until => None,
            _ => {
                self.referrers(repository, &subject.digest, deadline)
                    .await?
            }
        };
        // A 404 puts the host on the tag-schema fallback for a while only (a registry
        // upgraded, or a proxy that answered 404 once, gets the referrers API again); a host
        // whose referrers API has answered keeps it, one 404 uses the fallback for this call.
        let learnt = match (listed.is_some(), known) {
            (true, _) => ReferrersSupport::Supported,
            (false, ReferrersSupport::Supported) => ReferrersSupport::Supported,
            (false, ReferrersSupport::FallbackUntil(until)) if now < until => known,
            (false, _) => ReferrersSupport::FallbackUntil(
                now.checked_add(self.config.referrers_fallback_ttl)
                    .unwrap_or(now),
            ),
        };
        host.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .referrers = learnt;
        let (candidates, discovery) = match listed {
            Some(list) => (list, Discovery::ReferrersApi),
            None => (
                self.tag_schema(repository, &subject.digest, deadline)
                    .await?,
                Discovery::TagSchema,
            ),
        };

        let max = self.config.max_signatures;
        let truncated = candidates.len() > max;
        let candidates: Vec<Candidate> = candidates.into_iter().take(max).collect();

        // Fetch the signature manifests, a few at a time, keeping the listed order.
        let mut results: Vec<Option<Result<Option<SignatureManifest>, RegistryError>>> =
            vec![None; candidates.len()];
        let concurrency = self.config.concurrency.max(1);
        let mut set = tokio::task::JoinSet::new();
        let mut next = 0;
        let mut running = 0;
        loop {
            while running < concurrency && next < candidates.len() {
                let inner = self.clone();
                let repo = repository.clone();
                let subject_digest = subject.digest.clone();
                let cand = candidates[next].clone();
                let i = next;
                set.spawn(async move {
                    (
                        i,
                        inner
                            .signature_manifest(&repo, &cand, &subject_digest, deadline)
                            .await,
                    )
                });
                next += 1;
                running += 1;
            }
            match set.join_next().await {
                Some(Ok((i, r))) => {
                    results[i] = Some(r);
                    running -= 1;
                }
                Some(Err(e)) => {
                    return Err(RegistryError::Transport {
                        host: repository.api_host().to_owned(),
                        message: format!("signature fetch task failed: {e}"),
                    })
                }
                None => break,
            }
        }

        let mut out = Signatures {
            signatures: Vec::new(),
            rejected: Vec::new(),
            truncated,
            discovery,
        };
        for (cand, r) in candidates.iter().zip(results) {
            match r {
                Some(Ok(Some(sig))) => out.signatures.push(sig),
                Some(Ok(None)) | None => {}
                // A signature manifest that is not there (deleted since listed) or that the
                // registry serves wrong is rejected; failures of the registry itself
                // (timeouts, auth, 5xx) fail the whole discovery.
                Some(Err(e)) if rejects_signature(&e) => out.rejected.push(RejectedSignature {
                    digest: cand.digest.clone(),
                    error: e,
                }),
                Some(Err(e)) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The referrers API; `None` where the registry has none (404).
    async fn referrers(
        &self,
        repository: &Reference,
        subject: &str,
        deadline: Instant,
    ) -> Result<Option<Vec<Candidate>>, RegistryError> {
        let mut path = format!(
            "/v2/{}/referrers/{}?artifactType={}",
            repository.repository(),
            subject,
            transport::pct(NOTATION_ARTIFACT_TYPE)
        );
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for page in 0..MAX_REFERRER_PAGES {
            let what = "referrers list";
            let got = self
                .execute(Req {
                    reference: repository,
                    method: Method::GET,
                    path: path.clone(),
                    accept: MEDIA_TYPE_OCI_INDEX,
                    limit: MAX_MANIFEST_BYTES,
                    what,
                    deadline,
                })
                .await?;
            if !found(&got, what)? {
                if page == 0 {
                    return Ok(None);
                }
                return Err(status_error(&got, what, StatusCode::NOT_FOUND));
            }
            let filtered = header_str(&got.headers, "oci-filters-applied")
                .map(|v| v.split(',').any(|f| f.trim() == "artifactType"))
                .unwrap_or(false);
            let index = parse_index(&got, what)?;
            for d in index.manifests() {
                let artifact_type = d.artifact_type().as_ref().map(|m| m.to_string());
                if !filtered && artifact_type.as_deref() != Some(NOTATION_ARTIFACT_TYPE) {
                    continue;
                }
                let digest = d.digest().to_string();
                if seen.insert(digest.clone()) {
                    out.push(Candidate {
                        digest,
                        size: d.size(),
                        claimed_notation: true,
                    });
                }
            }
            if out.len() > self.config.max_signatures {
                break;
            }
            match next_link(&got.headers) {
                None => break,
                Some(link) => {
                    path = same_host_path(&link, repository.api_host(), &got.host)?;
                }
            }
        }
        Ok(Some(out))
    }

    /// The tag-schema fallback: the index tagged `sha256-<hex>` (missing: no signatures).
    async fn tag_schema(
        &self,
        repository: &Reference,
        subject: &str,
        deadline: Instant,
    ) -> Result<Vec<Candidate>, RegistryError> {
        let tag = subject.replacen(':', "-", 1);
        let what = format!("tag-schema index {tag}");
        let got = self
            .execute(Req {
                reference: repository,
                method: Method::GET,
                path: format!("/v2/{}/manifests/{}", repository.repository(), tag),
                accept: MEDIA_TYPE_OCI_INDEX,
                limit: MAX_MANIFEST_BYTES,
                what: &what,
                deadline,
            })
            .await?;
        if !found(&got, &what)? {
            return Ok(Vec::new());
        }
        let index = parse_index(&got, &what)?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for d in index.manifests() {
            let artifact_type = d.artifact_type().as_ref().map(|m| m.to_string());
            let media_type = d.media_type().to_string();
            let claimed = artifact_type.as_deref() == Some(NOTATION_ARTIFACT_TYPE);
            // Entries without artifactType may still be (older) signatures: look at them.
            let maybe = artifact_type.is_none() && media_type == MEDIA_TYPE_OCI_MANIFEST;
            if !(claimed || maybe) {
                continue;
            }
            let digest = d.digest().to_string();
            if seen.insert(digest.clone()) {
                out.push(Candidate {
                    digest,
                    size: d.size(),
                    claimed_notation: claimed,
                });
            }
        }
        Ok(out)
    }

    /// Fetches and checks one listed signature manifest. `Ok(None)`: not a Notation
    /// signature and never claimed to be one.
    async fn signature_manifest(
        &self,
        repository: &Reference,
        cand: &Candidate,
        subject: &str,
        deadline: Instant,
    ) -> Result<Option<SignatureManifest>, RegistryError> {
        let invalid = |message: String| RegistryError::InvalidSignatureManifest {
            manifest: cand.digest.clone(),
            message,
        };
        parse_digest(&cand.digest).map_err(|e| invalid(e.to_string()))?;
        if cand.size > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                host: repository.api_host().to_owned(),
                what: format!("signature manifest {}", cand.digest),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let what = format!("signature manifest {}", cand.digest);
        let got = self
            .execute(Req {
                reference: repository,
                method: Method::GET,
                path: format!("/v2/{}/manifests/{}", repository.repository(), cand.digest),
                accept: MEDIA_TYPE_OCI_MANIFEST,
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
        check_digest(&what, &cand.digest, &got.body)?;
        if got.body.len() as u64 != cand.size {
            return Err(RegistryError::SizeMismatch {
                what,
                expected: cand.size,
                actual: got.body.len() as u64,
            });
        }
        let manifest: ImageManifest =
            serde_json::from_slice(&got.body).map_err(|e| invalid(e.to_string()))?;
        if let Some(mt) = manifest.media_type() {
            if mt.to_string() != MEDIA_TYPE_OCI_MANIFEST {
                return Err(invalid(format!(
                    "media type {mt} is not an OCI image manifest"
                )));
            }
        }
        let artifact_type = manifest.artifact_type().as_ref().map(|m| m.to_string());
        let config_type = manifest.config().media_type().to_string();
        let current = artifact_type.as_deref() == Some(NOTATION_ARTIFACT_TYPE);
        let legacy = config_type == NOTATION_ARTIFACT_TYPE;
        if !(current || legacy) {
            if cand.claimed_notation {
                return Err(invalid(format!(
                    "listed as a Notation signature, but its artifact type is {} and its config media type {config_type}",
                    artifact_type.as_deref().unwrap_or("absent")
                )));
            }
            return Ok(None);
        }
        let actual_subject = manifest
            .subject()
            .as_ref()
            .map(|s| s.digest().to_string())
            .ok_or_else(|| invalid("no subject".into()))?;
        if actual_subject != subject {
            return Err(RegistryError::SubjectMismatch {
                manifest: cand.digest.clone(),
                expected: subject.to_owned(),
                actual: actual_subject,
            });
        }
        let layers = manifest.layers();
        if layers.len() != 1 {
            return Err(invalid(format!(
                "{} layers; a Notation signature has exactly one envelope layer",
                layers.len()
            )));
        }
        let layer = &layers[0];
        let media_type = layer.media_type().to_string();
        if media_type != MEDIA_TYPE_JWS && media_type != MEDIA_TYPE_COSE {
            return Err(invalid(format!(
                "unsupported envelope media type {media_type}"
            )));
        }
        if layer.size() == 0 || layer.size() > MAX_ENVELOPE_BYTES {
            return Err(invalid(format!(
                "envelope size {} outside 1..={MAX_ENVELOPE_BYTES}",
                layer.size()
            )));
        }
        let envelope_digest = layer.digest().to_string();
        parse_digest(&envelope_digest).map_err(|e| invalid(e.to_string()))?;
        let annotations = manifest
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Some(SignatureManifest {
            digest: cand.digest.clone(),
            size: cand.size,
            media_type: media_type.clone(),
            envelope: descriptor(media_type, envelope_digest, layer.size()),
            annotations,
        }))
    }
}

/// A listed manifest that may be a signature.
#[derive(Debug, Clone)]
struct Candidate {
    digest: String,
    size: u64,
    /// The listing said `artifactType: application/vnd.cncf.notary.signature`.
    claimed_notation: bool,
}

fn rejects_signature(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::DigestMismatch { .. }
            | RegistryError::SizeMismatch { .. }
            | RegistryError::SubjectMismatch { .. }
            | RegistryError::InvalidSignatureManifest { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::NotFound { .. }
    )
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(http::header::LINK) {
        let value = value.to_str().ok()?;
        for part in value.split(',') {
            let part = part.trim();
            let Some(rest) = part.strip_prefix('<') else {
                continue;
            };
            let Some((target, params)) = rest.split_once('>') else {
                continue;
            };
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                return Some(target.to_owned());
            }
        }
    }
    None
}

/// The path (and query) of a pagination link, refused unless it stays on the registry.
fn same_host_path(
    link: &str,
    registry_host: &str,
    answered_by: &str,
) -> Result<String, RegistryError> {
    if link.starts_with('/') && !link.starts_with("//") {
        return Ok(link.to_owned());
    }
    let uri: Uri = link.parse().map_err(|e| RegistryError::Malformed {
        host: answered_by.to_owned(),
        what: "referrers pagination link".into(),
        message: format!("{link:?}: {e}"),
    })?;
    match uri.authority() {
        Some(a) if a.as_str() == registry_host => Ok(uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "/".into())),
        _ => Err(RegistryError::Malformed {
            host: answered_by.to_owned(),
            what: "referrers pagination link".into(),
            message: format!("{link:?} leaves the registry {registry_host}"),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::LINK,
            r#"</v2/a/referrers/sha256:x?n=2&last=y>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/a/referrers/sha256:x?n=2&last=y")
        );
        assert_eq!(
            same_host_path("https://r.io/v2/a?x=1", "r.io", "r.io").unwrap(),
            "/v2/a?x=1"
        );
        assert!(same_host_path("https://evil.io/v2/a", "r.io", "r.io").is_err());
        assert!(same_host_path("//evil.io/v2/a", "r.io", "r.io").is_err());
    }
}
