//! Microsoft Entra ID credentials: workload identity, managed identity (IMDS), service
//! principal secret. The token grants, their caching (until 5 minutes before `expires_in` /
//! `expires_on`) and the IMDS retry policy are `azure_identity`'s; the transport is ours
//! ([`HttpTransport`]).
//!
//! Workload identity uses `azure_identity`'s `ClientAssertionCredential` with an assertion
//! that re-reads `AZURE_FEDERATED_TOKEN_FILE` on every token request: Kubernetes rotates the
//! projected service-account token, and `WorkloadIdentityCredential` would keep a read copy
//! for ten minutes.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientMethodOptions, ClientOptions, Transport};
use base64::Engine as _;

use crate::error::{aadsts_hint, AzureError};
use crate::http::HttpTransport;

/// The scope of Azure Container Registry tokens.
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";
/// The scope of Key Vault tokens.
pub const KEY_VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// Which identity to authenticate as.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialConfig {
    /// Entra Workload Identity: a federated service-account token exchanged with the client
    /// assertion grant at `{authority}/{tenant}/oauth2/v2.0/token`.
    WorkloadIdentity {
        client_id: String,
        tenant_id: String,
        token_file: PathBuf,
        /// `https://login.microsoftonline.com` when `None`.
        authority_host: Option<String>,
    },
    /// A managed identity through IMDS; user-assigned when `client_id` is given.
    ManagedIdentity { client_id: Option<String> },
    /// An app registration's client secret.
    ServicePrincipal {
        tenant_id: String,
        client_id: String,
        secret: String,
        authority_host: Option<String>,
    },
    /// The Azure CLI's signed-in account (`az account get-access-token`), for laptops.
    /// `search_path` replaces `PATH` for finding `az` (tests).
    AzureCli {
        tenant_id: Option<String>,
        search_path: Option<std::ffi::OsString>,
    },
}

/// Most output read from `az`.
const AZURE_CLI_MAX_OUTPUT: u64 = 64 * 1024;

/// Runs `az` for `azure_identity::AzureCliCredential`: killed when dropped (the token call's
/// timeout), output capped, `PATH` optionally replaced.
#[derive(Debug)]
struct AzureCliExecutor {
    search_path: Option<std::ffi::OsString>,
}

#[async_trait::async_trait]
impl azure_identity::Executor for AzureCliExecutor {
    async fn run(
        &self,
        program: &std::ffi::OsStr,
        args: &[&std::ffi::OsStr],
    ) -> std::io::Result<std::process::Output> {
        use tokio::io::AsyncReadExt as _;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = &self.search_path {
            command.env("PATH", path);
        }
        let mut child = command.spawn()?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let out = child.stdout.take();
        let err = child.stderr.take();
        let read_out = async {
            if let Some(o) = out {
                let _ = o.take(AZURE_CLI_MAX_OUTPUT).read_to_end(&mut stdout).await;
            }
        };
        let read_err = async {
            if let Some(e) = err {
                let _ = e.take(AZURE_CLI_MAX_OUTPUT).read_to_end(&mut stderr).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await?;
        Ok(std::process::Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Longest one `az account get-access-token` may run.
const AZURE_CLI_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialConfig::WorkloadIdentity {
                client_id,
                tenant_id,
                token_file,
                authority_host,
            } => f
                .debug_struct("WorkloadIdentity")
                .field("client_id", client_id)
                .field("tenant_id", tenant_id)
                .field("token_file", token_file)
                .field("authority_host", authority_host)
                .finish(),
            CredentialConfig::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
            CredentialConfig::ServicePrincipal {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ServicePrincipal")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("secret", &"<redacted>")
                .finish(),
            CredentialConfig::AzureCli { tenant_id, .. } => f
                .debug_struct("AzureCli")
                .field("tenant_id", tenant_id)
                .finish_non_exhaustive(),
        }
    }
}

impl CredentialConfig {
    /// Workload identity from the variables the Azure Workload Identity webhook injects:
    /// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`,
    /// `AZURE_AUTHORITY_HOST`. `client_id` / `tenant_id` override the environment.
    pub fn workload_identity_from_env(
        client_id: Option<String>,
        tenant_id: Option<String>,
    ) -> Result<Self, AzureError> {
        Self::workload_identity_from(|k| std::env::var(k).ok(), client_id, tenant_id)
    }

    /// [`Self::workload_identity_from_env`] with another source of variables.
    pub fn workload_identity_from(
        var: impl Fn(&str) -> Option<String>,
        client_id: Option<String>,
        tenant_id: Option<String>,
    ) -> Result<Self, AzureError> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let webhook = "the pod was not mutated by the Azure Workload Identity webhook: the pod \
                       needs the label azure.workload.identity/use: \"true\" and its service \
                       account the annotation azure.workload.identity/client-id \
                       (chart: azureWorkloadIdentity.enabled and .clientId)";
        let token_file = var("AZURE_FEDERATED_TOKEN_FILE").ok_or_else(|| {
            AzureError::Config(format!("AZURE_FEDERATED_TOKEN_FILE is not set: {webhook}"))
        })?;
        let client_id = client_id
            .filter(|c| !c.is_empty())
            .or_else(|| var("AZURE_CLIENT_ID"))
            .ok_or_else(|| AzureError::Config(format!("AZURE_CLIENT_ID is not set: {webhook}")))?;
        let tenant_id = tenant_id
            .filter(|c| !c.is_empty())
            .or_else(|| var("AZURE_TENANT_ID"))
            .ok_or_else(|| AzureError::Config(format!("AZURE_TENANT_ID is not set: {webhook}")))?;
        Ok(CredentialConfig::WorkloadIdentity {
            client_id,
            tenant_id,
            token_file: PathBuf::from(token_file),
            authority_host: var("AZURE_AUTHORITY_HOST"),
        })
    }
}

/// A source of Entra ID access tokens (cached until shortly before they expire).
#[derive(Clone)]
pub struct EntraCredential {
    inner: Arc<dyn TokenCredential>,
    config: Arc<CredentialConfig>,
}

impl fmt::Debug for EntraCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraCredential")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The workload identity assertion: the projected service-account token, read anew each time.
#[derive(Debug)]
struct FederatedTokenFile(PathBuf);

#[async_trait::async_trait]
impl azure_identity::ClientAssertion for FederatedTokenFile {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let text = tokio::fs::read_to_string(&self.0).await.map_err(|e| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                format!(
                    "cannot read the federated token file {} (AZURE_FEDERATED_TOKEN_FILE): {e}",
                    self.0.display()
                ),
            )
        })?;
        Ok(text.trim().to_owned())
    }
}

fn client_options(transport: &HttpTransport, authority_host: Option<&str>) -> ClientOptions {
    let mut options = ClientOptions {
        transport: Some(Transport::new(Arc::new(transport.clone()))),
        ..ClientOptions::default()
    };
    if let Some(host) = authority_host {
        let mut custom = azure_core::cloud::CustomConfiguration::default();
        custom.authority_host = host.trim_end_matches('/').to_owned();
        options.cloud = Some(Arc::new(custom.into()));
    }
    options
}

fn sdk_error(e: azure_core::Error) -> String {
    let s = e.to_string();
    let s = s.split("\nTo troubleshoot").next().unwrap_or(&s).trim();
    s.to_owned()
}

impl EntraCredential {
    /// Builds the credential; nothing is fetched yet.
    pub fn new(config: CredentialConfig, transport: &HttpTransport) -> Result<Self, AzureError> {
        let bad = |e: azure_core::Error| AzureError::Config(sdk_error(e));
        let inner: Arc<dyn TokenCredential> = match &config {
            CredentialConfig::WorkloadIdentity {
                client_id,
                tenant_id,
                token_file,
                authority_host,
            } => azure_identity::ClientAssertionCredential::new(
                tenant_id.clone(),
                client_id.clone(),
                FederatedTokenFile(token_file.clone()),
                Some(azure_identity::ClientAssertionCredentialOptions {
                    client_options: client_options(transport, authority_host.as_deref()),
                }),
            )
            .map_err(bad)?,
            CredentialConfig::ManagedIdentity { client_id } => {
                azure_identity::ManagedIdentityCredential::new(Some(
                    azure_identity::ManagedIdentityCredentialOptions {
                        user_assigned_id: client_id
                            .clone()
                            .map(azure_identity::UserAssignedId::ClientId),
                        client_options: client_options(transport, None),
                    },
                ))
                .map_err(bad)?
            }
            CredentialConfig::ServicePrincipal {
                tenant_id,
                client_id,
                secret,
                authority_host,
            } => azure_identity::ClientSecretCredential::new(
                tenant_id,
                client_id.clone(),
                Secret::new(secret.clone()),
                Some(azure_identity::ClientSecretCredentialOptions {
                    client_options: client_options(transport, authority_host.as_deref()),
                }),
            )
            .map_err(bad)?,
            CredentialConfig::AzureCli {
                tenant_id,
                search_path,
            } => azure_identity::AzureCliCredential::new(Some(
                azure_identity::AzureCliCredentialOptions {
                    tenant_id: tenant_id.clone(),
                    executor: Some(Arc::new(AzureCliExecutor {
                        search_path: search_path.clone(),
                    })),
                    ..Default::default()
                },
            ))
            .map_err(bad)?,
        };
        Ok(EntraCredential {
            inner,
            config: Arc::new(config),
        })
    }

    /// The tenant, where the configuration names it (not for managed identity).
    pub fn tenant_id(&self) -> Option<&str> {
        match &*self.config {
            CredentialConfig::WorkloadIdentity { tenant_id, .. }
            | CredentialConfig::ServicePrincipal { tenant_id, .. } => Some(tenant_id),
            CredentialConfig::ManagedIdentity { .. } => None,
            CredentialConfig::AzureCli { tenant_id, .. } => tenant_id.as_deref(),
        }
    }

    /// What this credential is, for logs.
    pub fn describe(&self) -> String {
        match &*self.config {
            CredentialConfig::WorkloadIdentity {
                client_id,
                tenant_id,
                ..
            } => format!("workload identity (client {client_id}, tenant {tenant_id})"),
            CredentialConfig::ManagedIdentity { client_id: Some(c) } => {
                format!("managed identity (client {c})")
            }
            CredentialConfig::ManagedIdentity { client_id: None } => {
                "system-assigned managed identity".into()
            }
            CredentialConfig::ServicePrincipal {
                client_id,
                tenant_id,
                ..
            } => format!("service principal (client {client_id}, tenant {tenant_id})"),
            CredentialConfig::AzureCli { .. } => {
                "the Azure CLI's signed-in account (az login)".into()
            }
        }
    }

    /// An access token for `scope` (e.g. [`ACR_SCOPE`]).
    pub async fn token(&self, scope: &str) -> Result<String, AzureError> {
        let result = if matches!(&*self.config, CredentialConfig::AzureCli { .. }) {
            match tokio::time::timeout(AZURE_CLI_TIMEOUT, self.inner.get_token(&[scope], None))
                .await
            {
                Ok(r) => r,
                Err(_) => {
                    return Err(AzureError::Token {
                        scope: scope.to_owned(),
                        message: format!(
                            "az account get-access-token gave no answer within {} s",
                            AZURE_CLI_TIMEOUT.as_secs()
                        ),
                    })
                }
            }
        } else {
            self.inner.get_token(&[scope], None).await
        };
        match result {
            Ok(t) => Ok(t.token.secret().to_owned()),
            Err(e) => Err(AzureError::Token {
                scope: scope.to_owned(),
                message: self.explain(sdk_error(e)),
            }),
        }
    }

    /// Adds what to do to an Entra or IMDS error.
    fn explain(&self, message: String) -> String {
        let mut out = message;
        if let Some(hint) = aadsts_hint(&out) {
            out.push_str(" — ");
            out.push_str(hint);
            if let CredentialConfig::WorkloadIdentity {
                token_file,
                client_id,
                ..
            } = &*self.config
            {
                if let Some(claims) = jwt_claims_of_file(token_file) {
                    out.push_str(&format!(
                        "; the service account token presents issuer {:?}, subject {:?}, audience {} \
                         (managed identity client {client_id})",
                        claims.iss.unwrap_or_default(),
                        claims.sub.unwrap_or_default(),
                        claims.aud.map(|a| a.to_string()).unwrap_or_default(),
                    ));
                }
            }
        } else if matches!(&*self.config, CredentialConfig::AzureCli { .. }) {
            out.push_str(
                " — sign in with `az login` (Azure CLI 2.54 or newer on PATH), or give registry \
                 credentials with --docker-config",
            );
        } else if matches!(&*self.config, CredentialConfig::ManagedIdentity { .. })
            && (out.contains("Identity not found") || out.contains("has not been assigned"))
        {
            out.push_str(
                " — the managed identity is not assigned to this node pool's VM scale set, or the \
                 client ID is wrong",
            );
        }
        out
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct Claims {
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) aud: Option<serde_json::Value>,
    pub(crate) exp: Option<i64>,
}

/// The (unverified) claims of a JWT: only to explain errors and to schedule refreshes.
pub(crate) fn jwt_claims(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn jwt_claims_of_file(path: &std::path::Path) -> Option<Claims> {
    let text = std::fs::read_to_string(path).ok()?;
    jwt_claims(text.trim())
}

impl EntraCredential {
    /// The SDK credential, for the SDK clients of this crate.
    pub(crate) fn sdk(&self) -> Arc<dyn TokenCredential> {
        self.inner.clone()
    }
}
