//! The `ProviderResponse` bytes, written directly.
//!
//! Gatekeeper asks about the same images again and again, so the answer for a cached
//! verdict is mostly the same bytes again and again. A verify value is rendered once per
//! cached verdict (kept in the verdict's rendering slot, see
//! [`SharedVerdict::rendering`]) as a template with the two per-request fields, `traceID`
//! and `timestamp`, left as fixed-width blanks; answering a key is then copying the key, the
//! template and the two fields of the request. The bytes are exactly what serializing
//! [`ProviderResponse`](crate::protocol::ProviderResponse) with `serde_json` gives (tests
//! compare the two).

use signet_engine::{ImageVerdict, SharedVerdict};
use signet_notation::ErrorCode;

use crate::protocol::{LoggedCheck, ValueError, VerifyValue, PROVIDER_API_VERSION};

/// Length of a trace id (W3C trace-context: 32 hex digits).
pub(crate) const TRACE_ID_LEN: usize = 32;
/// Length of a timestamp as answered: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) const TIMESTAMP_LEN: usize = 20;

const TRACE_BLANK: &str = "________________________________";
const TIMESTAMP_BLANK: &str = "____________________";

/// A verify value with blanks where the request's trace id and timestamp go.
#[derive(Debug)]
pub(crate) struct ValueTemplate {
    bytes: Box<[u8]>,
    /// Where the timestamp's blank starts (inside its string).
    timestamp_at: usize,
    /// Where the trace id's blank starts (inside its string).
    trace_at: usize,
}

impl ValueTemplate {
    /// Renders the verify value of `verdict` (`None`: the verdict is answered by the item's
    /// `error` string, not a value).
    pub(crate) fn render(verdict: &ImageVerdict) -> Option<ValueTemplate> {
        let value = verify_value(verdict, TRACE_BLANK, TIMESTAMP_BLANK)?;
        // Through `serde_json::Value`, as answers always were: its map orders the keys.
        let bytes = serde_json::to_vec(&serde_json::to_value(&value).ok()?).ok()?;
        let find = |key: &str, blank: &str| -> Option<usize> {
            let needle = format!("\"{key}\":\"{blank}\"");
            let at = memchr_find(&bytes, needle.as_bytes())?;
            Some(at + key.len() + 4)
        };
        let timestamp_at = find("timestamp", TIMESTAMP_BLANK)?;
        let trace_at = find("traceID", TRACE_BLANK)?;
        Some(ValueTemplate {
            bytes: bytes.into_boxed_slice(),
            timestamp_at,
            trace_at,
        })
    }

    fn write(&self, out: &mut Vec<u8>, trace: &[u8; TRACE_ID_LEN], timestamp: &[u8]) {
        // The two blanks, in the order they appear.
        let mut blanks = [
            (self.timestamp_at, timestamp),
            (self.trace_at, trace.as_slice()),
        ];
        blanks.sort_by_key(|(at, _)| *at);
        let mut from = 0;
        for (at, value) in blanks {
            out.extend_from_slice(&self.bytes[from..at]);
            out.extend_from_slice(value);
            from = at + value.len();
        }
        out.extend_from_slice(&self.bytes[from..]);
    }
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a verdict answers: a value (its template) or the item's `error` string.
#[derive(Debug)]
pub(crate) enum Rendered {
    Value(ValueTemplate),
    Error(String),
}

impl Rendered {
    fn of(verdict: &ImageVerdict) -> Rendered {
        if let Some(e) = item_error(verdict) {
            return Rendered::Error(e);
        }
        match ValueTemplate::render(verdict) {
            Some(t) => Rendered::Value(t),
            None => Rendered::Error(format!(
                "{}: the answer could not be rendered",
                ErrorCode::Internal.as_str()
            )),
        }
    }
}

/// The item `error` of a verdict answered without a value (a malformed reference).
fn item_error(verdict: &ImageVerdict) -> Option<String> {
    let e = verdict.error.as_ref()?;
    (e.code == ErrorCode::InvalidReference).then(|| format!("{}: {}", e.code.as_str(), e.message))
}

/// The verify value of CONTRACT.md (`None`: answered by an item `error`).
pub(crate) fn verify_value<'a>(
    verdict: &'a ImageVerdict,
    trace: &'a str,
    timestamp: &'a str,
) -> Option<VerifyValue<'a>> {
    if item_error(verdict).is_some() {
        return None;
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
    Some(VerifyValue {
        verified: verdict.verified,
        is_success: verdict.verified,
        digest: verdict.digest.as_deref(),
        error,
        policy: verdict.policy.as_deref(),
        level: verdict.level.as_deref(),
        logged,
        signatures: &verdict.signatures,
        trace_id: trace,
        timestamp,
    })
}

/// The signature whose outcome is the verdict's: the first verified one, else the one whose
/// failure is the verdict's error.
fn deciding_signature(verdict: &ImageVerdict) -> Option<&signet_engine::SignatureSummary> {
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

/// One `ProviderResponse`, written item by item.
#[derive(Debug)]
pub(crate) struct ResponseWriter {
    out: Vec<u8>,
    items: usize,
    trace: [u8; TRACE_ID_LEN],
    timestamp: [u8; TIMESTAMP_LEN],
    /// The trace id or timestamp is not of the fixed width: values are serialized in full.
    unusual: Option<(String, String)>,
}

impl ResponseWriter {
    /// `capacity`: a guess of the answer's size.
    pub(crate) fn new(idempotent: bool, trace: &str, timestamp: &str, capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(b"{\"apiVersion\":\"");
        out.extend_from_slice(PROVIDER_API_VERSION.as_bytes());
        out.extend_from_slice(b"\",\"kind\":\"ProviderResponse\",\"response\":{\"idempotent\":");
        out.extend_from_slice(if idempotent { b"true" } else { b"false" });
        out.extend_from_slice(b",\"items\":[");
        let mut t = [0u8; TRACE_ID_LEN];
        let mut s = [0u8; TIMESTAMP_LEN];
        // A trace id or timestamp that needs no JSON escaping and has the fixed width goes
        // into the blanks; anything else (never seen in practice) is serialized in full.
        let plain = |v: &str| {
            v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        };
        let unusual = if trace.len() == TRACE_ID_LEN
            && timestamp.len() == TIMESTAMP_LEN
            && plain(trace)
            && plain(timestamp)
        {
            t.copy_from_slice(trace.as_bytes());
            s.copy_from_slice(timestamp.as_bytes());
            None
        } else {
            Some((trace.to_owned(), timestamp.to_owned()))
        };
        ResponseWriter {
            out,
            items: 0,
            trace: t,
            timestamp: s,
            unusual,
        }
    }

    fn open_item(&mut self, key: &str) {
        if self.items > 0 {
            self.out.push(b',');
        }
        self.items += 1;
        self.out.extend_from_slice(b"{\"key\":");
        json_string(&mut self.out, key);
    }

    /// An item with an `error` string and no value.
    pub(crate) fn error_item(&mut self, key: &str, error: &str) {
        self.open_item(key);
        if !error.is_empty() {
            self.out.extend_from_slice(b",\"error\":");
            json_string(&mut self.out, error);
        }
        self.out.push(b'}');
    }

    /// An item whose value is a string (`/v1/mutate`).
    pub(crate) fn string_item(&mut self, key: &str, value: &str) {
        self.open_item(key);
        self.out.extend_from_slice(b",\"value\":");
        json_string(&mut self.out, value);
        self.out.push(b'}');
    }

    /// The verify item of a verdict; its rendering is made once and kept with it.
    pub(crate) fn verdict_item(&mut self, key: &str, verdict: &SharedVerdict) {
        if let Some((trace, timestamp)) = &self.unusual {
            let (trace, timestamp) = (trace.clone(), timestamp.clone());
            return self.verdict_item_in_full(key, verdict.verdict(), &trace, &timestamp);
        }
        match verdict.rendering(Rendered::of) {
            Some(Rendered::Value(template)) => {
                self.open_item(key);
                self.out.extend_from_slice(b",\"value\":");
                template.write(&mut self.out, &self.trace, &self.timestamp);
                self.out.push(b'}');
            }
            Some(Rendered::Error(e)) => {
                let e = e.clone();
                self.error_item(key, &e);
            }
            // The slot holds someone else's rendering: render this one in full.
            None => {
                let trace = String::from_utf8_lossy(&self.trace).into_owned();
                let timestamp = String::from_utf8_lossy(&self.timestamp).into_owned();
                self.verdict_item_in_full(key, verdict.verdict(), &trace, &timestamp);
            }
        }
    }

    fn verdict_item_in_full(
        &mut self,
        key: &str,
        verdict: &ImageVerdict,
        trace: &str,
        timestamp: &str,
    ) {
        match verify_value(verdict, trace, timestamp) {
            Some(value) => {
                let value = serde_json::to_value(&value)
                    .and_then(|v| serde_json::to_vec(&v))
                    .unwrap_or_else(|_| b"null".to_vec());
                self.open_item(key);
                self.out.extend_from_slice(b",\"value\":");
                self.out.extend_from_slice(&value);
                self.out.push(b'}');
            }
            None => {
                let e = item_error(verdict).unwrap_or_default();
                self.error_item(key, &e);
            }
        }
    }

    /// The bytes of the response.
    pub(crate) fn finish(mut self, system_error: &str) -> Vec<u8> {
        self.out.push(b']');
        if !system_error.is_empty() {
            self.out.extend_from_slice(b",\"systemError\":");
            json_string(&mut self.out, system_error);
        }
        self.out.extend_from_slice(b"}}");
        self.out
    }
}

/// `s` as a JSON string, escaped as `serde_json` escapes it.
fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Now, as answers carry it (`YYYY-MM-DDTHH:MM:SSZ`, UTC): one clock read per request.
pub(crate) fn now_rfc3339() -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::{Item, ProviderResponse};
    use signet_engine::{SignatureFormat, SignatureSummary, VerdictError};
    use signet_notation::verifier::Check;

    fn signature(verified: bool, error: Option<VerdictError>) -> SignatureSummary {
        SignatureSummary {
            format: SignatureFormat::Notation,
            digest: "sha256:5c3f".into(),
            manifest: Some("sha256:abcd".into()),
            media_type: "application/cose".into(),
            verified,
            signer: Some("CN=signer \"quoted\", O=Ünïcode\n".into()),
            error,
            failed_check: None,
            logged: vec![(
                Check::Expiry,
                VerdictError {
                    code: ErrorCode::SignatureExpired,
                    message: "expired <at> \u{1}".into(),
                },
            )],
        }
    }

    fn verdicts() -> Vec<ImageVerdict> {
        let err = |code, m: &str| VerdictError {
            code,
            message: m.into(),
        };
        let mut verified = ImageVerdict::failed(
            "r.io/a:1",
            Some("sha256:ab".into()),
            err(ErrorCode::Internal, "x"),
        );
        verified.verified = true;
        verified.error = None;
        verified.policy = Some("p".into());
        verified.level = Some("audit".into());
        verified.signatures = vec![
            signature(false, Some(err(ErrorCode::UntrustedSigner, "no"))),
            signature(true, None),
        ];
        let mut failed = verified.clone();
        failed.verified = false;
        failed.error = Some(err(ErrorCode::UntrustedSigner, "no"));
        let mut silent = failed.clone();
        silent.error = None;
        vec![
            verified,
            failed,
            silent,
            ImageVerdict::failed("x", None, err(ErrorCode::InvalidReference, "bad \"ref\"")),
            ImageVerdict::failed("x", None, err(ErrorCode::Timeout, "late")),
        ]
    }

    /// What the provider answered before answers were written directly.
    fn reference_answer(
        verdicts: &[ImageVerdict],
        keys: &[&str],
        trace: &str,
        ts: &str,
    ) -> Vec<u8> {
        let items = verdicts
            .iter()
            .zip(keys)
            .map(|(v, k)| match verify_value(v, trace, ts) {
                Some(value) => Item {
                    key: (*k).to_owned(),
                    value: serde_json::to_value(&value).ok(),
                    error: String::new(),
                },
                None => Item {
                    key: (*k).to_owned(),
                    value: None,
                    error: item_error(v).unwrap(),
                },
            })
            .collect();
        serde_json::to_vec(&ProviderResponse::new(false, items, "sys \"err\"".into())).unwrap()
    }

    #[test]
    fn written_answers_are_the_serialized_ones_byte_for_byte() {
        let verdicts = verdicts();
        let keys = ["a", "b \"q\" \\", "ç/ü:1", "\u{7f}\u{0}", "[ns]r.io/a:1"];
        for (trace, ts) in [
            ("0123456789abcdef0123456789abcdef", "2026-12-05T17:00:00Z"),
            ("short", "2026-12-05T17:00:00Z"),
        ] {
            let shared: Vec<SharedVerdict> =
                verdicts.iter().cloned().map(SharedVerdict::new).collect();
            // Twice: the second answer comes from the kept renderings.
            for _ in 0..2 {
                let mut w = ResponseWriter::new(false, trace, ts, 0);
                for (v, k) in shared.iter().zip(keys) {
                    w.verdict_item(k, v);
                }
                let written = w.finish("sys \"err\"");
                let expected = reference_answer(&verdicts, &keys, trace, ts);
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(expected).unwrap()
                );
            }
        }
    }

    #[test]
    fn error_and_string_items_are_the_serialized_ones() {
        let mut w = ResponseWriter::new(true, "t", "s", 0);
        w.string_item("k\"", "r.io/a:1@sha256:00");
        w.error_item("k2", "TIMEOUT: late");
        let expected = serde_json::to_vec(&ProviderResponse::new(
            true,
            vec![
                Item {
                    key: "k\"".into(),
                    value: Some(serde_json::Value::String("r.io/a:1@sha256:00".into())),
                    error: String::new(),
                },
                Item {
                    key: "k2".into(),
                    value: None,
                    error: "TIMEOUT: late".into(),
                },
            ],
            String::new(),
        ))
        .unwrap();
        assert_eq!(w.finish(""), expected);
    }

    #[test]
    fn timestamps_have_the_fixed_width() {
        assert_eq!(now_rfc3339().len(), TIMESTAMP_LEN);
    }
}
