//! Where revocation fetches may go. CRL distribution points and OCSP responders are URLs
//! written by whoever issued the certificate, and a signature's chain is attacker input until
//! it is verified: without a guard, an envelope could make the service send requests into
//! the cluster network (cloud metadata at `169.254.169.254`, the API server, sidecars).
//!
//! Every URL and every redirect hop must be `http` or `https` with a host the policy
//! allows, and every address a host name resolves to must be allowed too (addresses are
//! checked when the connector resolves the name, so the connection goes to a checked address;
//! a rebinding DNS answer cannot slip a private address in between; through an HTTP proxy the
//! proxy resolves names, so there only host-name rules and address literals are checked). By default these are
//! denied: loopback, private (RFC 1918), link-local (with the metadata address), CGNAT
//! (`100.64.0.0/10`), unique-local IPv6 (`fc00::/7`), unspecified, broadcast and multicast,
//! IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64) by their IPv4 rules.
//!
//! `allow` entries (host names, `*.suffix` wildcards, addresses or CIDR ranges) lift the
//! default denial for what they match (an internal CRL server); `deny` entries refuse what
//! they match even when it is public or allowed. Denials name the host, never the addresses
//! it resolved to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// A host name, wildcard or address range of an allow or deny list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// An exact host name (lower case).
    Host(String),
    /// `*.example.com`: any name ending in `.example.com` (stored with the leading dot).
    Suffix(String),
    /// An address range.
    Net { addr: IpAddr, prefix: u8 },
}

impl Entry {
    fn parse(text: &str) -> Result<Entry, String> {
        let t = text.trim().to_ascii_lowercase();
        if t.is_empty() {
            return Err("an entry is empty".into());
        }
        if let Some((addr, prefix)) = t.split_once('/') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("{text:?} is not a CIDR range like 10.0.0.0/8"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0..={max}"))?;
            return Ok(Entry::Net { addr, prefix });
        }
        let bare = t.trim_start_matches('[').trim_end_matches(']');
        if let Ok(addr) = bare.parse::<IpAddr>() {
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            return Ok(Entry::Net { addr, prefix });
        }
        let (suffix, name) = match t.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, t.as_str()),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(format!(
                "{text:?} is not a host name, \"*.domain\" wildcard, address or CIDR range"
            ));
        }
        Ok(if suffix {
            Entry::Suffix(format!(".{name}"))
        } else {
            Entry::Host(name.to_owned())
        })
    }

    fn matches_host(&self, host: &str) -> bool {
        match self {
            Entry::Host(h) => h == host,
            Entry::Suffix(s) => host.ends_with(s.as_str()),
            Entry::Net { .. } => false,
        }
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        let Entry::Net { addr, prefix } = self else {
            return false;
        };
        match (addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                u32::from(*net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                u128::from(*net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address carried in IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`) is judged as that IPv4 address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            let embedded = Ipv4Addr::from((u128::from(v6) & 0xffff_ffff) as u32);
            let compatible =
                s[..6].iter().all(|x| *x == 0) && !v6.is_unspecified() && !v6.is_loopback();
            let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0);
            if compatible || nat64 {
                IpAddr::V4(embedded)
            } else {
                ip
            }
        }
        v4 => v4,
    }
}

/// Whether an address is in a range denied by default.
fn denied_by_default(ip: IpAddr) -> bool {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
        }
    }
}

/// Where revocation fetches may go (see the module documentation). The default denies the
/// private, loopback, link-local and similar ranges and allows everything public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationNetworkPolicy {
    allow: Vec<Entry>,
    deny: Vec<Entry>,
}

/// A request the policy refuses; the text names the host, not the addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Denied {}

impl RevocationNetworkPolicy {
    /// A policy from allow and deny entries: host names, `*.domain` wildcards, addresses,
    /// CIDR ranges. The error names the entry at fault.
    pub fn new(allow: &[String], deny: &[String]) -> Result<Self, String> {
        let parse = |list: &[String], name: &str| {
            list.iter()
                .map(|e| Entry::parse(e).map_err(|m| format!("{name}: {m}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(RevocationNetworkPolicy {
            allow: parse(allow, "allow")?,
            deny: parse(deny, "deny")?,
        })
    }

    /// Checks a URL before it is requested (the first one and every redirect target):
    /// scheme, host name rules, and the address when the host is an address literal.
    pub fn check_url(&self, uri: &http::Uri) -> Result<(), Denied> {
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(Denied(format!(
                    "revocation URL {uri} is refused: only http:// and https:// are followed"
                )))
            }
        }
        let Some(host) = uri.host() else {
            return Err(Denied(format!("revocation URL {uri} has no host")));
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        match host.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(&host, ip),
            Err(_) => self.check_name(&host).map(|_| ()),
        }
    }

    /// Host-name rules: `Ok(true)` when an allow entry names it (its addresses are then
    /// trusted), `Ok(false)` when nothing names it, `Err` when a deny entry does.
    fn check_name(&self, host: &str) -> Result<bool, Denied> {
        let host = host.trim_end_matches('.');
        if self.deny.iter().any(|e| e.matches_host(host)) {
            return Err(Denied(format!(
                "revocation endpoint {host} is refused by revocation.deny"
            )));
        }
        Ok(self.allow.iter().any(|e| e.matches_host(host)))
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Denied> {
        if self.deny.iter().any(|e| e.matches_ip(ip)) {
            return Err(Denied(format!(
                "revocation endpoint {host} is refused by revocation.deny"
            )));
        }
        if denied_by_default(ip) && !self.allow.iter().any(|e| e.matches_ip(ip)) {
            return Err(Denied(format!(
                "revocation endpoint {host} is refused: it is a private, loopback, link-local or otherwise internal address; list it under revocation.allow if the CRL/OCSP server is legitimate"
            )));
        }
        Ok(())
    }

    /// The addresses of `host` a connection may use: all of them when an allow entry names
    /// the host, else those the address rules allow; none is an error naming the host only.
    fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Denied> {
        if self.check_name(host)? {
            return Ok(addrs);
        }
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| self.check_ip(host, a.ip()).is_ok())
            .collect();
        if kept.is_empty() {
            return Err(Denied(format!(
                "revocation endpoint {host} is refused: it resolves only to addresses the revocation network policy denies (private, loopback, link-local or listed in revocation.deny); list the host under revocation.allow if the CRL/OCSP server is legitimate"
            )));
        }
        Ok(kept)
    }
}

/// The address filter of the revocation client's connector: the host-name rules, then only
/// the resolved addresses the policy allows, so the connector never dials a denied one.
#[derive(Debug, Clone)]
pub(crate) struct GuardedAddresses {
    policy: Arc<RevocationNetworkPolicy>,
}

impl GuardedAddresses {
    pub(crate) fn new(policy: RevocationNetworkPolicy) -> Self {
        GuardedAddresses {
            policy: Arc::new(policy),
        }
    }
}

impl signet_http::AddressFilter for GuardedAddresses {
    fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> std::io::Result<Vec<SocketAddr>> {
        // An address literal resolves to itself: the same per-address rules apply (and
        // `check_url` already refused a denied literal before the request).
        self.policy
            .filter(&host.to_ascii_lowercase(), addrs)
            .map_err(std::io::Error::other)
    }
}

/// The policy's denial inside an error chain (the connector wraps the resolver's error).
pub(crate) fn denial_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(d) = e.downcast_ref::<Denied>() {
            return Some(d.0.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(d) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<Denied>())
            {
                return Some(d.0.clone());
            }
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn url(u: &str) -> http::Uri {
        u.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_denied_by_default() {
        let p = RevocationNetworkPolicy::default();
        for denied in [
            "http://127.0.0.1/ca.crl",
            "http://127.8.9.10/ca.crl",
            "http://10.1.2.3/ca.crl",
            "http://172.16.0.1/ca.crl",
            "http://192.168.1.1/ca.crl",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/ca.crl",
            "http://0.0.0.0/ca.crl",
            "http://255.255.255.255/ca.crl",
            "http://[::1]/ca.crl",
            "http://[::]/ca.crl",
            "http://[fd00::1]/ca.crl",
            "http://[fe80::1]/ca.crl",
            "http://[::ffff:127.0.0.1]/ca.crl",
            "http://[::ffff:169.254.169.254]/ca.crl",
            "http://[64:ff9b::a00:1]/ca.crl",
            "ftp://crl.example.com/ca.crl",
            "gopher://crl.example.com/ca.crl",
        ] {
            let e = p.check_url(&url(denied)).unwrap_err();
            assert!(!e.0.contains("resolves"), "{denied}: {e}");
        }
        for allowed in [
            "http://8.8.8.8/ca.crl",
            "https://crl.example.com/ca.crl",
            "http://[2001:4860::8888]/ca.crl",
            "http://[::ffff:8.8.8.8]/ca.crl",
        ] {
            assert_eq!(p.check_url(&url(allowed)), Ok(()), "{allowed}");
        }
    }

    #[test]
    fn allow_lifts_and_deny_wins() {
        let p = RevocationNetworkPolicy::new(
            &[
                "10.0.0.0/8".into(),
                "crl.corp.internal".into(),
                "*.pki.corp".into(),
            ],
            &[
                "10.9.0.0/16".into(),
                "evil.example.com".into(),
                "*.bad.example".into(),
            ],
        )
        .unwrap();
        assert_eq!(p.check_url(&url("http://10.1.2.3/ca.crl")), Ok(()));
        assert!(p.check_url(&url("http://10.9.1.1/ca.crl")).is_err());
        assert!(p.check_url(&url("http://192.168.0.1/ca.crl")).is_err());
        assert!(p.check_url(&url("http://evil.example.com/ca.crl")).is_err());
        assert!(p.check_url(&url("http://x.bad.example/ca.crl")).is_err());
        let internal: SocketAddr = "192.168.7.7:0".parse().unwrap();
        let public: SocketAddr = "8.8.8.8:0".parse().unwrap();
        // A name the allow list names may resolve to internal addresses.
        assert_eq!(
            p.filter("crl.corp.internal", vec![internal]).unwrap(),
            vec![internal]
        );
        assert_eq!(
            p.filter("a.pki.corp", vec![internal]).unwrap(),
            vec![internal]
        );
        // Another name keeps only allowed addresses; none left is a denial without them.
        assert_eq!(
            p.filter("crl.example.com", vec![internal, public]).unwrap(),
            vec![public]
        );
        let e = p.filter("rebind.example.com", vec![internal]).unwrap_err();
        assert!(e.0.contains("rebind.example.com"), "{e}");
        assert!(!e.0.contains("192.168"), "{e}");
    }

    #[test]
    fn entries_are_checked() {
        for bad in ["", "10.0.0.0/33", "::/129", "not a host", "a..b", "x/y"] {
            assert!(
                RevocationNetworkPolicy::new(&[bad.to_owned()], &[]).is_err(),
                "{bad:?}"
            );
        }
        assert!(RevocationNetworkPolicy::new(&["[::1]".into(), "::1/128".into()], &[]).is_ok());
    }
}
