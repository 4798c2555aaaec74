//! The HTTP application: the request limits, one entry point ([`App::handle`]) that routes
//! (see [`routing`](crate::routing)), reads bodies within limits, answers the probes and
//! `/metrics`, and writes the access log line and request metrics. The protocol endpoints
//! live in [`provider`](crate::provider) (verify, mutate) and [`admission`](crate::admission)
//! (admit). Transport-free (any `http_body::Body`), so tests call it directly.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::admission::AdmissionSettings;
use crate::metrics::Metrics;
use crate::routing::{json_response, trace_id, Endpoint, Refusal, Resp};
use crate::verifier::ImageVerifier;

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to answer a request; keys unfinished by then answer `TIMEOUT` (default 4 s; the
    /// chart sets 1500 ms). Keep this + 500 ms ≤ Gatekeeper's Provider `timeout` < the
    /// Gatekeeper webhook timeout (docs/performance.md, "Gatekeeper timeouts").
    pub request_deadline: Duration,
    /// Keys in one `ProviderRequest` (default 1000); more is a `systemError`.
    pub max_keys: usize,
    /// Request body size (default 1 MiB); more is answered 413.
    pub max_body_bytes: usize,
    /// Keys of one request verified at once (default 64).
    pub key_concurrency: usize,
    /// Time to receive a request's headers (default 5 s; also the keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Time to receive a request's body (default 10 s); longer is answered 408.
    pub body_read_timeout: Duration,
    /// Time for a client to complete the TLS handshake, client certificate included
    /// (default 2 s): a connection that has not authenticated is cheap to hold, so it is
    /// held briefly.
    pub handshake_timeout: Duration,
    /// TLS handshakes in progress at once (default 64): the budget of connections that
    /// have not authenticated yet; when it is spent, new connections wait in the kernel's
    /// backlog.
    pub max_handshakes: usize,
    /// TLS handshakes in progress at once from one client IP address (default 16); more
    /// are closed at once.
    pub max_handshakes_per_peer: usize,
    /// Authenticated client connections open at once (default 1024); only a completed
    /// handshake (client certificate verified) takes one. One that finds none free within
    /// `header_read_timeout` is closed.
    pub max_connections: usize,
    /// Connections open at once on the plain-HTTP probe listener (default 64); one client
    /// IP address holds at most a quarter of them, more are closed at once.
    pub probe_max_connections: usize,
    /// On SIGTERM, how long in-flight requests get to finish (default 20 s).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_deadline: Duration::from_secs(4),
            max_keys: 1000,
            max_body_bytes: 1024 * 1024,
            key_concurrency: 64,
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(2),
            max_handshakes: 64,
            max_handshakes_per_peer: 16,
            max_connections: 1024,
            probe_max_connections: 64,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// The application state shared by every connection.
#[derive(Clone)]
pub struct App {
    pub(crate) verifier: Arc<dyn ImageVerifier>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) admission: Arc<AdmissionSettings>,
    pub(crate) metrics: Arc<Metrics>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What a request did, for the access log line.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) keys: usize,
    pub(crate) problem: Option<String>,
}

/// An endpoint's answer, or why the request was refused as a whole.
pub(crate) type Handled = Result<(Resp, Outcome), Refusal>;

impl App {
    pub fn new(
        verifier: Arc<dyn ImageVerifier>,
        limits: Limits,
        admission: AdmissionSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        App {
            verifier,
            limits: Arc::new(limits),
            admission: Arc::new(admission),
            metrics,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// 404 for the protocol endpoints on the plain-HTTP probe listener.
    pub(crate) fn not_here(&self) -> Resp {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "the provider endpoints are served on the TLS listener only",
        )
        .into_response(None)
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Answers one request (never fails: every problem is an HTTP answer).
    pub async fn handle<B>(&self, req: Request<B>) -> Resp
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = std::time::Instant::now();
        let trace = trace_id(&req);
        let endpoint = Endpoint::from_path(req.uri().path());
        let span = tracing::info_span!("request", trace_id = %trace, method = %req.method(),
            path = %req.uri().path());
        let handled = self
            .route(endpoint, req, &trace)
            .instrument(span.clone())
            .await;
        let (resp, outcome) = handled.unwrap_or_else(|refusal| {
            let problem = Some(refusal.message.clone());
            (
                refusal.into_response(endpoint),
                Outcome { keys: 0, problem },
            )
        });
        let label = endpoint.map_or("other", Endpoint::label);
        let status = resp.status().as_u16();
        let elapsed = started.elapsed();
        self.metrics.request(label, status, elapsed.as_secs_f64());
        let ms = elapsed.as_secs_f64() * 1000.0;
        let _g = span.enter();
        match (&outcome.problem, endpoint) {
            (Some(p), _) => {
                tracing::warn!(status, keys = outcome.keys, elapsed_ms = ms, problem = %p, "request refused")
            }
            (None, Some(e)) if !e.is_protocol() => {
                tracing::debug!(status, elapsed_ms = ms, "answered")
            }
            (None, _) => tracing::info!(status, keys = outcome.keys, elapsed_ms = ms, "answered"),
        }
        resp
    }

    async fn route<B>(&self, endpoint: Option<Endpoint>, req: Request<B>, trace: &str) -> Handled
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let Some(endpoint) = endpoint else {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {}", req.uri().path()),
            ));
        };
        endpoint.accepts(req.method())?;
        match endpoint {
            Endpoint::Healthz => Ok((
                json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})),
                Outcome::default(),
            )),
            Endpoint::Readyz => Ok((self.readyz(), Outcome::default())),
            Endpoint::Metrics => Ok((self.metrics_text(), Outcome::default())),
            Endpoint::Verify | Endpoint::Mutate => {
                let deadline = Instant::now() + self.limits.request_deadline;
                let body = self.read_body(req).await?;
                self.provider(endpoint, &body, deadline, trace).await
            }
            Endpoint::Admit => {
                let deadline = Instant::now() + self.limits.request_deadline;
                let body = self.read_body(req).await?;
                self.admit(&body, deadline).await
            }
        }
    }

    fn readyz(&self) -> Resp {
        if self.verifier.is_ready() {
            json_response(
                StatusCode::OK,
                &serde_json::json!({"ready": true, "trustGeneration": self.verifier.trust_generation()}),
            )
        } else {
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"ready": false, "reason": self.verifier.not_ready_reason()
                    .unwrap_or_else(|| "trust material not loaded".into())}),
            )
        }
    }

    fn metrics_text(&self) -> Resp {
        let text = self.metrics.render(self.verifier.as_ref());
        let mut r = Response::new(Full::new(Bytes::from(text)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
        );
        r
    }

    /// The body, within `maxBodyBytes` (413) and `bodyReadTimeout` (408).
    async fn read_body<B>(&self, req: Request<B>) -> Result<Bytes, Refusal>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let max = self.limits.max_body_bytes;
        let too_large = || {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {max} bytes (limits.maxBodyBytes)"),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        // Read up to `max`; past it, keep draining (discarding) up to 4 × `max` so that the
        // client, still writing, reads our 413 instead of a reset connection.
        let drain_cap = max.saturating_mul(4);
        if declared.is_some_and(|n| n > drain_cap) {
            return Err(too_large());
        }
        let read = async move {
            let mut body = std::pin::pin!(req.into_body());
            let mut buf = bytes::BytesMut::with_capacity(declared.unwrap_or(0).min(max));
            let mut seen = 0usize;
            while let Some(frame) = body.frame().await {
                let frame =
                    frame.map_err(|e| Refusal::bad_request(format!("reading the body: {e}")))?;
                if let Ok(data) = frame.into_data() {
                    seen = seen.saturating_add(data.len());
                    if seen > drain_cap {
                        return Err(too_large());
                    }
                    if seen <= max {
                        buf.extend_from_slice(&data);
                    }
                }
            }
            if seen > max {
                Err(too_large())
            } else {
                Ok(buf.freeze())
            }
        };
        match tokio::time::timeout(self.limits.body_read_timeout, read).await {
            Err(_) => Err(Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {:?} (limits.bodyReadTimeout)",
                    self.limits.body_read_timeout
                ),
            )),
            Ok(r) => r,
        }
    }
}
