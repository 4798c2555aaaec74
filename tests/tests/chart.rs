//! Runs the Helm chart tests (`tests/chart/test_chart.py`): the chart rendered by Helm's Go
//! SDK (helm-python-sdk) with default, AKS and cert-manager values, validated against
//! Kubernetes' schemas, and values.schema.json rejecting unknown keys and wrong types; and
//! the rendered `config.yaml` of each scenario accepted by signet's own configuration loader.
//!
//! The Python packages come from `.ci/install-deps-deploy`. Without them the test fails in
//! CI (`CI` set) and is skipped with a notice elsewhere.

use std::process::Command;

use signet_deploy_tests::repo_root;

/// Whether the Python packages are there (missing: a failure in CI, a skip elsewhere).
fn have_chart_deps(test: &str) -> bool {
    let deps = Command::new(python())
        .args([
            "-c",
            "import helm_python, kubernetes_validate, cryptography, yaml",
        ])
        .output();
    if matches!(&deps, Ok(out) if out.status.success()) {
        return true;
    }
    let msg = "the chart tests need helm-python-sdk, kubernetes-validate, cryptography and PyYAML: run .ci/install-deps-deploy";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {test}: {msg}");
    false
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

#[test]
fn helm_chart() {
    if !have_chart_deps("helm_chart") {
        return;
    }
    let out = Command::new(python())
        .arg(repo_root().join("tests/chart/test_chart.py"))
        .current_dir(repo_root())
        .output()
        .expect("running tests/chart/test_chart.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "chart tests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// The chart renders a configuration `signet serve` accepts: each scenario's `config.yaml`
/// (default; AKS with Workload Identity, ACR and Key Vault; the walkthrough's `--set` flags;
/// revocation off; cert-manager without client CA, with registry files) goes through
/// `signet::config::load`
/// (unknown keys are errors) and `Config::validate_schema`.
///
/// `validate_schema` is `validate` without the "file exists" checks: the rendered paths
/// (`/etc/signet/tls/tls.crt`, ...) exist only inside the pod, and rewriting them to
/// throwaway files would validate a different document than the one deployed. That every
/// such path lies under one of the Deployment's mounts is checked by test_chart.py
/// (`test_config_points_at_mounted_files`).
#[test]
fn rendered_configs_are_accepted_by_signet() {
    if !have_chart_deps("rendered_configs_are_accepted_by_signet") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(python())
        .arg(repo_root().join("tests/chart/test_chart.py"))
        .arg("--write-configs")
        .arg(dir.path())
        .current_dir(repo_root())
        .output()
        .expect("running tests/chart/test_chart.py --write-configs");
    assert!(
        out.status.success(),
        "rendering failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut checked = Vec::new();
    for name in [
        "default",
        "aks",
        "walkthrough",
        "revocation-off",
        "cert-manager-no-client-ca",
        "namespaces",
        "multi-arch-dct",
        "limits-and-key-vault-options",
    ] {
        let path = dir.path().join(format!("{name}.yaml"));
        let config = signet::config::load(&path)
            .unwrap_or_else(|e| panic!("{name}: signet rejects the chart's config.yaml: {e:#}"));
        let settings = config.validate_schema().unwrap_or_else(|e| {
            panic!(
                "{name}: signet rejects the chart's config.yaml: {e:#}\n{}",
                std::fs::read_to_string(&path).unwrap_or_default()
            )
        });
        // The probes' port is a plain-HTTP listener.
        assert!(settings.server.metrics_listen.is_some(), "{name}");
        checked.push((name, settings));
    }
    let (_, default) = &checked[0];
    assert!(default.azure.is_none());
    assert_eq!(
        default.tls.client_ca.as_deref(),
        Some(std::path::Path::new("/etc/signet/client-ca/ca.crt"))
    );
    assert_eq!(
        default.engine.success_ttl,
        std::time::Duration::from_secs(600)
    );
    assert_eq!(
        default.server.limits.request_deadline,
        std::time::Duration::from_millis(1500)
    );
    // revocation: on, with the chart's values.
    let revocation = default.engine.revocation.as_ref().expect("revocation on");
    assert_eq!(revocation.fetch_timeout, std::time::Duration::from_secs(5));
    assert_eq!(revocation.max_crl_age, std::time::Duration::from_secs(3600));
    assert!(default.engine.multi_arch.is_empty() && default.engine.dct.is_none());
    let (_, multi) = checked
        .iter()
        .find(|(name, _)| *name == "multi-arch-dct")
        .unwrap();
    assert_eq!(
        multi.engine.multi_arch["default"].mode.as_str(),
        "platforms"
    );
    assert!(multi
        .engine
        .dct
        .as_ref()
        .is_some_and(|d| d.migration_until.is_some()));
    let (_, off) = &checked[3];
    assert!(off.engine.revocation.is_none(), "revocation.enabled=false");

    for (name, settings) in &checked[1..3] {
        let azure = settings
            .azure
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no azure"));
        assert!(
            matches!(
                azure.identity,
                signet::config::AzureIdentity::WorkloadIdentity {
                    client_id: Some(_),
                    ..
                }
            ),
            "{name}"
        );
        let kv = azure
            .key_vault
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no keyVault"));
        assert_eq!(kv.certificates.len(), 1, "{name}");
        assert_eq!(kv.certificates[0].name, "wabbit-networks-io");
        assert_eq!(kv.certificates[0].store_name, "wabbit-networks");
        assert_eq!(kv.refresh_interval, std::time::Duration::from_secs(3600));
    }
    let (_, walkthrough) = &checked[2];
    let azure = walkthrough.azure.as_ref().expect("azure");
    assert_eq!(azure.acr_registries, vec!["contoso.azurecr.io".to_owned()]);
    assert_eq!(
        azure.key_vault.as_ref().expect("kv").url,
        "https://contoso-kv.vault.azure.net"
    );

    let (_, cm) = &checked[4];
    assert!(cm.tls.client_ca.is_none());
    assert_eq!(
        cm.engine.registry.plain_http,
        vec!["registry.local:5000".to_owned()]
    );
    assert!(cm.engine.registry.docker_config.is_some());

    let (_, namespaced) = &checked[5];
    assert!(default.namespaces.is_empty());
    let names: Vec<&str> = namespaced.namespaces.keys().map(String::as_str).collect();
    assert_eq!(names, ["team-a", "team-b"]);
    assert_eq!(
        namespaced.namespaces["team-a"].trust_store,
        std::path::Path::new("/etc/signet/namespaces/team-a/truststore")
    );
}
