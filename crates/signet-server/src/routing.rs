//! The routing core: which endpoints exist and what method each takes ([`Endpoint`]), and
//! the one type for a refused request ([`Refusal`]) with the one place that turns it into
//! an HTTP answer in the shape the caller understands (a Gatekeeper `ProviderResponse`
//! with a `systemError`, a Kubernetes `AdmissionReview` denial, or `{"error": …}`).

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::protocol::{AdmissionReviewOut, ProviderResponse};

/// Every answer of the application.
pub(crate) type Resp = Response<Full<Bytes>>;

/// The endpoints served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/verify`: Gatekeeper external data, one verdict per key.
    Verify,
    /// `POST /v1/mutate`: Gatekeeper external data, each key pinned to its digest.
    Mutate,
    /// `POST /v1/admit`: a Kubernetes validating webhook.
    Admit,
    Healthz,
    Readyz,
    Metrics,
}

impl Endpoint {
    pub(crate) fn from_path(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/v1/verify" => Endpoint::Verify,
            "/v1/mutate" => Endpoint::Mutate,
            "/v1/admit" => Endpoint::Admit,
            "/healthz" => Endpoint::Healthz,
            "/readyz" => Endpoint::Readyz,
            "/metrics" => Endpoint::Metrics,
            _ => return None,
        })
    }

    /// The `endpoint` label of metrics and logs.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Endpoint::Verify => "verify",
            Endpoint::Mutate => "mutate",
            Endpoint::Admit => "admit",
            Endpoint::Healthz => "healthz",
            Endpoint::Readyz => "readyz",
            Endpoint::Metrics => "metrics",
        }
    }

    /// The protocol endpoints (TLS listener only, `POST`); the others are probes (`GET`).
    pub(crate) fn is_protocol(self) -> bool {
        matches!(self, Endpoint::Verify | Endpoint::Mutate | Endpoint::Admit)
    }

    fn method(self) -> Method {
        if self.is_protocol() {
            Method::POST
        } else {
            Method::GET
        }
    }

    /// Whether `method` is accepted (`HEAD` wherever `GET` is).
    pub(crate) fn accepts(self, method: &Method) -> Result<(), Refusal> {
        let want = self.method();
        if *method == want || (want == Method::GET && *method == Method::HEAD) {
            return Ok(());
        }
        let mut r = Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} takes {want}, not {method}", self.path()),
        );
        r.allow = Some(want);
        Err(r)
    }

    fn path(self) -> &'static str {
        match self {
            Endpoint::Verify => "/v1/verify",
            Endpoint::Mutate => "/v1/mutate",
            Endpoint::Admit => "/v1/admit",
            Endpoint::Healthz => "/healthz",
            Endpoint::Readyz => "/readyz",
            Endpoint::Metrics => "/metrics",
        }
    }
}

/// A request refused as a whole: the HTTP status and why, in words for the caller.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// The `AdmissionReview` uid once known: a webhook answer must echo it.
    uid: String,
    /// For 405: the method to use.
    allow: Option<Method>,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            uid: String::new(),
            allow: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn with_uid(mut self, uid: &str) -> Refusal {
        uid.clone_into(&mut self.uid);
        self
    }

    /// The answer, shaped for the endpoint's client (`None`: no such endpoint).
    pub(crate) fn into_response(self, endpoint: Option<Endpoint>) -> Resp {
        let mut r = match endpoint {
            Some(Endpoint::Verify) => json_response(
                self.status,
                &ProviderResponse::system_error(false, self.message),
            ),
            Some(Endpoint::Mutate) => json_response(
                self.status,
                &ProviderResponse::system_error(true, self.message),
            ),
            Some(Endpoint::Admit) => json_response(
                self.status,
                &AdmissionReviewOut::deny(self.uid, 400, self.message),
            ),
            _ => json_response(self.status, &serde_json::json!({ "error": self.message })),
        };
        if let Some(v) = self
            .allow
            .and_then(|m| header::HeaderValue::from_str(m.as_str()).ok())
        {
            r.headers_mut().insert(header::ALLOW, v);
        }
        r
    }
}

pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes_response(status, body)
}

/// An answer of JSON bytes already written.
pub(crate) fn bytes_response(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A new trace id (32 hex digits, W3C trace-context sized), or the one of an incoming
/// `traceparent` header.
pub(crate) fn trace_id<B>(req: &Request<B>) -> String {
    if let Some(tp) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = tp.split('-');
        if let (Some(_), Some(id), Some(_), Some(_), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            if id.len() == 32
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && id != "00000000000000000000000000000000"
            {
                return id.to_ascii_lowercase();
            }
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}
