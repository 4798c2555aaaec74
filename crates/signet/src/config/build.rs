//! From validated settings to the engine's configuration: reading credentials and CA files.

use super::*;

impl EngineSettings {
    /// Reads the credentials and CA files and builds the engine configuration.
    pub fn engine_config(&self) -> anyhow::Result<signet_engine::EngineConfig> {
        use anyhow::Context as _;
        let r = &self.registry;
        let mut registry = signet_registry::RegistryConfig::default();
        let mut docker = match &r.docker_config {
            Some(p) => signet_registry::DockerConfig::from_file(p)
                .with_context(|| format!("registry.dockerConfig {}", p.display()))?,
            None => signet_registry::DockerConfig::default(),
        };
        for p in &r.ca_files {
            let pem =
                std::fs::read(p).with_context(|| format!("registry.caFiles {}", p.display()))?;
            registry
                .add_ca_pem(&pem)
                .with_context(|| format!("registry.caFiles {}", p.display()))?;
        }
        for h in &r.plain_http {
            registry.allow_plain_http(h);
        }
        for (host, hc) in &r.hosts {
            if let Some(p) = &hc.ca_file {
                let pem = std::fs::read(p)
                    .with_context(|| format!("registry.hosts.{host}.caFile {}", p.display()))?;
                registry
                    .add_host_ca_pem(host, &pem)
                    .with_context(|| format!("registry.hosts.{host}.caFile {}", p.display()))?;
            }
            if hc.plain_http {
                registry.allow_plain_http(host);
            }
            if !hc.token_realms.is_empty() {
                registry
                    .token_realms
                    .entry(host.clone())
                    .or_default()
                    .extend(hc.token_realms.iter().cloned());
            }
            if let (Some(user), Some(pf)) = (&hc.username, &hc.password_file) {
                let password = std::fs::read_to_string(pf).with_context(|| {
                    format!("registry.hosts.{host}.passwordFile {}", pf.display())
                })?;
                docker.insert(
                    host,
                    signet_registry::Credential::Basic {
                        username: user.clone(),
                        password: password.trim_end_matches(['\n', '\r']).to_owned(),
                    },
                );
            }
        }
        let dct = self
            .dct
            .as_ref()
            .map(|d| dct_verifier(d, &docker))
            .transpose()?;
        registry.credentials = docker.into_source();
        if let Some(azure) = self.azure.as_ref().filter(|a| !a.acr_registries.is_empty()) {
            // ACR hosts sign in with Entra ID; every other registry keeps the Docker config.
            let transport = signet_azure::HttpTransport::new();
            let credential = azure.credential(&transport)?;
            registry.credentials = signet_azure::AcrTokenSource::new(
                &azure.acr_registries,
                credential,
                transport,
                registry.credentials.clone(),
            )
            .into_source();
        }
        if let Some(n) = r.max_signatures {
            registry.max_signatures = n;
        }
        if let Some(n) = r.max_retries {
            registry.max_retries = n;
        }
        if let Some(n) = r.concurrency {
            registry.concurrency = n;
        }
        Ok(signet_engine::EngineConfig {
            registry,
            max_concurrent_verifications: self.max_concurrent_verifications,
            success_ttl: self.success_ttl,
            failure_ttl: self.failure_ttl,
            tag_ttl: self.tag_ttl,
            fixed_time: None,
            revocation: self.revocation.clone(),
            multi_arch: self.multi_arch.clone(),
            dct,
            ..signet_engine::EngineConfig::default()
        })
    }
}

/// The DCT verifier, with the Docker config's user name and password for each Notary
/// server's host (sent only to a token realm on that host).
fn dct_verifier(
    dct: &signet_dct::Dct,
    docker: &signet_registry::DockerConfig,
) -> anyhow::Result<signet_dct::DctVerifier> {
    let mut verifier =
        signet_dct::DctVerifier::new(dct.clone()).map_err(|e| anyhow::anyhow!("dct: {e}"))?;
    let servers: Vec<String> = dct.servers().map(str::to_owned).collect();
    for server in servers {
        let host = server
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_owned());
        if let Some(signet_registry::Credential::Basic { username, password }) =
            host.as_deref().and_then(|h| docker.get(h))
        {
            verifier = verifier.with_credentials(
                &server,
                signet_dct::BasicCredentials {
                    username: username.clone(),
                    password: password.clone(),
                },
            );
        }
    }
    Ok(verifier)
}
