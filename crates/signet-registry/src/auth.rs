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
/// or `identitytoken`; and credential helpers, as Docker Desktop and `docker login` with a
/// keychain store them: `credHelpers.<registry>` first, then `auths`, then `credsStore`.
///
/// A helper is run as `docker-credential-NAME get` (found on `PATH`, or in
/// [`DockerConfig::with_helper_dir`]) with the server URL on standard input; its answer is
/// `{"ServerURL", "Username", "Secret"}` (user name `<token>`: the secret is an identity
/// token). "credentials not found" means anonymous access. A helper gets 10 s and 64 KiB of
/// output; any other failure is [`RegistryError::CredentialHelper`], naming the helper. Answers
/// are reused for a minute (a Basic-auth registry asks for every request).
#[derive(Clone, Default)]
pub struct DockerConfig {
    auths: HashMap<String, Credential>,
    creds_store: Option<String>,
    cred_helpers: HashMap<String, String>,
    helper_dir: Option<std::path::PathBuf>,
    helper_cache: Arc<std::sync::Mutex<HelperCache>>,
}

/// (helper, registry) → its answer and when it was given.
type HelperCache = HashMap<String, (Option<Credential>, std::time::Instant)>;

/// Longest a credential helper may run.
const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Most output read from a credential helper.
const HELPER_MAX_OUTPUT: u64 = 64 * 1024;
/// How long a helper's answer is reused.
const HELPER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hosts: Vec<_> = self.auths.keys().collect();
        hosts.sort();
        f.debug_struct("DockerConfig")
            .field("registries", &hosts)
            .field("creds_store", &self.creds_store)
            .field("cred_helpers", &self.cred_helpers)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: HashMap<String, RawAuth>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
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
        let creds_store = raw.creds_store.filter(|s| !s.trim().is_empty());
        if let Some(name) = &creds_store {
            check_helper_name(name, "credsStore")?;
        }
        let mut cred_helpers = HashMap::new();
        for (key, name) in raw.cred_helpers {
            check_helper_name(&name, &format!("credHelpers.{key}"))?;
            cred_helpers.insert(normalize_config_key(&key), name);
        }
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
        Ok(DockerConfig {
            auths,
            creds_store,
            cred_helpers,
            ..DockerConfig::default()
        })
    }

    /// Runs credential helpers from `dir` instead of looking them up on `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<std::path::PathBuf>) -> DockerConfig {
        self.helper_dir = Some(dir.into());
        self
    }

    /// Whether this configuration names anything for `registry` (a credential or a helper).
    pub fn configures(&self, registry: &str) -> bool {
        let key = normalize_config_key(registry);
        self.creds_store.is_some()
            || self.cred_helpers.contains_key(&key)
            || self.auths.contains_key(&key)
    }

    async fn ask_helper(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        let key = format!("{helper}\n{registry}");
        {
            let cache = self.helper_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((cred, at)) = cache.get(&key) {
                if at.elapsed() < HELPER_CACHE_TTL {
                    return Ok(cred.clone());
                }
            }
        }
        let cred = run_helper(self.helper_dir.as_deref(), helper, registry).await?;
        self.helper_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (cred.clone(), std::time::Instant::now()));
        Ok(cred)
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
        Box::pin(async move {
            let key = normalize_config_key(registry);
            if let Some(helper) = self.cred_helpers.get(&key) {
                return self.ask_helper(helper, &key).await;
            }
            if let Some(found) = self.auths.get(&key) {
                return Ok(Some(found.clone()));
            }
            match &self.creds_store {
                Some(helper) => self.ask_helper(helper, &key).await,
                None => Ok(None),
            }
        })
    }
}

/// A helper name is the `NAME` of `docker-credential-NAME`: never a path.
fn check_helper_name(name: &str, field: &str) -> Result<(), RegistryError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        return Err(RegistryError::Config(format!(
            "Docker config: {field} {name:?} is not a credential helper name (docker-credential-NAME)"
        )));
    }
    Ok(())
}

/// The server URL helpers know a registry by: Docker Hub's legacy URL, else the host.
fn helper_server_url(registry: &str) -> String {
    if registry == crate::reference::DOCKER_HUB {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-NAME get`, bounded in time and output.
async fn run_helper(
    dir: Option<&Path>,
    helper: &str,
    registry: &str,
) -> Result<Option<Credential>, RegistryError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fail = |message: String| RegistryError::CredentialHelper {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        message,
    };
    let program = format!("docker-credential-{helper}");
    let path = match dir {
        Some(d) => d.join(&program),
        None => std::path::PathBuf::from(&program),
    };
    let mut child = tokio::process::Command::new(&path)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(format!(
                    "{program} is not installed (not found on PATH); install it, log in again with `docker login {registry}`, or remove the helper from the Docker config"
                ))
            } else {
                fail(format!("cannot run {program}: {e}"))
            }
        })?;
    let server_url = helper_server_url(registry);
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading is judged by its answer, not by the pipe.
            let _ = stdin.write_all(server_url.as_bytes()).await;
            drop(stdin);
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let out = child.stdout.take();
        let err = child.stderr.take();
        let read_out = async {
            if let Some(o) = out {
                let _ = o.take(HELPER_MAX_OUTPUT + 1).read_to_end(&mut stdout).await;
            }
        };
        let read_err = async {
            if let Some(e) = err {
                let _ = e.take(HELPER_MAX_OUTPUT + 1).read_to_end(&mut stderr).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (status, stdout, stderr)
    };
    let (status, stdout, stderr) = match tokio::time::timeout(HELPER_TIMEOUT, run).await {
        Ok(r) => r,
        Err(_) => {
            return Err(fail(format!(
                "no answer within {} s (it may be waiting for a desktop prompt)",
                HELPER_TIMEOUT.as_secs()
            )))
        }
    };
    let status = status.map_err(|e| fail(format!("waiting for it: {e}")))?;
    if stdout.len() as u64 > HELPER_MAX_OUTPUT {
        return Err(fail(format!(
            "answered more than {HELPER_MAX_OUTPUT} bytes"
        )));
    }
    let text = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .trim()
            .chars()
            .take(300)
            .collect::<String>()
    };
    if !status.success() {
        let said = format!("{} {}", text(&stdout), text(&stderr));
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("{status}: {}", said.trim())));
    }
    let answer: HelperAnswer = serde_json::from_slice(&stdout)
        .map_err(|e| fail(format!("its answer is not the credential JSON: {e}")))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Credential::IdentityToken(answer.secret)
    } else {
        Credential::Basic {
            username: answer.username,
            password: answer.secret,
        }
    }))
}

/// `https://index.docker.io/v1/` → `docker.io`; `https://host:5000/path` → `host:5000`;
/// `MyReg.io:443` → `myreg.io` (host names are case-insensitive and 443 is HTTPS's port, so
/// both name the registry the engine canonicalises references to).
fn normalize_config_key(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    let host = host.strip_suffix(":443").unwrap_or(&host);
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
        // Written or asked for with other case or HTTPS's port, it is the same registry.
        assert_eq!(
            c.get("MyACR.azurecr.io:443"),
            Some(&Credential::IdentityToken("rt".into()))
        );
        let upper = DockerConfig::from_json(
            br#"{"auths": {"https://MyACR.AzureCR.io:443": {"username": "u", "password": "p"}}}"#,
        )
        .unwrap();
        assert!(upper.get("myacr.azurecr.io").is_some());
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
