//! Fetching TUF metadata from a Notary v1 server (`GET /v2/<gun>/_trust/tuf/<role>.json`)
//! under a timeout and size bounds, and the verifier that drives [`Update`] with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use signet_http::{Connector, PlainHttp, PooledClient, ProxyPolicy};
use time::OffsetDateTime;

use crate::config::{Dct, Repository};
use crate::error::DctError;
use crate::proxy::ProxySettings;
use crate::tuf::{check_manifest, RepoState, SignedTarget, Update};

/// Largest root accepted (Notary roots with a few certificates are a few KiB).
pub const MAX_ROOT_BYTES: u64 = 512 * 1024;
/// Largest timestamp accepted.
pub const MAX_TIMESTAMP_BYTES: u64 = 64 * 1024;
/// Largest snapshot or targets document accepted, whatever the metadata above declares.
pub const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// A Docker Content Trust verification that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DctVerified {
    /// The repository name the metadata is for.
    pub gun: String,
    /// The signed target (tag, role, signers, digest, length).
    pub target: SignedTarget,
}

impl DctVerified {
    /// The `signer` of the answer's signature entry (`format: "dct"`): the role that lists
    /// the tag and the IDs of the keys that signed it, e.g. `targets/releases (key 4dc1…)`.
    pub fn signer(&self) -> String {
        let keys: Vec<&str> = self
            .target
            .signers
            .iter()
            .map(|id| id.get(..12).unwrap_or(id))
            .collect();
        format!("{} (key {})", self.target.role, keys.join(", "))
    }
}

/// Verifies tags against Notary servers, remembering per repository the last trusted root
/// and the versions seen (rollback protection for the life of the process). Build a new
/// verifier when the configuration changes, so a changed pin applies to roots trusted before.
#[derive(Debug, Clone)]
pub struct DctVerifier {
    config: Arc<Dct>,
    /// Per scope: its TLS roots (system + Mozilla + `serverCa`), and the HTTP client built
    /// on them with the proxy policy (signet-http's outbound stack).
    tls: HashMap<String, Arc<rustls::ClientConfig>>,
    clients: HashMap<String, PooledClient>,
    states: Arc<Mutex<HashMap<String, RepoState>>>,
    /// Notary server URL → credentials for its token service.
    credentials: HashMap<String, BasicCredentials>,
    proxy: ProxyPolicy,
}

/// A user name and password for a Notary server's token service (HTTP Basic at the realm).
#[derive(Clone)]
pub struct BasicCredentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl DctVerifier {
    /// Builds a verifier; fails when a server CA does not parse.
    pub fn new(config: Dct) -> Result<DctVerifier, DctError> {
        let mut tls = HashMap::new();
        for repo in &config.repositories {
            tls.insert(repo.scope.clone(), tls_config(repo.server_ca.as_deref())?);
        }
        let proxy = ProxyPolicy::from_env();
        if let Some(e) = proxy.error() {
            tracing::warn!(error = %e, "dct: the proxy settings of the environment are unusable");
        }
        let mut verifier = DctVerifier {
            config: Arc::new(config),
            tls,
            clients: HashMap::new(),
            states: Arc::new(Mutex::new(HashMap::new())),
            credentials: HashMap::new(),
            proxy,
        };
        verifier.build_clients();
        Ok(verifier)
    }

    /// Replaces the proxies read from the environment.
    pub fn with_proxy(mut self, proxy: ProxySettings) -> Self {
        self.proxy = proxy.to_policy();
        self.build_clients();
        self
    }

    fn build_clients(&mut self) {
        self.clients = self
            .config
            .repositories
            .iter()
            .filter_map(|repo| {
                let tls = self.tls.get(&repo.scope)?.clone();
                let plain = if repo.plain_http {
                    PlainHttp::Always
                } else {
                    PlainHttp::Never
                };
                let connector = Connector::new(tls, self.proxy.clone()).plain_http(plain);
                Some((repo.scope.clone(), signet_http::pooled_client(connector)))
            })
            .collect();
    }

    /// Credentials sent to the token service that the Notary server at `server` (its URL
    /// as configured) names in its challenge; sent for no other server.
    pub fn with_credentials(mut self, server: &str, credentials: BasicCredentials) -> Self {
        self.credentials
            .insert(server.trim_end_matches('/').to_owned(), credentials);
        self
    }

    /// The validated configuration.
    pub fn config(&self) -> &Dct {
        &self.config
    }

    /// The state remembered for `gun` (versions seen).
    pub fn state(&self, gun: &str) -> RepoState {
        self.states
            .lock()
            .map(|s| s.get(gun).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Verifies that `tag` of `gun` is signed in DCT for the manifest `digest` of `size`
    /// bytes, evaluated at `now`.
    pub async fn verify(
        &self,
        gun: &str,
        tag: &str,
        digest: &str,
        size: u64,
        now: OffsetDateTime,
    ) -> Result<DctVerified, DctError> {
        let repo = self
            .config
            .repository_for(gun)
            .ok_or_else(|| DctError::NotConfigured {
                gun: gun.to_owned(),
            })?;
        let client =
            self.clients
                .get(&repo.scope)
                .cloned()
                .ok_or_else(|| DctError::NotConfigured {
                    gun: gun.to_owned(),
                })?;
        let fetcher = Fetcher {
            repo,
            client,
            timeout: self.config.timeout,
            gun,
            credentials: self.credentials.get(&repo.server).cloned(),
            token: Mutex::new(None),
        };
        let mut update = Update::new(gun, now, self.state(gun));

        let root = fetcher.get("root", MAX_ROOT_BYTES).await?;
        update.verify_root(&root, &repo.pin)?;
        let timestamp = fetcher.get("timestamp", MAX_TIMESTAMP_BYTES).await?;
        update.verify_timestamp(&timestamp)?;
        let snapshot_len = bounded(update.snapshot_length(), "snapshot")?;
        let snapshot = fetcher.get("snapshot", snapshot_len).await?;
        update.verify_snapshot(&snapshot)?;
        let targets_len = bounded(update.declared_length("targets"), "targets")?;
        let targets = fetcher.get("targets", targets_len).await?;
        update.verify_targets(&targets)?;
        loop {
            let pending = update.pending_delegations();
            let Some(role) = pending.into_iter().next() else {
                break;
            };
            let len = bounded(update.declared_length(&role), &role)?;
            let bytes = fetcher.get(&role, len).await?;
            update.verify_delegation(&role, &bytes)?;
        }
        let found = update.find_target(tag);
        // The chain verified: remember the root and the versions even if the tag fails.
        self.remember(gun, update.into_state());
        let target = found?;
        check_manifest(&target, digest, size)?;
        Ok(DctVerified {
            gun: gun.to_owned(),
            target,
        })
    }

    fn remember(&self, gun: &str, state: RepoState) {
        if let Ok(mut states) = self.states.lock() {
            states.entry(gun.to_owned()).or_default().merge(state);
        }
    }
}

fn bounded(declared: Option<u64>, role: &str) -> Result<u64, DctError> {
    let declared =
        declared.ok_or_else(|| DctError::malformed(role, "not declared by the metadata above"))?;
    if declared > MAX_METADATA_BYTES {
        return Err(DctError::TooLarge {
            role: role.to_owned(),
            size: declared,
            limit: MAX_METADATA_BYTES,
        });
    }
    Ok(declared)
}

fn tls_config(extra_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, DctError> {
    let extra = match extra_pem {
        Some(pem) => signet_http::tls::parse_pem_certs(pem.as_bytes())
            .map_err(|e| DctError::Config(format!("serverCa: {e}")))?,
        None => Vec::new(),
    };
    signet_http::tls::client_config(&extra).map_err(|e| DctError::Config(format!("serverCa: {e}")))
}

struct Fetcher<'a> {
    repo: &'a Repository,
    client: PooledClient,
    timeout: Duration,
    gun: &'a str,
    credentials: Option<BasicCredentials>,
    /// The bearer token obtained for this repository in this verification.
    token: Mutex<Option<String>>,
}

/// A response: status, `WWW-Authenticate`, body.
struct Answer {
    status: http::StatusCode,
    challenge: Option<String>,
    body: Vec<u8>,
}

impl Fetcher<'_> {
    fn server_err(&self, reason: String) -> DctError {
        DctError::Server {
            server: self.repo.server.clone(),
            reason,
        }
    }

    /// Fetches one role's metadata, at most `limit` bytes, within the timeout.
    async fn get(&self, role: &str, limit: u64) -> Result<Vec<u8>, DctError> {
        match tokio::time::timeout(self.timeout, self.get_role(role, limit)).await {
            Ok(result) => result,
            Err(_) => Err(DctError::Timeout {
                server: self.repo.server.clone(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    async fn get_role(&self, role: &str, limit: u64) -> Result<Vec<u8>, DctError> {
        let url = format!(
            "{}/v2/{}/_trust/tuf/{role}.json",
            self.repo.server, self.gun
        );
        let token = self.token.lock().ok().and_then(|t| t.clone());
        let mut answer = self
            .http_get(&url, token.as_deref(), None, role, limit)
            .await?;
        if answer.status == http::StatusCode::UNAUTHORIZED {
            // Notary servers behind a registry's token service (Docker Hub, ACR) answer
            // with a Bearer challenge: get a pull token for this repository, retry once.
            let challenge = answer.challenge.clone().unwrap_or_default();
            let token = self.fetch_token(&challenge).await?;
            answer = self.http_get(&url, Some(&token), None, role, limit).await?;
            if let Ok(mut slot) = self.token.lock() {
                *slot = Some(token);
            }
        }
        let status = answer.status;
        if status == http::StatusCode::NOT_FOUND {
            return Err(DctError::NotSigned {
                server: self.repo.server.clone(),
                gun: self.gun.to_owned(),
                role: role.to_owned(),
            });
        }
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            return Err(self.server_err(format!(
                "{role} metadata: HTTP {status}: the token service's token does not grant pull on {}",
                self.gun
            )));
        }
        if !status.is_success() {
            return Err(self.server_err(format!("{role} metadata: HTTP {status}")));
        }
        Ok(answer.body)
    }

    /// Answers a `Bearer realm=…,service=…,scope=…` challenge with a token from the realm.
    /// Basic credentials go to the realm only when configured for this Notary server.
    async fn fetch_token(&self, challenge: &str) -> Result<String, DctError> {
        let params = parse_bearer_challenge(challenge).ok_or_else(|| {
            self.server_err(format!(
                "HTTP 401 without a Bearer challenge ({challenge:?}): no way to authenticate"
            ))
        })?;
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.server_err("Bearer challenge without realm".to_owned()))?;
        let scope = params
            .iter()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("repository:{}:pull", self.gun));
        let mut url = realm.clone();
        url.push(if realm.contains('?') { '&' } else { '?' });
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            url.push_str(&format!("service={}&", percent_encode(service)));
        }
        url.push_str(&format!("scope={}", percent_encode(&scope)));
        // Credentials go only to a realm on the Notary server's own host: a server cannot
        // send them elsewhere by naming another realm.
        let realm_host = realm
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned));
        let server_host = self
            .repo
            .server
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned));
        let same_host = realm_host.is_some() && realm_host == server_host;
        if self.credentials.is_some() && !same_host {
            tracing::warn!(
                server = %self.repo.server,
                realm = %realm,
                "dct: the token realm is not on the Notary server's host; asking for an anonymous token"
            );
        }
        let basic = self.credentials.as_ref().filter(|_| same_host).map(|c| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        let answer = self
            .http_get(&url, None, basic.as_deref(), "token", MAX_TIMESTAMP_BYTES)
            .await?;
        if !answer.status.is_success() {
            return Err(self.server_err(format!(
                "token service {realm} answered HTTP {}{}",
                answer.status,
                if self.credentials.is_none() {
                    " (no credentials are configured for this Notary server)"
                } else {
                    ""
                }
            )));
        }
        let body: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|e| self.server_err(format!("token service {realm}: {e}")))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| self.server_err(format!("token service {realm} gave no token")))
    }

    async fn http_get(
        &self,
        url: &str,
        bearer: Option<&str>,
        basic: Option<&str>,
        what: &str,
        limit: u64,
    ) -> Result<Answer, DctError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| self.server_err(format!("URL {url}: {e}")))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.repo.plain_http => {}
            _ => return Err(self.server_err(format!("scheme of {url} not allowed"))),
        }
        if uri.host().is_none() {
            return Err(self.server_err(format!("{url} has no host")));
        }
        let mut request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "signet-dct");
        if let Some(token) = bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        } else if let Some(basic) = basic {
            request = request.header(http::header::AUTHORIZATION, basic);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| self.server_err(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| self.server_err(format!("{what}: {}", signet_http::describe(&e))))?;
        let status = response.status();
        let challenge = response
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(len) = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit && status.is_success() {
                return Err(DctError::TooLarge {
                    role: what.to_owned(),
                    size: len,
                    limit,
                });
            }
        }
        let mut body = response.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.server_err(format!("reading {what}: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if (buf.len() + data.len()) as u64 > limit {
                    return Err(DctError::TooLarge {
                        role: what.to_owned(),
                        size: (buf.len() + data.len()) as u64,
                        limit,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Answer {
            status,
            challenge,
            body: buf,
        })
    }
}

/// `Bearer k="v",k2="v2"` → pairs; `None` when the scheme is not Bearer.
fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((key, value.to_owned()));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let params = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="notary.example", scope="repository:a/b:pull""#,
        )
        .expect("bearer");
        assert_eq!(
            params,
            vec![
                ("realm".to_owned(), "https://auth.example/token".to_owned()),
                ("service".to_owned(), "notary.example".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull".to_owned()),
            ]
        );
        assert!(parse_bearer_challenge(r#"Basic realm="x""#).is_none());
        assert_eq!(
            percent_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
