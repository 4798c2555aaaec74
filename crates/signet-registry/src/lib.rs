//! Registry I/O for Signet: everything between an image reference and the bytes of its
//! Notation signature envelopes.
//!
//! - [`Reference`]: references as Kubernetes writes them, normalised like Docker
//!   (`nginx` → `docker.io/library/nginx`, API host `registry-1.docker.io`).
//! - [`RegistryClient::resolve`]: tag or digest → the manifest's [`Descriptor`]
//!   (`HEAD`, then `GET` where `HEAD` is refused; a `GET` body is always digested by us).
//! - [`RegistryClient::signatures`]: the OCI referrers API filtered on
//!   `application/vnd.cncf.notary.signature` (with `Link` pagination on the same host, and
//!   our own filtering when the registry did not apply it), falling back to the tag-schema
//!   index `sha256-<hex>` when the registry has no referrers API (404; remembered per host).
//!   Every signature manifest is digest- and size-checked, must name the artifact as its
//!   `subject`, and must carry exactly one `application/jose+json` or `application/cose`
//!   layer; both current (`artifactType`) and legacy (`config.mediaType`) Notation manifests
//!   are accepted. Manifests the registry serves wrong are reported in
//!   [`Signatures::rejected`], never silently dropped.
//! - [`RegistryClient::fetch_envelope`]: the envelope blob, size- and digest-checked.
//!
//! # Trust nothing the registry says
//! Manifest bodies are read with a 4 MiB cap, envelopes with a 32 MiB cap (and never more
//! than one byte past their descriptor's size); every fetched body is hashed and compared
//! with the digest it was asked for. A `HEAD`'s `Docker-Content-Digest` is only used as the
//! resolved digest of a *tag*: what is verified afterwards is the signatures over that
//! digest, and what Kubernetes runs is the image pulled by that digest.
//!
//! # Deadlines, retries, connections
//! Every public call takes the caller's deadline and runs entirely under
//! [`tokio::time::timeout_at`] (connect, TLS handshake, token fetch, body reads), ending in
//! [`RegistryError::Timeout`]. Requests are retried on 429/502/503/504 and broken connections
//! with jittered exponential backoff, honouring `Retry-After` (seconds), only while the wait
//! still ends before the deadline; otherwise the answer is [`RegistryError::RateLimited`].
//! Each host has one pooled HTTP/1.1 client (keep-alive), so one verification reuses one
//! connection.
//!
//! # Authentication
//! Anonymous, Basic, and the bearer-token challenge flow (`WWW-Authenticate: Bearer
//! realm=…,service=…`: `GET realm?service=…&scope=repository:<repo>:pull` with Basic
//! credentials if any, or a refresh-token `POST` for an identity token). Credentials come
//! from a [`TokenSource`]: [`DockerConfig`] (`config.json`, Kubernetes `.dockerconfigjson`)
//! Docker credential helpers
//! (`credsStore`, `credHelpers`), or a custom source (ACR via Entra ID or the Azure CLI). Tokens are cached per (registry, scope) until
//! shortly before `expires_in` runs out, and are only ever sent to the registry host they
//! were issued for: a redirect to another host (blob storage) is followed without the
//! `Authorization` header, at most 5 times, and never from HTTPS to plain HTTP unless the
//! target is listed in [`RegistryConfig::plain_http`]. Once a registry's challenge is known,
//! later requests (other repositories) authenticate up front instead of collecting a 401.
//!
//! # Why our own HTTP client (hyper 1 + hyper-util + tokio-rustls), not `oci-client`
//! `oci-client` is built on reqwest and hides what this crate must control: it decides which
//! answers it trusts (it does not let us insist on digesting a `GET` body or on capping a
//! body *while* reading it), how it retries, where credentials go on redirects, and how the
//! token cache is keyed; its referrers support has no tag-schema fallback that checks
//! `subject`; and it brings a second TLS stack and its own timeouts that do not compose with
//! a per-call deadline. The OCI *types* come from `oci-spec`; the transport is hyper 1,
//! hyper-util's pooled client, and `signet-http`'s connector (the one outbound stack of
//! Signet: `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` with CONNECT tunnels, rustls on the
//! **aws-lc-rs** provider, the same crypto library `signet-notation` verifies signatures
//! with; no `ring`). Trusted roots: the Mozilla set, the system store (`SSL_CERT_FILE`,
//! `SSL_CERT_DIR`) plus configured PEM CAs, globally or per registry. Registry credentials
//! travel inside the TLS tunnel; a proxy only ever sees its own `Proxy-Authorization`.
//!
//! # Round trips
//! [`RegistryClient::round_trips`] counts every HTTP request. One cold verification of a tag
//! reference with a cached token costs 4: `HEAD` manifest, referrers, signature manifest,
//! envelope blob (one more per additional signature: manifest + blob).
//!
//! # Not here
//! What a signature means (`signet-notation`), caching, deduplication and concurrency
//! limits across calls, and the mapping to contract codes (`signet-engine`).

mod auth;
mod client;
mod error;
mod reference;
mod transport;

pub use auth::{BoxFuture, Credential, DockerConfig, NoCredentials, TokenSource};
pub use client::{
    is_index, parse_index_entries, Discovery, IndexEntry, Platform, RegistryClient, RegistryConfig,
    RejectedSignature, SignatureManifest, Signatures, MAX_ENVELOPE_BYTES, MAX_INDEX_ENTRIES,
    MAX_MANIFEST_BYTES, MEDIA_TYPE_COSE, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_EMPTY, MEDIA_TYPE_JWS, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
    NOTATION_ARTIFACT_TYPE,
};
pub use error::RegistryError;
pub use reference::{Reference, DOCKER_HUB, DOCKER_HUB_API};
pub use signet_notation::Descriptor;
