//! Test support for Signet's deployment pieces: where the repository's files are, the Rego of
//! the Gatekeeper ConstraintTemplate, and a simulation of Gatekeeper's `external_data`
//! builtin answering from Signet `ProviderResponse` fixtures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value as Json};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Reads a file relative to the repository root.
pub fn read_repo_file(rel: &str) -> Result<String> {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Parses a YAML document into JSON.
pub fn yaml_to_json(yaml: &str) -> Result<Json> {
    let value = regorus::Value::from_yaml_str(yaml)?;
    Ok(serde_json::from_str(&value.to_json_str()?)?)
}

/// The ConstraintTemplate (`policy/template.yaml`) as JSON.
pub fn template() -> Result<Json> {
    yaml_to_json(&read_repo_file("policy/template.yaml")?)
}

/// The Rego of the template's `admission.k8s.gatekeeper.sh` target.
pub fn template_rego() -> Result<String> {
    let template = template()?;
    let targets = template["spec"]["targets"]
        .as_array()
        .ok_or_else(|| anyhow!("template has no spec.targets"))?;
    for target in targets {
        if target["target"] == "admission.k8s.gatekeeper.sh" {
            return target["rego"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("target has no rego"));
        }
    }
    bail!("no admission.k8s.gatekeeper.sh target in the template")
}

/// A Signet `ProviderResponse` fixture from `tests/fixtures/provider/NAME.json`.
pub fn provider_fixture(name: &str) -> Result<Json> {
    let text = read_repo_file(&format!("tests/fixtures/provider/{name}.json"))?;
    Ok(serde_json::from_str(&text)?)
}

/// The items of a `ProviderResponse`, by key.
pub fn items_by_key(provider_response: &Json) -> BTreeMap<String, Json> {
    provider_response["response"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| Some((item["key"].as_str()?.to_owned(), item.clone())))
        .collect()
}

/// How the simulated Gatekeeper obtains its answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Gatekeeper called Signet, which answered with this `ProviderResponse` (HTTP 200).
    Provider(Json),
    /// Every key came from Gatekeeper's response cache: no call, `status_code` 0.
    Cached(BTreeMap<String, Json>),
    /// Gatekeeper's own answer when the call failed, given as is (e.g. `responses: null`).
    Raw(Json),
}

/// Gatekeeper's `external_data` builtin, simulated: records the requests and answers each
/// with the Rego-side response Gatekeeper builds from Signet's `ProviderResponse`
/// (items with an `error` go to `errors`, the others to `responses`).
#[derive(Debug, Clone)]
pub struct ExternalData {
    answer: Answer,
    provider: String,
    calls: Arc<Mutex<Vec<Json>>>,
}

impl ExternalData {
    /// Gatekeeper with Signet's Provider under its default name, `signet`.
    pub fn new(answer: Answer) -> Self {
        Self::with_provider(answer, "signet")
    }

    /// Gatekeeper with Signet's Provider named `provider` (the chart's `provider.name`).
    pub fn with_provider(answer: Answer, provider: &str) -> Self {
        ExternalData {
            answer,
            provider: provider.to_owned(),
            calls: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The requests (`{"provider": ..., "keys": [...]}`) the policy made.
    pub fn calls(&self) -> Vec<Json> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn respond(&self, request: &Json) -> Result<Json> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(request.clone());
        }
        if request["provider"] != self.provider.as_str() {
            // Gatekeeper answers an unknown provider with a system error.
            return Ok(json!({
                "responses": [], "errors": [], "status_code": 400,
                "system_error": format!("failed to get provider {}", request["provider"]),
            }));
        }
        let keys: Vec<&str> = request["keys"]
            .as_array()
            .ok_or_else(|| anyhow!("external_data keys must be an array"))?
            .iter()
            .map(|k| k.as_str().ok_or_else(|| anyhow!("keys must be strings")))
            .collect::<Result<_>>()?;
        let (items, status_code, system_error) = match &self.answer {
            Answer::Raw(raw) => return Ok(raw.clone()),
            Answer::Provider(response) => (
                items_by_key(response),
                200,
                response["response"]["systemError"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            Answer::Cached(items) => (items.clone(), 0, String::new()),
        };
        let mut responses = Vec::new();
        let mut errors = Vec::new();
        for key in keys {
            let Some(item) = items.get(key) else { continue };
            match item["error"].as_str() {
                Some(err) if !err.is_empty() => errors.push(json!([key, err])),
                _ => responses.push(json!([key, item["value"]])),
            }
        }
        Ok(json!({
            "responses": responses,
            "errors": errors,
            "status_code": status_code,
            "system_error": system_error,
        }))
    }
}

/// One violation raised by the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub msg: String,
    pub details: Json,
}

/// Evaluates the template's `violation` rule for `object` (a Pod or workload) with the
/// constraint `parameters`, as Gatekeeper does (Rego v0 syntax, `input.review.object`,
/// `input.parameters`).
pub fn evaluate(
    object: &Json,
    parameters: &Json,
    external: &ExternalData,
) -> Result<Vec<Violation>> {
    evaluate_review(object, parameters, external, None)
}

/// [`evaluate`] with the admission request's `namespace` (Gatekeeper's review carries it for
/// namespaced objects; its audit reviews carry only the object).
pub fn evaluate_review(
    object: &Json,
    parameters: &Json,
    external: &ExternalData,
    namespace: Option<&str>,
) -> Result<Vec<Violation>> {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(true);
    engine.add_policy("template.rego".to_owned(), template_rego()?)?;
    let sim = external.clone();
    engine.add_extension(
        "external_data".to_owned(),
        1,
        Box::new(move |params: Vec<regorus::Value>| {
            let request: Json = serde_json::from_str(
                &params
                    .first()
                    .ok_or_else(|| anyhow!("external_data takes one argument"))?
                    .to_json_str()?,
            )?;
            let answer = sim.respond(&request)?;
            regorus::Value::from_json_str(&answer.to_string())
        }),
    )?;
    let mut input = json!({
        "review": {
            "kind": {"group": "", "version": "v1", "kind": object["kind"]},
            "operation": "CREATE",
            "object": object,
        },
        "parameters": parameters,
    });
    if let Some(ns) = namespace {
        input["review"]["namespace"] = json!(ns);
    }
    engine.set_input(regorus::Value::from_json_str(&input.to_string())?);
    let result = engine.eval_rule("data.signetverifiedimages.violation".to_owned())?;
    let result: Json = serde_json::from_str(&result.to_json_str()?)?;
    let mut out = Vec::new();
    match result {
        Json::Array(items) => {
            for item in items {
                out.push(Violation {
                    msg: item["msg"]
                        .as_str()
                        .ok_or_else(|| anyhow!("violation without msg: {item}"))?
                        .to_owned(),
                    details: item["details"].clone(),
                });
            }
        }
        Json::Null => {}
        other => bail!("violation is not a set: {other}"),
    }
    Ok(out)
}

/// A Pod with the given images.
pub fn pod(containers: &[&str], init: &[&str], ephemeral: &[&str]) -> Json {
    fn list(images: &[&str], prefix: &str) -> Json {
        Json::Array(
            images
                .iter()
                .enumerate()
                .map(|(i, image)| json!({"name": format!("{prefix}{i}"), "image": image}))
                .collect(),
        )
    }
    let mut spec = json!({"containers": list(containers, "c")});
    if !init.is_empty() {
        spec["initContainers"] = list(init, "init");
    }
    if !ephemeral.is_empty() {
        spec["ephemeralContainers"] = list(ephemeral, "debug");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": spec,
    })
}
