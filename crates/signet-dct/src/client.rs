//! Fetching TUF metadata from a Notary v1 server (`GET /v2/<gun>/_trust/tuf/<role>.json`)
//! under a timeout and size bounds, and the verifier that drives [`Update`] with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Dct, Repository};
use crate::error::DctError;
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
    tls: HashMap<String, Arc<rustls::ClientConfig>>,
    states: Arc<Mutex<HashMap<String, RepoState>>>,
}

impl DctVerifier {
    /// Builds a verifier; fails when a server CA does not parse.
    pub fn new(config: Dct) -> Result<DctVerifier, DctError> {
        let mut tls = HashMap::new();
        for repo in &config.repositories {
            tls.insert(repo.scope.clone(), tls_config(repo.server_ca.as_deref())?);
        }
        Ok(DctVerifier {
            config: Arc::new(config),
            tls,
            states: Arc::new(Mutex::new(HashMap::new())),
        })
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
        let tls = self
            .tls
            .get(&repo.scope)
            .cloned()
            .ok_or_else(|| DctError::NotConfigured {
                gun: gun.to_owned(),
            })?;
        let fetcher = Fetcher {
            repo,
            tls,
            timeout: self.config.timeout,
            gun,
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
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_pem {
        let mut any = false;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| DctError::Config(format!("serverCa: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| DctError::Config(format!("serverCa: {e}")))?;
            any = true;
        }
        if !any {
            return Err(DctError::Config(
                "serverCa holds no PEM certificate".to_owned(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DctError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

struct Fetcher<'a> {
    repo: &'a Repository,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    gun: &'a str,
}

impl Fetcher<'_> {
    /// Fetches one role's metadata, at most `limit` bytes, within the timeout.
    async fn get(&self, role: &str, limit: u64) -> Result<Vec<u8>, DctError> {
        let url = format!(
            "{}/v2/{}/_trust/tuf/{role}.json",
            self.repo.server, self.gun
        );
        match tokio::time::timeout(self.timeout, self.get_inner(&url, role, limit)).await {
            Ok(result) => result,
            Err(_) => Err(DctError::Timeout {
                server: self.repo.server.clone(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    async fn get_inner(&self, url: &str, role: &str, limit: u64) -> Result<Vec<u8>, DctError> {
        let server_err = |reason: String| DctError::Server {
            server: self.repo.server.clone(),
            reason,
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| server_err(format!("URL {url}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if self.repo.plain_http => false,
            _ => return Err(server_err(format!("scheme of {url} not allowed"))),
        };
        let host = uri
            .host()
            .ok_or_else(|| server_err("no host".to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| server_err(format!("connect: {e}")))?;
        let request = http::Request::get(uri.clone())
            .header(
                http::header::HOST,
                uri.authority().map(|a| a.as_str()).unwrap_or(""),
            )
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "signet-dct")
            .body(Empty::<Bytes>::new())
            .map_err(|e| server_err(e.to_string()))?;
        let response = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| server_err(format!("server name {host}: {e}")))?;
            let tls = TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| server_err(format!("TLS: {e}")))?;
            send(TokioIo::new(tls), request).await
        } else {
            send(TokioIo::new(tcp), request).await
        }
        .map_err(server_err)?;
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return Err(server_err(format!(
                "no {role} metadata for {} (is the repository signed with Docker Content Trust?)",
                self.gun
            )));
        }
        if !status.is_success() {
            return Err(server_err(format!("{role} metadata: HTTP {status}")));
        }
        if let Some(len) = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit {
                return Err(DctError::TooLarge {
                    role: role.to_owned(),
                    size: len,
                    limit,
                });
            }
        }
        let mut body = response.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| server_err(format!("reading {role}: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if (buf.len() + data.len()) as u64 > limit {
                    return Err(DctError::TooLarge {
                        role: role.to_owned(),
                        size: (buf.len() + data.len()) as u64,
                        limit,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf)
    }
}

async fn send<S>(
    io: TokioIo<S>,
    request: http::Request<Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))
}
