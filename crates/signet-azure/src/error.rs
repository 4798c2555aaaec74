//! The crate's error type.

use signet_registry::RegistryError;

/// What can go wrong getting a token, exchanging it at ACR or reading Key Vault. Every
/// message says which service answered what and, where it helps, what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AzureError {
    /// The credential cannot even be built (missing environment, unreadable file).
    #[error("Azure credential not configured: {0}")]
    Config(String),
    /// Microsoft Entra ID (or IMDS) refused to issue a token.
    #[error("Entra ID token for {scope} not issued: {message}")]
    Token { scope: String, message: String },
    /// ACR's `/oauth2/exchange` refused the Entra token.
    #[error("ACR {registry} refused the token exchange: {message}")]
    Exchange { registry: String, message: String },
    /// Key Vault answered with an error (401, 403, 404 ...).
    #[error("Key Vault {vault}: certificate {certificate}: {message}")]
    KeyVault {
        vault: String,
        certificate: String,
        message: String,
    },
    /// A certificate from Key Vault that cannot be a trust anchor.
    #[error("Key Vault {vault}: certificate {certificate}: {message}")]
    BadCertificate {
        vault: String,
        certificate: String,
        message: String,
    },
    /// The connection to an Azure endpoint failed.
    #[error("cannot reach {endpoint}: {message}")]
    Transport { endpoint: String, message: String },
}

impl AzureError {
    /// As a registry error: token and exchange failures become `REGISTRY_AUTH_FAILED`
    /// (through [`RegistryError::TokenService`]).
    pub fn into_registry_error(self, registry: &str) -> RegistryError {
        let realm = format!("https://{registry}/oauth2/exchange");
        RegistryError::TokenService {
            realm,
            message: self.to_string(),
        }
    }
}

/// Advice for the Entra ID error codes a deployment meets; `None` for others.
pub(crate) fn aadsts_hint(text: &str) -> Option<&'static str> {
    let code = text.find("AADSTS").map(|i| &text[i + 6..]).map(|rest| {
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    })?;
    Some(match code.as_str() {
        "70021" | "700213" => {
            "no federated identity credential matches the service account token: the federated \
             credential on the managed identity must have the cluster's OIDC issuer URL as issuer, \
             subject system:serviceaccount:<namespace>:<service account> (the chart's default: \
             system:serviceaccount:gatekeeper-system:signet) and audience api://AzureADTokenExchange"
        }
        "700016" => {
            "the client ID is not known in this tenant: check azureWorkloadIdentity.clientId \
             (AZURE_CLIENT_ID) and the tenant (AZURE_TENANT_ID)"
        }
        "90002" | "900023" => "the tenant does not exist: check AZURE_TENANT_ID",
        "700024" | "700027" => {
            "the service account token is expired or not yet valid: the projected token file is \
             stale, or the node's clock is wrong"
        }
        "7000215" | "7000222" => "the client secret is wrong or expired: create a new one",
        "500011" => "the resource (scope) is not known in this tenant",
        _ => return None,
    })
}
