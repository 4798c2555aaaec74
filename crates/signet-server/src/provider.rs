//! Gatekeeper external data: `POST /v1/verify` and `POST /v1/mutate`.
//!
//! Owns the `ProviderRequest` checks, the per-key loop shared by both endpoints (each key
//! answered in request order, duplicates verified once, malformed references answered
//! without the verifier, unfinished keys answering `TIMEOUT`), and the item values. Also the
//! bounded fan-out ([`App::run_keys`]) the webhook uses.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use signet_engine::{ImageVerdict, SignatureSummary, VerdictError};
use signet_notation::ErrorCode;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::app::{App, Handled, Outcome};
use crate::keys::{split_key, ProviderKey};
use crate::protocol::{
    Item, LoggedCheck, ProviderRequest, ProviderResponse, ValueError, VerifyValue,
    PROVIDER_API_VERSION,
};
use crate::routing::{json_response, Endpoint, Refusal};
use crate::verifier::ImageVerifier;

/// Slack left between the verifier's deadline and the server's cut-off, so that the
/// verifier's own (more precise) `TIMEOUT` message normally wins.
const VERIFIER_SLACK: Duration = Duration::from_millis(50);

/// What the verifier said about one distinct key.
enum KeyAnswer {
    /// `/v1/verify`: the verdict and when it was given.
    Verdict(ImageVerdict, String),
    /// `/v1/mutate`: the pinned reference.
    Pinned(Result<String, VerdictError>),
}

impl KeyAnswer {
    /// The `code` label of the per-key metric.
    fn code(&self) -> &'static str {
        match self {
            KeyAnswer::Verdict(v, _) => verdict_code(v),
            KeyAnswer::Pinned(Ok(_)) => "PINNED",
            KeyAnswer::Pinned(Err(e)) => e.code.as_str(),
        }
    }

    /// The answer for a key the server cut off at the request deadline.
    fn timed_out(endpoint: Endpoint, key: &str, message: String) -> KeyAnswer {
        let error = VerdictError {
            code: ErrorCode::Timeout,
            message,
        };
        match endpoint {
            Endpoint::Mutate => KeyAnswer::Pinned(Err(error)),
            _ => KeyAnswer::Verdict(ImageVerdict::failed(key, None, error), now_rfc3339()),
        }
    }

    fn item(&self, key: &str, trace: &str) -> Item {
        match self {
            KeyAnswer::Verdict(verdict, at) => verify_item(key, verdict, trace, at),
            KeyAnswer::Pinned(Ok(pinned)) => Item {
                key: key.to_owned(),
                value: Some(Value::String(pinned.clone())),
                error: String::new(),
            },
            KeyAnswer::Pinned(Err(e)) => Item {
                key: key.to_owned(),
                value: None,
                error: format!("{}: {}", e.code.as_str(), e.message),
            },
        }
    }
}

impl App {
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

    /// Runs `f` for each key, at most `key_concurrency` at once, each cut off at `deadline`
    /// (`None` then). Results come back in key order.
    pub(crate) async fn run_keys<T, F, Fut>(
        &self,
        keys: &[String],
        deadline: Instant,
        f: F,
    ) -> Vec<Option<T>>
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

    /// `/v1/verify` and `/v1/mutate`: one item per key, in request order.
    pub(crate) async fn provider(
        &self,
        endpoint: Endpoint,
        body: &[u8],
        deadline: Instant,
        trace: &str,
    ) -> Handled {
        let label = endpoint.label();
        let mutate = endpoint == Endpoint::Mutate;
        let keys = self.provider_keys(body).map_err(Refusal::bad_request)?;

        // Distinct, well-formed keys go to the verifier; the rest are answered here.
        let mut distinct: Vec<String> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
        let mut malformed: HashMap<&str, String> = HashMap::new();
        for k in &keys {
            if index.contains_key(k.as_str()) || malformed.contains_key(k.as_str()) {
                continue;
            }
            let parsed = split_key(k).and_then(|key| {
                signet_registry::Reference::parse(key.image).map_err(|e| e.to_string())
            });
            match parsed {
                Ok(_) => {
                    index.insert(k, distinct.len());
                    distinct.push(k.clone());
                }
                Err(e) => {
                    malformed.insert(k, format!("{}: {e}", ErrorCode::InvalidReference.as_str()));
                }
            }
        }

        let results = self
            .run_keys(&distinct, deadline, |v, key, d| async move {
                let t = std::time::Instant::now();
                // Checked above; a namespace chooses the trust, and pinning needs none.
                let ProviderKey { namespace, image } = split_key(&key).unwrap_or(ProviderKey {
                    namespace: None,
                    image: &key,
                });
                let answer = if mutate {
                    KeyAnswer::Pinned(v.pin(image, d).await)
                } else {
                    let verdict = v.verify_in(namespace, image, d).await;
                    KeyAnswer::Verdict(verdict, now_rfc3339())
                };
                (answer, t.elapsed())
            })
            .await;

        let mut items = Vec::with_capacity(keys.len());
        let mut finished = 0usize;
        for key in &keys {
            if let Some(err) = malformed.get(key.as_str()) {
                self.metrics
                    .outcome(label, ErrorCode::InvalidReference.as_str(), 0.0);
                items.push(Item {
                    key: key.clone(),
                    value: None,
                    error: err.clone(),
                });
                continue;
            }
            let result = index.get(key.as_str()).and_then(|i| results[*i].as_ref());
            let item = match result {
                Some((answer, took)) => {
                    finished += 1;
                    self.metrics
                        .outcome(label, answer.code(), took.as_secs_f64());
                    answer.item(key, trace)
                }
                None => {
                    self.metrics.outcome(
                        label,
                        ErrorCode::Timeout.as_str(),
                        self.limits.request_deadline.as_secs_f64(),
                    );
                    KeyAnswer::timed_out(endpoint, key, self.timeout_message()).item(key, trace)
                }
            };
            items.push(item);
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
        Ok((
            json_response(
                http::StatusCode::OK,
                &ProviderResponse::new(mutate, items, system_error),
            ),
            outcome,
        ))
    }

    fn timeout_message(&self) -> String {
        format!(
            "not finished within the request deadline of {:?} (limits.requestDeadline)",
            self.limits.request_deadline
        )
    }
}

/// The `code` label of a verdict: `VERIFIED` or its error code.
pub(crate) fn verdict_code(v: &ImageVerdict) -> &'static str {
    match (&v.error, v.verified) {
        (_, true) => "VERIFIED",
        (Some(e), false) => e.code.as_str(),
        (None, false) => ErrorCode::Internal.as_str(),
    }
}

fn now_rfc3339() -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}

/// The signature whose outcome is the verdict's: the first verified one, else the one whose
/// failure is the verdict's error.
fn deciding_signature(verdict: &ImageVerdict) -> Option<&SignatureSummary> {
    if verdict.verified {
        verdict.signatures.iter().find(|s| s.verified)
    } else {
        let error = verdict.error.as_ref()?;
        verdict
            .signatures
            .iter()
            .find(|s| s.error.as_ref() == Some(error))
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
    let logged = deciding_signature(verdict)
        .map(|s| {
            s.logged
                .iter()
                .map(|(check, e)| LoggedCheck {
                    check: *check,
                    code: e.code.as_str(),
                    message: &e.message,
                })
                .collect()
        })
        .unwrap_or_default();
    let value = VerifyValue {
        verified: verdict.verified,
        is_success: verdict.verified,
        digest: verdict.digest.as_deref(),
        error,
        policy: verdict.policy.as_deref(),
        level: verdict.level.as_deref(),
        logged,
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
