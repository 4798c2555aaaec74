//! The Kubernetes validating webhook, `POST /v1/admit`: the `AdmissionReview` checks,
//! which images a workload runs, which are excluded, and the allow/deny answer (fail
//! closed: an image not verified in time denies).

use http::StatusCode;
use serde_json::Value;
use signet_notation::ErrorCode;
use tokio::time::Instant;

use crate::app::{App, Handled, Outcome};
use crate::protocol::{AdmissionReviewIn, AdmissionReviewOut, ADMISSION_API_VERSION};
use crate::provider::verdict_code;
use crate::routing::{json_response, Refusal};

/// What the webhook exempts from verification.
#[derive(Debug, Clone, Default)]
pub struct AdmissionSettings {
    /// Namespaces whose objects are admitted without verification (exact names or globs).
    pub exclude_namespaces: Vec<String>,
    /// Images admitted without verification, as written in the pod spec; see
    /// [`image_pattern_matches`] (the same rules as the template's `excludedImages`).
    pub exclude_images: Vec<String>,
}

impl AdmissionSettings {
    pub(crate) fn namespace_excluded(&self, ns: &str) -> bool {
        self.exclude_namespaces.iter().any(|p| glob_match(p, ns))
    }

    pub(crate) fn image_excluded(&self, image: &str) -> bool {
        self.exclude_images
            .iter()
            .any(|p| image_pattern_matches(p, image))
    }
}

/// Whether an image exclusion pattern matches an image as written, never across the registry
/// host's boundary (`myreg.azurecr.io*` must not exempt `myreg.azurecr.io.evil.example/app`):
/// - `*` alone matches every image;
/// - a pattern with a `/`: its part before the first `/` is a glob over the image's registry
///   host (the text before the image's first `/`, so a `*` there cannot run past the host),
///   and the rest a glob over the rest of the image (where `*` may cross `/`);
/// - a pattern without `/` ending in `*` names registry hosts: its text before the final `*`
///   is a glob over the image's host (`myreg.azurecr.io*` matches `myreg.azurecr.io/app:v1`
///   and `myreg.azurecr.io:5000/app`, not `myreg.azurecr.io.evil.example/app`);
/// - any other pattern without `/` matches images written without `/` (Docker Hub short
///   names such as `nginx:1.25`).
pub fn image_pattern_matches(pattern: &str, image: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (image_host, image_rest) = match image.split_once('/') {
        Some((host, rest)) => (Some(host), rest),
        None => (None, image),
    };
    match pattern.split_once('/') {
        Some((host_glob, rest_glob)) => {
            image_host.is_some_and(|host| glob_match(host_glob, host))
                && glob_match(rest_glob, image_rest)
        }
        None => match pattern.strip_suffix('*') {
            Some(host_glob) => image_host.is_some_and(|host| {
                glob_match(host_glob, host)
                    || host
                        .split_once(':')
                        .is_some_and(|(name, _port)| glob_match(host_glob, name))
            }),
            None => image_host.is_none() && glob_match(pattern, image),
        },
    }
}

/// `*` (any run) and `?` (one character) globbing over the whole text.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The workload kinds understood, and where their pod spec is.
pub(crate) fn pod_spec<'a>(
    group: &str,
    kind: &str,
    object: &'a Value,
) -> Result<&'a Value, String> {
    let path: &[&str] = match (group, kind) {
        ("", "Pod") => &["spec"],
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => &["spec", "template", "spec"],
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => {
            let gk = if group.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind}.{group}")
            };
            return Err(format!(
                "kind {gk} is not handled by the signet webhook (it only admits Pods and the \
                 pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, \
                 CronJobs and ReplicationControllers); fix the webhook's rules"
            ));
        }
    };
    let mut v = object;
    for p in path {
        v = v
            .get(p)
            .ok_or_else(|| format!("{kind} has no .{}", path.join(".")))?;
    }
    Ok(v)
}

/// Every image of a pod spec: containers, initContainers, ephemeralContainers, in order,
/// without duplicates.
pub(crate) fn images(spec: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(list) = spec.get(field).and_then(Value::as_array) {
            for c in list {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    if !out.iter().any(|i| i == image) {
                        out.push(image.to_owned());
                    }
                }
            }
        }
    }
    out
}

impl App {
    /// `/v1/admit`: allows the object when every image it runs (exclusions aside) verifies.
    pub(crate) async fn admit(&self, body: &[u8], deadline: Instant) -> Handled {
        let review: AdmissionReviewIn = serde_json::from_slice(body)
            .map_err(|e| Refusal::bad_request(format!("malformed AdmissionReview JSON: {e}")))?;
        let uid = review
            .request
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default();
        if review.api_version.as_deref() != Some(ADMISSION_API_VERSION)
            || review.kind.as_deref() != Some("AdmissionReview")
        {
            return Err(Refusal::bad_request(format!(
                "expected apiVersion {ADMISSION_API_VERSION:?} kind \"AdmissionReview\", got {:?} {:?}",
                review.api_version.unwrap_or_default(),
                review.kind.unwrap_or_default()
            ))
            .with_uid(&uid));
        }
        let Some(request) = review.request else {
            return Err(Refusal::bad_request("AdmissionReview without request").with_uid(&uid));
        };
        if uid.is_empty() {
            return Err(Refusal::bad_request("AdmissionReview request without uid"));
        }
        let allow = |uid: String, why: &str| {
            tracing::debug!(reason = why, "admitted without verification");
            Ok((
                json_response(StatusCode::OK, &AdmissionReviewOut::allow(uid)),
                Outcome::default(),
            ))
        };
        let operation = request.operation.as_deref().unwrap_or("CREATE");
        if matches!(operation, "DELETE" | "CONNECT") {
            return allow(uid, "operation does not run images");
        }
        let Some(object) = request.object.as_ref().filter(|o| !o.is_null()) else {
            // Fail closed: an object that would run images cannot be checked. Answered with
            // HTTP 200 so that the API server reads the denial (not a call failure, which a
            // failurePolicy of Ignore would admit).
            let msg = format!(
                "{operation} request without an object: nothing to verify, denied (fail closed)"
            );
            return Ok((
                json_response(
                    StatusCode::OK,
                    &AdmissionReviewOut::deny(uid, 400, format!("signet: {msg}")),
                ),
                Outcome {
                    keys: 0,
                    problem: Some(msg),
                },
            ));
        };
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
        let spec = match pod_spec(&group, &kind, object) {
            Ok(s) => s,
            Err(msg) => {
                let out = AdmissionReviewOut::deny(uid, 403, format!("signet: {msg}"));
                return Ok((
                    json_response(StatusCode::OK, &out),
                    Outcome {
                        keys: 0,
                        problem: Some(msg),
                    },
                ));
            }
        };
        let images: Vec<String> = images(spec)
            .into_iter()
            .filter(|i| !self.admission.image_excluded(i))
            .collect();
        // The object's namespace chooses the trust configuration, as a namespaced key would.
        let trust_namespace: Option<std::sync::Arc<str>> =
            (!namespace.is_empty()).then(|| namespace.as_str().into());
        let results = self
            .run_keys(&images, deadline, |v, key, d| {
                let ns = trust_namespace.clone();
                async move {
                    let t = std::time::Instant::now();
                    (v.verify_in(ns.as_deref(), &key, d).await, t.elapsed())
                }
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
            return Ok((
                json_response(StatusCode::OK, &AdmissionReviewOut::allow(uid)),
                outcome,
            ));
        }
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
        Ok((
            json_response(StatusCode::OK, &AdmissionReviewOut::deny(uid, 403, msg)),
            outcome,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("registry.k8s.io/*", "registry.k8s.io/pause:3.9"));
        assert!(glob_match("*", ""));
        assert!(glob_match("kube-*", "kube-system"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*/app:*", "reg.io/team/app:v1"));
    }

    #[test]
    fn image_patterns_never_cross_the_registry_host() {
        assert!(image_pattern_matches("*", "anything/at:all"));
        assert!(image_pattern_matches(
            "myreg.azurecr.io*",
            "myreg.azurecr.io/app:v1"
        ));
        assert!(image_pattern_matches(
            "myreg.azurecr.io*",
            "myreg.azurecr.io:443/app:v1"
        ));
        assert!(!image_pattern_matches(
            "myreg.azurecr.io*",
            "myreg.azurecr.io.evil.example/app:v1"
        ));
        assert!(image_pattern_matches(
            "mcr.microsoft.com/oss/*",
            "mcr.microsoft.com/oss/kubernetes/pause:3.9"
        ));
        assert!(!image_pattern_matches(
            "mcr.microsoft.com/oss/*",
            "mcr.microsoft.com.evil.example/oss/x"
        ));
        assert!(image_pattern_matches(
            "*.azurecr.io/*",
            "a.azurecr.io/x/y:1"
        ));
        assert!(!image_pattern_matches(
            "*.azurecr.io/*",
            "evil.example/x.azurecr.io/y:1"
        ));
        assert!(image_pattern_matches("*/team/app:*", "reg.io/team/app:v1"));
        assert!(image_pattern_matches("nginx:1.25", "nginx:1.25"));
        assert!(!image_pattern_matches(
            "nginx:1.25",
            "evil.example/nginx:1.25"
        ));
        // As in the template: without "/", a trailing "*" names registry hosts.
        assert!(!image_pattern_matches("nginx:*", "nginx:1.25"));
        assert!(!glob_match("docker.io/*", "ghcr.io/x"));
        assert!(!glob_match("kube-system", "kube-system2"));
    }
}
