//! The registry client: resolve, discover signatures, fetch envelopes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::Full;
use oci_spec::image::{ImageIndex, ImageManifest};
use rustls_pki_types::CertificateDer;
use signet_notation::descriptor::{digest_matches, parse_digest};
use signet_notation::Descriptor;
use tokio::time::Instant;

use crate::auth::{
    basic_header, parse_challenge, Challenge, Credential, NoCredentials, TokenSource,
};
use crate::error::RegistryError;
use crate::reference::Reference;
use crate::transport::{self, HttpClient};

mod discovery;
mod exchange;
mod index;

pub use index::{is_index, parse_index_entries, IndexEntry, Platform, MAX_INDEX_ENTRIES};

/// `artifactType` of Notation signature manifests (and `config.mediaType` of legacy ones).
pub const NOTATION_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// JWS envelope media type.
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// COSE envelope media type.
pub const MEDIA_TYPE_COSE: &str = "application/cose";
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// The empty descriptor's media type (config of current Notation signature manifests).
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Largest manifest (or index, referrers page) read: 4 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest envelope blob read: 32 MiB.
pub const MAX_ENVELOPE_BYTES: u64 = signet_notation::MAX_ENVELOPE_BYTES as u64;
/// Largest token-service or error answer read.
const MAX_SMALL_BODY: u64 = 1024 * 1024;
const MAX_REDIRECTS: u32 = 5;
/// Hosts (registries, token services, blob stores redirected to) with a pooled client and
/// learnt authentication kept at once; the least recently used goes first. Image
/// references come from outside, so without a bound every new host name would stay.
const MAX_HOSTS: usize = 256;
/// Bearer tokens (one per repository scope) kept per host; expired ones go first, then
/// the one expiring soonest.
const MAX_TOKENS_PER_HOST: usize = 1024;
const MAX_REFERRER_PAGES: usize = 20;
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
const USER_AGENT: &str = concat!("signet/", env!("CARGO_PKG_VERSION"));

/// How the client talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where credentials come from (default: anonymous).
    pub credentials: Arc<dyn TokenSource>,
    /// Extra CA certificates trusted for every registry (DER), besides the Mozilla and
    /// system roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Extra CA certificates trusted for one registry host (`host[:port]`) only.
    pub host_roots: HashMap<String, Vec<CertificateDer<'static>>>,
    /// Hosts (`host[:port]`) spoken to over plain HTTP. Nothing else ever is.
    pub plain_http: HashSet<String>,
    /// At most this many signatures are considered per artifact (default 100).
    pub max_signatures: usize,
    /// Retries of one request on 429/502/503/504 or a broken connection (default 4),
    /// each only while the deadline allows.
    pub max_retries: u32,
    /// Signature manifests fetched concurrently (default 8).
    pub concurrency: usize,
    /// Which connections go through an HTTP proxy (default: the environment's
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).
    pub proxy: signet_http::ProxyPolicy,
    /// Token services (`host[:port]` of a challenge's `realm`) allowed to receive a
    /// registry's credentials, besides the registry's own host. Keyed by registry
    /// (`Reference::registry()`). Default: Docker Hub's `auth.docker.io`.
    pub token_realms: HashMap<String, Vec<String>>,
    /// How long a host whose referrers API answered 404 is served by the tag-schema
    /// fallback without asking again (default 10 min).
    pub referrers_fallback_ttl: Duration,
    /// Bytes of successful answer bodies (manifests, referrers pages, envelopes) held at
    /// once by this client, across all requests (default 96 MiB; at least one envelope of
    /// the largest size). A request waits for its share, within its deadline.
    pub max_body_bytes_in_flight: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            credentials: Arc::new(NoCredentials),
            extra_roots: Vec::new(),
            host_roots: HashMap::new(),
            plain_http: HashSet::new(),
            max_signatures: 100,
            max_retries: 4,
            concurrency: 8,
            proxy: signet_http::ProxyPolicy::from_env(),
            token_realms: HashMap::from([(
                "docker.io".to_owned(),
                vec!["auth.docker.io".to_owned()],
            )]),
            referrers_fallback_ttl: Duration::from_secs(600),
            max_body_bytes_in_flight: 96 * 1024 * 1024,
        }
    }
}

impl RegistryConfig {
    /// Trusts the PEM CA certificates in `pem` for every registry (`--registry-ca`).
    pub fn add_ca_pem(&mut self, pem: &[u8]) -> Result<&mut Self, RegistryError> {
        self.extra_roots.extend(transport::parse_pem_certs(pem)?);
        Ok(self)
    }

    /// Trusts the PEM CA certificates in `pem` for registry `host` only.
    pub fn add_host_ca_pem(&mut self, host: &str, pem: &[u8]) -> Result<&mut Self, RegistryError> {
        let certs = transport::parse_pem_certs(pem)?;
        self.host_roots
            .entry(host.to_owned())
            .or_default()
            .extend(certs);
        Ok(self)
    }

    /// Allows plain HTTP to `host[:port]` (`--plain-http`).
    pub fn allow_plain_http(&mut self, host: &str) -> &mut Self {
        self.plain_http.insert(host.to_owned());
        self
    }
}

/// A Notation signature found for an artifact: its manifest and the envelope it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureManifest {
    /// Digest of the signature manifest.
    pub digest: String,
    /// Size of the signature manifest.
    pub size: u64,
    /// Envelope media type: `application/jose+json` or `application/cose`.
    pub media_type: String,
    /// The envelope blob's descriptor (the manifest's single layer).
    pub envelope: Descriptor,
    /// The signature manifest's annotations (e.g. `io.cncf.notary.x509chain.thumbprint#S256`).
    pub annotations: BTreeMap<String, String>,
}

/// A manifest announced as a signature of the artifact that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSignature {
    /// Digest of the rejected manifest, as listed.
    pub digest: String,
    pub error: RegistryError,
}

/// How signatures were discovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// The OCI referrers API.
    ReferrersApi,
    /// The tag-schema fallback index (`sha256-<hex>`).
    TagSchema,
}

/// The result of signature discovery for one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    /// Valid Notation signature manifests whose subject is the artifact, in listed order.
    pub signatures: Vec<SignatureManifest>,
    /// Manifests listed as Notation signatures that the registry served wrong (bad digest,
    /// other subject, junk): a lie or corruption, never silently dropped.
    pub rejected: Vec<RejectedSignature>,
    /// More than `max_signatures` candidates were listed; the rest were not considered.
    pub truncated: bool,
    pub discovery: Discovery,
}

/// A client for OCI registries, cheap to clone; one pooled HTTP client per host inside.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RegistryConfig,
    default_tls: Arc<rustls::ClientConfig>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    round_trips: AtomicU64,
    /// A clock of host uses: each use takes the next tick.
    ticks: AtomicU64,
    /// KiB of answer bodies held (`RegistryConfig::max_body_bytes_in_flight`).
    body_kib: Arc<tokio::sync::Semaphore>,
    body_kib_total: u32,
}

/// One host: its pooled client and what we learnt about its authentication.
struct Host {
    authority: String,
    scheme: &'static str,
    http: HttpClient,
    state: Mutex<HostState>,
    /// When it was last used, as a tick of `Inner::ticks` (for eviction).
    last_used: AtomicU64,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("authority", &self.authority)
            .field("scheme", &self.scheme)
            .finish()
    }
}

impl HostState {
    /// Keeps a bearer token for `scope` until `until`, within [`MAX_TOKENS_PER_HOST`].
    fn store_token(&mut self, scope: &str, token: String, until: Instant) {
        if !self.tokens.contains_key(scope) && self.tokens.len() >= MAX_TOKENS_PER_HOST {
            let now = Instant::now();
            self.tokens.retain(|_, (_, until)| *until > now);
            while self.tokens.len() >= MAX_TOKENS_PER_HOST {
                let soonest = self
                    .tokens
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(scope, _)| scope.clone());
                match soonest {
                    Some(scope) => {
                        self.tokens.remove(&scope);
                    }
                    None => break,
                }
            }
        }
        self.tokens.insert(scope.to_owned(), (token, until));
    }
}

#[derive(Default)]
struct HostState {
    challenge: Option<Challenge>,
    /// Bearer tokens by scope, with the instant they stop being used.
    tokens: HashMap<String, (String, Instant)>,
    /// What the host's referrers API did last.
    referrers: ReferrersSupport,
}

/// Whether a host serves the OCI referrers API, as far as we know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ReferrersSupport {
    /// Not asked yet (or the fallback period ended).
    #[default]
    Unknown,
    /// It answered once: always asked.
    Supported,
    /// It answered 404: the tag-schema fallback is used without asking until then.
    FallbackUntil(Instant),
}

/// An answer, body read.
struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The authority that finally answered (after redirects).
    host: String,
    /// The share of the process-wide body budget this body holds, until it is dropped.
    _budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What one logical request is.
struct Req<'a> {
    reference: &'a Reference,
    method: Method,
    /// Path and query on the registry's API host.
    path: String,
    accept: &'a str,
    limit: u64,
    what: &'a str,
    deadline: Instant,
}

impl RegistryClient {
    /// A client with `config`; fails on an unusable TLS configuration.
    pub fn new(config: RegistryConfig) -> Result<RegistryClient, RegistryError> {
        if config.max_body_bytes_in_flight < MAX_ENVELOPE_BYTES + 1024 {
            return Err(RegistryError::Config(format!(
                "max_body_bytes_in_flight must be at least {} (one envelope of the largest size)",
                MAX_ENVELOPE_BYTES + 1024
            )));
        }
        let body_kib_total =
            u32::try_from(config.max_body_bytes_in_flight.div_ceil(1024)).unwrap_or(u32::MAX);
        let default_tls = transport::tls_config(&config.extra_roots)?;
        for certs in config.host_roots.values() {
            let mut all = config.extra_roots.clone();
            all.extend(certs.iter().cloned());
            transport::tls_config(&all)?;
        }
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                config,
                default_tls,
                hosts: Mutex::new(HashMap::new()),
                round_trips: AtomicU64::new(0),
                ticks: AtomicU64::new(0),
                body_kib: Arc::new(tokio::sync::Semaphore::new(body_kib_total as usize)),
                body_kib_total,
            }),
        })
    }

    /// Bytes of the body budget ([`RegistryConfig::max_body_bytes_in_flight`]) not held
    /// by a request now (in whole KiB).
    pub fn body_budget_available(&self) -> u64 {
        self.inner.body_kib.available_permits() as u64 * 1024
    }

    /// HTTP requests sent so far (every one: token fetches, retries and redirects included).
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// Resolves `reference` to the descriptor of the manifest it names (media type, digest,
    /// size): `HEAD` the manifest; where that is refused (405, or no `Docker-Content-Digest`
    /// for a tag), `GET` it and digest the body ourselves.
    pub async fn resolve(
        &self,
        reference: &Reference,
        deadline: Instant,
    ) -> Result<Descriptor, RegistryError> {
        with_deadline(deadline, "resolving the reference", async {
            self.inner.resolve(reference, deadline).await
        })
        .await
    }

    /// Finds the Notation signatures of `subject` (the resolved descriptor) in the
    /// repository of `repository`: the referrers API, or the tag-schema index where the
    /// registry has no referrers API. Each signature manifest is fetched, digest-checked
    /// and checked to name `subject` as its subject.
    pub async fn signatures(
        &self,
        repository: &Reference,
        subject: &Descriptor,
        deadline: Instant,
    ) -> Result<Signatures, RegistryError> {
        with_deadline(deadline, "discovering signatures", async {
            Inner::signatures(&self.inner, repository, subject, deadline).await
        })
        .await
    }

    /// Fetches a signature envelope, checked against its descriptor's size and digest.
    pub async fn fetch_envelope(
        &self,
        repository: &Reference,
        signature: &SignatureManifest,
        deadline: Instant,
    ) -> Result<Vec<u8>, RegistryError> {
        with_deadline(deadline, "fetching a signature envelope", async {
            self.inner
                .fetch_blob(
                    repository,
                    &signature.envelope,
                    MAX_ENVELOPE_BYTES,
                    deadline,
                )
                .await
        })
        .await
    }
}

async fn with_deadline<T>(
    deadline: Instant,
    during: &str,
    fut: impl std::future::Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(RegistryError::Timeout {
            during: during.to_owned(),
        }),
    }
}

impl Inner {
    fn host(&self, authority: &str) -> Result<Arc<Host>, RegistryError> {
        let now = self.ticks.fetch_add(1, Ordering::Relaxed);
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = hosts.get(authority) {
            h.last_used.store(now, Ordering::Relaxed);
            return Ok(h.clone());
        }
        while hosts.len() >= MAX_HOSTS {
            let oldest = hosts
                .iter()
                .min_by_key(|(_, h)| h.last_used.load(Ordering::Relaxed))
                .map(|(a, _)| a.clone());
            match oldest {
                Some(a) => {
                    hosts.remove(&a);
                }
                None => break,
            }
        }
        let plain = self.config.plain_http.contains(authority);
        let tls = match self.config.host_roots.get(authority) {
            Some(certs) => {
                let mut all = self.config.extra_roots.clone();
                all.extend(certs.iter().cloned());
                transport::tls_config(&all)?
            }
            None => self.default_tls.clone(),
        };
        let host = Arc::new(Host {
            authority: authority.to_owned(),
            scheme: if plain { "http" } else { "https" },
            http: transport::http_client(tls, plain, self.config.proxy.clone()),
            state: Mutex::new(HostState::default()),
            last_used: AtomicU64::new(now),
        });
        hosts.insert(authority.to_owned(), host.clone());
        Ok(host)
    }

    /// Waits for `bytes` of the body budget (the caller's deadline bounds the wait).
    async fn body_budget(
        &self,
        bytes: u64,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, RegistryError> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.body_kib_total);
        self.body_kib
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|_| RegistryError::Config("the registry client is shutting down".into()))
    }

    fn count(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    async fn resolve(
        &self,
        reference: &Reference,
        deadline: Instant,
    ) -> Result<Descriptor, RegistryError> {
        let mref = reference.manifest_reference();
        let path = format!("/v2/{}/manifests/{}", reference.repository(), mref);
        let what = format!("manifest {mref}");
        let head = self
            .execute(Req {
                reference,
                method: Method::HEAD,
                path: path.clone(),
                accept: MANIFEST_ACCEPT,
                limit: 0,
                what: &what,
                deadline,
            })
            .await?;
        match head.status {
            StatusCode::OK => {
                let digest = header_str(&head.headers, "docker-content-digest");
                let media_type = header_str(&head.headers, "content-type")
                    .map(|m| m.split(';').next().unwrap_or("").trim().to_owned());
                let size =
                    header_str(&head.headers, "content-length").and_then(|s| s.parse::<u64>().ok());
                if let Some(digest) = &digest {
                    if parse_digest(digest).is_err() {
                        return Err(RegistryError::Malformed {
                            host: head.host,
                            what: "Docker-Content-Digest header".into(),
                            message: format!("{digest:?} is not a digest"),
                        });
                    }
                    if let Some(expected) = reference.digest() {
                        if digest != expected {
                            return Err(RegistryError::DigestMismatch {
                                what,
                                expected: expected.to_owned(),
                                actual: digest.clone(),
                            });
                        }
                    }
                }
                if let Some(size) = size {
                    if size > MAX_MANIFEST_BYTES {
                        return Err(RegistryError::TooLarge {
                            host: head.host,
                            what,
                            limit: MAX_MANIFEST_BYTES,
                        });
                    }
                }
                if let (Some(digest), Some(media_type), Some(size)) = (digest, media_type, size) {
                    if !media_type.is_empty() {
                        return Ok(descriptor(media_type, digest, size));
                    }
                }
                // Incomplete answer: fall through to GET.
            }
            StatusCode::METHOD_NOT_ALLOWED => {}
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::NotFound {
                    repository: reference.name(),
                    what,
                })
            }
            status => return Err(status_error(&head, &what, status)),
        }

        let get = self
            .execute(Req {
                reference,
                method: Method::GET,
                path,
                accept: MANIFEST_ACCEPT,
                limit: MAX_MANIFEST_BYTES,
                what: &what,
                deadline,
            })
            .await?;
        if !found(&get, &what)? {
            return Err(RegistryError::NotFound {
                repository: reference.name(),
                what,
            });
        }
        let digest = match reference.digest() {
            Some(expected) => {
                check_digest(&what, expected, &get.body)?;
                expected.to_owned()
            }
            None => signet_notation::descriptor::DigestAlgorithm::Sha256.digest(&get.body),
        };
        let media_type = header_str(&get.headers, "content-type")
            .map(|m| m.split(';').next().unwrap_or("").trim().to_owned())
            .filter(|m| !m.is_empty() && m != "application/json")
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&get.body)
                    .ok()
                    .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
            })
            .ok_or_else(|| RegistryError::Malformed {
                host: get.host.clone(),
                what: what.clone(),
                message: "no media type in the answer".into(),
            })?;
        Ok(descriptor(media_type, digest, get.body.len() as u64))
    }

    async fn fetch_blob(
        &self,
        repository: &Reference,
        blob: &Descriptor,
        limit: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, RegistryError> {
        let what = format!("blob {}", blob.digest);
        parse_digest(&blob.digest).map_err(|e| RegistryError::Malformed {
            host: repository.api_host().to_owned(),
            what: what.clone(),
            message: e.to_string(),
        })?;
        let size = u64::try_from(blob.size).unwrap_or(u64::MAX);
        if size > limit {
            return Err(RegistryError::TooLarge {
                host: repository.api_host().to_owned(),
                what,
                limit,
            });
        }
        let got = self
            .execute(Req {
                reference: repository,
                method: Method::GET,
                path: format!("/v2/{}/blobs/{}", repository.repository(), blob.digest),
                accept: "*/*",
                // Reading one byte more than announced is enough to know it lied.
                limit: size + 1,
                what: &what,
                deadline,
            })
            .await;
        let got = match got {
            Err(RegistryError::TooLarge { .. }) => {
                return Err(RegistryError::SizeMismatch {
                    what,
                    expected: size,
                    actual: size + 1,
                })
            }
            other => other?,
        };
        if !found(&got, &what)? {
            return Err(RegistryError::NotFound {
                repository: repository.name(),
                what,
            });
        }
        if got.body.len() as u64 != size {
            return Err(RegistryError::SizeMismatch {
                what,
                expected: size,
                actual: got.body.len() as u64,
            });
        }
        check_digest(&what, &blob.digest, &got.body)?;
        Ok(Vec::from(got.body))
    }
}

fn descriptor(media_type: String, digest: String, size: u64) -> Descriptor {
    Descriptor {
        media_type,
        digest,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        annotations: None,
        artifact_type: None,
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

fn check_digest(what: &str, expected: &str, body: &[u8]) -> Result<(), RegistryError> {
    let (alg, _) = parse_digest(expected).map_err(|e| RegistryError::DigestMismatch {
        what: what.to_owned(),
        expected: expected.to_owned(),
        actual: e.to_string(),
    })?;
    if digest_matches(expected, body).unwrap_or(false) {
        Ok(())
    } else {
        Err(RegistryError::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_owned(),
            actual: alg.digest(body),
        })
    }
}

/// 200 → `Ok(true)`, 404 → `Ok(false)`; any other status is an error naming what was asked.
fn found(got: &Fetched, what: &str) -> Result<bool, RegistryError> {
    match got.status {
        StatusCode::OK => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        status => Err(status_error(got, what, status)),
    }
}

/// The image index of a successful answer.
fn parse_index(got: &Fetched, what: &str) -> Result<ImageIndex, RegistryError> {
    serde_json::from_slice(&got.body).map_err(|e| RegistryError::Malformed {
        host: got.host.clone(),
        what: what.into(),
        message: e.to_string(),
    })
}

fn status_error(got: &Fetched, what: &str, status: StatusCode) -> RegistryError {
    RegistryError::Status {
        host: got.host.clone(),
        status: status.as_u16(),
        what: format!(
            "{what}{}",
            error_text(&got.body)
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        ),
    }
}

/// The first `errors[].message` of a distribution error body, or a short text body.
fn error_text(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(e) = v.get("errors").and_then(|e| e.get(0)) {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            return Some(format!("{code} {msg}").trim().chars().take(200).collect());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(200).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_bounded_least_recently_used_first() {
        let client = RegistryClient::new(RegistryConfig::default()).unwrap();
        let inner = &client.inner;
        let keep = inner.host("keep.example").unwrap();
        for i in 0..(MAX_HOSTS * 2) {
            inner.host(&format!("h{i}.example")).unwrap();
            // Used all along: never the least recently used.
            keep.last_used.store(u64::MAX, Ordering::Relaxed);
        }
        let hosts = inner.hosts.lock().unwrap();
        assert_eq!(hosts.len(), MAX_HOSTS);
        assert!(hosts.contains_key("keep.example"));
        assert!(!hosts.contains_key("h0.example"));
        assert!(hosts.contains_key(&format!("h{}.example", MAX_HOSTS * 2 - 1)));
    }

    #[test]
    fn tokens_are_bounded_per_host() {
        let mut state = HostState::default();
        let now = Instant::now();
        state.store_token("expired", "t".into(), now);
        for i in 0..(MAX_TOKENS_PER_HOST * 2) {
            let until = now + Duration::from_secs(60 + i as u64);
            state.store_token(&format!("repository:r{i}:pull"), "t".into(), until);
        }
        assert_eq!(state.tokens.len(), MAX_TOKENS_PER_HOST);
        assert!(!state.tokens.contains_key("expired"));
        // The latest-expiring tokens stay.
        let last = format!("repository:r{}:pull", MAX_TOKENS_PER_HOST * 2 - 1);
        assert!(state.tokens.contains_key(&last));
        assert!(!state.tokens.contains_key("repository:r0:pull"));
    }

    #[test]
    fn errors_text() {
        assert_eq!(
            error_text(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#)
                .as_deref(),
            Some("MANIFEST_UNKNOWN manifest unknown")
        );
        assert_eq!(error_text(b""), None);
    }
}
