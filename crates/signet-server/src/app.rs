//! The HTTP application: routing, body limits, the three protocol endpoints, probes and
//! metrics. Transport-free (any `http_body::Body`), so tests call it directly.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use serde::Serialize;
use serde_json::Value;
use signet_engine::{ImageVerdict, VerdictError};
use signet_notation::ErrorCode;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::admission::{self, AdmissionSettings};
use crate::metrics::Metrics;
use crate::protocol::{
    AdmissionReviewIn, AdmissionReviewOut, Item, ProviderRequest, ProviderResponse, ValueError,
    VerifyValue, ADMISSION_API_VERSION, PROVIDER_API_VERSION,
};
use crate::verifier::ImageVerifier;

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to answer a request; keys unfinished by then answer `TIMEOUT` (default 4 s).
    /// Keep Gatekeeper's Provider `timeout` ≥ this + 1 s, the webhook timeout ≥ that.
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
    /// Time for a client to complete the TLS handshake (default 5 s).
    pub handshake_timeout: Duration,
    /// Client connections open at once (default 1024); more wait to be accepted.
    pub max_connections: usize,
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
            handshake_timeout: Duration::from_secs(5),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Slack left between the verifier's deadline and the server's cut-off, so that the
/// verifier's own (more precise) `TIMEOUT` message normally wins.
const VERIFIER_SLACK: Duration = Duration::from_millis(50);

/// The application state shared by every connection.
#[derive(Clone)]
pub struct App {
    verifier: Arc<dyn ImageVerifier>,
    limits: Arc<Limits>,
    admission: Arc<AdmissionSettings>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

type Resp = Response<Full<Bytes>>;

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn simple_error(status: StatusCode, message: &str) -> Resp {
    json_response(status, &serde_json::json!({ "error": message }))
}

/// A new trace id (32 hex digits, W3C trace-context sized), or the one of an incoming
/// `traceparent` header.
fn trace_id<B>(req: &Request<B>) -> String {
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        let parts: Vec<&str> = tp.split('-').collect();
        if parts.len() == 4
            && parts[1].len() == 32
            && parts[1].bytes().all(|b| b.is_ascii_hexdigit())
            && parts[1] != "00000000000000000000000000000000"
        {
            return parts[1].to_ascii_lowercase();
        }
    }
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_rfc3339() -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}

fn declared_cap(max: usize) -> usize {
    max.saturating_mul(4)
}

/// Why a body could not be read.
enum BodyError {
    TooLarge,
    Slow,
    Broken(String),
}

/// What a request did, for the access log line.
#[derive(Default)]
struct Outcome {
    keys: usize,
    problem: Option<String>,
}

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
        simple_error(
            StatusCode::NOT_FOUND,
            "the provider endpoints are served on the TLS listener only",
        )
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
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let span = tracing::info_span!("request", trace_id = %trace, %method, %path);
        let (endpoint, resp, outcome) = self.route(req, &trace).instrument(span.clone()).await;
        let status = resp.status().as_u16();
        let elapsed = started.elapsed();
        self.metrics
            .request(endpoint, status, elapsed.as_secs_f64());
        let ms = elapsed.as_secs_f64() * 1000.0;
        let _g = span.enter();
        match (&outcome.problem, endpoint) {
            (Some(p), _) => {
                tracing::warn!(status, keys = outcome.keys, elapsed_ms = ms, problem = %p, "request refused")
            }
            (None, "healthz" | "readyz" | "metrics") => {
                tracing::debug!(status, elapsed_ms = ms, "answered")
            }
            (None, _) => tracing::info!(status, keys = outcome.keys, elapsed_ms = ms, "answered"),
        }
        resp
    }

    async fn route<B>(&self, req: Request<B>, trace: &str) -> (&'static str, Resp, Outcome)
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = req.uri().path();
        let endpoint = match path {
            "/v1/verify" => "verify",
            "/v1/mutate" => "mutate",
            "/v1/admit" => "admit",
            "/healthz" => "healthz",
            "/readyz" => "readyz",
            "/metrics" => "metrics",
            _ => {
                let msg = format!("no such endpoint: {path}");
                return (
                    "other",
                    simple_error(StatusCode::NOT_FOUND, &msg),
                    Outcome {
                        keys: 0,
                        problem: Some(msg),
                    },
                );
            }
        };
        let want = if path.starts_with("/v1/") {
            Method::POST
        } else {
            Method::GET
        };
        if req.method() != want && !(want == Method::GET && req.method() == Method::HEAD) {
            let msg = format!("{path} takes {want}, not {}", req.method());
            let mut r = simple_error(StatusCode::METHOD_NOT_ALLOWED, &msg);
            if let Ok(v) = header::HeaderValue::from_str(want.as_str()) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return (
                endpoint,
                r,
                Outcome {
                    keys: 0,
                    problem: Some(msg),
                },
            );
        }
        let (resp, outcome) = match endpoint {
            "healthz" => (
                json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})),
                Outcome::default(),
            ),
            "readyz" => (self.readyz(), Outcome::default()),
            "metrics" => {
                let text = self
                    .metrics
                    .render(self.verifier.is_ready(), self.verifier.trust_generation());
                let mut r = Response::new(Full::new(Bytes::from(text)));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                (r, Outcome::default())
            }
            "verify" | "mutate" => self.provider(endpoint, req, trace).await,
            _ => self.admit(req, trace).await,
        };
        (endpoint, resp, outcome)
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

    async fn read_body<B>(&self, req: Request<B>) -> Result<Bytes, BodyError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let max = self.limits.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        // Read up to `max`; past it, keep draining (discarding) up to 4 × `max` so that the
        // client, still writing, reads our 413 instead of a reset connection.
        let drain_cap = declared_cap(max);
        if declared.is_some_and(|n| n > drain_cap) {
            return Err(BodyError::TooLarge);
        }
        let read = async move {
            let mut body = std::pin::pin!(req.into_body());
            let mut buf = bytes::BytesMut::new();
            let mut seen = 0usize;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    seen = seen.saturating_add(data.len());
                    if seen > drain_cap {
                        return Err(BodyError::TooLarge);
                    }
                    if seen <= max {
                        buf.extend_from_slice(&data);
                    }
                }
            }
            if seen > max {
                Err(BodyError::TooLarge)
            } else {
                Ok(buf.freeze())
            }
        };
        match tokio::time::timeout(self.limits.body_read_timeout, read).await {
            Err(_) => Err(BodyError::Slow),
            Ok(r) => r,
        }
    }

    fn body_error(&self, e: BodyError) -> (StatusCode, String) {
        match e {
            BodyError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body larger than {} bytes (limits.maxBodyBytes)",
                    self.limits.max_body_bytes
                ),
            ),
            BodyError::Slow => (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {:?} (limits.bodyReadTimeout)",
                    self.limits.body_read_timeout
                ),
            ),
            BodyError::Broken(e) => (StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
        }
    }

    /// Validates a `ProviderRequest` body and returns its keys.
    fn provider_keys(&self, body: &[u8]) -> Result<Vec<String>, String> {
        let req: ProviderRequest = serde_json::from_slice(body)
            .map_err(|e| format!("malformed ProviderRequest JSON: {e}"))?;
        match req.api_version.as_deref() {
            Some(PROVIDER_API_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "apiVersion {v:?} is not supported: expected {PROVIDER_API_VERSION:?}"
                ))
            }
            None => {
                return Err(format!(
                    "apiVersion missing: expected {PROVIDER_API_VERSION:?}"
                ))
            }
        }
        match req.kind.as_deref() {
            Some("ProviderRequest") => {}
            Some(k) => {
                return Err(format!(
                    "kind {k:?} is not supported: expected \"ProviderRequest\""
                ))
            }
            None => return Err("kind missing: expected \"ProviderRequest\"".into()),
        }
        let keys = req
            .request
            .ok_or("request missing: expected {\"keys\": [...]}")?
            .keys
            .ok_or("request.keys missing: expected a list of image references")?;
        if keys.len() > self.limits.max_keys {
            return Err(format!(
                "too many keys: {} in one request, at most {} (limits.maxKeysPerRequest)",
                keys.len(),
                self.limits.max_keys
            ));
        }
        keys.into_iter()
            .enumerate()
            .map(|(i, k)| match k {
                Value::String(s) => Ok(s),
                other => Err(format!("request.keys[{i}] is not a string: {other}")),
            })
            .collect()
    }

    /// Runs `f` for each distinct key, at most `key_concurrency` at once, each cut off at
    /// `deadline` (`None` then). Results come back in key order.
    async fn run_keys<T, F, Fut>(&self, keys: &[String], deadline: Instant, f: F) -> Vec<Option<T>>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn ImageVerifier>, String, Instant) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let sem = Arc::new(Semaphore::new(self.limits.key_concurrency.max(1)));
        let inner_deadline = deadline
            .checked_sub(VERIFIER_SLACK)
            .filter(|d| *d > Instant::now())
            .unwrap_or(deadline);
        let mut set = JoinSet::new();
        for (i, key) in keys.iter().enumerate() {
            let fut = f(self.verifier.clone(), key.clone(), inner_deadline);
            let sem = sem.clone();
            set.spawn(
                async move {
                    let r = tokio::time::timeout_at(deadline, async move {
                        let _permit = sem.acquire_owned().await;
                        fut.await
                    })
                    .await
                    .ok();
                    (i, r)
                }
                .in_current_span(),
            );
        }
        let mut out: Vec<Option<T>> = (0..keys.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                out[i] = r;
            }
        }
        out
    }

    async fn provider<B>(
        &self,
        endpoint: &'static str,
        req: Request<B>,
        trace: &str,
    ) -> (Resp, Outcome)
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let mutate = endpoint == "mutate";
        let refuse = |status: StatusCode, msg: String| {
            (
                json_response(status, &ProviderResponse::system_error(mutate, msg.clone())),
                Outcome {
                    keys: 0,
                    problem: Some(msg),
                },
            )
        };
        let deadline = Instant::now() + self.limits.request_deadline;
        let body = match self.read_body(req).await {
            Ok(b) => b,
            Err(e) => {
                let (status, msg) = self.body_error(e);
                return refuse(status, msg);
            }
        };
        let keys = match self.provider_keys(&body) {
            Ok(k) => k,
            Err(msg) => return refuse(StatusCode::BAD_REQUEST, msg),
        };

        // Distinct, well-formed keys go to the verifier; the rest are answered here.
        let mut distinct: Vec<String> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut malformed: HashMap<&str, String> = HashMap::new();
        for k in &keys {
            if index.contains_key(k.as_str()) || malformed.contains_key(k.as_str()) {
                continue;
            }
            match signet_registry::Reference::parse(k) {
                Ok(_) => {
                    index.insert(k, distinct.len());
                    distinct.push(k.clone());
                }
                Err(e) => {
                    malformed.insert(k, format!("{}: {e}", ErrorCode::InvalidReference.as_str()));
                }
            }
        }

        let mut items = Vec::with_capacity(keys.len());
        let mut finished = 0usize;
        if mutate {
            let results = self
                .run_keys(&distinct, deadline, |v, key, d| async move {
                    let t = std::time::Instant::now();
                    (v.pin(&key, d).await, t.elapsed())
                })
                .await;
            for key in &keys {
                let item = if let Some(err) = malformed.get(key.as_str()) {
                    self.malformed_item(endpoint, key, err)
                } else {
                    let r = index.get(key.as_str()).and_then(|i| results[*i].as_ref());
                    match r {
                        Some((Ok(pinned), t)) => {
                            finished += 1;
                            self.metrics.outcome(endpoint, "PINNED", t.as_secs_f64());
                            Item {
                                key: key.clone(),
                                value: Some(Value::String(pinned.clone())),
                                error: String::new(),
                            }
                        }
                        Some((Err(e), t)) => {
                            finished += 1;
                            self.metrics
                                .outcome(endpoint, e.code.as_str(), t.as_secs_f64());
                            Item {
                                key: key.clone(),
                                value: None,
                                error: format!("{}: {}", e.code.as_str(), e.message),
                            }
                        }
                        None => {
                            self.metrics.outcome(
                                endpoint,
                                ErrorCode::Timeout.as_str(),
                                self.limits.request_deadline.as_secs_f64(),
                            );
                            Item {
                                key: key.clone(),
                                value: None,
                                error: format!(
                                    "{}: {}",
                                    ErrorCode::Timeout.as_str(),
                                    self.timeout_message()
                                ),
                            }
                        }
                    }
                };
                items.push(item);
            }
        } else {
            let results = self
                .run_keys(&distinct, deadline, |v, key, d| async move {
                    let t = std::time::Instant::now();
                    let verdict = v.verify(&key, d).await;
                    (verdict, now_rfc3339(), t.elapsed())
                })
                .await;
            for key in &keys {
                let item = if let Some(err) = malformed.get(key.as_str()) {
                    self.malformed_item(endpoint, key, err)
                } else {
                    let r = index.get(key.as_str()).and_then(|i| results[*i].as_ref());
                    match r {
                        Some((verdict, ts, t)) => {
                            finished += 1;
                            let code = verdict_code(verdict);
                            self.metrics.outcome(endpoint, code, t.as_secs_f64());
                            verify_item(key, verdict, trace, ts)
                        }
                        None => {
                            self.metrics.outcome(
                                endpoint,
                                ErrorCode::Timeout.as_str(),
                                self.limits.request_deadline.as_secs_f64(),
                            );
                            let verdict = ImageVerdict::failed(
                                key,
                                None,
                                VerdictError {
                                    code: ErrorCode::Timeout,
                                    message: self.timeout_message(),
                                },
                            );
                            verify_item(key, &verdict, trace, &now_rfc3339())
                        }
                    }
                };
                items.push(item);
            }
        }
        let system_error = if !distinct.is_empty() && finished == 0 && malformed.is_empty() {
            format!(
                "request deadline of {:?} exceeded before any key finished (limits.requestDeadline)",
                self.limits.request_deadline
            )
        } else {
            String::new()
        };
        let outcome = Outcome {
            keys: keys.len(),
            problem: (!system_error.is_empty()).then(|| system_error.clone()),
        };
        (
            json_response(
                StatusCode::OK,
                &ProviderResponse::new(mutate, items, system_error),
            ),
            outcome,
        )
    }

    /// The answer for a key that is not an image reference: an item error, no value.
    fn malformed_item(&self, endpoint: &'static str, key: &str, error: &str) -> Item {
        self.metrics
            .outcome(endpoint, ErrorCode::InvalidReference.as_str(), 0.0);
        Item {
            key: key.to_owned(),
            value: None,
            error: error.to_owned(),
        }
    }

    fn timeout_message(&self) -> String {
        format!(
            "not finished within the request deadline of {:?} (limits.requestDeadline)",
            self.limits.request_deadline
        )
    }

    async fn admit<B>(&self, req: Request<B>, _trace: &str) -> (Resp, Outcome)
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let deadline = Instant::now() + self.limits.request_deadline;
        let refuse = |status: StatusCode, uid: String, msg: String| {
            (
                json_response(status, &AdmissionReviewOut::deny(uid, 400, msg.clone())),
                Outcome {
                    keys: 0,
                    problem: Some(msg),
                },
            )
        };
        let body = match self.read_body(req).await {
            Ok(b) => b,
            Err(e) => {
                let (status, msg) = self.body_error(e);
                return refuse(status, String::new(), msg);
            }
        };
        let review: AdmissionReviewIn = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    String::new(),
                    format!("malformed AdmissionReview JSON: {e}"),
                )
            }
        };
        let uid = review
            .request
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default();
        if review.api_version.as_deref() != Some(ADMISSION_API_VERSION)
            || review.kind.as_deref() != Some("AdmissionReview")
        {
            return refuse(
                StatusCode::BAD_REQUEST,
                uid,
                format!(
                    "expected apiVersion {ADMISSION_API_VERSION:?} kind \"AdmissionReview\", got {:?} {:?}",
                    review.api_version.unwrap_or_default(),
                    review.kind.unwrap_or_default()
                ),
            );
        }
        let Some(request) = review.request else {
            return refuse(
                StatusCode::BAD_REQUEST,
                uid,
                "AdmissionReview without request".into(),
            );
        };
        if uid.is_empty() {
            return refuse(
                StatusCode::BAD_REQUEST,
                uid,
                "AdmissionReview request without uid".into(),
            );
        }
        let allow = |uid: String, why: &str| {
            tracing::debug!(reason = why, "admitted without verification");
            (
                json_response(StatusCode::OK, &AdmissionReviewOut::allow(uid)),
                Outcome::default(),
            )
        };
        let operation = request.operation.as_deref().unwrap_or("CREATE");
        let Some(object) = request.object.as_ref().filter(|o| !o.is_null()) else {
            return allow(uid, "no object (DELETE or CONNECT)");
        };
        if matches!(operation, "DELETE" | "CONNECT") {
            return allow(uid, "operation does not run images");
        }
        let namespace = request
            .namespace
            .clone()
            .or_else(|| {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_default();
        if !namespace.is_empty() && self.admission.namespace_excluded(&namespace) {
            return allow(uid, "namespace excluded");
        }
        let (group, kind) = match &request.kind {
            Some(gvk) => (gvk.group.clone(), gvk.kind.clone()),
            None => (String::new(), String::new()),
        };
        let spec = match admission::pod_spec(&group, &kind, object) {
            Ok(s) => s,
            Err(msg) => {
                let out = AdmissionReviewOut::deny(uid, 403, format!("signet: {msg}"));
                return (
                    json_response(StatusCode::OK, &out),
                    Outcome {
                        keys: 0,
                        problem: Some(msg),
                    },
                );
            }
        };
        let images: Vec<String> = admission::images(spec)
            .into_iter()
            .filter(|i| !self.admission.image_excluded(i))
            .collect();
        let results = self
            .run_keys(&images, deadline, |v, key, d| async move {
                let t = std::time::Instant::now();
                (v.verify(&key, d).await, t.elapsed())
            })
            .await;
        let mut failures = Vec::new();
        for (image, r) in images.iter().zip(results) {
            let (code, message) = match r {
                Some((verdict, t)) => {
                    let code = verdict_code(&verdict);
                    self.metrics.outcome("admit", code, t.as_secs_f64());
                    if verdict.verified {
                        continue;
                    }
                    match verdict.error {
                        Some(e) => (e.code.as_str(), e.message),
                        None => (
                            ErrorCode::Internal.as_str(),
                            "not verified, no reason given".into(),
                        ),
                    }
                }
                None => {
                    self.metrics.outcome(
                        "admit",
                        ErrorCode::Timeout.as_str(),
                        self.limits.request_deadline.as_secs_f64(),
                    );
                    (
                        ErrorCode::Timeout.as_str(),
                        format!("not finished within {:?}", self.limits.request_deadline),
                    )
                }
            };
            failures.push(format!("{image}: {code}: {message}"));
        }
        let outcome = Outcome {
            keys: images.len(),
            problem: None,
        };
        if failures.is_empty() {
            (
                json_response(StatusCode::OK, &AdmissionReviewOut::allow(uid)),
                outcome,
            )
        } else {
            let what = if kind.is_empty() {
                "object".to_owned()
            } else {
                kind
            };
            let msg = format!(
                "signet: {what} {} denied: {} image(s) failed signature verification: {}",
                object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                failures.len(),
                failures.join("; ")
            );
            tracing::info!(denied = failures.len(), "admission denied");
            (
                json_response(StatusCode::OK, &AdmissionReviewOut::deny(uid, 403, msg)),
                outcome,
            )
        }
    }
}

fn verdict_code(v: &ImageVerdict) -> &'static str {
    match (&v.error, v.verified) {
        (_, true) => "VERIFIED",
        (Some(e), false) => e.code.as_str(),
        (None, false) => ErrorCode::Internal.as_str(),
    }
}

fn verify_item(key: &str, verdict: &ImageVerdict, trace: &str, ts: &str) -> Item {
    if let Some(e) = &verdict.error {
        if e.code == ErrorCode::InvalidReference {
            return Item {
                key: key.to_owned(),
                value: None,
                error: format!("{}: {}", e.code.as_str(), e.message),
            };
        }
    }
    let error = match (&verdict.error, verdict.verified) {
        (Some(e), _) => Some(ValueError {
            code: e.code.as_str(),
            message: &e.message,
        }),
        (None, false) => Some(ValueError {
            code: ErrorCode::Internal.as_str(),
            message: "not verified, no reason given",
        }),
        (None, true) => None,
    };
    let value = VerifyValue {
        verified: verdict.verified,
        is_success: verdict.verified,
        digest: verdict.digest.as_deref(),
        error,
        signatures: &verdict.signatures,
        trace_id: trace,
        timestamp: ts,
    };
    Item {
        key: key.to_owned(),
        value: serde_json::to_value(&value).ok(),
        error: String::new(),
    }
}
