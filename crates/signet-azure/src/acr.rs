//! The ACR token source: an Entra ID token for the registry scope, exchanged at the
//! registry's `/oauth2/exchange` for an ACR refresh token, which the registry client uses
//! as an identity token (the `oauth2/token` refresh-token grant with the repository scope).
//!
//! Only the registries listed at construction are ever sent a token; every other registry
//! goes to the fallback source (Docker config credentials, or anonymous).
//!
//! Protocol (Azure/acr `docs/AAD-OAuth.md`):
//!
//! ```text
//! POST https://{registry}/oauth2/exchange
//! Content-Type: application/x-www-form-urlencoded
//!
//! grant_type=access_token&service={registry}&tenant={tenant}&access_token={entra token}
//!
//! 200 {"refresh_token": "<JWT>"}
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use signet_registry::{BoxFuture, Credential, RegistryError, TokenSource};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::credential::{jwt_claims, EntraCredential, ACR_SCOPE};
use crate::error::AzureError;
use crate::http::HttpTransport;

/// Refresh tokens without a readable `exp` are reused this long.
const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(30 * 60);
/// A refresh token is replaced this long before its `exp`.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// See the module docs.
#[derive(Clone)]
pub struct AcrTokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    registries: HashSet<String>,
    credential: EntraCredential,
    http: HttpTransport,
    fallback: Arc<dyn TokenSource>,
    /// registry → (refresh token, reuse until). Held across an exchange, so that concurrent
    /// callers share one.
    cache: Mutex<HashMap<String, (String, Instant)>>,
    exchanges: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for AcrTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hosts: Vec<_> = self.inner.registries.iter().collect();
        hosts.sort();
        f.debug_struct("AcrTokenSource")
            .field("registries", &hosts)
            .field("credential", &self.inner.credential)
            .field("fallback", &self.inner.fallback)
            .finish_non_exhaustive()
    }
}

impl AcrTokenSource {
    /// Tokens for exactly `registries` (`name.azurecr.io`, compared case-insensitively);
    /// every other registry is asked of `fallback`.
    pub fn new(
        registries: impl IntoIterator<Item = impl AsRef<str>>,
        credential: EntraCredential,
        http: HttpTransport,
        fallback: Arc<dyn TokenSource>,
    ) -> Self {
        AcrTokenSource {
            inner: Arc::new(Inner {
                registries: registries
                    .into_iter()
                    .map(|r| r.as_ref().trim().to_ascii_lowercase())
                    .collect(),
                credential,
                http,
                fallback,
                cache: Mutex::new(HashMap::new()),
                exchanges: Default::default(),
            }),
        }
    }

    /// As a shareable [`TokenSource`].
    pub fn into_source(self) -> Arc<dyn TokenSource> {
        Arc::new(self)
    }

    /// Whether `registry` gets Azure tokens.
    pub fn is_acr(&self, registry: &str) -> bool {
        self.inner
            .registries
            .contains(&registry.to_ascii_lowercase())
    }

    /// Token exchanges done so far.
    pub fn exchanges(&self) -> u64 {
        self.inner
            .exchanges
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The ACR refresh token for a configured registry (cached).
    pub async fn refresh_token(&self, registry: &str) -> Result<String, AzureError> {
        let key = registry.to_ascii_lowercase();
        let mut cache = self.inner.cache.lock().await;
        if let Some((token, until)) = cache.get(&key) {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let entra = self.inner.credential.token(ACR_SCOPE).await?;
        let token = self.exchange(&key, &entra).await?;
        let until = Instant::now() + reuse_for(&token);
        cache.insert(key, (token.clone(), until));
        Ok(token)
    }

    async fn exchange(&self, registry: &str, entra: &str) -> Result<String, AzureError> {
        self.inner
            .exchanges
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let failed = |message: String| AzureError::Exchange {
            registry: registry.to_owned(),
            message,
        };
        let mut form = vec![
            ("grant_type", "access_token"),
            ("service", registry),
            ("access_token", entra),
        ];
        if let Some(tenant) = self.inner.credential.tenant_id() {
            form.insert(2, ("tenant", tenant));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = http::Request::post(format!("https://{registry}/oauth2/exchange"))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("signet/", env!("CARGO_PKG_VERSION")),
            )
            .body(Bytes::from(body))
            .map_err(|e| failed(format!("request: {e}")))?;
        let response = self
            .inner
            .http
            .send(request)
            .await
            .map_err(|e| AzureError::Transport {
                endpoint: e.endpoint,
                message: e.message,
            })?;
        let status = response.status();
        if !status.is_success() {
            let detail = acr_error_text(response.body());
            let advice = match status.as_u16() {
                401 | 403 => {
                    " — the identity has no pull rights here: assign it the AcrPull role on the \
                     registry (or the registry is in another tenant)"
                }
                404 => " — is this an Azure Container Registry?",
                _ => "",
            };
            return Err(failed(format!("HTTP {}{detail}{advice}", status.as_u16())));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            refresh_token: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(response.body())
            .map_err(|e| failed(format!("malformed answer: {e}")))?;
        answer
            .refresh_token
            .filter(|t| !t.is_empty() && t.bytes().all(|b| (0x21..0x7f).contains(&b)))
            .ok_or_else(|| failed("the answer has no usable refresh_token".into()))
    }
}

/// How long to reuse a refresh token: until 5 minutes before its `exp`, or 30 minutes.
fn reuse_for(token: &str) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match jwt_claims(token).and_then(|c| c.exp) {
        Some(exp) if exp > now => Duration::from_secs((exp - now) as u64)
            .saturating_sub(REFRESH_MARGIN)
            .max(Duration::from_secs(1)),
        Some(_) => Duration::from_secs(1),
        None => DEFAULT_REFRESH_TTL,
    }
}

/// `{"errors":[{"code":"UNAUTHORIZED","message":"..."}]}` → `: UNAUTHORIZED: ...`.
fn acr_error_text(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => format!(
            ": {}",
            e.errors
                .iter()
                .map(|i| format!("{}: {}", i.code, i.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => {
            let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
            if text.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", text.trim())
            }
        }
    }
}

/// `application/x-www-form-urlencoded` escaping.
pub(crate) fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl TokenSource for AcrTokenSource {
    fn credential<'a>(
        &'a self,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<Option<Credential>, RegistryError>> {
        Box::pin(async move {
            if !self.is_acr(registry) {
                return self.inner.fallback.credential(registry).await;
            }
            match self.refresh_token(registry).await {
                Ok(token) => Ok(Some(Credential::IdentityToken(token))),
                Err(e) => {
                    tracing::warn!(registry, error = %e, "ACR sign-in failed");
                    Err(e.into_registry_error(registry))
                }
            }
        })
    }
}
