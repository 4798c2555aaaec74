//! Docker Content Trust (Notary v1) verification for Signet.
//!
//! DCT signs tags, not manifests: a Notary server stores TUF metadata per repository
//! (GUN, e.g. `registry.example/team/app`), and a tag is trusted when the `targets` role,
//! or a delegation such as `targets/releases` (what `docker trust sign` writes), lists it
//! with the manifest's SHA-256 and length. This crate checks, for one tag:
//!
//! 1. **root** — signed by its own threshold, and anchored in configuration: enough root
//!    signatures from pinned root keys (key IDs or public keys) or from keys whose x509
//!    certificate is a pinned certificate or issued by a pinned CA. There is no trust on
//!    first use. A later root is also accepted when signed by the threshold of the root
//!    trusted before (rotation), and never with a lower version.
//! 2. **timestamp** → **snapshot** → **targets** → **delegations** — each signed by its
//!    role's threshold of keys, not expired at the verification time, its version not below
//!    the highest seen for the repository, and its bytes equal in length and hashes to what
//!    the metadata above it declares. Delegations must be direct children, their paths must
//!    allow the tag along the whole chain, and fetching is bounded in count and depth.
//! 3. **the tag** — found as Docker finds it (`targets/releases` first, then `targets` and
//!    its other delegations); its SHA-256 and length must equal the manifest digest and size
//!    the registry gave.
//!
//! Signatures are checked over the canonical JSON of `signed` (as Notary writes it) with
//! aws-lc-rs: `ecdsa`/`ecdsa-x509` (r‖s, SHA-256), `rsa`/`rsa-x509` (`rsapss`, also
//! `rsapkcs1v15`), `ed25519` (`eddsa`).
//!
//! The pure part ([`Update`], [`RootPin`], [`admit`]) does no I/O; [`DctVerifier`] fetches
//! `GET {server}/v2/{gun}/_trust/tuf/{role}.json` through Signet's shared outbound stack
//! (`signet-http`: pooled hyper-util client, rustls on aws-lc-rs) with a per-request timeout and size bounds (root 512 KiB, timestamp 64 KiB, others the
//! length the metadata above declares, at most 16 MiB), and remembers per repository the
//! trusted root and the versions seen, for the life of the process. A server that answers
//! `401` with a `Bearer` challenge (Notary behind a registry's token service, as on Docker
//! Hub and ACR) gets one pull token per verification from the realm; Basic credentials
//! ([`DctVerifier::with_credentials`]) go to the realm only when it is on the Notary
//! server's own host, otherwise the token is asked for anonymously.
//!
//! Outbound connections are signet-http's: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the
//! environment (or explicit [`ProxySettings`]), CONNECT tunnels for https, and the Mozilla
//! roots, the system roots, `SSL_CERT_FILE`, `SSL_CERT_DIR` and the scope's `serverCa`.
//!
//! # Configuration (`dct:` of Signet's configuration file)
//!
//! ```yaml
//! dct:
//!   migrationUntil: "2028-03-31T00:00:00Z"   # DCT admits alone only before this instant
//!   timeoutSeconds: 10
//!   repositories:
//!     - scope: myregistry.azurecr.io/team/*   # a GUN, or a prefix ending in /*
//!       server: https://notary.example:4443
//!       rootKeys: ["<64-hex root key ID>", "-----BEGIN PUBLIC KEY-----..."]
//!       rootCertificates: ["-----BEGIN CERTIFICATE-----..."]
//!       serverCa: "-----BEGIN CERTIFICATE-----..."   # optional, besides the system roots
//! ```
//!
//! [`DctConfig`] deserializes this section; [`DctConfig::validate`] refuses a scope without
//! any root key or certificate, a non-https server (unless `dangerPlainHttp`, logged), and a
//! malformed `migrationUntil`.
//!
//! # How the engine uses it (`signet-engine`, `engine/dct.rs`)
//!
//! For an image `registry/repo:tag` whose repository a `dct` scope covers, the engine
//! resolves the tag to a descriptor as today, runs the Notation pipeline, and, when Notation
//! does not verify, asks [`DctVerifier::verify`] with the GUN `registry/repo`, the tag, the
//! manifest digest and size, and the registry credentials for the Notary server's host
//! (from the Docker config) through [`DctVerifier::with_credentials`]. [`admit`] decides: Notation verified → admitted, `format:
//! "notation"`; else DCT verified and now < `migrationUntil` → admitted with one signature
//! entry `{"format": "dct", "digest": <manifest digest>, "signer": DctVerified::signer(),
//! "verified": true}`; after the window the DCT entry is reported with `verified: false`
//! and an error saying the window ended. A reference pinned by digest has no tag, so DCT
//! cannot apply (Notation only). Codes: [`DctError::is_transport`] errors map to
//! `REGISTRY_ERROR` / `TIMEOUT` (not cached); `TargetNotFound` and `NotSigned` (HTTP 404) to `SIGNATURE_NOT_FOUND`;
//! `RootNotPinned` to `UNTRUSTED_SIGNER`; `Expired` to `SIGNATURE_EXPIRED`; the rest
//! (threshold, hashes, rollback, mismatch, malformed) to `SIGNATURE_INVALID`.
//!
//! Not here: Notation signatures (`signet-notation`), registry I/O (`signet-registry`), and
//! when DCT is consulted and how its entries appear in a verdict (`signet-engine`).

mod canonical;
mod client;
mod config;
mod error;
mod keys;
mod metadata;
mod migration;
mod pin;
mod proxy;
mod tuf;

pub use client::{
    BasicCredentials, DctVerified, DctVerifier, MAX_METADATA_BYTES, MAX_ROOT_BYTES,
    MAX_TIMESTAMP_BYTES,
};
pub use config::{Dct, DctConfig, Repository, RepositoryConfig};
pub use error::DctError;
pub use keys::PublicKey;
pub use migration::{admit, Admission, Mechanism};
pub use pin::RootPin;
pub use proxy::ProxySettings;
pub use tuf::{
    check_manifest, RepoState, SignedTarget, Update, MAX_DELEGATIONS_FETCHED, MAX_DELEGATION_DEPTH,
    RELEASES_ROLE,
};
