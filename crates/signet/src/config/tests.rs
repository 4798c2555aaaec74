use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("4s"), Ok(Duration::from_secs(4)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn unknown_keys_are_rejected_with_their_place() {
    let e = yaml_serde::from_str::<Config>("limits:\n  requestDeadlin: 4s\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `requestDeadlin`"), "{e}");
    assert!(e.contains("limits"), "{e}");
    let e = yaml_serde::from_str::<Config>("limits:\n  requestDeadline: 4 parsecs\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid duration"), "{e}");
}

#[test]
fn validation_names_every_problem() {
    let c: Config = yaml_serde::from_str(
        "listen: nowhere\nlimits:\n  requestDeadline: 60s\n  maxKeysPerRequest: 0\nlog:\n  level: loud\n",
    )
    .unwrap();
    let e = c.validate().unwrap_err().to_string();
    for needle in [
        "listen: \"nowhere\"",
        "tls.certFile",
        "tls.clientCAFile",
        "trust.policyFile",
        "limits.requestDeadline: 60s",
        "limits.maxKeysPerRequest: 0",
        "log.level",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}

const BASE: &str = "tls: {certFile: /x/tls.crt, keyFile: /x/tls.key, clientCAFile: /x/ca.crt}\n\
                    trust: {policyFile: /x/trustpolicy.json, storeRoot: /x/store}\n";

#[test]
fn azure_section_is_validated_with_precise_messages() {
    let ok: Config = yaml_serde::from_str(&format!(
        "{BASE}azure:\n  workloadIdentity: true\n  acrRegistries: [MyRegistry.azurecr.io]\n  \
         keyVault:\n    url: https://signetkv.vault.azure.net/\n    refreshInterval: 30m\n    \
         certificates:\n      - {{name: wabbit-networks-io, store: \"ca:wabbit-networks\"}}\n      \
         - {{name: tsa-root, version: 0123abcd, store: \"tsa:tsa\"}}\n      \
         - {{name: issued, store: \"ca:issued\", versions: 2, chainFromSecret: true}}\n"
    ))
    .unwrap();
    let settings = ok.validate_schema().unwrap();
    let azure = settings.azure.unwrap();
    assert_eq!(
        azure.acr_registries,
        vec!["myregistry.azurecr.io".to_owned()]
    );
    assert_eq!(
        azure.identity,
        AzureIdentity::WorkloadIdentity {
            client_id: None,
            tenant_id: None
        }
    );
    let kv = azure.key_vault.unwrap();
    assert_eq!(kv.url, "https://signetkv.vault.azure.net");
    assert_eq!(kv.refresh_interval, Duration::from_secs(1800));
    assert_eq!(kv.certificates[0].store_name, "wabbit-networks");
    assert_eq!(kv.certificates[1].version.as_deref(), Some("0123abcd"));
    assert_eq!(kv.certificates[0].versions, 1);
    assert!(!kv.certificates[0].chain_from_secret);
    assert_eq!(kv.certificates[2].versions, 2);
    assert!(kv.certificates[2].chain_from_secret);
    assert!(settings.engine.azure.is_some());
    // Files are checked by validate(), not by validate_schema().
    assert!(ok
        .validate()
        .unwrap_err()
        .to_string()
        .contains("tls.certFile: /x/tls.crt"));

    let bad: Config = yaml_serde::from_str(&format!(
        "{BASE}azure:\n  workloadIdentity: true\n  managedIdentityClientId: nope\n  \
         acrRegistries: [docker.io, https://x.azurecr.io]\n  keyVault:\n    \
         url: http://kv.example\n    refreshInterval: 5s\n    \
         certificates: [{{name: bad_name, store: \"root:x\"}}, \
         {{name: both, store: \"ca:x\", version: abc, versions: 2}}, \
         {{name: many, store: \"ca:x\", versions: 50}}]\n"
    ))
    .unwrap();
    let e = bad.validate_schema().unwrap_err().to_string();
    for needle in [
        "azure.managedIdentityClientId and azure.workloadIdentity exclude each other",
        "azure.acrRegistries: \"docker.io\" is not an Azure Container Registry",
        "azure.acrRegistries: \"https://x.azurecr.io\"",
        "azure.keyVault.url: \"http://kv.example\"",
        "azure.keyVault.refreshInterval",
        "azure.keyVault.certificates[0].name: \"bad_name\"",
        "azure.keyVault.certificates[0].store: \"root:x\" must be TYPE:NAME",
        "azure.keyVault.certificates[1]: give either version",
        "azure.keyVault.certificates[2].versions: 50 is out of range",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
    let empty: Config = yaml_serde::from_str(&format!("{BASE}azure: {{}}\n")).unwrap();
    let e = empty.validate_schema().unwrap_err().to_string();
    assert!(e.contains("azure: nothing to do"), "{e}");
    let e = yaml_serde::from_str::<Config>("azure:\n  acrRegistry: [x]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `acrRegistry`"), "{e}");
}

#[test]
fn multi_arch_statements_are_validated() {
    let ok: Config = yaml_serde::from_str(&format!(
        "{BASE}multiArch:\n  statements:\n    prod: {{mode: platforms, platforms: [linux/amd64, linux/arm/v7]}}\n    \
         dev: {{mode: indexOrPlatforms}}\n    plain: {{}}\n"
    ))
    .unwrap();
    let m = ok.validate_schema().unwrap().engine.multi_arch;
    assert_eq!(m["prod"].mode, signet_engine::MultiArchMode::Platforms);
    assert_eq!(m["prod"].platforms, vec!["linux/amd64", "linux/arm/v7"]);
    assert_eq!(
        m["dev"].mode,
        signet_engine::MultiArchMode::IndexOrPlatforms
    );
    assert_eq!(m["plain"].mode, signet_engine::MultiArchMode::Index);

    let bad: Config = yaml_serde::from_str(&format!(
        "{BASE}multiArch:\n  statements:\n    a: {{mode: perPlatform}}\n    \
         b: {{mode: platforms, platforms: [linux]}}\n    c: {{platforms: [linux/amd64]}}\n"
    ))
    .unwrap();
    let e = bad.validate_schema().unwrap_err().to_string();
    for needle in [
        "multiArch.statements.a.mode: \"perPlatform\" is not one of index, platforms, indexOrPlatforms",
        "multiArch.statements.b.platforms: \"linux\" is not a platform",
        "multiArch.statements.c.platforms: only used with mode platforms",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}

#[test]
fn dct_section_is_validated_once_with_clear_errors() {
    let key = "ab".repeat(32);
    let ok: Config = yaml_serde::from_str(&format!(
        "{BASE}dct:\n  migrationUntil: \"2028-03-31T00:00:00Z\"\n  repositories:\n    \
         - {{scope: \"reg.example/team/*\", server: \"https://notary.example:4443\", rootKeys: [\"{key}\"]}}\n"
    ))
    .unwrap();
    let settings = ok.validate_schema().unwrap();
    let dct = settings.engine.dct.as_ref().unwrap();
    assert!(dct.migration_until.is_some());
    assert!(dct.repository_for("reg.example/team/app").is_some());
    // The engine configuration carries the verifier.
    assert!(settings.engine.engine_config().unwrap().dct.is_some());

    for (yaml, needle) in [
        (
            "dct:\n  repositories: [{scope: reg.example/app, server: \"https://n.example\"}]\n",
            "no trust on first use",
        ),
        (
            &format!("dct:\n  repositories: [{{scope: reg.example/app, server: \"http://n.example\", rootKeys: [\"{key}\"]}}]\n"),
            "must be an https:// URL",
        ),
        ("dct:\n  migrationUntil: next year\n", "migrationUntil \"next year\""),
    ] {
        let bad: Config = yaml_serde::from_str(&format!("{BASE}{yaml}")).unwrap();
        let e = bad.validate_schema().unwrap_err().to_string();
        assert!(e.contains("dct: ") && e.contains(needle), "{needle} not in {e}");
    }
    let e = yaml_serde::from_str::<Config>("dct:\n  trustOnFirstUse: true\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `trustOnFirstUse`"), "{e}");
}

#[test]
fn namespaces_are_validated_with_precise_messages() {
    let ok: Config = yaml_serde::from_str(&format!(
        "{BASE}namespaces:\n  team-a:\n    trust: {{policyFile: /a/p.json, storeRoot: /a/store}}\n"
    ))
    .unwrap();
    let settings = ok.validate_schema().unwrap();
    assert_eq!(
        settings.namespaces["team-a"],
        NamespaceTrust {
            trust_policy: "/a/p.json".into(),
            trust_store: "/a/store".into()
        }
    );
    // The files of a namespace are checked like the cluster's.
    let e = ok.validate().unwrap_err().to_string();
    assert!(
        e.contains("namespaces.team-a.trust.policyFile: /a/p.json"),
        "{e}"
    );
    assert!(
        e.contains("namespaces.team-a.trust.storeRoot: /a/store"),
        "{e}"
    );

    let bad: Config = yaml_serde::from_str(&format!(
        "{BASE}namespaces:\n  Team_A:\n    trust: {{policyFile: /a/p.json, storeRoot: /a/s}}\n  \
         team-b:\n    trust: {{storeRoot: /b/s}}\n  team-c:\n    trust: {{policyFile: /c/p.json}}\n  \
         team-d:\n    trust: {{policyFile: /x/trustpolicy.json, storeRoot: /x/store}}\n"
    ))
    .unwrap();
    let e = bad.validate_schema().unwrap_err().to_string();
    for needle in [
        "namespaces: \"Team_A\" is not a namespace name",
        "namespaces.team-b.trust.policyFile is required",
        "namespaces.team-c.trust.storeRoot is required",
        "namespaces.team-d.trust: the cluster's policy and stores",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
    let many: String = (0..=MAX_NAMESPACES)
        .map(|i| format!("  ns{i}:\n    trust: {{policyFile: /p{i}.json, storeRoot: /s{i}}}\n"))
        .collect();
    let bad: Config = yaml_serde::from_str(&format!("{BASE}namespaces:\n{many}")).unwrap();
    let e = bad.validate_schema().unwrap_err().to_string();
    assert!(
        e.contains("namespaces: 65 namespaces have their own trust, at most 64"),
        "{e}"
    );
    let e = yaml_serde::from_str::<Config>("namespaces:\n  a:\n    policyFile: /p\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `policyFile`"), "{e}");
}

#[test]
fn revocation_network_lists_are_validated() {
    let ok: Config = yaml_serde::from_str(&format!(
        "{BASE}revocation:\n  allow: [crl.corp.example, 10.20.0.0/16]\n  deny: [\"*.internal.example\"]\n"
    ))
    .unwrap();
    let settings = ok.validate_schema().unwrap();
    let network = settings.engine.revocation.unwrap().network;
    let allowed: http::Uri = "http://10.20.1.1/ca.crl".parse().unwrap();
    assert!(network.check_url(&allowed).is_ok());
    let denied: http::Uri = "http://10.21.1.1/ca.crl".parse().unwrap();
    assert!(network.check_url(&denied).is_err());
    let denied: http::Uri = "http://crl.internal.example/ca.crl".parse().unwrap();
    assert!(network.check_url(&denied).is_err());

    let bad: Config =
        yaml_serde::from_str(&format!("{BASE}revocation:\n  allow: [10.0.0.0/99]\n")).unwrap();
    let e = bad.validate_schema().unwrap_err().to_string();
    assert!(e.contains("revocation.allow: \"10.0.0.0/99\""), "{e}");
}
