//! Which destinations go through which proxy.

use std::sync::{Arc, OnceLock};

use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;

use crate::HttpConfigError;

/// Where requests go: directly, or through the proxy the environment (or the caller) names.
#[derive(Clone)]
pub struct ProxyPolicy {
    matcher: Option<Arc<Matcher>>,
    /// `NO_PROXY` entries with a port (`host:port`), which hyper-util's matcher ignores.
    no_proxy_ports: Arc<Vec<(String, u16)>>,
    /// The raw settings, credentials removed (for logs and `Debug`).
    summary: String,
}

impl std::fmt::Debug for ProxyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

/// The proxy for one destination.
#[derive(Debug, Clone)]
pub struct ProxyRoute {
    /// `http://proxy:port/`.
    pub uri: Uri,
    /// `Basic …` from the proxy URL's user info, if any.
    pub authorization: Option<HeaderValue>,
}

impl ProxyPolicy {
    /// Every destination directly.
    pub fn none() -> ProxyPolicy {
        ProxyPolicy {
            matcher: None,
            no_proxy_ports: Arc::new(Vec::new()),
            summary: "no proxy".to_owned(),
        }
    }

    /// The process environment, read once: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    /// `NO_PROXY`, upper case first, then lower case.
    pub fn from_env() -> ProxyPolicy {
        static FROM_ENV: OnceLock<ProxyPolicy> = OnceLock::new();
        FROM_ENV
            .get_or_init(|| {
                let var = |name: &str| {
                    std::env::var(name.to_ascii_uppercase())
                        .or_else(|_| std::env::var(name.to_ascii_lowercase()))
                        .unwrap_or_default()
                };
                let policy = ProxyPolicy::explicit(
                    &var("http_proxy"),
                    &var("https_proxy"),
                    &var("all_proxy"),
                    &var("no_proxy"),
                );
                match policy {
                    Ok(p) => {
                        if p.matcher.is_some() {
                            tracing::info!(proxy = %p.summary, "outbound HTTP uses the proxy settings of the environment");
                        }
                        p
                    }
                    Err(e) => {
                        // Going around a configured proxy would be a surprise either way; a
                        // bad setting makes every connection fail with this message instead.
                        tracing::error!(error = %e, "the proxy settings of the environment are unusable");
                        ProxyPolicy::unusable(e.0)
                    }
                }
            })
            .clone()
    }

    fn unusable(message: String) -> ProxyPolicy {
        ProxyPolicy {
            matcher: None,
            no_proxy_ports: Arc::new(Vec::new()),
            summary: format!("unusable: {message}"),
        }
    }

    /// Whether the settings could not be used (every connection then fails).
    pub fn error(&self) -> Option<&str> {
        self.summary.strip_prefix("unusable: ")
    }

    /// Explicit settings, as the environment variables would give them (empty = unset).
    /// Only `http://` proxies are supported; a proxy URL of another scheme is an error.
    pub fn explicit(
        http_proxy: &str,
        https_proxy: &str,
        all_proxy: &str,
        no_proxy: &str,
    ) -> Result<ProxyPolicy, HttpConfigError> {
        for (name, value) in [
            ("HTTP_PROXY", http_proxy),
            ("HTTPS_PROXY", https_proxy),
            ("ALL_PROXY", all_proxy),
        ] {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let uri: Uri = value.parse().map_err(|e| {
                HttpConfigError(format!("{name}: {:?} is not a URL: {e}", redact(value)))
            })?;
            match uri.scheme_str() {
                None | Some("http") => {}
                Some(other) => {
                    return Err(HttpConfigError(format!(
                        "{name}: proxy scheme {other:?} is not supported (use http://host:port; HTTPS destinations are tunnelled with CONNECT)"
                    )))
                }
            }
            if uri.host().is_none() {
                return Err(HttpConfigError(format!(
                    "{name}: {:?} names no host",
                    redact(value)
                )));
            }
        }
        if http_proxy.trim().is_empty()
            && https_proxy.trim().is_empty()
            && all_proxy.trim().is_empty()
        {
            return Ok(ProxyPolicy::none());
        }
        // hyper-util applies `*` to host names only; it means every destination.
        if no_proxy.split(',').any(|e| e.trim() == "*") {
            return Ok(ProxyPolicy::none());
        }
        let mut rest = Vec::new();
        let mut ports = Vec::new();
        for entry in no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match split_host_port(entry) {
                Some((host, port)) => ports.push((host, port)),
                None => rest.push(entry.to_owned()),
            }
        }
        let matcher = Matcher::builder()
            .http(http_proxy.trim().to_owned())
            .https(https_proxy.trim().to_owned())
            .all(all_proxy.trim().to_owned())
            .no(rest.join(","))
            .build();
        let summary = format!(
            "HTTP_PROXY={:?} HTTPS_PROXY={:?} ALL_PROXY={:?} NO_PROXY={:?}",
            redact(http_proxy.trim()),
            redact(https_proxy.trim()),
            redact(all_proxy.trim()),
            no_proxy.trim()
        );
        Ok(ProxyPolicy {
            matcher: Some(Arc::new(matcher)),
            no_proxy_ports: Arc::new(ports),
            summary,
        })
    }

    /// The proxy for `destination` (`scheme://host[:port]/…`), or `None` to go directly.
    /// The IMDS range (link-local `169.254.0.0/16`, `fe80::/10`) is never proxied: the
    /// metadata endpoint answers only on the node's own link.
    pub fn route(&self, destination: &Uri) -> Option<ProxyRoute> {
        let matcher = self.matcher.as_ref()?;
        let host = destination
            .host()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            let link_local = match ip {
                std::net::IpAddr::V4(v4) => v4.is_link_local(),
                std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
            };
            if link_local {
                return None;
            }
        }
        let port = destination
            .port_u16()
            .unwrap_or(if destination.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        if self
            .no_proxy_ports
            .iter()
            .any(|(h, p)| *p == port && host_matches(h, host))
        {
            return None;
        }
        let intercept = matcher.intercept(destination)?;
        Some(ProxyRoute {
            uri: intercept.uri().clone(),
            authorization: intercept.basic_auth().cloned(),
        })
    }
}

/// `host:port` or `[v6]:port` (a bare IPv6 address has colons but no port).
fn split_host_port(entry: &str) -> Option<(String, u16)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host.to_owned(), port.parse().ok()?));
    }
    let (host, port) = entry.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

/// curl's rule for one domain entry: the domain itself or any subdomain (a leading dot is
/// the same), `*` everything.
fn host_matches(entry: &str, host: &str) -> bool {
    let entry = entry.trim_start_matches('.');
    entry == "*"
        || host.eq_ignore_ascii_case(entry)
        || (host.len() > entry.len()
            && host[host.len() - entry.len()..].eq_ignore_ascii_case(entry)
            && host.as_bytes()[host.len() - entry.len() - 1] == b'.')
}

/// A proxy URL without its password.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => match url.split_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(no_proxy: &str) -> ProxyPolicy {
        ProxyPolicy::explicit(
            "http://plain-proxy:3128",
            "http://user:p%40ss@tls-proxy:3128",
            "",
            no_proxy,
        )
        .unwrap()
    }

    fn route(p: &ProxyPolicy, url: &str) -> Option<String> {
        p.route(&url.parse().unwrap()).map(|r| r.uri.to_string())
    }

    #[test]
    fn https_and_http_destinations_use_their_own_proxy() {
        let p = policy("");
        assert_eq!(
            route(&p, "https://myacr.azurecr.io/v2/").as_deref(),
            Some("http://tls-proxy:3128/")
        );
        assert_eq!(
            route(&p, "http://crl.example/ca.crl").as_deref(),
            Some("http://plain-proxy:3128/")
        );
        let auth = p
            .route(&"https://x.example/".parse().unwrap())
            .unwrap()
            .authorization
            .unwrap();
        // user:p@ss
        assert_eq!(auth.to_str().unwrap(), "Basic dXNlcjpwQHNz");
        assert!(p
            .route(&"http://x.example/".parse().unwrap())
            .unwrap()
            .authorization
            .is_none());
    }

    #[test]
    fn no_proxy_matches_domains_suffixes_wildcard_ips_cidrs_and_ports() {
        let p = policy("corp.example, .svc.cluster.local,10.0.0.0/8,192.168.1.7,registry.local:5000,[::1]:8443");
        for direct in [
            "https://corp.example/",
            "https://a.b.corp.example/",
            "https://kubernetes.default.svc.cluster.local/",
            "https://10.1.2.3/",
            "https://192.168.1.7:5000/",
            "https://registry.local:5000/",
            "https://mirror.registry.local:5000/",
            "https://[::1]:8443/",
            "http://169.254.169.254/metadata/identity/oauth2/token",
        ] {
            assert_eq!(route(&p, direct), None, "{direct} should bypass the proxy");
        }
        for proxied in [
            "https://notcorp.example/",
            "https://192.168.1.8/",
            "https://registry.local/",
            "https://registry.local:5001/",
            "https://11.0.0.1/",
        ] {
            assert!(
                route(&p, proxied).is_some(),
                "{proxied} should use the proxy"
            );
        }
        assert_eq!(route(&policy("*"), "https://anything.example/"), None);
        assert_eq!(
            route(&policy("x.example, *"), "https://10.1.1.1:5000/"),
            None
        );
    }

    #[test]
    fn no_settings_means_direct_and_bad_settings_are_refused() {
        let p = ProxyPolicy::explicit("", "", "", "x").unwrap();
        assert_eq!(route(&p, "https://a.example/"), None);
        let e = ProxyPolicy::explicit("", "https://proxy:443", "", "").unwrap_err();
        assert!(e.0.contains("not supported"), "{e}");
        let e = ProxyPolicy::explicit("", "socks5://proxy:1080", "", "").unwrap_err();
        assert!(e.0.contains("HTTPS_PROXY"), "{e}");
        let all = ProxyPolicy::explicit("", "", "proxy:3128", "").unwrap();
        assert_eq!(
            route(&all, "https://a.example/").as_deref(),
            Some("http://proxy:3128/")
        );
    }

    #[test]
    fn debug_output_hides_proxy_passwords() {
        let text = format!("{:?}", policy(""));
        assert!(!text.contains("p%40ss"), "{text}");
        assert!(text.contains("***@tls-proxy:3128"), "{text}");
    }
}
