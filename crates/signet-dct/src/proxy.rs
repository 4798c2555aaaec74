//! Outbound connection settings shared by every request to Notary servers and token
//! services: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (either case), and the system trust
//! roots with `SSL_CERT_FILE` / `SSL_CERT_DIR`.

use std::path::Path;

/// Proxies for outbound connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy (`host:port`, HTTP CONNECT) for https:// targets.
    pub https: Option<String>,
    /// Proxy (`host:port`) for http:// targets (absolute-form requests).
    pub http: Option<String>,
    /// Hosts reached directly: exact names, domain suffixes (`.example.com` or
    /// `example.com`), IP addresses, or `*` for all.
    pub no_proxy: Vec<String>,
}

fn env_either(upper: &str) -> Option<String> {
    std::env::var(upper)
        .ok()
        .or_else(|| std::env::var(upper.to_ascii_lowercase()).ok())
        .filter(|v| !v.trim().is_empty())
}

/// `http://host:port` (or `host:port`) → `host:port`; `None` for what cannot be used.
fn proxy_authority(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.contains("://") {
        tracing::warn!(proxy = %url, "dct: only http:// proxies are supported; connecting directly");
        return None;
    } else {
        url
    };
    let authority = rest.split('/').next().unwrap_or("");
    // Credentials in the proxy URL are not supported: never forward them half-parsed.
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        Some(authority.to_owned())
    } else {
        Some(format!("{authority}:80"))
    }
}

impl ProxySettings {
    /// Reads `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (upper or lower case).
    pub fn from_env() -> ProxySettings {
        ProxySettings {
            https: env_either("HTTPS_PROXY").and_then(|u| proxy_authority(&u)),
            http: env_either("HTTP_PROXY").and_then(|u| proxy_authority(&u)),
            no_proxy: env_either("NO_PROXY")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The proxy to use for `host` over `https` or plain HTTP, if any.
    pub fn proxy_for(&self, https: bool, host: &str) -> Option<&str> {
        let proxy = if https { &self.https } else { &self.http };
        let proxy = proxy.as_deref()?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        for entry in &self.no_proxy {
            let entry = entry.to_ascii_lowercase();
            if entry == "*" {
                return None;
            }
            let name = entry
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .to_owned();
            let name = if entry.starts_with('[') {
                name
            } else {
                entry.split(':').next().unwrap_or("").to_owned()
            };
            let suffix = name.trim_start_matches('.');
            if host == suffix || host.ends_with(&format!(".{suffix}")) {
                return None;
            }
        }
        Some(proxy)
    }
}

/// The system's trust roots (DER): `SSL_CERT_FILE` or the usual bundle locations, plus
/// every certificate file in `SSL_CERT_DIR`.
pub(crate) fn system_roots() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let file = env_either("SSL_CERT_FILE").or_else(|| {
        [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| (*p).to_owned())
    });
    if let Some(file) = file {
        if let Ok(bytes) = std::fs::read(&file) {
            out.extend(crate::keys::pem_blocks(&bytes, "CERTIFICATE"));
        }
    }
    if let Some(dirs) = env_either("SSL_CERT_DIR") {
        for dir in dirs.split(':') {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten().take(4096) {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    out.extend(crate::keys::pem_blocks(&bytes, "CERTIFICATE"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matches_names_suffixes_and_addresses() {
        let settings = ProxySettings {
            https: Some("proxy.internal:3128".into()),
            http: None,
            no_proxy: vec![
                ".corp.example".into(),
                "10.0.0.1".into(),
                "notary.example:4443".into(),
            ],
        };
        assert_eq!(
            settings.proxy_for(true, "notary.other"),
            Some("proxy.internal:3128")
        );
        assert_eq!(settings.proxy_for(true, "a.corp.example"), None);
        assert_eq!(settings.proxy_for(true, "corp.example"), None);
        assert_eq!(
            settings.proxy_for(true, "evilcorp.example"),
            Some("proxy.internal:3128")
        );
        assert_eq!(settings.proxy_for(true, "10.0.0.1"), None);
        assert_eq!(settings.proxy_for(true, "notary.example"), None);
        assert_eq!(settings.proxy_for(false, "notary.other"), None);
        assert_eq!(
            proxy_authority("http://p.example:8080/"),
            Some("p.example:8080".into())
        );
        assert_eq!(proxy_authority("p.example"), Some("p.example:80".into()));
        assert_eq!(proxy_authority("https://p.example"), None);
        assert_eq!(proxy_authority("http://user:pw@p.example:1"), None);
    }
}
