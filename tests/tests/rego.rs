//! The Gatekeeper ConstraintTemplate's Rego (`policy/template.yaml`), evaluated with regorus
//! against Signet's answers (fixtures shaped as CONTRACT.md's verify item value) passed
//! through a simulation of Gatekeeper's `external_data` builtin.
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use signet_deploy_tests::{
    evaluate, items_by_key, pod, provider_fixture, Answer, ExternalData, Violation,
};

const SIGNED: &str = "myregistry.azurecr.io/net-monitor:v1";
const UNSIGNED: &str = "myregistry.azurecr.io/unsigned:v1";

const CODES: &[&str] = &[
    "INVALID_REFERENCE",
    "REGISTRY_ERROR",
    "REGISTRY_AUTH_FAILED",
    "ARTIFACT_NOT_FOUND",
    "SIGNATURE_NOT_FOUND",
    "NO_TRUST_POLICY",
    "SIGNATURE_INVALID",
    "UNTRUSTED_SIGNER",
    "UNTRUSTED_IDENTITY",
    "SIGNATURE_EXPIRED",
    "CERTIFICATE_EXPIRED",
    "TIMESTAMP_INVALID",
    "CERTIFICATE_REVOKED",
    "REVOCATION_UNKNOWN",
    "UNSUPPORTED_SIGNATURE",
    "TIMEOUT",
    "INTERNAL",
];

fn no_params() -> Json {
    json!({})
}

/// A ProviderResponse with the given items.
fn provider_response(items: Vec<Json>) -> Json {
    json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderResponse",
        "response": {"idempotent": true, "items": items, "systemError": ""},
    })
}

/// The verified item of the `verified` fixture, re-keyed.
fn verified_item(key: &str) -> Json {
    let mut item = items_by_key(&provider_fixture("verified").unwrap())[SIGNED].clone();
    item["key"] = json!(key);
    item
}

/// The SIGNATURE_NOT_FOUND item of the fixture, re-keyed and with another code.
fn unverified_item(key: &str, code: &str) -> Json {
    let mut item =
        items_by_key(&provider_fixture("signature-not-found").unwrap())[UNSIGNED].clone();
    item["key"] = json!(key);
    item["value"]["error"]["code"] = json!(code);
    item["value"]["error"]["message"] = json!(format!("{code}: what failed, in plain words"));
    item
}

fn run(object: &Json, answer: Answer) -> (Vec<Violation>, ExternalData) {
    run_with(object, &no_params(), answer)
}

fn run_with(object: &Json, params: &Json, answer: Answer) -> (Vec<Violation>, ExternalData) {
    let external = ExternalData::new(answer);
    let violations = evaluate(object, params, &external).expect("evaluation");
    (violations, external)
}

fn sent_keys(external: &ExternalData) -> Vec<String> {
    let calls = external.calls();
    assert_eq!(calls.len(), 1, "one external_data call expected: {calls:?}");
    assert_eq!(calls[0]["provider"], "signet");
    let mut keys: Vec<String> = calls[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

fn assert_denied(violations: &[Violation], image: &str, needles: &[&str]) {
    let hit = violations.iter().find(|v| v.msg.contains(image));
    let Some(hit) = hit else {
        panic!("no violation names {image}: {violations:#?}")
    };
    for needle in needles {
        assert!(
            hit.msg.contains(needle),
            "violation for {image} should contain {needle:?}: {}",
            hit.msg
        );
    }
}

#[test]
fn verified_image_raises_no_violation() {
    let (violations, external) = run(
        &pod(&[SIGNED], &[], &[]),
        Answer::Provider(provider_fixture("verified").unwrap()),
    );
    assert_eq!(violations, vec![]);
    assert_eq!(sent_keys(&external), vec![SIGNED]);
}

#[test]
fn signature_not_found_is_denied_with_code_and_message() {
    let (violations, _) = run(
        &pod(&[UNSIGNED], &[], &[]),
        Answer::Provider(provider_fixture("signature-not-found").unwrap()),
    );
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(
        &violations,
        UNSIGNED,
        &[
            "SIGNATURE_NOT_FOUND",
            "no Notation signature found",
            "0af7651916cd43dd8448eb211c80319c",
        ],
    );
    assert_eq!(violations[0].details["code"], "SIGNATURE_NOT_FOUND");
    assert_eq!(violations[0].details["image"], UNSIGNED);
}

#[test]
fn untrusted_signer_is_denied() {
    let image = "docker.io/library/nginx:1.27";
    let (violations, _) = run(
        &pod(&[image], &[], &[]),
        Answer::Provider(provider_fixture("untrusted-signer").unwrap()),
    );
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(
        &violations,
        image,
        &["UNTRUSTED_SIGNER", "not anchored in the trust stores"],
    );
}

#[test]
fn every_error_code_is_denied_and_named() {
    for code in CODES {
        let image = format!("myregistry.azurecr.io/app-{}:v1", code.to_lowercase());
        let response = provider_response(vec![unverified_item(&image, code)]);
        let (violations, _) = run(&pod(&[&image], &[], &[]), Answer::Provider(response));
        assert_eq!(violations.len(), 1, "{code}: {violations:#?}");
        assert_denied(
            &violations,
            &image,
            &[code, &format!("{code}: what failed, in plain words")],
        );
        assert_eq!(violations[0].details["code"], *code);
    }
}

#[test]
fn verified_false_without_error_object_is_still_denied() {
    let mut item = verified_item(SIGNED);
    item["value"]["verified"] = json!(false);
    item["value"]["isSuccess"] = json!(false);
    let (violations, _) = run(
        &pod(&[SIGNED], &[], &[]),
        Answer::Provider(provider_response(vec![item])),
    );
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(&violations, SIGNED, &["NO_VERDICT"]);
}

#[test]
fn value_that_is_not_a_verdict_is_denied() {
    // isSuccess alone, a string, null: only `verified: true` admits.
    for value in [
        json!({"isSuccess": true}),
        json!("true"),
        json!(null),
        json!({"verified": "true"}),
    ] {
        let item = json!({"key": SIGNED, "value": value});
        let (violations, _) = run(
            &pod(&[SIGNED], &[], &[]),
            Answer::Provider(provider_response(vec![item])),
        );
        assert_eq!(violations.len(), 1, "{value}: {violations:#?}");
        assert_denied(&violations, SIGNED, &["not verified"]);
    }
}

#[test]
fn item_error_is_denied_with_its_message() {
    let image = "Not/A:Valid@@Reference";
    let (violations, _) = run(
        &pod(&[image], &[], &[]),
        Answer::Provider(provider_fixture("invalid-reference").unwrap()),
    );
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(
        &violations,
        image,
        &[
            "could not process",
            "INVALID_REFERENCE",
            "must be lowercase",
        ],
    );
}

#[test]
fn key_missing_from_the_answer_is_denied() {
    // Signet answered only one of the two keys.
    let (violations, external) = run(
        &pod(&[SIGNED, UNSIGNED], &[], &[]),
        Answer::Provider(provider_fixture("verified").unwrap()),
    );
    assert_eq!(sent_keys(&external), vec![SIGNED, UNSIGNED]);
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(&violations, UNSIGNED, &["no verdict", "status code 200"]);
}

#[test]
fn null_responses_are_denied_even_without_an_error() {
    // A failed call: Gatekeeper hands the policy `responses: null`, and an HTTP 500 may
    // carry no system error at all.
    for raw in [
        json!({"responses": null, "errors": null, "status_code": 500, "system_error": ""}),
        json!({"responses": null, "errors": [], "status_code": 0, "system_error": ""}),
        json!({}),
    ] {
        let (violations, _) = run(
            &pod(&[SIGNED, UNSIGNED], &[], &[]),
            Answer::Raw(raw.clone()),
        );
        assert_eq!(violations.len(), 2, "{raw}: {violations:#?}");
        assert_denied(&violations, SIGNED, &["no verdict"]);
        assert_denied(&violations, UNSIGNED, &["no verdict"]);
    }
}

#[test]
fn system_error_denies_every_image() {
    let (violations, _) = run(
        &pod(&[SIGNED], &[UNSIGNED], &[]),
        Answer::Provider(provider_fixture("system-error").unwrap()),
    );
    assert_eq!(violations.len(), 2, "{violations:#?}");
    for image in [SIGNED, UNSIGNED] {
        assert_denied(&violations, image, &["system error", "TIMEOUT", "deadline"]);
    }
}

#[test]
fn system_error_with_verified_answers_still_denies() {
    let mut response = provider_fixture("verified").unwrap();
    response["response"]["systemError"] = json!("malformed request body");
    let (violations, _) = run(&pod(&[SIGNED], &[], &[]), Answer::Provider(response));
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(
        &violations,
        SIGNED,
        &["system error", "malformed request body"],
    );
}

#[test]
fn unreachable_provider_system_error_is_denied() {
    let raw = json!({
        "responses": null, "errors": null, "status_code": 0,
        "system_error": "failed to send external data request: dial tcp 10.0.0.1:8443: connect: connection refused",
    });
    let (violations, _) = run(&pod(&[SIGNED], &[], &[]), Answer::Raw(raw));
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(&violations, SIGNED, &["system error", "connection refused"]);
}

#[test]
fn status_code_zero_from_the_cache_with_verified_answers_is_admitted() {
    let mut cached = BTreeMap::new();
    cached.insert(SIGNED.to_owned(), verified_item(SIGNED));
    let other = "myregistry.azurecr.io/sidecar:v2";
    cached.insert(other.to_owned(), verified_item(other));
    let (violations, _) = run(&pod(&[SIGNED], &[other], &[]), Answer::Cached(cached));
    assert_eq!(violations, vec![]);
}

#[test]
fn status_code_zero_from_the_cache_with_unverified_answer_is_denied() {
    let mut cached = BTreeMap::new();
    cached.insert(
        UNSIGNED.to_owned(),
        unverified_item(UNSIGNED, "SIGNATURE_NOT_FOUND"),
    );
    let (violations, _) = run(&pod(&[UNSIGNED], &[], &[]), Answer::Cached(cached));
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(&violations, UNSIGNED, &["SIGNATURE_NOT_FOUND"]);
}

#[test]
fn init_and_ephemeral_containers_are_verified() {
    let init = "myregistry.azurecr.io/init:v1";
    let debug = "myregistry.azurecr.io/debug:v1";
    let response = provider_response(vec![
        verified_item(SIGNED),
        unverified_item(init, "SIGNATURE_INVALID"),
        unverified_item(debug, "UNTRUSTED_IDENTITY"),
    ]);
    let (violations, external) = run(
        &pod(&[SIGNED], &[init], &[debug]),
        Answer::Provider(response),
    );
    assert_eq!(sent_keys(&external), vec![debug, init, SIGNED]);
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert_denied(&violations, init, &["SIGNATURE_INVALID"]);
    assert_denied(&violations, debug, &["UNTRUSTED_IDENTITY"]);
}

#[test]
fn mixed_pod_denies_only_the_bad_images() {
    let response = provider_response(vec![
        verified_item(SIGNED),
        unverified_item(UNSIGNED, "SIGNATURE_NOT_FOUND"),
    ]);
    let (violations, _) = run(
        &pod(&[SIGNED, UNSIGNED], &[], &[]),
        Answer::Provider(response),
    );
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(&violations, UNSIGNED, &["SIGNATURE_NOT_FOUND"]);
    assert!(!violations[0].msg.contains(SIGNED));
}

#[test]
fn duplicate_images_are_sent_once() {
    let (violations, external) = run(
        &pod(&[SIGNED, SIGNED], &[SIGNED], &[]),
        Answer::Provider(provider_fixture("verified").unwrap()),
    );
    assert_eq!(violations, vec![]);
    assert_eq!(sent_keys(&external), vec![SIGNED]);
}

#[test]
fn excluded_images_are_not_sent_and_not_denied() {
    let params = json!({"excludedImages": [
        "mcr.microsoft.com/oss/*",
        "registry.k8s.io/pause:3.10",
    ]});
    let object = pod(
        &[
            SIGNED,
            "mcr.microsoft.com/oss/kubernetes/kube-proxy:v1.31.1",
            "registry.k8s.io/pause:3.10",
        ],
        &[],
        &["registry.k8s.io/pause:3.9"],
    );
    // Only the signed image and the pause image that is not an exact match are sent.
    let response = provider_response(vec![
        verified_item(SIGNED),
        unverified_item("registry.k8s.io/pause:3.9", "SIGNATURE_NOT_FOUND"),
    ]);
    let (violations, external) = run_with(&object, &params, Answer::Provider(response));
    assert_eq!(
        sent_keys(&external),
        vec![SIGNED.to_owned(), "registry.k8s.io/pause:3.9".to_owned()]
    );
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(
        &violations,
        "registry.k8s.io/pause:3.9",
        &["SIGNATURE_NOT_FOUND"],
    );
}

#[test]
fn a_pattern_without_star_is_not_a_prefix() {
    let params = json!({"excludedImages": ["mcr.microsoft.com/oss"]});
    let image = "mcr.microsoft.com/oss/kubernetes/coredns:v1.11.1";
    let response = provider_response(vec![unverified_item(image, "SIGNATURE_NOT_FOUND")]);
    let (violations, _) = run_with(
        &pod(&[image], &[], &[]),
        &params,
        Answer::Provider(response),
    );
    assert_eq!(violations.len(), 1, "{violations:#?}");
}

#[test]
fn all_images_excluded_makes_no_call() {
    let params = json!({"excludedImages": ["*"]});
    let external = ExternalData::new(Answer::Raw(json!({})));
    let violations = evaluate(&pod(&[SIGNED], &[UNSIGNED], &[]), &params, &external).unwrap();
    assert_eq!(violations, vec![]);
    assert!(external.calls().is_empty());
}

#[test]
fn workload_pod_templates_are_verified() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {
            "containers": [{"name": "web", "image": UNSIGNED}],
            "initContainers": [{"name": "init", "image": SIGNED}],
        }}},
    });
    let cronjob = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "default"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "job", "image": UNSIGNED}],
        }}}}},
    });
    for object in [deployment, cronjob] {
        let response = provider_response(vec![
            verified_item(SIGNED),
            unverified_item(UNSIGNED, "SIGNATURE_NOT_FOUND"),
        ]);
        let (violations, _) = run(&object, Answer::Provider(response));
        assert_eq!(violations.len(), 1, "{}: {violations:#?}", object["kind"]);
        assert_denied(&violations, UNSIGNED, &["SIGNATURE_NOT_FOUND"]);
    }
}

#[test]
fn template_names_match_gatekeeper_rules() {
    let template = signet_deploy_tests::template().unwrap();
    assert_eq!(template["apiVersion"], "templates.gatekeeper.sh/v1");
    assert_eq!(template["kind"], "ConstraintTemplate");
    let kind = template["spec"]["crd"]["spec"]["names"]["kind"]
        .as_str()
        .unwrap();
    // Gatekeeper requires metadata.name to be the lower-cased kind.
    assert_eq!(template["metadata"]["name"], kind.to_lowercase());
    let rego = signet_deploy_tests::template_rego().unwrap();
    assert!(rego.starts_with(&format!("package {}\n", kind.to_lowercase())));
}

// --- Admit what was verified: pinning, levels, exclusions, the provider's name -----------

const DIGEST: &str = "sha256:73b1e4a7c9d0f2e8b6a5c3d1e9f7a2b4c6d8e0f1a3b5c7d9e2f4a6b8c0d1e3f5";

/// A verified item at `level` under statement `policy`, with what Signet logged.
fn verified_at(key: &str, level: Option<&str>, logged: Json) -> Json {
    let mut item = verified_item(key);
    match level {
        Some(level) => item["value"]["level"] = json!(level),
        None => {
            item["value"].as_object_mut().unwrap().remove("level");
        }
    }
    item["value"]["policy"] = json!("legacy-images");
    item["value"]["logged"] = logged;
    item
}

fn audit_logged() -> Json {
    json!([{"check": "authenticity", "code": "UNTRUSTED_SIGNER",
            "message": "the signing certificate chain is not anchored in ca:wabbit-networks"}])
}

#[test]
fn verified_fixture_carries_a_level_and_is_admitted_at_the_default_minimum() {
    let value = &verified_item(SIGNED)["value"];
    assert_eq!(value["level"], "strict");
    let (violations, _) = run(
        &pod(&[SIGNED], &[], &[]),
        Answer::Provider(provider_fixture("verified").unwrap()),
    );
    assert_eq!(violations, vec![]);
}

#[test]
fn audit_level_is_denied_by_default_with_level_statement_and_logged_failures() {
    let response = provider_response(vec![verified_at(SIGNED, Some("audit"), audit_logged())]);
    let (violations, _) = run(&pod(&[SIGNED], &[], &[]), Answer::Provider(response));
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(
        &violations,
        SIGNED,
        &[
            "level audit",
            "legacy-images",
            "minimum level permissive",
            "authenticity UNTRUSTED_SIGNER",
            "not anchored in ca:wabbit-networks",
        ],
    );
    assert_eq!(violations[0].details["code"], "LEVEL_TOO_LOW");
}

#[test]
fn levels_rank_strict_over_permissive_over_audit() {
    let cases = [
        // (answer level, minimumLevel, admitted)
        ("strict", "strict", true),
        ("permissive", "strict", false),
        ("audit", "strict", false),
        ("strict", "permissive", true),
        ("permissive", "permissive", true),
        ("audit", "permissive", false),
        ("strict", "audit", true),
        ("permissive", "audit", true),
        ("audit", "audit", true),
    ];
    for (level, minimum, admitted) in cases {
        let response = provider_response(vec![verified_at(SIGNED, Some(level), json!([]))]);
        let (violations, _) = run_with(
            &pod(&[SIGNED], &[], &[]),
            &json!({"minimumLevel": minimum}),
            Answer::Provider(response),
        );
        assert_eq!(
            violations.is_empty(),
            admitted,
            "{level} under {minimum}: {violations:#?}"
        );
        if !admitted {
            assert_denied(
                &violations,
                SIGNED,
                &[
                    &format!("level {level}"),
                    &format!("minimum level {minimum}"),
                ],
            );
            assert!(violations[0].msg.contains("logged failures: none"));
        }
    }
}

#[test]
fn skip_level_is_admitted_even_under_strict() {
    // The operator wrote `skip` for that scope: Signet verified nothing, on purpose.
    let response = provider_response(vec![verified_at(SIGNED, Some("skip"), json!([]))]);
    let (violations, _) = run_with(
        &pod(&[SIGNED], &[], &[]),
        &json!({"minimumLevel": "strict"}),
        Answer::Provider(response),
    );
    assert_eq!(violations, vec![]);
}

#[test]
fn answer_without_level_is_denied_unless_the_minimum_is_audit() {
    // An older Signet: fail closed, with a message that says what to do.
    for (params, admitted) in [
        (json!({}), false),
        (json!({"minimumLevel": "strict"}), false),
        (json!({"minimumLevel": "permissive"}), false),
        (json!({"minimumLevel": "audit"}), true),
    ] {
        let response = provider_response(vec![verified_at(SIGNED, None, json!(null))]);
        let (violations, _) = run_with(
            &pod(&[SIGNED], &[], &[]),
            &params,
            Answer::Provider(response),
        );
        assert_eq!(violations.is_empty(), admitted, "{params}: {violations:#?}");
        if !admitted {
            assert_denied(&violations, SIGNED, &["carries no level", "upgrade Signet"]);
        }
    }
    // A level Signet does not define reads as below any minimum but audit.
    let response = provider_response(vec![verified_at(SIGNED, Some("lenient"), json!([]))]);
    let (violations, _) = run(&pod(&[SIGNED], &[], &[]), Answer::Provider(response));
    assert_denied(&violations, SIGNED, &["level lenient"]);
}

#[test]
fn unknown_minimum_level_reads_as_strict() {
    let response = provider_response(vec![verified_at(SIGNED, Some("permissive"), json!([]))]);
    let (violations, _) = run_with(
        &pod(&[SIGNED], &[], &[]),
        &json!({"minimumLevel": "Permissive!"}),
        Answer::Provider(response),
    );
    assert_denied(&violations, SIGNED, &["minimum level strict"]);
}

#[test]
fn require_digest_denies_images_written_with_a_tag_only() {
    let pinned = format!("myregistry.azurecr.io/net-monitor@{DIGEST}");
    let tag_and_digest = format!("myregistry.azurecr.io/net-monitor:v1@{DIGEST}");
    let excluded = "registry.k8s.io/pause:3.10";
    let response = provider_response(vec![
        verified_item(SIGNED),
        verified_item(&pinned),
        verified_item(&tag_and_digest),
    ]);
    let object = pod(&[SIGNED, &pinned], &[&tag_and_digest], &[excluded]);
    let params = json!({"requireDigest": true, "excludedImages": [excluded]});
    let (violations, _) = run_with(&object, &params, Answer::Provider(response.clone()));
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(
        &violations,
        SIGNED,
        &["not pinned to a digest", "requireDigest"],
    );
    assert_eq!(violations[0].details["code"], "NOT_PINNED");
    // Off by default, and a digest-like tag is no digest.
    let (violations, _) = run_with(
        &object,
        &json!({"excludedImages": [excluded]}),
        Answer::Provider(response),
    );
    assert_eq!(violations, vec![]);
    let fake = "myregistry.azurecr.io/net-monitor:sha256-abc";
    let (violations, _) = run_with(
        &pod(&[fake], &[], &[]),
        &json!({"requireDigest": true}),
        Answer::Provider(provider_response(vec![verified_item(fake)])),
    );
    assert_denied(&violations, fake, &["not pinned"]);
}

#[test]
fn excluded_host_pattern_does_not_cross_the_host_boundary() {
    let params = json!({"excludedImages": ["myreg.azurecr.io*"]});
    let ours = "myreg.azurecr.io/team/app:v1";
    let evil = "myreg.azurecr.io.evil.example/app:v1";
    let evil_port = "myreg.azurecr.io:5000/app:v1";
    let response = provider_response(vec![
        unverified_item(evil, "SIGNATURE_NOT_FOUND"),
        unverified_item(evil_port, "SIGNATURE_NOT_FOUND"),
    ]);
    let (violations, external) = run_with(
        &pod(&[ours, evil, evil_port], &[], &[]),
        &params,
        Answer::Provider(response),
    );
    assert_eq!(
        sent_keys(&external),
        vec![evil.to_owned(), evil_port.to_owned()]
    );
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert_denied(&violations, evil, &["SIGNATURE_NOT_FOUND"]);
    // A prefix with "/" stays a prefix within that registry.
    let params = json!({"excludedImages": ["myreg.azurecr.io/team/*"]});
    let external = ExternalData::new(Answer::Raw(json!({})));
    let violations = evaluate(&pod(&[ours], &[], &[]), &params, &external).unwrap();
    assert_eq!(violations, vec![]);
    assert!(external.calls().is_empty());
}

#[test]
fn provider_name_follows_the_parameter() {
    let external = ExternalData::with_provider(
        Answer::Provider(provider_fixture("verified").unwrap()),
        "signet-prod",
    );
    let violations = evaluate(
        &pod(&[SIGNED], &[], &[]),
        &json!({"provider": "signet-prod"}),
        &external,
    )
    .unwrap();
    assert_eq!(violations, vec![]);
    assert_eq!(external.calls()[0]["provider"], "signet-prod");
    // Without the parameter, the default name: Gatekeeper knows no such provider here and
    // answers with a system error, which denies.
    let external = ExternalData::with_provider(
        Answer::Provider(provider_fixture("verified").unwrap()),
        "signet-prod",
    );
    let violations = evaluate(&pod(&[SIGNED], &[], &[]), &json!({}), &external).unwrap();
    assert_eq!(external.calls()[0]["provider"], "signet");
    assert_denied(&violations, SIGNED, &["system error"]);
}

fn pod_in(namespace: Option<&str>, images: &[&str]) -> Json {
    let mut p = pod(images, &[], &[]);
    match namespace {
        Some(ns) => p["metadata"]["namespace"] = json!(ns),
        None => {
            p["metadata"].as_object_mut().unwrap().remove("namespace");
        }
    }
    p
}

fn namespaced() -> Json {
    json!({"namespacedKeys": true})
}

#[test]
fn namespaced_keys_are_sent_and_answers_read_by_them() {
    let a_signed = format!("[team-a]{SIGNED}");
    let a_unsigned = format!("[team-a]{UNSIGNED}");
    let answer = Answer::Provider(provider_response(vec![
        verified_item(&a_signed),
        unverified_item(&a_unsigned, "UNTRUSTED_SIGNER"),
    ]));
    let (violations, external) = run_with(
        &pod_in(Some("team-a"), &[SIGNED, UNSIGNED]),
        &namespaced(),
        answer,
    );
    assert_eq!(sent_keys(&external), vec![a_signed, a_unsigned]);
    assert_eq!(violations.len(), 1, "{violations:#?}");
    // Messages and details name the image as written in the pod spec.
    assert_denied(
        &violations,
        &format!("image {UNSIGNED} denied"),
        &["UNTRUSTED_SIGNER"],
    );
    assert_eq!(violations[0].details["image"], UNSIGNED);
}

#[test]
fn answers_under_plain_keys_do_not_count_for_namespaced_ones() {
    // A Signet (or a cache) answering the bare images: no verdict for the keys sent.
    let answer = Answer::Provider(provider_response(vec![verified_item(SIGNED)]));
    let (violations, _) = run_with(&pod_in(Some("team-a"), &[SIGNED]), &namespaced(), answer);
    assert_denied(&violations, SIGNED, &["returned no verdict"]);
    // And the other way round: another namespace's verdict answers nothing here.
    let answer = Answer::Cached(items_by_key(&provider_response(vec![verified_item(
        &format!("[team-b]{SIGNED}"),
    )])));
    let (violations, _) = run_with(&pod_in(Some("team-a"), &[SIGNED]), &namespaced(), answer);
    assert_denied(&violations, SIGNED, &["returned no verdict"]);
}

#[test]
fn the_admission_requests_namespace_comes_first() {
    let key = format!("[team-b]{SIGNED}");
    let external = ExternalData::new(Answer::Provider(provider_response(vec![verified_item(
        &key,
    )])));
    let violations = signet_deploy_tests::evaluate_review(
        &pod_in(None, &[SIGNED]),
        &namespaced(),
        &external,
        Some("team-b"),
    )
    .unwrap();
    assert_eq!(violations, vec![]);
    assert_eq!(sent_keys(&external), vec![key]);
}

#[test]
fn no_namespace_with_namespaced_keys_is_denied_without_a_call() {
    let (violations, external) = run_with(
        &pod_in(None, &[SIGNED, "docker.io/library/busybox:1"]),
        &json!({"namespacedKeys": true, "excludedImages": ["docker.io/*"]}),
        Answer::Provider(provider_fixture("verified").unwrap()),
    );
    assert!(external.calls().is_empty(), "{:?}", external.calls());
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_denied(&violations, SIGNED, &["names no namespace"]);
    assert_eq!(violations[0].details["code"], "NO_NAMESPACE");
}

#[test]
fn namespaced_keys_keep_failing_closed() {
    let key = format!("[team-a]{SIGNED}");
    // An item error (e.g. a namespace Signet refused): denied, naming the image.
    let answer = Answer::Provider(provider_response(vec![json!({
        "key": key, "error": "INVALID_REFERENCE: key is not a namespace name"})]));
    let (violations, _) = run_with(&pod_in(Some("team-a"), &[SIGNED]), &namespaced(), answer);
    assert_denied(
        &violations,
        &format!("image {SIGNED} denied"),
        &["could not process", "not a namespace name"],
    );
    // A system error denies every image sent.
    let answer = Answer::Provider(json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderResponse",
        "response": {"items": [], "systemError": "request deadline exceeded"}}));
    let (violations, _) = run_with(
        &pod_in(Some("team-a"), &[SIGNED, UNSIGNED]),
        &namespaced(),
        answer,
    );
    assert_denied(
        &violations,
        &format!("image {SIGNED} denied"),
        &["system error"],
    );
    assert_denied(
        &violations,
        &format!("image {UNSIGNED} denied"),
        &["system error"],
    );
    // requireDigest looks at the image, not the key.
    let answer = Answer::Provider(provider_response(vec![verified_item(&key)]));
    let (violations, _) = run_with(
        &pod_in(Some("team-a"), &[SIGNED]),
        &json!({"namespacedKeys": true, "requireDigest": true}),
        answer,
    );
    assert_denied(&violations, SIGNED, &["not pinned"]);
}
