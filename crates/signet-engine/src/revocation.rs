//! Online revocation information for the verifier: CRLs and OCSP responses fetched over
//! plain HTTP (both are signed, and CRL distribution points and OCSP responders are `http://`
//! URLs in practice; notation-go fetches CRLs over HTTP only), with bounded sizes, bounded
//! time within the verification's deadline, and a cache of CRLs.
//!
//! Validation is [`signet_notation::revocation`]'s; this module only fetches.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use moka::future::Cache;
use moka::Expiry;
use signet_notation::revocation::{
    crl_next_update, RevocationSource, MAX_CRL_BYTES, MAX_OCSP_RESPONSE_BYTES,
};
use tokio::time::Instant;

pub use crate::revocation_guard::RevocationNetworkPolicy;
use crate::revocation_guard::{denial_in, GuardedAddresses};

/// Most redirects followed by a CRL fetch.
const MAX_REDIRECTS: usize = 3;

/// Online revocation checking settings.
#[derive(Debug, Clone)]
pub struct RevocationConfig {
    /// Longest one fetch may take (default 5 s); never past the verification's deadline.
    pub fetch_timeout: Duration,
    /// Most CRLs kept in cache (default 1 000).
    pub max_cached_crls: u64,
    /// Longest a CRL is reused, even when its `nextUpdate` is later (default 1 h).
    pub max_crl_age: Duration,
    /// Where fetches may go (default: public hosts only; see [`crate::revocation_guard`]).
    pub network: RevocationNetworkPolicy,
    /// Which fetches go through an HTTP proxy (default: the environment's `HTTP_PROXY`,
    /// `NO_PROXY`).
    pub proxy: signet_http::ProxyPolicy,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        RevocationConfig {
            fetch_timeout: Duration::from_secs(5),
            max_cached_crls: 1_000,
            max_crl_age: Duration::from_secs(3600),
            network: RevocationNetworkPolicy::default(),
            proxy: signet_http::ProxyPolicy::from_env(),
        }
    }
}

/// A cached CRL and how long it may be reused.
#[derive(Clone)]
struct CachedCrl {
    der: Arc<Vec<u8>>,
    ttl: Duration,
}

struct CrlExpiry;

impl Expiry<String, CachedCrl> for CrlExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &CachedCrl,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Fetches CRLs (cached by URL until their `nextUpdate`, at most
/// [`RevocationConfig::max_crl_age`]) and OCSP responses over HTTP.
pub struct HttpRevocationSource {
    client: signet_http::PooledClient,
    crls: Cache<String, CachedCrl>,
    config: RevocationConfig,
}

impl std::fmt::Debug for HttpRevocationSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRevocationSource")
            .field("config", &self.config)
            .field("cached_crls", &self.crls.entry_count())
            .finish()
    }
}

impl HttpRevocationSource {
    pub fn new(config: RevocationConfig) -> Self {
        // Plain HTTP only (checked per hop below); the TLS configuration is never used.
        let tls = signet_http::tls::client_config_exact(&[])
            .unwrap_or_else(|e| panic!("an empty TLS configuration: {e}"));
        let client = signet_http::pooled_client(
            signet_http::Connector::new(tls, config.proxy.clone())
                .plain_http(signet_http::PlainHttp::Always)
                .address_filter(Arc::new(GuardedAddresses::new(config.network.clone()))),
        );
        let crls = Cache::builder()
            .max_capacity(config.max_cached_crls)
            .expire_after(CrlExpiry)
            .build();
        HttpRevocationSource {
            client,
            crls,
            config,
        }
    }

    /// The CRL at `url`, from the cache or fetched by `deadline`.
    pub async fn crl(&self, url: &str, deadline: Instant) -> Result<Arc<Vec<u8>>, String> {
        if let Some(hit) = self.crls.get(url).await {
            return Ok(hit.der);
        }
        let der = Arc::new(
            self.fetch(http::Method::GET, url, None, MAX_CRL_BYTES, deadline)
                .await?,
        );
        // Only a CRL that parses and is still current is worth keeping; it is validated on
        // every use anyway.
        if let Some(next) = crl_next_update(&der) {
            let left = next - time::OffsetDateTime::now_utc();
            if left.is_positive() {
                let ttl = Duration::try_from(left)
                    .unwrap_or(self.config.max_crl_age)
                    .min(self.config.max_crl_age);
                self.crls
                    .insert(
                        url.to_owned(),
                        CachedCrl {
                            der: der.clone(),
                            ttl,
                        },
                    )
                    .await;
            }
        }
        Ok(der)
    }

    /// Drops the cached CRL of `url` (it did not validate).
    pub async fn forget_crl(&self, url: &str) {
        self.crls.invalidate(url).await;
    }

    /// The OCSP responder's answer at `url` to the DER request, fetched by `deadline`.
    pub async fn ocsp(
        &self,
        url: &str,
        request_der: &[u8],
        deadline: Instant,
    ) -> Result<Vec<u8>, String> {
        self.fetch(
            http::Method::POST,
            url,
            Some(Bytes::copy_from_slice(request_der)),
            MAX_OCSP_RESPONSE_BYTES,
            deadline,
        )
        .await
    }

    async fn fetch(
        &self,
        method: http::Method,
        url: &str,
        body: Option<Bytes>,
        limit: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, String> {
        let until = deadline.min(Instant::now() + self.config.fetch_timeout);
        let work = async {
            let mut url = url.to_owned();
            // GETs follow a few redirects (CRL distribution points often redirect to a CDN);
            // every hop must be plain HTTP too.
            for _ in 0..=MAX_REDIRECTS {
                let uri: http::Uri = url
                    .parse()
                    .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
                self.config.network.check_url(&uri).map_err(|d| d.0)?;
                if uri.scheme_str() != Some("http") {
                    return Err(format!(
                        "unsupported URL {url:?}: only http:// revocation endpoints are supported"
                    ));
                }
                let mut request = http::Request::builder().method(method.clone()).uri(uri);
                if body.is_some() {
                    request =
                        request.header(http::header::CONTENT_TYPE, "application/ocsp-request");
                }
                let request = request
                    .body(Full::new(body.clone().unwrap_or_default()))
                    .map_err(|e| format!("invalid request: {e}"))?;
                let response = self.client.request(request).await.map_err(|e| {
                    denial_in(&e)
                        .unwrap_or_else(|| format!("request failed: {}", signet_http::describe(&e)))
                })?;
                let status = response.status();
                if status.is_redirection() && method == http::Method::GET {
                    let location = response
                        .headers()
                        .get(http::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .ok_or_else(|| format!("HTTP status {status} without a location"))?;
                    url = location.to_owned();
                    continue;
                }
                if !status.is_success() {
                    return Err(format!("HTTP status {status}"));
                }
                let body = Limited::new(response.into_body(), limit)
                    .collect()
                    .await
                    .map_err(|e| {
                        format!("reading the response failed (at most {limit} bytes): {e}")
                    })?;
                return Ok(body.to_bytes().to_vec());
            }
            Err(format!("more than {MAX_REDIRECTS} redirects"))
        };
        match tokio::time::timeout_at(until, work).await {
            Ok(r) => r,
            Err(_) => Err("timed out".to_owned()),
        }
    }

    /// A synchronous view for the verifier, to be used on tokio's blocking pool or a thread
    /// outside the runtime (not on a runtime worker): each fetch blocks on `handle` until
    /// done or `deadline`.
    pub fn blocking(
        self: &Arc<Self>,
        handle: tokio::runtime::Handle,
        deadline: Instant,
    ) -> BlockingSource {
        BlockingSource {
            source: self.clone(),
            handle,
            deadline,
        }
    }
}

/// [`HttpRevocationSource`] bound to a runtime and a deadline, for the synchronous verifier.
#[derive(Debug)]
pub struct BlockingSource {
    source: Arc<HttpRevocationSource>,
    handle: tokio::runtime::Handle,
    deadline: Instant,
}

impl RevocationSource for BlockingSource {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
        self.handle
            .block_on(self.source.crl(url, self.deadline))
            .map(|der| der.to_vec())
    }

    fn fetch_ocsp(&self, url: &str, request_der: &[u8]) -> Result<Vec<u8>, String> {
        self.handle
            .block_on(self.source.ocsp(url, request_der, self.deadline))
    }

    fn crl_rejected(&self, url: &str) {
        self.handle.block_on(self.source.forget_crl(url));
    }
}

#[cfg(test)]
#[path = "revocation_tests.rs"]
mod tests;
