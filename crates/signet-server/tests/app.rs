//! The HTTP application against a deterministic in-process verifier.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use signet_engine::{EngineStats, ImageVerdict, LatencyHistogram, SignatureSummary, VerdictError};
use signet_notation::verifier::Check;
use signet_notation::ErrorCode;
use signet_server::{AdmissionSettings, App, BoxFuture, ImageVerifier, Limits, TrustedCertificate};
use tokio::time::Instant;

/// `…signed…` verifies, `…slow…` never finishes, `…unsigned…` has no signature,
/// `…engine-bad-ref…` is refused by the verifier as a reference.
#[derive(Debug, Default)]
struct Fake {
    not_ready: AtomicBool,
}

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

impl ImageVerifier for Fake {
    fn verify<'a>(&'a self, image: &'a str, _deadline: Instant) -> BoxFuture<'a, ImageVerdict> {
        Box::pin(async move {
            if image.contains("slow") {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            let (verified, error) = if image.contains("unsigned") {
                (false, Some((ErrorCode::SignatureNotFound, "no signature")))
            } else if image.contains("engine-bad-ref") {
                (false, Some((ErrorCode::InvalidReference, "bad")))
            } else if image.contains("signed") {
                (true, None)
            } else {
                (false, Some((ErrorCode::UntrustedSigner, "who?")))
            };
            // `…audit…`: verified at level audit, with an expiry and a revocation failure
            // only logged.
            let audit = image.contains("audit");
            let logged = if audit {
                vec![
                    (
                        Check::Expiry,
                        VerdictError {
                            code: ErrorCode::SignatureExpired,
                            message: "expired yesterday".into(),
                        },
                    ),
                    (
                        Check::Revocation,
                        VerdictError {
                            code: ErrorCode::RevocationUnknown,
                            message: "no answer".into(),
                        },
                    ),
                ]
            } else {
                Vec::new()
            };
            ImageVerdict {
                reference: image.into(),
                digest: Some(DIGEST.into()),
                verified,
                policy: Some("p".into()),
                level: Some(if audit { "audit" } else { "strict" }.into()),
                signatures: vec![SignatureSummary {
                    format: Default::default(),
                    digest: "sha256:ff".into(),
                    manifest: None,
                    media_type: "application/cose".into(),
                    verified,
                    signer: Some("CN=test".into()),
                    error: None,
                    failed_check: None,
                    logged,
                }],
                error: error.map(|(code, m)| VerdictError {
                    code,
                    message: m.into(),
                }),
                note: None,
            }
        })
    }

    fn pin<'a>(
        &'a self,
        image: &'a str,
        _deadline: Instant,
    ) -> BoxFuture<'a, Result<String, VerdictError>> {
        Box::pin(async move {
            if image.contains("slow") {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            if image.contains("missing") {
                return Err(VerdictError {
                    code: ErrorCode::ArtifactNotFound,
                    message: "no such tag".into(),
                });
            }
            Ok(format!("{image}@{DIGEST}"))
        })
    }

    fn is_ready(&self) -> bool {
        !self.not_ready.load(Ordering::SeqCst)
    }

    fn stats(&self) -> Option<EngineStats> {
        let mut latency = std::collections::BTreeMap::new();
        let mut buckets = vec![3; signet_engine::REGISTRY_LATENCY_BUCKETS.len()];
        buckets[0] = 1;
        latency.insert(
            "resolve",
            LatencyHistogram {
                buckets,
                count: 3,
                sum_seconds: 0.02,
            },
        );
        Some(EngineStats {
            verified: 7,
            failed: [(ErrorCode::Timeout, 2)].into_iter().collect(),
            verdict_cache_hits: 5,
            in_flight: 1,
            registry_latency: latency,
            ..EngineStats::default()
        })
    }

    fn trusted_certificates(&self) -> Vec<TrustedCertificate> {
        vec![TrustedCertificate {
            store_type: "ca",
            store: "acme".into(),
            subject: "CN=Acme Root".into(),
            not_after_unix: 1_900_000_000,
            namespace: None,
        }]
    }
}

fn app_with(limits: Limits, admission: AdmissionSettings) -> (App, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = App::new(fake.clone(), limits, admission, Arc::default());
    (app, fake)
}

fn app() -> App {
    app_with(
        Limits {
            request_deadline: Duration::from_millis(400),
            max_keys: 10,
            max_body_bytes: 4096,
            ..Limits::default()
        },
        AdmissionSettings {
            exclude_namespaces: vec!["kube-*".into()],
            exclude_images: vec!["registry.k8s.io/*".into()],
        },
    )
    .0
}

async fn call(app: &App, method: &str, path: &str, body: impl Into<Bytes>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(body.into()))
        .unwrap();
    let resp = app.handle(req).await;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

fn provider_request(keys: &[&str]) -> String {
    json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
           "request": {"keys": keys}})
    .to_string()
}

#[tokio::test]
async fn verify_echoes_every_key_with_the_contract_value() {
    let app = app();
    let keys = [
        "reg.io/app:signed",
        "reg.io/app:unsigned",
        "reg.io/app:signed",
        "Not A Reference!",
        "reg.io/x:engine-bad-ref",
    ];
    let (status, v) = call(&app, "POST", "/v1/verify", provider_request(&keys)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["apiVersion"], "externaldata.gatekeeper.sh/v1beta1");
    assert_eq!(v["kind"], "ProviderResponse");
    assert!(v["response"].get("systemError").is_none(), "{v}");
    let items = v["response"]["items"].as_array().unwrap();
    assert_eq!(items.len(), keys.len());
    for (item, key) in items.iter().zip(keys) {
        assert_eq!(item["key"], key);
    }
    let ok = &items[0]["value"];
    assert_eq!(ok["verified"], true);
    assert_eq!(ok["isSuccess"], true);
    assert_eq!(ok["digest"], DIGEST);
    assert!(ok["error"].is_null());
    assert_eq!(ok["signatures"][0]["mediaType"], "application/cose");
    assert_eq!(ok["traceID"].as_str().unwrap().len(), 32);
    assert!(ok["timestamp"].as_str().unwrap().ends_with('Z'));
    let bad = &items[1]["value"];
    assert_eq!(bad["verified"], false);
    assert_eq!(bad["isSuccess"], false);
    assert_eq!(bad["error"]["code"], "SIGNATURE_NOT_FOUND");
    assert_eq!(bad["traceID"], ok["traceID"]);
    assert_eq!(items[2]["value"], items[0]["value"]);
    // Malformed references: an item error, no value (caught here, or by the verifier).
    for i in [3, 4] {
        assert!(items[i].get("value").is_none(), "{}", items[i]);
        assert!(
            items[i]["error"]
                .as_str()
                .unwrap()
                .starts_with("INVALID_REFERENCE"),
            "{}",
            items[i]
        );
    }
}

#[tokio::test]
async fn verify_values_carry_the_policy_level_and_logged_checks() {
    let app = app();
    let keys = ["reg.io/app:signed", "reg.io/app:signed-audit"];
    let (status, v) = call(&app, "POST", "/v1/verify", provider_request(&keys)).await;
    assert_eq!(status, StatusCode::OK);
    let strict = &v["response"]["items"][0]["value"];
    assert_eq!(strict["policy"], "p");
    assert_eq!(strict["level"], "strict");
    assert_eq!(strict["logged"], json!([]));
    let audit = &v["response"]["items"][1]["value"];
    assert_eq!(audit["verified"], true);
    assert_eq!(audit["level"], "audit");
    assert_eq!(
        audit["logged"],
        json!([
            {"check": "expiry", "code": "SIGNATURE_EXPIRED", "message": "expired yesterday"},
            {"check": "revocation", "code": "REVOCATION_UNKNOWN", "message": "no answer"},
        ])
    );
    // Existing fields stay.
    for field in [
        "verified",
        "isSuccess",
        "digest",
        "error",
        "signatures",
        "traceID",
        "timestamp",
    ] {
        assert!(audit.get(field).is_some(), "{field} missing: {audit}");
    }
}

#[tokio::test]
async fn trace_id_follows_traceparent() {
    let app = app();
    let req = Request::builder()
        .method("POST")
        .uri("/v1/verify")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Full::new(Bytes::from(provider_request(&["a/b:signed"]))))
        .unwrap();
    let resp = app.handle(req).await;
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        v["response"]["items"][0]["value"]["traceID"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[tokio::test]
async fn unfinished_keys_answer_timeout_and_finished_keys_keep_their_answer() {
    let app = app();
    let started = std::time::Instant::now();
    let (status, v) = call(
        &app,
        "POST",
        "/v1/verify",
        provider_request(&["r.io/a:signed", "r.io/a:slow", "r.io/b:unsigned"]),
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(took >= Duration::from_millis(350), "{took:?}");
    assert_eq!(status, StatusCode::OK);
    assert!(v["response"].get("systemError").is_none(), "{v}");
    let items = &v["response"]["items"];
    assert_eq!(items[0]["value"]["verified"], true);
    assert_eq!(items[1]["value"]["error"]["code"], "TIMEOUT");
    assert_eq!(items[1]["value"]["verified"], false);
    assert_eq!(items[2]["value"]["error"]["code"], "SIGNATURE_NOT_FOUND");
}

#[tokio::test]
async fn nothing_finished_by_the_deadline_is_a_system_error() {
    let app = app();
    let (status, v) = call(
        &app,
        "POST",
        "/v1/verify",
        provider_request(&["r.io/a:slow", "r.io/b:slow"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["response"]["systemError"]
        .as_str()
        .unwrap()
        .contains("deadline"));
    assert_eq!(
        v["response"]["items"][1]["value"]["error"]["code"],
        "TIMEOUT"
    );
}

#[tokio::test]
async fn malformed_requests_get_a_system_error() {
    let app = app();
    let cases = [
        ("{not json", "malformed ProviderRequest JSON"),
        ("[]", "malformed ProviderRequest JSON"),
        (
            r#"{"apiVersion":"externaldata.gatekeeper.sh/v1alpha1","kind":"ProviderRequest","request":{"keys":[]}}"#,
            "apiVersion",
        ),
        (
            r#"{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderResponse","request":{"keys":[]}}"#,
            "kind",
        ),
        (
            r#"{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest"}"#,
            "request missing",
        ),
        (
            r#"{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{}}"#,
            "request.keys missing",
        ),
        (
            r#"{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["a",7]}}"#,
            "request.keys[1] is not a string",
        ),
    ];
    for path in ["/v1/verify", "/v1/mutate"] {
        for (body, expect) in cases {
            let (status, v) = call(&app, "POST", path, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(v["kind"], "ProviderResponse");
            let se = v["response"]["systemError"].as_str().unwrap();
            assert!(se.contains(expect), "{body}: {se}");
            assert_eq!(v["response"]["items"], json!([]));
        }
    }
    // An empty key list is a valid (empty) request.
    let (status, v) = call(&app, "POST", "/v1/verify", provider_request(&[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["response"]["items"], json!([]));
}

#[tokio::test]
async fn too_many_keys_and_oversized_bodies_are_refused() {
    let app = app();
    let keys: Vec<String> = (0..11).map(|i| format!("r.io/a:signed{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (status, v) = call(&app, "POST", "/v1/verify", provider_request(&refs)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["response"]["systemError"]
        .as_str()
        .unwrap()
        .contains("too many keys: 11"));

    let big = provider_request(&[&"x".repeat(5000)]);
    let (status, v) = call(&app, "POST", "/v1/verify", big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["response"]["systemError"]
        .as_str()
        .unwrap()
        .contains("larger than 4096"));
    let (status, v) = call(&app, "POST", "/v1/admit", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["response"]["allowed"], false);
}

#[tokio::test]
async fn namespaced_keys_are_echoed_and_malformed_ones_refused_per_key() {
    let app = app();
    let keys = [
        "[team-a]reg.io/app:signed",
        "[team-b]reg.io/app:unsigned",
        "[team-a]reg.io/app:signed",
        "[Team-A]reg.io/app:signed",
        "[team-a",
        "[team-a]",
        "[a][b]reg.io/app:signed",
        "[team-a]Not A Reference!",
    ];
    let (status, v) = call(&app, "POST", "/v1/verify", provider_request(&keys)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["response"].get("systemError").is_none(), "{v}");
    let items = v["response"]["items"].as_array().unwrap();
    assert_eq!(items.len(), keys.len());
    for (item, key) in items.iter().zip(keys) {
        assert_eq!(item["key"], key, "the key is echoed exactly");
    }
    assert_eq!(items[0]["value"]["verified"], true, "{v}");
    assert_eq!(items[1]["value"]["error"]["code"], "SIGNATURE_NOT_FOUND");
    for (i, needle) in [
        (3, "\"Team-A\" is not a namespace name"),
        (4, "does not close it"),
        (5, "but no image"),
        (6, "more than one namespace"),
        (7, "INVALID_REFERENCE"),
    ] {
        let e = items[i]["error"].as_str().unwrap();
        assert!(items[i].get("value").is_none(), "{}", items[i]);
        assert!(e.starts_with("INVALID_REFERENCE: "), "{e}");
        assert!(e.contains(needle), "{needle} not in {e}");
    }

    // Mutation: the namespace is stripped, the value is the pinned image alone.
    let (_, v) = call(
        &app,
        "POST",
        "/v1/mutate",
        provider_request(&["[team-a]r.io/a:v1", "[team-a"]),
    )
    .await;
    let items = &v["response"]["items"];
    assert_eq!(items[0]["key"], "[team-a]r.io/a:v1");
    assert_eq!(items[0]["value"], format!("r.io/a:v1@{DIGEST}"));
    assert!(items[1]["error"]
        .as_str()
        .unwrap()
        .starts_with("INVALID_REFERENCE: "));
}

#[tokio::test]
async fn mutate_pins_and_reports_failures_per_key() {
    let app = app();
    let (status, v) = call(
        &app,
        "POST",
        "/v1/mutate",
        provider_request(&["r.io/a:v1", "r.io/a:missing", "bad ref!", "r.io/a:slow"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["response"]["idempotent"], true);
    let items = &v["response"]["items"];
    assert_eq!(items[0]["value"], format!("r.io/a:v1@{DIGEST}"));
    assert!(items[1].get("value").is_none());
    assert!(items[1]["error"]
        .as_str()
        .unwrap()
        .starts_with("ARTIFACT_NOT_FOUND: "));
    assert!(items[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("INVALID_REFERENCE"));
    assert!(items[3]["error"].as_str().unwrap().starts_with("TIMEOUT"));
}

fn pod_spec(images: &[(&str, &str)]) -> Value {
    let mut spec = json!({});
    for (field, image) in images {
        let list = spec
            .as_object_mut()
            .unwrap()
            .entry(field.to_string())
            .or_insert(json!([]));
        list.as_array_mut()
            .unwrap()
            .push(json!({"name": "c", "image": image}));
    }
    spec
}

fn workload(group: &str, kind: &str, spec: Value) -> Value {
    let object = match kind {
        "Pod" => json!({"metadata": {"name": "w"}, "spec": spec}),
        "CronJob" => {
            json!({"metadata": {"name": "w"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}})
        }
        _ => json!({"metadata": {"name": "w"}, "spec": {"template": {"spec": spec}}}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "request": {"uid": "uid-1234", "kind": {"group": group, "version": "v1", "kind": kind},
                       "namespace": "team", "operation": "CREATE", "object": object}})
}

const KINDS: [(&str, &str); 7] = [
    ("", "Pod"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
];

#[tokio::test]
async fn admit_denies_unverified_images_of_every_workload_kind() {
    let app = app();
    for (group, kind) in KINDS {
        for field in ["containers", "initContainers", "ephemeralContainers"] {
            let spec = pod_spec(&[
                ("containers", "r.io/app:signed"),
                (field, "r.io/x:unsigned"),
            ]);
            let (status, v) = call(
                &app,
                "POST",
                "/v1/admit",
                workload(group, kind, spec).to_string(),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(v["kind"], "AdmissionReview");
            assert_eq!(v["response"]["uid"], "uid-1234");
            assert_eq!(v["response"]["allowed"], false, "{kind} {field}: {v}");
            assert_eq!(v["response"]["status"]["code"], 403);
            let msg = v["response"]["status"]["message"].as_str().unwrap();
            assert!(
                msg.contains("r.io/x:unsigned: SIGNATURE_NOT_FOUND: no signature"),
                "{msg}"
            );
            assert!(!msg.contains("r.io/app:signed"), "{msg}");
        }
        let spec = pod_spec(&[
            ("containers", "r.io/app:signed"),
            ("initContainers", "r.io/init:signed"),
        ]);
        let (_, v) = call(
            &app,
            "POST",
            "/v1/admit",
            workload(group, kind, spec).to_string(),
        )
        .await;
        assert_eq!(v["response"]["allowed"], true, "{kind}: {v}");
        assert_eq!(v["response"]["uid"], "uid-1234");
    }
}

#[tokio::test]
async fn admit_exclusions_timeouts_and_fail_closed() {
    let app = app();
    // Excluded image: not verified.
    let spec = pod_spec(&[
        ("containers", "registry.k8s.io/pause:3.9"),
        ("containers", "r.io/a:signed"),
    ]);
    let (_, v) = call(
        &app,
        "POST",
        "/v1/admit",
        workload("", "Pod", spec).to_string(),
    )
    .await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
    // Excluded namespace.
    let spec = pod_spec(&[("containers", "r.io/x:unsigned")]);
    let mut review = workload("", "Pod", spec.clone());
    review["request"]["namespace"] = json!("kube-system");
    let (_, v) = call(&app, "POST", "/v1/admit", review.to_string()).await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
    // DELETE: nothing runs.
    let mut review = workload("", "Pod", spec);
    review["request"]["operation"] = json!("DELETE");
    review["request"]["object"] = Value::Null;
    let (_, v) = call(&app, "POST", "/v1/admit", review.to_string()).await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
    // CREATE or UPDATE without an object (null or absent): nothing can be checked, denied,
    // with HTTP 200 so that the API server applies the denial rather than its failurePolicy.
    for operation in ["CREATE", "UPDATE"] {
        for object in [Some(Value::Null), None] {
            let mut review = workload("", "Pod", pod_spec(&[("containers", "r.io/a:signed")]));
            review["request"]["operation"] = json!(operation);
            match &object {
                Some(o) => review["request"]["object"] = o.clone(),
                None => {
                    review["request"].as_object_mut().unwrap().remove("object");
                }
            }
            let (status, v) = call(&app, "POST", "/v1/admit", review.to_string()).await;
            assert_eq!(status, StatusCode::OK, "{operation} {object:?}: {v}");
            assert_eq!(v["response"]["uid"], "uid-1234");
            assert_eq!(
                v["response"]["allowed"], false,
                "{operation} {object:?}: {v}"
            );
            assert!(v["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("without an object"));
        }
    }
    // Timeouts deny.
    let spec = pod_spec(&[("containers", "r.io/a:slow")]);
    let (_, v) = call(
        &app,
        "POST",
        "/v1/admit",
        workload("apps", "Deployment", spec).to_string(),
    )
    .await;
    assert_eq!(v["response"]["allowed"], false);
    assert!(v["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("TIMEOUT"));
    // Unknown kind: fail closed.
    let (_, v) = call(
        &app,
        "POST",
        "/v1/admit",
        workload("", "ConfigMap", json!({})).to_string(),
    )
    .await;
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["uid"], "uid-1234");
    // Malformed: denied, uid echoed when readable.
    let (status, v) = call(&app, "POST", "/v1/admit", "{oops").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["response"]["allowed"], false);
    let (status, v) = call(
        &app,
        "POST",
        "/v1/admit",
        json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "u2"}}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["response"]["uid"], "u2");
    assert_eq!(v["response"]["allowed"], false);
}

#[tokio::test]
async fn probes_metrics_and_routing() {
    let (app, fake) = app_with(Limits::default(), AdmissionSettings::default());
    assert_eq!(call(&app, "GET", "/healthz", "").await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/readyz", "").await.0, StatusCode::OK);
    fake.not_ready.store(true, Ordering::SeqCst);
    let (status, v) = call(&app, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["ready"], false);
    assert_eq!(call(&app, "GET", "/healthz", "").await.0, StatusCode::OK);
    assert_eq!(
        call(&app, "GET", "/v1/verify", "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(&app, "POST", "/healthz", "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(&app, "GET", "/nope", "").await.0,
        StatusCode::NOT_FOUND
    );
    call(
        &app,
        "POST",
        "/v1/verify",
        provider_request(&["r.io/a:signed", "r.io/b:unsigned"]),
    )
    .await;
    let (status, text) = call(&app, "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    for needle in [
        "signet_http_requests_total{endpoint=\"verify\",status=\"200\"} 1",
        "signet_key_outcomes_total{endpoint=\"verify\",code=\"VERIFIED\"} 1",
        "signet_key_outcomes_total{endpoint=\"verify\",code=\"SIGNATURE_NOT_FOUND\"} 1",
        "signet_verification_duration_seconds_bucket",
        "signet_ready 0",
        "signet_build_info{version=\"",
        "signet_engine_answers_total{code=\"VERIFIED\"} 7",
        "signet_engine_answers_total{code=\"TIMEOUT\"} 2",
        "signet_verdict_cache_hits_total 5",
        "signet_verifications_in_flight 1",
        "signet_registry_request_duration_seconds_bucket{le=\"0.005\",operation=\"resolve\"} 1",
        "signet_registry_request_duration_seconds_bucket{le=\"+Inf\",operation=\"resolve\"} 3",
        "signet_registry_request_duration_seconds_count{operation=\"resolve\"} 3",
        "signet_trust_certificate_expiry_timestamp_seconds{store_type=\"ca\",store=\"acme\",subject=\"CN=Acme Root\"} 1900000000",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
}
