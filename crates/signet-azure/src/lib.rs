//! Azure adapters for Signet: Microsoft Entra ID credentials, the Azure Container Registry
//! token source and Key Vault trust sources.
//!
//! An adapter: nothing else in the tree imports Azure SDK types. It does not own when Key
//! Vault is read again (the server's `trust_refresh`) or how a token is used (the registry
//! client). The public API speaks in
//! this crate's and the workspace's types ([`signet_registry::TokenSource`],
//! [`signet_notation::truststore::TrustStore`]).
//!
//! | piece | what | library |
//! |---|---|---|
//! | [`HttpTransport`] | `signet-http` (proxy from the environment, Mozilla + system roots, aws-lc-rs) under hyper-util's pooled client; the `azure_core` `HttpClient` | ours |
//! | [`EntraCredential`] | workload identity (client assertion from the projected token file, re-read on every fetch), managed identity (IMDS), service principal secret, the Azure CLI's login (laptops); tokens cached until 5 minutes before expiry | `azure_identity` (`ClientAssertionCredential`, `ManagedIdentityCredential`, `ClientSecretCredential`, `AzureCliCredential`) |
//! | [`AcrTokenSource`] | Entra token → `POST https://{registry}/oauth2/exchange` → ACR refresh token → [`signet_registry::Credential::IdentityToken`] for configured ACR hosts only | ours: there is no ACR client in the Azure SDK for Rust; it is one form POST |
//! | [`KeyVaultTrustSource`] | `GET {vault}/certificates/{name}/versions`, `…/{version}` (and `/secrets/{name}/{version}` for the chain) with Key Vault's challenge authentication; the newest enabled versions' `cer` or secret chain → trust store; deleted or disabled certificates dropped | `azure_security_keyvault_certificates`, `_secrets`, `p12-keystore` |
//!
//! Every house library talks to local fakes in the tests honestly: the fakes sit behind the
//! real host names (`login.microsoftonline.com`, `169.254.169.254`, `NAME.vault.azure.net`)
//! through [`HttpTransport::resolve`], serve certificates of a generated CA
//! ([`HttpTransport::with_roots_pem`]), and the libraries run with their production settings
//! (challenge-resource verification on, real authority host, real IMDS URL).
//!
//! Errors are [`AzureError`]; failures of the ACR token source reach the registry client as
//! [`signet_registry::RegistryError::TokenService`], which is `REGISTRY_AUTH_FAILED`.

mod acr;
mod credential;
mod error;
mod http;
mod keyvault;

pub use acr::AcrTokenSource;
pub use credential::{CredentialConfig, EntraCredential, ACR_SCOPE, KEY_VAULT_SCOPE};
pub use error::AzureError;
pub use http::{HttpTransport, TransportError, IMDS_HOST};
pub use keyvault::{DroppedCertificate, KeyVaultCertificate, KeyVaultFetch, KeyVaultTrustSource};

/// Whether `host` is an Azure Container Registry login server (`NAME.azurecr.io`, or the
/// sovereign clouds' `azurecr.cn` / `azurecr.us`): the only hosts configuration may list.
pub fn is_acr_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    ["azurecr.io", "azurecr.cn", "azurecr.us"]
        .iter()
        .any(|suffix| {
            host.strip_suffix(suffix)
                .and_then(|name| name.strip_suffix('.'))
                .is_some_and(|name| {
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                })
        })
}

/// Whether `url` can be a Key Vault URL: `https://HOST[:PORT]` without a path. Any host is
/// allowed (public cloud `*.vault.azure.net`, sovereign clouds, Azure Stack Hub's
/// `*.vault.REGION.DOMAIN`): a token only ever goes to a vault whose challenge names a resource
/// of the vault's own domain (the SDK's challenge check).
pub fn is_key_vault_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.trim_end_matches('/');
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return false;
    }
    !host.is_empty()
        && host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
