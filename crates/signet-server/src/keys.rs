//! Provider keys: an image reference, or `[NAMESPACE]IMAGE` (Ratify's multi-tenant form),
//! whose image is verified under the trust configuration of NAMESPACE.
//!
//! The form is read strictly. A key that opens with `[` is namespaced unless the bracket
//! holds a `:` — then it is a registry written as an IPv6 address (`[::1]:5000/app`), which a
//! namespace can never be (a DNS-1123 label has no `:`). A namespaced key must name a valid
//! namespace and an image, and at most one namespace.

/// A provider key, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderKey<'a> {
    /// The namespace whose trust applies; `None`: the cluster's.
    pub namespace: Option<&'a str>,
    /// The image reference.
    pub image: &'a str,
}

/// Splits a key into its namespace (if written) and image. The error says what is wrong
/// with the form (the image itself is checked by the caller, as for a plain key).
pub fn split_key(key: &str) -> Result<ProviderKey<'_>, String> {
    let Some((namespace, image)) = namespace_prefix(key)? else {
        return Ok(ProviderKey {
            namespace: None,
            image: key,
        });
    };
    if !valid_namespace(namespace) {
        return Err(format!(
            "key {key:?}: {namespace:?} is not a namespace name (a DNS-1123 label: 1 to 63 \
             lowercase letters, digits or '-', starting and ending with a letter or digit); \
             write [NAMESPACE]IMAGE"
        ));
    }
    if image.is_empty() {
        return Err(format!(
            "key {key:?} names namespace {namespace:?} but no image; write [NAMESPACE]IMAGE"
        ));
    }
    if namespace_prefix(image)?.is_some() {
        return Err(format!(
            "key {key:?} names more than one namespace; write [NAMESPACE]IMAGE"
        ));
    }
    Ok(ProviderKey {
        namespace: Some(namespace),
        image,
    })
}

/// `Some((namespace, rest))` when `key` starts with a namespace bracket, `None` when it has
/// none (plain reference, or an IPv6 registry host).
fn namespace_prefix(key: &str) -> Result<Option<(&str, &str)>, String> {
    let Some(rest) = key.strip_prefix('[') else {
        return Ok(None);
    };
    let Some(end) = rest.find(']') else {
        return Err(format!(
            "key {key:?} opens a namespace with '[' but does not close it with ']'; \
             write [NAMESPACE]IMAGE"
        ));
    };
    let inside = &rest[..end];
    if inside.contains(':') {
        return Ok(None);
    }
    Ok(Some((inside, &rest[end + 1..])))
}

/// A Kubernetes namespace name: an RFC 1123 label.
pub fn valid_namespace(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(key: &str) -> (Option<&str>, &str) {
        let k = split_key(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        (k.namespace, k.image)
    }

    #[test]
    fn plain_namespaced_and_ipv6_keys() {
        assert_eq!(ok("reg.io/app:v1"), (None, "reg.io/app:v1"));
        assert_eq!(
            ok("[team-a]reg.io/app:v1"),
            (Some("team-a"), "reg.io/app:v1")
        );
        assert_eq!(ok("[a]x"), (Some("a"), "x"));
        assert_eq!(ok("[::1]:5000/app:v1"), (None, "[::1]:5000/app:v1"));
        assert_eq!(
            ok("[team-a][::1]:5000/app:v1"),
            (Some("team-a"), "[::1]:5000/app:v1")
        );
        let long = "a".repeat(63);
        assert_eq!(ok(&format!("[{long}]x")).0, Some(long.as_str()));
    }

    #[test]
    fn malformed_namespaced_keys_say_what_is_wrong() {
        for (key, needle) in [
            ("[team-a", "does not close it"),
            ("[]reg.io/app", "\"\" is not a namespace name"),
            ("[Team-A]reg.io/app", "\"Team-A\" is not a namespace name"),
            ("[team_a]reg.io/app", "is not a namespace name"),
            ("[-a]reg.io/app", "is not a namespace name"),
            ("[a-]reg.io/app", "is not a namespace name"),
            ("[team a]reg.io/app", "is not a namespace name"),
            (&format!("[{}]x", "a".repeat(64)), "is not a namespace name"),
            ("[team-a]", "but no image"),
            ("[a][b]reg.io/app", "more than one namespace"),
            ("[a][b", "does not close it"),
        ] {
            let e = split_key(key).unwrap_err();
            assert!(e.contains(needle), "{key}: {e}");
            assert!(e.contains("[NAMESPACE]IMAGE"), "{key}: {e}");
        }
    }
}
