//! Registry credentials: where they come from ([`TokenSource`], [`DockerConfig`]) and the
//! `WWW-Authenticate` challenges that say how to use them.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;

use crate::error::RegistryError;

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password: sent as HTTP Basic to the registry (Basic challenge) or to
    /// its token service (Bearer challenge).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (Docker's `identitytoken`; what ACR's `/oauth2/exchange`
    /// returns): exchanged at the token service with `grant_type=refresh_token`.
    IdentityToken(String),
    /// A registry bearer token used as is (no token service round trip).
    BearerToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credential::BearerToken(_) => f.write_str("BearerToken(<redacted>)"),
        }
    }
}

/// A boxed future, as returned by [`TokenSource::credential`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where registry credentials come from. Asked once per token fetch (not per request), with
/// the registry as written in references (`docker.io`, `myacr.azurecr.io`, `host:5000`).
///
/// Implementations: [`DockerConfig`] (static files, Kubernetes pull secrets), [`NoCredentials`];
/// the ACR token source (Entra ID token exchanged for an ACR refresh token, returned as
/// [`Credential::IdentityToken`]) plugs in here.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// The credential for `registry`, or `None` for anonymous access.
    fn credential<'a>(
        &'a self,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<Option<Credential>, RegistryError>>;
}

/// Anonymous access everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredentials;

impl TokenSource for NoCredentials {
    fn credential<'a>(
        &'a self,
        _registry: &'a str,
    ) -> BoxFuture<'a, Result<Option<Credential>, RegistryError>> {
        Box::pin(async { Ok(None) })
    }
}

/// Credentials from Docker's `config.json` (also the `.dockerconfigjson` of a Kubernetes
/// pull secret): `auths.<registry>.auth` (base64 `user:pass`), `username`/`password`,
/// or `identitytoken`. Credential helpers (`credsStore`, `credHelpers`) are not run.
#[derive(Clone, Default)]
pub struct DockerConfig {
    auths: HashMap<String, Credential>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hosts: Vec<_> = self.auths.keys().collect();
        hosts.sort();
        f.debug_struct("DockerConfig")
            .field("registries", &hosts)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: HashMap<String, RawAuth>,
}

#[derive(serde::Deserialize, Default)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl DockerConfig {
    /// Parses a `config.json` / `.dockerconfigjson` document.
    pub fn from_json(json: &[u8]) -> Result<DockerConfig, RegistryError> {
        let raw: RawConfig = serde_json::from_slice(json)
            .map_err(|e| RegistryError::Config(format!("Docker config: {e}")))?;
        let mut auths = HashMap::new();
        for (key, entry) in raw.auths {
            let host = normalize_config_key(&key);
            let cred = if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Credential::IdentityToken(token)
            } else if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
                Credential::BearerToken(token)
            } else if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| {
                        RegistryError::Config(format!("Docker config: auth for {key}: {e}"))
                    })?;
                let decoded = String::from_utf8(decoded).map_err(|_| {
                    RegistryError::Config(format!("Docker config: auth for {key} is not UTF-8"))
                })?;
                let (username, password) = decoded.split_once(':').ok_or_else(|| {
                    RegistryError::Config(format!(
                        "Docker config: auth for {key} is not user:password"
                    ))
                })?;
                Credential::Basic {
                    username: username.to_owned(),
                    password: password.to_owned(),
                }
            } else if let (Some(username), Some(password)) = (entry.username, entry.password) {
                Credential::Basic { username, password }
            } else {
                continue;
            };
            auths.insert(host, cred);
        }
        Ok(DockerConfig { auths })
    }

    /// Reads and parses a Docker config file.
    pub fn from_file(path: &Path) -> Result<DockerConfig, RegistryError> {
        use std::io::Read as _;
        /// Pull secrets are small; a larger file is a mistake, not a configuration.
        const MAX_DOCKER_CONFIG_BYTES: u64 = 1024 * 1024;
        let cannot = |e: std::io::Error| {
            RegistryError::Config(format!("cannot read Docker config {}: {e}", path.display()))
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(cannot)?
            .take(MAX_DOCKER_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() as u64 > MAX_DOCKER_CONFIG_BYTES {
            return Err(RegistryError::Config(format!(
                "Docker config {} is over {MAX_DOCKER_CONFIG_BYTES} bytes",
                path.display()
            )));
        }
        DockerConfig::from_json(&bytes)
    }

    /// Adds (or replaces) the credential for `registry`.
    pub fn insert(&mut self, registry: &str, credential: Credential) {
        self.auths
            .insert(normalize_config_key(registry), credential);
    }

    /// The credential configured for `registry`, if any.
    pub fn get(&self, registry: &str) -> Option<&Credential> {
        self.auths.get(&normalize_config_key(registry))
    }

    /// As a shareable [`TokenSource`].
    pub fn into_source(self) -> Arc<dyn TokenSource> {
        Arc::new(self)
    }
}

impl TokenSource for DockerConfig {
    fn credential<'a>(
        &'a self,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<Option<Credential>, RegistryError>> {
        let found = self.get(registry).cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `https://host:5000/path` → `host:5000`.
fn normalize_config_key(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            crate::reference::DOCKER_HUB.to_owned()
        }
        h => h.to_owned(),
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses the first Basic or Bearer challenge in a `WWW-Authenticate` value.
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = match value.find(char::is_whitespace) {
        Some(i) => (&value[..i], value[i..].trim_start()),
        None => (value, ""),
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `a="x, y", b=z` → [(a, "x, y"), (b, z)], honouring quotes and backslash escapes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            break;
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            continue;
        }
        chars.next();
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        out.push((name, value));
    }
    out
}

/// The `Authorization` value for Basic credentials.
pub(crate) fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=https://x/token, service = "a\"b""#),
            Some(Challenge::Bearer {
                realm: "https://x/token".into(),
                service: Some("a\"b".into()),
                scope: None,
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn docker_config() {
        let json = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYTpzcw=="},
            "myacr.azurecr.io": {"username": "00000000-0000-0000-0000-000000000000", "identitytoken": "rt"},
            "localhost:5000": {"username": "u", "password": "p"},
            "empty.example": {}
        }}"#;
        let c = DockerConfig::from_json(json).unwrap();
        assert_eq!(
            c.get("docker.io"),
            Some(&Credential::Basic {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            c.get("myacr.azurecr.io"),
            Some(&Credential::IdentityToken("rt".into()))
        );
        assert_eq!(
            c.get("localhost:5000"),
            Some(&Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(c.get("empty.example"), None);
        assert!(!format!("{:?}", c.get("docker.io")).contains("pa:ss"));
        assert!(DockerConfig::from_json(b"{\"auths\": {\"x\": {\"auth\": \"!!\"}}}").is_err());
        assert!(DockerConfig::from_json(b"42").is_err());
    }
}
