//! The `azure:` section: which Entra identity, which ACR registries, which Key Vault
//! certificates, and their validation.

use super::*;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureConfig {
    #[serde(default)]
    pub workload_identity: bool,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub managed_identity_client_id: Option<String>,
    pub service_principal: Option<ServicePrincipalConfig>,
    #[serde(default)]
    pub acr_registries: Vec<String>,
    pub key_vault: Option<KeyVaultConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret_file: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVaultConfig {
    pub url: String,
    #[serde(default)]
    pub certificates: Vec<KeyVaultCertificateConfig>,
    pub refresh_interval: Option<Dur>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVaultCertificateConfig {
    pub name: String,
    pub version: Option<String>,
    pub store: String,
    /// The newest enabled versions trusted (default 1), for rotation.
    pub versions: Option<usize>,
    /// Anchors from the chain in the certificate's secret (PEM or PKCS#12) instead of `cer`.
    #[serde(default)]
    pub chain_from_secret: bool,
}

/// The Azure identity, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureIdentity {
    /// Workload identity; `None` fields come from the webhook's environment variables.
    WorkloadIdentity {
        client_id: Option<String>,
        tenant_id: Option<String>,
    },
    ManagedIdentity {
        client_id: Option<String>,
    },
    ServicePrincipal {
        tenant_id: String,
        client_id: String,
        client_secret_file: PathBuf,
    },
}

/// `azure:`, validated.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    pub identity: AzureIdentity,
    /// Lower-case ACR login servers.
    pub acr_registries: Vec<String>,
    pub key_vault: Option<KeyVaultSettings>,
}

#[derive(Debug, Clone)]
pub struct KeyVaultSettings {
    pub url: String,
    pub certificates: Vec<signet_azure::KeyVaultCertificate>,
    pub refresh_interval: Duration,
}

impl AzureSettings {
    /// The Entra ID credential (reads the environment / secret file; fetches nothing).
    pub fn credential(
        &self,
        transport: &signet_azure::HttpTransport,
    ) -> anyhow::Result<signet_azure::EntraCredential> {
        use anyhow::Context as _;
        let config = match &self.identity {
            AzureIdentity::WorkloadIdentity {
                client_id,
                tenant_id,
            } => signet_azure::CredentialConfig::workload_identity_from_env(
                client_id.clone(),
                tenant_id.clone(),
            )
            .context("azure.workloadIdentity")?,
            AzureIdentity::ManagedIdentity { client_id } => {
                signet_azure::CredentialConfig::ManagedIdentity {
                    client_id: client_id.clone(),
                }
            }
            AzureIdentity::ServicePrincipal {
                tenant_id,
                client_id,
                client_secret_file,
            } => {
                let secret = std::fs::read_to_string(client_secret_file).with_context(|| {
                    format!(
                        "azure.servicePrincipal.clientSecretFile {}",
                        client_secret_file.display()
                    )
                })?;
                signet_azure::CredentialConfig::ServicePrincipal {
                    tenant_id: tenant_id.clone(),
                    client_id: client_id.clone(),
                    secret: secret.trim_end_matches(['\n', '\r']).to_owned(),
                    authority_host: std::env::var("AZURE_AUTHORITY_HOST").ok(),
                }
            }
        };
        signet_azure::EntraCredential::new(config, transport).map_err(anyhow::Error::msg)
    }
}

/// "This file must exist" (a no-op for [`Config::validate_schema`]).
pub(super) type ExistCheck<'a> = dyn Fn(&mut Vec<String>, &str, &Path, bool) + 'a;

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl AzureConfig {
    pub(super) fn validate(
        &self,
        errors: &mut Vec<String>,
        exist: &ExistCheck<'_>,
    ) -> Option<AzureSettings> {
        let n = errors.len();
        let guid = |errors: &mut Vec<String>, key: &str, v: &str| {
            if !is_guid(v) {
                errors.push(format!(
                    "{key}: {v:?} is not a GUID like 00000000-0000-0000-0000-000000000000"
                ));
            }
        };
        let others = [
            (
                "azure.managedIdentityClientId",
                self.managed_identity_client_id.is_some(),
            ),
            ("azure.servicePrincipal", self.service_principal.is_some()),
        ];
        let identity = if self.workload_identity {
            for (k, set) in others {
                if set {
                    errors.push(format!(
                        "{k} and azure.workloadIdentity exclude each other: choose one identity"
                    ));
                }
            }
            for (k, v) in [
                ("azure.clientId", &self.client_id),
                ("azure.tenantId", &self.tenant_id),
            ] {
                if let Some(v) = v {
                    guid(errors, k, v);
                }
            }
            AzureIdentity::WorkloadIdentity {
                client_id: self.client_id.clone(),
                tenant_id: self.tenant_id.clone(),
            }
        } else {
            for (k, v) in [
                ("azure.clientId", &self.client_id),
                ("azure.tenantId", &self.tenant_id),
            ] {
                if v.is_some() {
                    errors.push(format!(
                        "{k} is for workload identity (azure.workloadIdentity: true); a service \
                         principal names its own in azure.servicePrincipal"
                    ));
                }
            }
            match (&self.service_principal, &self.managed_identity_client_id) {
                (Some(_), Some(_)) => {
                    errors.push(
                        "azure.servicePrincipal and azure.managedIdentityClientId exclude each \
                         other: choose one identity"
                            .into(),
                    );
                    AzureIdentity::ManagedIdentity { client_id: None }
                }
                (Some(sp), None) => {
                    guid(errors, "azure.servicePrincipal.tenantId", &sp.tenant_id);
                    guid(errors, "azure.servicePrincipal.clientId", &sp.client_id);
                    exist(
                        errors,
                        "azure.servicePrincipal.clientSecretFile",
                        &sp.client_secret_file,
                        false,
                    );
                    AzureIdentity::ServicePrincipal {
                        tenant_id: sp.tenant_id.clone(),
                        client_id: sp.client_id.clone(),
                        client_secret_file: sp.client_secret_file.clone(),
                    }
                }
                (None, id) => {
                    if let Some(id) = id {
                        guid(errors, "azure.managedIdentityClientId", id);
                    }
                    AzureIdentity::ManagedIdentity {
                        client_id: id.clone(),
                    }
                }
            }
        };

        let mut acr = Vec::new();
        for r in &self.acr_registries {
            if signet_azure::is_acr_host(r) {
                acr.push(r.to_ascii_lowercase());
            } else {
                errors.push(format!(
                    "azure.acrRegistries: {r:?} is not an Azure Container Registry login server \
                     (NAME.azurecr.io, no scheme, port or path); Azure tokens go to listed ACRs \
                     only, other registries take credentials from registry.dockerConfig"
                ));
            }
        }

        let key_vault = self.key_vault.as_ref().map(|kv| {
            if !signet_azure::is_key_vault_url(&kv.url) {
                errors.push(format!(
                    "azure.keyVault.url: {:?} is not a Key Vault URL like https://NAME.vault.azure.net (https://HOST, no path)",
                    kv.url
                ));
            }
            if kv.certificates.is_empty() {
                errors.push(
                    "azure.keyVault.certificates: name at least one certificate ({name, store})"
                        .into(),
                );
            }
            let mut certificates = Vec::new();
            for (i, c) in kv.certificates.iter().enumerate() {
                let key = format!("azure.keyVault.certificates[{i}]");
                let name_ok = |s: &str| {
                    (1..=127).contains(&s.len())
                        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                };
                if !name_ok(&c.name) {
                    errors.push(format!(
                        "{key}.name: {:?} is not a Key Vault object name (1-127 letters, digits, -)",
                        c.name
                    ));
                }
                let version = c.version.clone().filter(|v| !v.is_empty());
                if let Some(v) = &version {
                    if !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        errors.push(format!("{key}.version: {v:?} is not a Key Vault version id"));
                    }
                }
                let parsed = c.store.split_once(':').and_then(|(t, n)| {
                    let t = signet_notation::truststore::StoreType::parse(t)?;
                    let valid = !n.is_empty()
                        && n != "."
                        && n != ".."
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                    valid.then(|| (t, n.to_owned()))
                });
                let versions = c.versions.unwrap_or(1);
                if !(1..=10).contains(&versions) {
                    errors.push(format!("{key}.versions: {versions} is out of range [1, 10]"));
                }
                if version.is_some() && c.versions.is_some() {
                    errors.push(format!(
                        "{key}: give either version (one fixed version) or versions (the newest N enabled), not both"
                    ));
                }
                match parsed {
                    Some((store_type, store_name)) => {
                        certificates.push(signet_azure::KeyVaultCertificate {
                            name: c.name.clone(),
                            version,
                            store_type,
                            store_name,
                            versions,
                            chain_from_secret: c.chain_from_secret,
                        })
                    }
                    None => errors.push(format!(
                        "{key}.store: {:?} must be TYPE:NAME as the trust policy writes it \
                         (ca:NAME, signingAuthority:NAME or tsa:NAME)",
                        c.store
                    )),
                }
            }
            let refresh_interval = kv.refresh_interval.map(|d| d.0).unwrap_or(Duration::from_secs(3600));
            if !(Duration::from_secs(60)..=Duration::from_secs(86_400)).contains(&refresh_interval) {
                errors.push(format!(
                    "azure.keyVault.refreshInterval: {refresh_interval:?} is out of range [1m, 24h]"
                ));
            }
            KeyVaultSettings {
                url: kv.url.trim_end_matches('/').to_owned(),
                certificates,
                refresh_interval,
            }
        });

        if acr.is_empty() && key_vault.is_none() {
            errors.push(
                "azure: nothing to do: list azure.acrRegistries and/or configure azure.keyVault \
                 (or remove the section)"
                    .into(),
            );
        }
        (errors.len() == n).then_some(AzureSettings {
            identity,
            acr_registries: acr,
            key_vault,
        })
    }
}
