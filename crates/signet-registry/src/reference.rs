//! Image references as Kubernetes writes them, with Docker's normalisation.
//!
//! Grammar (distribution's `reference` package, normalised like the Docker CLI):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component ( "/" path-component )*
//! domain     := host [ ":" port ]            host: DNS labels, or "[" IPv6 "]"
//! path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest     := sha256:<64 hex> | sha384:<96 hex> | sha512:<128 hex>   (lower-case hex)
//! ```
//!
//! The first component is a domain when it contains `.` or `:`, is `localhost`, or is an
//! IPv6 literal in brackets; otherwise the reference is on Docker Hub (`docker.io`), and a
//! single-component Hub name gets the `library/` prefix. The registry is named canonically
//! ([`signet_notation::policy::canonical_registry`]): host lower-cased, port `443` dropped,
//! `index.docker.io` and `registry-1.docker.io` are `docker.io`. The name (domain + path) is
//! at most 255 characters.

use std::fmt;

use crate::error::RegistryError;

/// The registry name Docker Hub references are normalised to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses a reference as found in a Pod spec (`nginx`, `nginx:1.27`,
    /// `ghcr.io/org/app@sha256:…`, `[::1]:5000/x:tag@sha256:…`).
    pub fn parse(input: &str) -> Result<Reference, RegistryError> {
        let bad = |reason: &str| RegistryError::invalid_reference(input, reason);
        if input.is_empty() {
            return Err(bad("empty reference"));
        }
        if input.len() > MAX_NAME_LEN + 1 + MAX_TAG_LEN + 1 + 7 + 128 {
            return Err(bad("reference too long"));
        }
        if let Some(c) = input
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err(bad(&format!("unexpected character {c:?}")));
        }

        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                signet_notation::descriptor::parse_digest(digest)
                    .map_err(|e| bad(&e.to_string()))?;
                (rest, Some(digest.to_owned()))
            }
            None => (input, None),
        };

        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(&rest[i + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|r| bad(&r))?;
        }
        if name.is_empty() {
            return Err(bad("empty repository name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad("repository name longer than 255 characters"));
        }

        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_domain(first) => {
                check_domain(first).map_err(|r| bad(&r))?;
                (first.to_owned(), path.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        // One name per registry, the one trust-policy scopes are matched against (host
        // lower-cased, `:443` dropped, Docker Hub's aliases folded into `docker.io`): an
        // alias must not select another statement than the name containerd pulls from.
        let registry = signet_notation::policy::canonical_registry(&registry);
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        for component in repository.split('/') {
            check_path_component(component).map_err(|r| bad(&r))?;
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(bad("repository name longer than 255 characters"));
        }

        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry as named in the reference (`docker.io`, `myacr.azurecr.io`, `[::1]:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves the registry API: the registry, except Docker Hub's
    /// `registry-1.docker.io`.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository path inside the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`: what trust-policy `registryScopes` are matched against.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same reference pinned to `digest`, tag kept (what the mutate endpoint answers).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// The manifest reference used in API paths: the digest if there is one, else the tag,
    /// else `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

fn looks_like_domain(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unterminated IPv6 host in {domain:?}"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("invalid IPv6 address {v6:?}"));
        }
        match after {
            "" => (None, None),
            p if p.starts_with(':') => (None, Some(&p[1..])),
            _ => return Err(format!("invalid registry host {domain:?}")),
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() || host.len() > 253 {
            return Err(format!("invalid registry host {domain:?}"));
        }
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!("invalid registry host {domain:?}"));
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u32>().map_or(true, |p| p == 0 || p > 65535)
        {
            return Err(format!("invalid port in registry {domain:?}"));
        }
    }
    Ok(())
}

fn check_path_component(c: &str) -> Result<(), String> {
    let invalid = || {
        if c.bytes().any(|b| b.is_ascii_uppercase()) {
            format!("repository name component {c:?} must be lower-case")
        } else {
            format!("invalid repository name component {c:?}")
        }
    };
    let b = c.as_bytes();
    if b.is_empty() {
        return Err("empty repository name component".to_owned());
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(invalid());
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or one or more "-".
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return Err(invalid()),
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return Err(invalid());
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    if b.is_empty() {
        return Err("empty tag".to_owned());
    }
    if b.len() > MAX_TAG_LEN {
        return Err("tag longer than 128 characters".to_owned());
    }
    if !word(b[0]) || !b.iter().all(|&x| word(x) || x == b'.' || x == b'-') {
        return Err(format!("invalid tag {tag:?}"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use signet_notation::ErrorCode;

    const D: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn ok(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_defaults() {
        let r = ok("nginx");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/nginx");
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), "latest");
        assert_eq!(r.to_string(), "docker.io/library/nginx");
        assert_eq!(ok("nginx:1.27").to_string(), "docker.io/library/nginx:1.27");
        assert_eq!(ok("bitnami/redis").repository(), "bitnami/redis");
        assert_eq!(ok("docker.io/nginx").repository(), "library/nginx");
        assert_eq!(ok("index.docker.io/nginx").registry(), "docker.io");
        assert_eq!(
            ok("registry-1.docker.io/nginx:1").to_string(),
            "docker.io/library/nginx:1"
        );
        assert_eq!(ok("MyReg.io:443/team/app").name(), "myreg.io/team/app");
        assert_eq!(ok("MyReg.io:443/team/app").api_host(), "myreg.io");
        assert_eq!(
            ok("myreg.io:5000/team/app").name(),
            "myreg.io:5000/team/app"
        );
        assert_eq!(ok("[::1]:443/x").registry(), "[::1]");
    }

    #[test]
    fn forms() {
        let r = ok(&format!("myacr.azurecr.io/team/app:v1@{D}"));
        assert_eq!(r.registry(), "myacr.azurecr.io");
        assert_eq!(r.api_host(), "myacr.azurecr.io");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.to_string(), format!("myacr.azurecr.io/team/app:v1@{D}"));
        assert_eq!(r.name(), "myacr.azurecr.io/team/app");

        let r = ok(&format!("localhost:5000/x@{D}"));
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.tag(), None);
        let r = ok("localhost/x");
        assert_eq!(r.registry(), "localhost");
        let r = ok("[::1]:5000/x:tag");
        assert_eq!(r.registry(), "[::1]:5000");
        assert_eq!(r.repository(), "x");
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(ok("[fe80::1]/a/b").registry(), "[fe80::1]");
        assert_eq!(
            ok("127.0.0.1:443/a_b__c.d-e---f").repository(),
            "a_b__c.d-e---f"
        );
        let pinned = ok("app:v2").with_digest(D);
        assert_eq!(pinned.to_string(), format!("docker.io/library/app:v2@{D}"));
        // Hosts are case-insensitive: one canonical (lower-case) name.
        assert_eq!(
            ok("Registry.Example.COM/app").registry(),
            "registry.example.com"
        );
    }

    #[test]
    fn rejects() {
        let long = format!("example.com/{}", "a".repeat(250));
        let long_tag = format!("app:{}", "t".repeat(129));
        for bad in [
            "",
            " ",
            "nginx latest",
            "Nginx",
            "example.com/App",
            "nginx:",
            "nginx:-x",
            "nginx@sha256:abc",
            "nginx@sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "nginx@md5:d41d8cd98f00b204e9800998ecf8427e",
            "example.com/",
            "/app",
            "a//b",
            "a/-b",
            "a/b-",
            "a/b..c",
            "a/b___c",
            "example.com:99999/app",
            "example.com:/app",
            "[::1/app",
            "[zz::1]:5000/app",
            "exa_mple.com/app",
            "-example.com/app",
            "app:tag:tag",
            "héllo",
            "app\n",
            long.as_str(),
            long_tag.as_str(),
        ] {
            let err = Reference::parse(bad).expect_err(bad);
            assert_eq!(err.code(), ErrorCode::InvalidReference, "{bad}");
        }
    }
}
