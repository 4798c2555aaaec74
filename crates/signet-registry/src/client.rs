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
const MAX_REFERRER_PAGES: usize = 20;
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
const USER_AGENT: &str = concat!("signet/", env!("CARGO_PKG_VERSION"));

/// How the client talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where credentials come from (default: anonymous).
    pub credentials: Arc<dyn TokenSource>,
    /// Extra CA certificates trusted for every registry (DER), besides the Mozilla roots.
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
    /// Token services (`host[:port]` of a challenge's `realm`) allowed to receive a
    /// registry's credentials, besides the registry's own host. Keyed by registry
    /// (`Reference::registry()`). Default: Docker Hub's `auth.docker.io`.
    pub token_realms: HashMap<String, Vec<String>>,
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
            token_realms: HashMap::from([(
                "docker.io".to_owned(),
                vec!["auth.docker.io".to_owned()],
            )]),
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
}

/// One host: its pooled client and what we learnt about its authentication.
struct Host {
    authority: String,
    scheme: &'static str,
    http: HttpClient,
    state: Mutex<HostState>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("authority", &self.authority)
            .field("scheme", &self.scheme)
            .finish()
    }
}

#[derive(Default)]
struct HostState {
    challenge: Option<Challenge>,
    /// Bearer tokens by scope, with the instant they stop being used.
    tokens: HashMap<String, (String, Instant)>,
    /// Whether the referrers API answered (Some(true)) or 404 (Some(false)).
    referrers: Option<bool>,
}

/// An answer, body read.
struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The authority that finally answered (after redirects).
    host: String,
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
            }),
        })
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
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = hosts.get(authority) {
            return Ok(h.clone());
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
            http: transport::http_client(tls, plain),
            state: Mutex::new(HostState::default()),
        });
        hosts.insert(authority.to_owned(), host.clone());
        Ok(host)
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

    async fn signatures(
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
        let listed = if known == Some(false) {
            None
        } else {
            self.referrers(repository, &subject.digest, deadline)
                .await?
        };
        host.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .referrers = Some(listed.is_some() || known == Some(true));
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
        Ok(got.body.to_vec())
    }

    /// Sends one logical request: authentication (challenge, token, cache), redirects
    /// (bounded, credentials only to the registry host) and retries (429/5xx/broken
    /// connections, only while the deadline allows). The body of a 2xx answer is read up
    /// to `req.limit`; other answers' bodies are read up to a small cap and discarded.
    async fn execute(&self, req: Req<'_>) -> Result<Fetched, RegistryError> {
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
                        && Instant::now() + delay < req.deadline
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
                if attempt < self.config.max_retries && Instant::now() + delay < req.deadline {
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
                });
            }
            if let Some(len) =
                header_str(&headers, "content-length").and_then(|l| l.parse::<u64>().ok())
            {
                if len > limit && status.is_success() {
                    return Err(RegistryError::TooLarge {
                        host: authority,
                        what: req.what.to_owned(),
                        limit,
                    });
                }
            }
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
                    .tokens
                    .insert(scope.to_owned(), (token.clone(), until));
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
