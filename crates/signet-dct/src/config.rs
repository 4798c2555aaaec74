//! The `dct` configuration: which Notary server and which root trust apply to which
//! repositories, and until when DCT alone may admit an image.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::DctError;
use crate::pin::RootPin;

/// The `dct:` section, as written in Signet's configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DctConfig {
    /// Repository scopes with their Notary server and pinned root trust.
    #[serde(default)]
    pub repositories: Vec<RepositoryConfig>,
    /// RFC 3339 instant until which a DCT-verified image is admitted when it has no
    /// verified Notation signature. Without it DCT answers are reported, never admitted.
    #[serde(default)]
    pub migration_until: Option<String>,
    /// Timeout of one request to a Notary server, in seconds (default 10).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// One repository scope.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A GUN (`registry/repo`), or a prefix ending in `/*` covering every repository under it.
    pub scope: String,
    /// The Notary server's base URL (`https://notary.example:4443`).
    pub server: String,
    /// Root key IDs (64 hex digits) or PEM public keys.
    #[serde(default)]
    pub root_keys: Vec<String>,
    /// PEM root certificates (the root key's certificate, or a CA that issued it).
    #[serde(default)]
    pub root_certificates: Vec<String>,
    /// PEM CA certificates trusted for the Notary server's TLS, besides the system roots.
    #[serde(default)]
    pub server_ca: Option<String>,
    /// Talk plain HTTP to this server. For local tests only; logged loudly.
    #[serde(default)]
    pub danger_plain_http: bool,
}

/// A validated repository scope.
#[derive(Debug, Clone)]
pub struct Repository {
    pub(crate) scope: String,
    pub(crate) server: String,
    pub(crate) pin: RootPin,
    pub(crate) server_ca: Option<String>,
    pub(crate) plain_http: bool,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Dct {
    pub(crate) repositories: Vec<Repository>,
    /// End of the migration window, when configured.
    pub migration_until: Option<OffsetDateTime>,
    pub(crate) timeout: std::time::Duration,
}

impl DctConfig {
    /// Validates the section: scopes, URLs, root trust (at least one anchor per scope).
    pub fn validate(&self) -> Result<Dct, DctError> {
        let mut repositories = Vec::new();
        for repo in &self.repositories {
            let scope = repo.scope.trim().to_owned();
            if scope.is_empty() || scope == "*" || scope == "/*" {
                return Err(DctError::Config(format!(
                    "scope {:?}: name a repository or a prefix ending in /*",
                    repo.scope
                )));
            }
            let server = repo.server.trim_end_matches('/').to_owned();
            let uri: http::Uri = server
                .parse()
                .map_err(|e| DctError::Config(format!("server {:?}: {e}", repo.server)))?;
            match uri.scheme_str() {
                Some("https") => {}
                Some("http") if repo.danger_plain_http => {}
                _ => {
                    return Err(DctError::Config(format!(
                        "server {:?} must be an https:// URL",
                        repo.server
                    )))
                }
            }
            if uri.host().is_none() {
                return Err(DctError::Config(format!(
                    "server {:?} has no host",
                    repo.server
                )));
            }
            let pin = RootPin::from_config(&repo.root_keys, &repo.root_certificates)
                .map_err(|e| DctError::Config(format!("scope {scope}: {e}")))?;
            if repo.danger_plain_http {
                tracing::warn!(
                    scope = %scope,
                    server = %server,
                    "dct: plain HTTP to the Notary server is allowed (dangerPlainHttp): metadata is still signature-checked, but anyone on the path sees which images are pulled"
                );
            }
            repositories.push(Repository {
                scope,
                server,
                pin,
                server_ca: repo.server_ca.clone(),
                plain_http: repo.danger_plain_http,
            });
        }
        let migration_until = self
            .migration_until
            .as_deref()
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339)
                    .map_err(|e| DctError::Config(format!("migrationUntil {s:?}: {e}")))
            })
            .transpose()?;
        let timeout = std::time::Duration::from_secs(self.timeout_seconds.unwrap_or(10).max(1));
        Ok(Dct {
            repositories,
            migration_until,
            timeout,
        })
    }
}

impl Dct {
    /// The Notary server URLs configured (as written, without a trailing `/`), one per
    /// scope: the keys of [`crate::DctVerifier::with_credentials`].
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.repositories.iter().map(|r| r.server.as_str())
    }

    /// The most specific scope covering `gun`: an exact name beats a `prefix/*`, a longer
    /// prefix beats a shorter one.
    pub fn repository_for(&self, gun: &str) -> Option<&Repository> {
        let mut best: Option<(&Repository, usize)> = None;
        for repo in &self.repositories {
            let rank = if repo.scope == gun {
                usize::MAX
            } else if let Some(prefix) = repo.scope.strip_suffix("/*") {
                if gun.starts_with(prefix) && gun.as_bytes().get(prefix.len()) == Some(&b'/') {
                    prefix.len()
                } else {
                    continue;
                }
            } else {
                continue;
            };
            if best.is_none_or(|(_, r)| rank > r) {
                best = Some((repo, rank));
            }
        }
        best.map(|(repo, _)| repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(scopes: &[&str]) -> Dct {
        DctConfig {
            repositories: scopes
                .iter()
                .map(|s| RepositoryConfig {
                    scope: (*s).to_owned(),
                    server: format!("https://{}.example", s.replace(['/', '*'], "-")),
                    root_keys: vec!["ab".repeat(32)],
                    ..RepositoryConfig::default()
                })
                .collect(),
            ..DctConfig::default()
        }
        .validate()
        .expect("valid")
    }

    #[test]
    fn most_specific_scope_wins() {
        let dct = config(&[
            "reg.example/*",
            "reg.example/team/*",
            "reg.example/team/app",
        ]);
        let scope = |gun| dct.repository_for(gun).map(|r| r.scope.clone());
        assert_eq!(
            scope("reg.example/team/app").as_deref(),
            Some("reg.example/team/app")
        );
        assert_eq!(
            scope("reg.example/team/web").as_deref(),
            Some("reg.example/team/*")
        );
        assert_eq!(scope("reg.example/other").as_deref(), Some("reg.example/*"));
        assert_eq!(scope("reg.example.evil/app"), None);
    }

    #[test]
    fn refuses_trust_on_first_use_and_plain_http() {
        let no_pin = DctConfig {
            repositories: vec![RepositoryConfig {
                scope: "reg.example/app".into(),
                server: "https://notary.example".into(),
                ..RepositoryConfig::default()
            }],
            ..DctConfig::default()
        };
        assert!(
            matches!(no_pin.validate(), Err(DctError::Config(m)) if m.contains("no trust on first use"))
        );
        let plain = DctConfig {
            repositories: vec![RepositoryConfig {
                scope: "reg.example/app".into(),
                server: "http://notary.example".into(),
                root_keys: vec!["ab".repeat(32)],
                ..RepositoryConfig::default()
            }],
            ..DctConfig::default()
        };
        assert!(plain.validate().is_err());
    }
}
