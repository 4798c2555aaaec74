//! Gatekeeper external data: `POST /v1/verify` and `POST /v1/mutate`.
//!
//! Owns the `ProviderRequest` checks, the per-key loop shared by both endpoints (each key
//! answered in request order, duplicates verified once, malformed references answered
//! without the verifier, unfinished keys answering `TIMEOUT`), and the item values. Also the
//! bounded fan-out ([`App::run_keys`]) the webhook uses.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use serde_json::Value;
use signet_engine::{ImageVerdict, SharedVerdict, VerdictError};
use signet_notation::ErrorCode;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::answer::{now_rfc3339, ResponseWriter};
use crate::app::{App, Handled, Outcome};
use crate::keys::{split_key, ProviderKey};
use crate::protocol::{ProviderRequest, PROVIDER_API_VERSION};
use crate::routing::{bytes_response, Endpoint, Refusal};
use crate::verifier::ImageVerifier;

/// Slack left between the verifier's deadline and the server's cut-off, so that the
/// verifier's own (more precise) `TIMEOUT` message normally wins.
const VERIFIER_SLACK: Duration = Duration::from_millis(50);

/// What the verifier said about one distinct key.
enum KeyAnswer {
    /// `/v1/verify`: the verdict (shared with the engine's cache when it came from there).
    Verdict(Arc<SharedVerdict>),
    /// `/v1/mutate`: the pinned reference.
    Pinned(Result<String, VerdictError>),
}

impl KeyAnswer {
    /// The `code` label of the per-key metric.
    fn code(&self) -> &'static str {
        match self {
            KeyAnswer::Verdict(v) => verdict_code(v.verdict()),
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
            _ => KeyAnswer::Verdict(Arc::new(SharedVerdict::new(ImageVerdict::failed(
                key, None, error,
            )))),
        }
    }

    fn write(&self, out: &mut ResponseWriter, key: &str) {
        match self {
            KeyAnswer::Verdict(verdict) => out.verdict_item(key, verdict),
            KeyAnswer::Pinned(Ok(pinned)) => out.string_item(key, pinned),
            KeyAnswer::Pinned(Err(e)) => {
                out.error_item(key, &format!("{}: {}", e.code.as_str(), e.message))
            }
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
        let mut out: Vec<Option<T>> = (0..keys.len()).map(|_| None).collect();
        let mut set = JoinSet::new();
        for (i, key) in keys.iter().enumerate() {
            let mut fut = Box::pin(f(self.verifier.clone(), key.clone(), inner_deadline));
            // A key the verifier answers from its cache is ready at the first poll: answered
            // here, it costs no task, no timer and no wait. Any other goes on in a task of its
            // own (moving a started future to another task is fine: it wakes the new one).
            let permit = match sem.clone().try_acquire_owned() {
                Ok(permit) => {
                    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
                    if let Poll::Ready(r) = first {
                        out[i] = Some(r);
                        continue;
                    }
                    Some(permit)
                }
                Err(_) => None,
            };
            let sem = sem.clone();
            set.spawn(
                async move {
                    let r = tokio::time::timeout_at(deadline, async move {
                        let _permit = match permit {
                            Some(p) => Some(p),
                            None => sem.acquire_owned().await.ok(),
                        };
                        fut.await
                    })
                    .await
                    .ok();
                    (i, r)
                }
                .in_current_span(),
            );
        }
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
                    KeyAnswer::Verdict(v.verify_shared_in(namespace, image, d).await)
                };
                (answer, t.elapsed())
            })
            .await;

        // One clock read per request: every verdict of the answer was reached by now.
        let timestamp = now_rfc3339();
        let mut out = ResponseWriter::new(mutate, trace, &timestamp, 128 + 1024 * keys.len());
        let mut finished = 0usize;
        let mut timed_out = None;
        let mut codes: Vec<(&'static str, u64)> = Vec::new();
        let mut seconds: Vec<f64> = Vec::with_capacity(keys.len());
        let mut count = |code: &'static str, took: f64| {
            match codes.iter_mut().find(|(c, _)| *c == code) {
                Some((_, n)) => *n += 1,
                None => codes.push((code, 1)),
            }
            seconds.push(took);
        };
        for key in &keys {
            if let Some(err) = malformed.get(key.as_str()) {
                count(ErrorCode::InvalidReference.as_str(), 0.0);
                out.error_item(key, err);
                continue;
            }
            let result = index.get(key.as_str()).and_then(|i| results[*i].as_ref());
            match result {
                Some((answer, took)) => {
                    finished += 1;
                    count(answer.code(), took.as_secs_f64());
                    answer.write(&mut out, key);
                }
                None => {
                    count(
                        ErrorCode::Timeout.as_str(),
                        self.limits.request_deadline.as_secs_f64(),
                    );
                    let message = timed_out.get_or_insert_with(|| self.timeout_message());
                    KeyAnswer::timed_out(endpoint, key, message.clone()).write(&mut out, key);
                }
            }
        }
        self.metrics.outcomes(label, &codes, &seconds);
        let system_error = if !distinct.is_empty() && finished == 0 && malformed.is_empty() {
            format!(
                "request deadline of {:?} exceeded before any key finished (limits.requestDeadline)",
                self.limits.request_deadline
            )
        } else {
            String::new()
        };
        let body = out.finish(&system_error);
        let outcome = Outcome {
            keys: keys.len(),
            problem: (!system_error.is_empty()).then_some(system_error),
        };
        Ok((bytes_response(http::StatusCode::OK, body), outcome))
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
