//! One logical request to a registry: authentication (challenge, token service, token
//! cache, where credentials may go), redirects, retries under the caller's deadline.

use super::*;

impl Inner {
    /// Sends one logical request: authentication (challenge, token, cache), redirects
    /// (bounded, credentials only to the registry host) and retries (429/5xx/broken
    /// connections, only while the deadline allows). The body of a 2xx answer is read up
    /// to `req.limit`; other answers' bodies are read up to a small cap and discarded.
    pub(super) async fn execute(&self, req: Req<'_>) -> Result<Fetched, RegistryError> {
        let registry_host = req.reference.api_host().to_owned();
        let scope = format!("repository:{}:pull", req.reference.repository());
        let home = self.host(&registry_host)?;
        let mut url: Uri = format!("{}://{}{}", home.scheme, registry_host, req.path)
            .parse()
            .map_err(|e| RegistryError::Malformed {
                host: registry_host.clone(),
                what: req.what.to_owned(),
                message: format!("request path: {e}"),
            })?;
        let mut attempt = 0u32;
        let mut redirects = 0u32;
        let mut reauthenticated = false;
        loop {
            let authority = url.authority().map(|a| a.to_string()).unwrap_or_default();
            let on_registry = authority == registry_host;
            let host = if on_registry {
                home.clone()
            } else {
                self.host(&authority)?
            };
            let authorization = if on_registry {
                self.authorization(&home, req.reference, &scope).await?
            } else {
                None
            };
            let mut builder = http::Request::builder()
                .method(req.method.clone())
                .uri(url.clone())
                .header(http::header::USER_AGENT, USER_AGENT)
                .header(http::header::ACCEPT, req.accept);
            if let Some(a) = &authorization {
                builder = builder.header(http::header::AUTHORIZATION, a);
            }
            let request =
                builder
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| RegistryError::Malformed {
                        host: authority.clone(),
                        what: req.what.to_owned(),
                        message: format!("request: {e}"),
                    })?;
            self.count();
            let response = match host.http.request(request).await {
                Ok(r) => r,
                Err(e) => {
                    let delay = transport::backoff(attempt);
                    if transport::retryable(&e)
                        && attempt < self.config.max_retries
                        && fits_before(delay, req.deadline)
                    {
                        attempt += 1;
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    let message = transport::describe(&e);
                    return Err(if e.is_connect() {
                        RegistryError::Connect {
                            host: authority,
                            message,
                        }
                    } else {
                        RegistryError::Transport {
                            host: authority,
                            message,
                        }
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();

            if status == StatusCode::UNAUTHORIZED && on_registry && !reauthenticated {
                let challenge = headers
                    .get_all(http::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(parse_challenge);
                if let Some(challenge) = challenge {
                    let mut state = home.state.lock().unwrap_or_else(|p| p.into_inner());
                    state.tokens.remove(&scope);
                    state.challenge = Some(challenge);
                    drop(state);
                    reauthenticated = true;
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let body = transport::read_capped(response.into_body(), 4096, &authority, "error")
                    .await
                    .unwrap_or_default();
                return Err(RegistryError::AuthFailed {
                    host: authority,
                    what: req.what.to_owned(),
                    message: format!(
                        "HTTP {}{}",
                        status.as_u16(),
                        error_text(&body)
                            .map(|t| format!(": {t}"))
                            .unwrap_or_default()
                    ),
                });
            }
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(RegistryError::Redirect {
                        host: authority,
                        message: format!("more than {MAX_REDIRECTS} redirects"),
                    });
                }
                url = self.redirect_target(&url, &headers, &authority)?;
                continue;
            }
            if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
                let retry_after = transport::retry_after(&headers);
                let delay = retry_after.unwrap_or_else(|| transport::backoff(attempt));
                if attempt < self.config.max_retries && fits_before(delay, req.deadline) {
                    attempt += 1;
                    drop(response);
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(RegistryError::RateLimited {
                    host: authority,
                    status: status.as_u16(),
                    retry_after,
                });
            }
            let limit = if status.is_success() {
                req.limit
            } else {
                MAX_SMALL_BODY
            };
            if req.method == Method::HEAD {
                return Ok(Fetched {
                    status,
                    headers,
                    body: Bytes::new(),
                    host: authority,
                    _budget: None,
                });
            }
            let declared =
                header_str(&headers, "content-length").and_then(|l| l.parse::<u64>().ok());
            if let Some(len) = declared {
                if len > limit && status.is_success() {
                    return Err(RegistryError::TooLarge {
                        host: authority,
                        what: req.what.to_owned(),
                        limit,
                    });
                }
            }
            // A body is read only once its size (as declared, else the limit) fits in the
            // process-wide budget: many large answers at once wait instead of piling up.
            let budget = if status.is_success() {
                Some(
                    self.body_budget(declared.unwrap_or(limit).min(limit))
                        .await?,
                )
            } else {
                None
            };
            let body =
                match transport::read_capped(response.into_body(), limit, &authority, req.what)
                    .await
                {
                    Ok(b) => b,
                    Err(e) if status.is_success() => return Err(e),
                    Err(_) => Bytes::new(),
                };
            return Ok(Fetched {
                status,
                headers,
                body,
                host: authority,
                _budget: budget,
            });
        }
    }

    fn redirect_target(
        &self,
        current: &Uri,
        headers: &HeaderMap,
        authority: &str,
    ) -> Result<Uri, RegistryError> {
        let refused = |message: String| RegistryError::Redirect {
            host: authority.to_owned(),
            message,
        };
        let location = header_str(headers, "location")
            .ok_or_else(|| refused("redirect without Location".into()))?;
        let target: Uri = if location.starts_with('/') && !location.starts_with("//") {
            format!(
                "{}://{}{}",
                current.scheme_str().unwrap_or("https"),
                authority,
                location
            )
            .parse()
            .map_err(|e| refused(format!("bad Location {location:?}: {e}")))?
        } else {
            location
                .parse()
                .map_err(|e| refused(format!("bad Location {location:?}: {e}")))?
        };
        let target_authority = target
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| refused(format!("Location {location:?} has no host")))?;
        match target.scheme_str() {
            Some("https") => {}
            Some("http") if self.config.plain_http.contains(&target_authority) => {}
            _ => return Err(refused(format!("Location {location:?} is not HTTPS"))),
        }
        // The scheme must match the one the host's client speaks.
        let host = self.host(&target_authority)?;
        if target.scheme_str() != Some(host.scheme) {
            return Err(refused(format!(
                "Location {location:?} does not use {}",
                host.scheme
            )));
        }
        Ok(target)
    }

    /// The `Authorization` value for a request to the registry, from what its last
    /// challenge asked for: Basic credentials, or a (cached or freshly fetched) bearer token.
    async fn authorization(
        &self,
        home: &Host,
        reference: &Reference,
        scope: &str,
    ) -> Result<Option<String>, RegistryError> {
        let challenge = {
            let state = home.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((token, until)) = state.tokens.get(scope) {
                if Instant::now() < *until {
                    return Ok(Some(format!("Bearer {token}")));
                }
            }
            state.challenge.clone()
        };
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        let credential = self
            .config
            .credentials
            .credential(reference.registry())
            .await?;
        match challenge {
            Challenge::Basic => match credential {
                Some(Credential::Basic { username, password }) => {
                    Ok(Some(basic_header(&username, &password)))
                }
                Some(Credential::BearerToken(t)) => Ok(Some(format!("Bearer {t}"))),
                _ => Ok(None),
            },
            Challenge::Bearer { realm, service, .. } => {
                if let Some(Credential::BearerToken(t)) = &credential {
                    return Ok(Some(format!("Bearer {t}")));
                }
                if credential.is_some() {
                    self.check_token_realm(reference, &realm)?;
                }
                let (token, lifetime) = self
                    .fetch_token(&realm, service.as_deref(), scope, credential.as_ref())
                    .await?;
                // Stop using a token shortly before it expires.
                let margin = (lifetime / 10)
                    .max(Duration::from_secs(5))
                    .min(lifetime / 2);
                let until = Instant::now() + lifetime - margin;
                home.state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .store_token(scope, token.clone(), until);
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Credentials go to a token service only on the registry's own host or on one listed
    /// for it in [`RegistryConfig::token_realms`]: a registry (or whoever answers for it)
    /// must not be able to send them elsewhere by naming another realm.
    fn check_token_realm(&self, reference: &Reference, realm: &str) -> Result<(), RegistryError> {
        let realm_host = realm
            .parse::<Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let registry = reference.registry();
        let allowed = realm_host == reference.api_host()
            || realm_host == registry
            || self
                .config
                .token_realms
                .get(registry)
                .is_some_and(|hosts| hosts.contains(&realm_host));
        if allowed {
            return Ok(());
        }
        Err(RegistryError::TokenService {
            realm: realm.to_owned(),
            message: format!(
                "the registry {registry} names the token service {realm_host:?}, which is not its own host; \
                 its credentials are not sent there (list it under registry.hosts.{registry}.tokenRealms if it is legitimate)"
            ),
        })
    }

    /// The bearer-token flow: GET the realm with `service` and `scope` (Basic credentials
    /// if configured), or POST a refresh-token grant for an identity token.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credential: Option<&Credential>,
    ) -> Result<(String, Duration), RegistryError> {
        let failed = |message: String| RegistryError::TokenService {
            realm: realm.to_owned(),
            message,
        };
        let realm_uri: Uri = realm
            .parse()
            .map_err(|e| failed(format!("bad realm URL: {e}")))?;
        let authority = realm_uri
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| failed("realm has no host".into()))?;
        let host = self.host(&authority)?;
        if realm_uri.scheme_str() != Some(host.scheme) {
            return Err(failed(format!(
                "realm must use {} for {authority}",
                host.scheme
            )));
        }
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", transport::pct(service)));
        }
        query.push(format!("scope={}", transport::pct(scope)));
        let mut builder = http::Request::builder()
            .header(http::header::USER_AGENT, USER_AGENT)
            .header(http::header::ACCEPT, "application/json");
        let body = match credential {
            Some(Credential::IdentityToken(refresh)) => {
                builder = builder.method(Method::POST).uri(realm_uri.clone()).header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                query.push("grant_type=refresh_token".into());
                query.push(format!("refresh_token={}", transport::pct(refresh)));
                query.push("client_id=signet".into());
                Bytes::from(query.join("&"))
            }
            other => {
                let sep = if realm.contains('?') { '&' } else { '?' };
                let uri: Uri = format!("{realm}{sep}{}", query.join("&"))
                    .parse()
                    .map_err(|e| failed(format!("bad realm URL: {e}")))?;
                builder = builder.method(Method::GET).uri(uri);
                if let Some(Credential::Basic { username, password }) = other {
                    builder = builder.header(
                        http::header::AUTHORIZATION,
                        basic_header(username, password),
                    );
                }
                Bytes::new()
            }
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|e| failed(format!("request: {e}")))?;
        self.count();
        let response = host
            .http
            .request(request)
            .await
            .map_err(|e| failed(transport::describe(&e)))?;
        let status = response.status();
        let body =
            transport::read_capped(response.into_body(), MAX_SMALL_BODY, &authority, "token")
                .await?;
        if !status.is_success() {
            return Err(failed(format!(
                "HTTP {}{}",
                status.as_u16(),
                error_text(&body)
                    .map(|t| format!(": {t}"))
                    .unwrap_or_default()
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| failed(format!("answer: {e}")))?;
        let token = answer
            .token
            .filter(|t| !t.is_empty())
            .or(answer.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| failed("answer has no token".into()))?;
        if token.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            return Err(failed(
                "token has characters not allowed in a header".into(),
            ));
        }
        // The distribution spec's default lifetime is 60 s.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).clamp(1, 24 * 3600));
        Ok((token, lifetime))
    }
}

/// Whether waiting `delay` from now still ends before `deadline`. Compared as durations: a
/// registry's `Retry-After` is arbitrary (up to `u64::MAX` seconds), and adding it to an
/// `Instant` would overflow.
fn fits_before(delay: Duration, deadline: Instant) -> bool {
    delay < deadline.saturating_duration_since(Instant::now())
}
