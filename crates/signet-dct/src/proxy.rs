//! Proxies for the requests to Notary servers and token services. By default they come from
//! the environment (`HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`, either case) through
//! signet-http's [`signet_http::ProxyPolicy`], like every other outbound connection of
//! Signet; [`ProxySettings`] names them explicitly instead (tests, embedders).

use signet_http::ProxyPolicy;

/// Explicit proxies for outbound connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy (`host:port` or `http://host:port`, HTTP CONNECT) for https:// targets.
    pub https: Option<String>,
    /// Proxy (`host:port` or `http://host:port`) for http:// targets (absolute-form requests).
    pub http: Option<String>,
    /// Hosts reached directly: names, domain suffixes (`.example.com` or `example.com`),
    /// IP addresses or ranges, `host:port`, or `*` for all.
    pub no_proxy: Vec<String>,
}

fn url(proxy: &Option<String>) -> String {
    match proxy.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(p) if p.contains("://") => p.to_owned(),
        Some(p) => format!("http://{p}"),
    }
}

impl ProxySettings {
    /// Reads `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (upper or lower case).
    pub fn from_env() -> ProxySettings {
        let var = |name: &str| {
            std::env::var(name)
                .or_else(|_| std::env::var(name.to_ascii_lowercase()))
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        ProxySettings {
            https: var("HTTPS_PROXY"),
            http: var("HTTP_PROXY"),
            no_proxy: var("NO_PROXY")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The signet-http policy for these settings. Unusable settings (a proxy URL of a
    /// scheme other than `http://`) are logged, and requests then go directly.
    pub fn to_policy(&self) -> ProxyPolicy {
        ProxyPolicy::explicit(
            &url(&self.http),
            &url(&self.https),
            "",
            &self.no_proxy.join(","),
        )
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dct: unusable proxy settings; connecting directly");
            ProxyPolicy::none()
        })
    }
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
        let policy = settings.to_policy();
        let routed = |url: &str| {
            policy
                .route(&url.parse().expect("url"))
                .map(|r| r.uri.to_string())
        };
        assert_eq!(
            routed("https://notary.other/").as_deref(),
            Some("http://proxy.internal:3128/")
        );
        assert_eq!(routed("https://a.corp.example/"), None);
        assert_eq!(routed("https://10.0.0.1/"), None);
        assert_eq!(routed("https://notary.example:4443/"), None);
        assert!(routed("https://notary.example:443/").is_some());
        assert_eq!(routed("http://notary.other/"), None);
    }
}
