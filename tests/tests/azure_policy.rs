//! The Azure Policy definitions (`policy/azure/*.json`) embed or point at the Gatekeeper
//! ConstraintTemplate, and stay what `policy/azure/generate.py` writes.
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::process::Command;

use base64::Engine as _;
use serde_json::Value as Json;
use signet_deploy_tests::{read_repo_file, repo_root, template};

fn definition(name: &str) -> Json {
    serde_json::from_str(&read_repo_file(&format!("policy/azure/{name}")).unwrap()).unwrap()
}

#[test]
fn embedded_base64_is_the_template_file() {
    let def = definition("signet-verified-images.json");
    let info = &def["properties"]["policyRule"]["then"]["details"]["templateInfo"];
    assert_eq!(info["sourceType"], "Base64Encoded");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(info["content"].as_str().unwrap())
        .unwrap();
    let file = std::fs::read(repo_root().join("policy/template.yaml")).unwrap();
    assert!(
        decoded == file,
        "the Base64 template in policy/azure/signet-verified-images.json is stale: run python3 policy/azure/generate.py"
    );
}

/// `version` of a TOML/YAML section's `key: value` or `key = "value"` line.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.trim_start();
            let rest = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':'))?;
            Some(rest.trim().trim_matches('"'))
        })
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn public_url_variant_points_at_the_template_of_the_release_tag() {
    let def = definition("signet-verified-images.publicurl.json");
    let info = &def["properties"]["policyRule"]["then"]["details"]["templateInfo"];
    assert_eq!(info["sourceType"], "PublicURL");
    // A tagged file, not a branch: an assignment keeps the template it was tested with.
    let cargo = read_repo_file("Cargo.toml").unwrap();
    let workspace = cargo.split("[workspace.package]").nth(1).unwrap();
    let version = field(workspace, "version");
    assert_eq!(
        info["url"],
        format!(
            "https://raw.githubusercontent.com/signet-project/signet/v{version}/policy/template.yaml"
        )
    );
    // The chart releases the same version (appVersion is the image tag it defaults to).
    let chart = read_repo_file("charts/signet/Chart.yaml").unwrap();
    assert_eq!(field(&chart, "appVersion"), version);
    // Apart from templateInfo, the two definitions are the same.
    let mut a = definition("signet-verified-images.json");
    let mut b = def.clone();
    a["properties"]["policyRule"]["then"]["details"]["templateInfo"] = Json::Null;
    b["properties"]["policyRule"]["then"]["details"]["templateInfo"] = Json::Null;
    assert_eq!(a, b);
}

#[test]
fn definition_shape() {
    let def = definition("signet-verified-images.json");
    let props = &def["properties"];
    assert_eq!(props["mode"], "Microsoft.Kubernetes.Data");
    assert_eq!(props["policyType"], "Custom");
    let params = &props["parameters"];
    assert_eq!(params["effect"]["defaultValue"], "Deny");
    // Built-in definitions and many assignments write effects in lower case: accept both.
    assert_eq!(
        params["effect"]["allowedValues"],
        serde_json::json!(["Audit", "audit", "Deny", "deny", "Disabled", "disabled"])
    );
    assert_eq!(params["requireDigest"]["type"], "Boolean");
    assert_eq!(params["requireDigest"]["defaultValue"], false);
    assert_eq!(params["minimumLevel"]["defaultValue"], "permissive");
    assert_eq!(
        params["minimumLevel"]["allowedValues"],
        serde_json::json!(["strict", "permissive", "audit"])
    );
    assert_eq!(params["provider"]["defaultValue"], "signet");
    for p in ["excludedNamespaces", "namespaces", "excludedImages"] {
        assert_eq!(params[p]["type"], "Array", "{p}");
    }
    assert_eq!(params["labelSelector"]["type"], "Object");
    let then = &props["policyRule"]["then"];
    assert_eq!(then["effect"], "[parameters('effect')]");
    let details = &then["details"];
    for p in ["excludedNamespaces", "namespaces", "labelSelector"] {
        assert_eq!(details[p], format!("[parameters('{p}')]"));
    }
    assert_eq!(details["kinds"], serde_json::json!(["Pod"]));
    // Every constraint value is a parameter the template declares.
    let template = template().unwrap();
    let declared = &template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]["properties"];
    let values = details["values"].as_object().unwrap();
    assert!(!values.is_empty());
    // ... and every template parameter is a policy parameter.
    for name in declared.as_object().unwrap().keys() {
        assert!(
            values.contains_key(name),
            "template parameter {name} missing from the definition"
        );
    }
    // The enum of minimumLevel is the template's.
    assert_eq!(
        params["minimumLevel"]["allowedValues"],
        declared["minimumLevel"]["enum"]
    );
    for (name, value) in values {
        assert!(
            declared.get(name).is_some(),
            "{name} not declared by the template"
        );
        assert_eq!(value, &format!("[parameters('{name}')]"));
        assert!(
            params.get(name).is_some(),
            "{name} is not a policy parameter"
        );
    }
}

#[test]
fn generated_files_are_up_to_date() {
    let out = Command::new("python3")
        .arg(repo_root().join("policy/azure/generate.py"))
        .arg("--check")
        .output()
        .expect("python3 must be installed to check policy/azure/generate.py");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sample_constraint_sets_only_declared_parameters_with_their_defaults() {
    let constraint =
        signet_deploy_tests::yaml_to_json(&read_repo_file("policy/constraint.yaml").unwrap())
            .unwrap();
    let params = constraint["spec"]["parameters"].as_object().unwrap();
    let template = template().unwrap();
    let declared = &template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]["properties"];
    let def = definition("signet-verified-images.json");
    for (name, value) in params {
        assert!(
            declared.get(name).is_some(),
            "{name} not declared by the template"
        );
        assert_eq!(
            value, &def["properties"]["parameters"][name]["defaultValue"],
            "{name}: the sample and the Azure Policy default differ"
        );
    }
}
