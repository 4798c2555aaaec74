//! Choosing the statement that applies to an artifact (notation-go
//! `OCIDocument.GetApplicableTrustPolicy`, `BlobDocument.GetApplicableTrustPolicy` and
//! `GetGlobalTrustPolicy`).

use super::document::validate_scope_format;
use super::{PolicyError, Scope, Statement, TrustPolicyDocument};

/// Largest artifact reference accepted (bytes).
const MAX_REFERENCE_LEN: usize = 4096;

/// The repository path (`registry/repository`) of an artifact reference
/// `registry/repository[:tag]@algorithm:encoded`. As in notation-go the reference must carry
/// a digest (the part after the last `@`) and the path must be a valid registry scope; the
/// scope is compared as written (no `docker.io` normalisation). A tag before the digest is
/// dropped.
pub fn repository_of_reference(reference: &str) -> Result<&str, PolicyError> {
    let bad = |why: &str| {
        PolicyError::InvalidReference(format!(
            "artifact reference {reference:?} could not be parsed: {why}; use the fully qualified form without scheme, e.g. domain.com:80/my/repository@sha256:<digest>"
        ))
    };
    if reference.len() > MAX_REFERENCE_LEN {
        return Err(bad("it is too long"));
    }
    let Some((name, digest)) = reference.rsplit_once('@') else {
        return Err(bad("it has no digest (\"@sha256:...\")"));
    };
    if !is_digest(digest) {
        return Err(bad("the digest is not of the form <algorithm>:<encoded>"));
    }
    // Drop a tag: a ':' after the last '/'.
    let path = match name.rsplit_once('/') {
        Some((head, last)) => match last.split_once(':') {
            Some((repo_last, _tag)) => name.get(..head.len() + 1 + repo_last.len()).unwrap_or(name),
            None => name,
        },
        None => name,
    };
    validate_scope_format(path).map_err(|e| bad(&e))?;
    Ok(path)
}

/// OCI digest grammar: `[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
fn is_digest(d: &str) -> bool {
    let Some((alg, enc)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let enc_ok = !enc.is_empty()
        && enc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    alg_ok && enc_ok
}

/// The registry name containerd pulls from for a registry written `domain`: host
/// lower-cased (DNS is case-insensitive), the default HTTPS port `:443` dropped, and Docker
/// Hub's aliases (`index.docker.io`, `registry-1.docker.io`) named `docker.io`.
pub fn canonical_registry(domain: &str) -> String {
    let lower = domain.to_ascii_lowercase();
    let host = lower.strip_suffix(":443").unwrap_or(&lower);
    match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        _ => host.to_owned(),
    }
}

/// The canonical form of a repository name `domain/path` (a reference's repository or a
/// trust-policy registry scope): [`canonical_registry`] for the domain, and the `library/`
/// prefix for a single-component Docker Hub path. Anything without a `/` (the `*` scope) is
/// returned as is.
pub fn canonical_repository(name: &str) -> String {
    let Some((domain, path)) = name.split_once('/') else {
        return name.to_owned();
    };
    let registry = canonical_registry(domain);
    if registry == DOCKER_HUB && !path.contains('/') {
        format!("{registry}/library/{path}")
    } else {
        format!("{registry}/{path}")
    }
}

const DOCKER_HUB: &str = "docker.io";

impl TrustPolicyDocument {
    /// The statement applicable to the repository `registry/repo` with both sides in
    /// canonical form ([`canonical_repository`]): `MyReg.io/x`, `myreg.io:443/x` and
    /// `myreg.io/x` select the same statement, as do `index.docker.io/nginx`,
    /// `registry-1.docker.io/library/nginx` and `docker.io/library/nginx`, whichever way the
    /// policy writes its scope. An exact scope beats `*`. Two statements whose scopes name
    /// the same canonical repository make the choice ambiguous: an error (see
    /// [`TrustPolicyDocument::canonical_scope_conflict`]).
    pub fn select_for_repository(&self, repository: &str) -> Result<&Statement, PolicyError> {
        validate_scope_format(repository).map_err(|e| {
            PolicyError::InvalidReference(format!(
                "repository {repository:?} could not be parsed: {e}"
            ))
        })?;
        let wanted = canonical_repository(repository);
        let mut wildcard = None;
        let mut exact: Option<&Statement> = None;
        for st in &self.statements {
            if let Scope::Registry(scopes) = &st.scope {
                if scopes.iter().any(|s| s == "*") {
                    wildcard = Some(st);
                } else if scopes.iter().any(|s| canonical_repository(s) == wanted) {
                    if let Some(first) = exact {
                        return Err(PolicyError::Invalid(format!(
                            "trust policy statements {:?} and {:?} both apply to {wanted:?} (their registry scopes name the same repository once host case, port 443 and Docker Hub aliases are normalised); keep it in one statement",
                            first.name, st.name
                        )));
                    }
                    exact = Some(st);
                }
            }
        }
        exact.or(wildcard).ok_or_else(|| {
            PolicyError::NoApplicableStatement(format!(
                "repository {wanted:?} has no applicable oci trust policy statement: no statement lists registry scope {wanted:?} and none uses '*'; add {wanted:?} to a statement's \"registryScopes\""
            ))
        })
    }

    /// Two registry scopes of different statements that name the same repository in
    /// canonical form (e.g. `docker.io/nginx` and `docker.io/library/nginx`), as
    /// `(statement, statement, canonical repository)`; a service refuses such a policy.
    pub fn canonical_scope_conflict(&self) -> Option<(String, String, String)> {
        let mut owners: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
        for st in &self.statements {
            if let Scope::Registry(scopes) = &st.scope {
                for scope in scopes.iter().filter(|s| *s != "*") {
                    let canonical = canonical_repository(scope);
                    match owners.get(canonical.as_str()) {
                        Some(owner) if *owner != st.name => {
                            return Some((owner.to_string(), st.name.clone(), canonical))
                        }
                        _ => {
                            owners.insert(canonical, &st.name);
                        }
                    }
                }
            }
        }
        None
    }

    /// OCI: the statement applicable to an artifact reference
    /// (`registry/repo[:tag]@digest`); an exact repository scope beats `*`.
    pub fn select_for_reference(&self, reference: &str) -> Result<&Statement, PolicyError> {
        let path = repository_of_reference(reference)?;
        let mut wildcard = None;
        let mut exact = None;
        for st in &self.statements {
            if let Scope::Registry(scopes) = &st.scope {
                if scopes.iter().any(|s| s == "*") {
                    wildcard = Some(st);
                } else if scopes.iter().any(|s| s == path) {
                    exact = Some(st);
                }
            }
        }
        exact.or(wildcard).ok_or_else(|| {
            PolicyError::NoApplicableStatement(format!(
                "artifact {reference:?} has no applicable oci trust policy statement: no statement lists registry scope {path:?} and none uses '*'; add {path:?} to a statement's \"registryScopes\""
            ))
        })
    }

    /// Blob: the named statement, or the global one when `name` is `None`.
    pub fn select_blob(&self, name: Option<&str>) -> Result<&Statement, PolicyError> {
        match name {
            Some(n) if n.trim().is_empty() => Err(PolicyError::InvalidReference(
                "blob trust policy name cannot be empty; name a statement of the blob trust policy".to_owned(),
            )),
            Some(n) => self.statements.iter().find(|st| st.name == n).ok_or_else(|| {
                PolicyError::NoApplicableStatement(format!(
                    "no applicable blob trust policy with name {n:?}; check the statement names in the blob trust policy"
                ))
            }),
            None => self
                .statements
                .iter()
                .find(|st| matches!(st.scope, Scope::Blob { global: true }))
                .ok_or_else(|| {
                    PolicyError::NoApplicableStatement(
                        "no global blob trust policy: name a statement, or mark one with \"globalPolicy\": true".to_owned(),
                    )
                }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "select_tests.rs"]
mod tests;
