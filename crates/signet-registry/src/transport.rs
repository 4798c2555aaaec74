//! The HTTP layer: `signet-http`'s connector (proxy, roots, TLS on aws-lc-rs; plain HTTP only
//! where allowed), one pooled hyper client per host, capped body reads, backoff.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use signet_http::{Connector, PlainHttp, ProxyPolicy};

use crate::error::RegistryError;

pub(crate) type HttpClient = signet_http::PooledClient;

/// One pooled HTTP client for one host.
pub(crate) fn http_client(
    tls: Arc<rustls::ClientConfig>,
    allow_plain: bool,
    proxy: ProxyPolicy,
) -> HttpClient {
    let plain = if allow_plain {
        PlainHttp::Always
    } else {
        PlainHttp::Never
    };
    signet_http::pooled_client(Connector::new(tls, proxy).plain_http(plain))
}

/// A rustls client configuration on the aws-lc-rs provider trusting the Mozilla roots, the
/// system roots (`SSL_CERT_FILE`, `SSL_CERT_DIR`) plus `extra` (DER certificates).
pub(crate) fn tls_config(
    extra: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, RegistryError> {
    signet_http::tls::client_config(extra)
        .map_err(|e| RegistryError::Config(format!("registry {e}")))
}

/// Parses PEM certificates (every `CERTIFICATE` block).
pub(crate) fn parse_pem_certs(
    pem: &[u8],
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, RegistryError> {
    signet_http::tls::parse_pem_certs(pem)
        .map_err(|e| RegistryError::Config(format!("registry {e}")))
}

/// Reads a body, failing as soon as it grows past `limit`.
pub(crate) async fn read_capped(
    mut body: Incoming,
    limit: u64,
    host: &str,
    what: &str,
) -> Result<Bytes, RegistryError> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RegistryError::Transport {
            host: host.to_owned(),
            message: format!("reading {what}: {e}"),
        })?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(RegistryError::TooLarge {
                    host: host.to_owned(),
                    what: what.to_owned(),
                    limit,
                });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// Whether a client error is worth a retry: connection refused/reset, a connection closed
/// before the answer.
pub(crate) fn retryable(err: &hyper_util::client::legacy::Error) -> bool {
    if err.is_connect() {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// Describes a client error with its causes.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// Jittered exponential backoff: attempt 0 → 50–100 ms, doubling, capped at 2 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap_ms = (100u64 << attempt.min(5)).min(2000);
    let mut r = [0u8; 8];
    let rand = if aws_lc_rs::rand::fill(&mut r).is_ok() {
        u64::from_le_bytes(r)
    } else {
        0
    };
    Duration::from_millis(cap_ms / 2 + rand % (cap_ms / 2 + 1))
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured: backoff applies).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Percent-encodes a query component.
pub(crate) fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
