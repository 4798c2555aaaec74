//! Parsing and validating trust policy documents (notation-go v1.3 `OCIDocument.Validate`
//! and `BlobDocument.Validate`).

use std::collections::HashMap;

use super::json::{self, key_matches, Json};
use super::level::resolve_actions;
use super::{
    PolicyError, Scope, Statement, TrustPolicyDocument, TrustStoreRef, TrustedIdentity,
    VerifyTimestamp,
};
use crate::truststore::StoreType;

/// Largest trust policy document accepted (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Most statements accepted in one document.
pub const MAX_STATEMENTS: usize = 1000;
/// Most entries accepted in one statement's `registryScopes`, `trustStores` or
/// `trustedIdentities`.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// The only supported document version.
const SUPPORTED_VERSION: &str = "1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Oci,
    Blob,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Oci => "oci trust policy",
            Kind::Blob => "blob trust policy",
        }
    }
}

/// A statement as decoded, before validation.
#[derive(Debug, Default)]
struct RawStatement {
    name: String,
    level: String,
    overrides: Vec<(String, String)>,
    verify_timestamp: String,
    trust_stores: Vec<String>,
    trusted_identities: Vec<String>,
    registry_scopes: Vec<String>,
    global_policy: bool,
}

#[derive(Debug, Default)]
struct RawDocument {
    version: String,
    statements: Vec<RawStatement>,
}

fn invalid(kind: Kind, msg: impl std::fmt::Display) -> PolicyError {
    PolicyError::Invalid(format!("{}: {msg}", kind.label()))
}

/// Parses and validates an OCI trust policy (`trustpolicy.json` / `trustpolicy.oci.json`).
pub fn parse_oci(bytes: &[u8]) -> Result<TrustPolicyDocument, PolicyError> {
    parse(bytes, Kind::Oci)
}

/// Parses and validates a blob trust policy (`trustpolicy.blob.json`).
pub fn parse_blob(bytes: &[u8]) -> Result<TrustPolicyDocument, PolicyError> {
    parse(bytes, Kind::Blob)
}

fn parse(bytes: &[u8], kind: Kind) -> Result<TrustPolicyDocument, PolicyError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(invalid(
            kind,
            format!(
                "the document is {} bytes, more than the {MAX_DOCUMENT_BYTES} accepted; trust policies are small JSON files",
                bytes.len()
            ),
        ));
    }
    let value = json::read_first_value(bytes)
        .map_err(|e| invalid(kind, format!("malformed trust policy, not valid JSON: {e}")))?;
    let raw = decode_document(&value, kind)
        .map_err(|e| invalid(kind, format!("malformed trust policy: {e}")))?;
    validate(raw, kind)
}

fn decode_document(v: &Json, kind: Kind) -> Result<RawDocument, String> {
    let mut doc = RawDocument::default();
    let Some(members) = json::object_members(v, "the document")? else {
        return Ok(doc);
    };
    for (key, value) in members {
        if key_matches(key, "version") {
            json::decode_string(value, &mut doc.version, "\"version\"")?;
        } else if key_matches(key, "trustPolicies") {
            match value {
                Json::Null => doc.statements.clear(),
                Json::Array(items) => {
                    if items.len() > MAX_STATEMENTS {
                        return Err(format!(
                            "\"trustPolicies\" has {} statements, more than the {MAX_STATEMENTS} accepted",
                            items.len()
                        ));
                    }
                    let mut statements = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        statements.push(decode_statement(item, kind, i)?);
                    }
                    doc.statements = statements;
                }
                other => {
                    return Err(format!(
                        "\"trustPolicies\" must be an array of statements, not {}",
                        other.type_name()
                    ))
                }
            }
        }
    }
    Ok(doc)
}

fn decode_statement(v: &Json, kind: Kind, index: usize) -> Result<RawStatement, String> {
    let mut st = RawStatement::default();
    let at = format!("trustPolicies[{index}]");
    let Some(members) = json::object_members(v, &at)? else {
        return Ok(st);
    };
    for (key, value) in members {
        if key_matches(key, "name") {
            json::decode_string(value, &mut st.name, &format!("{at}.name"))?;
        } else if key_matches(key, "signatureVerification") {
            decode_signature_verification(value, &mut st, &at)?;
        } else if key_matches(key, "trustStores") {
            json::decode_string_array(
                value,
                &mut st.trust_stores,
                &format!("{at}.trustStores"),
                MAX_LIST_ENTRIES,
            )?;
        } else if key_matches(key, "trustedIdentities") {
            json::decode_string_array(
                value,
                &mut st.trusted_identities,
                &format!("{at}.trustedIdentities"),
                MAX_LIST_ENTRIES,
            )?;
        } else if kind == Kind::Oci && key_matches(key, "registryScopes") {
            json::decode_string_array(
                value,
                &mut st.registry_scopes,
                &format!("{at}.registryScopes"),
                MAX_LIST_ENTRIES,
            )?;
        } else if kind == Kind::Blob && key_matches(key, "globalPolicy") {
            json::decode_bool(value, &mut st.global_policy, &format!("{at}.globalPolicy"))?;
        }
    }
    Ok(st)
}

fn decode_signature_verification(v: &Json, st: &mut RawStatement, at: &str) -> Result<(), String> {
    let Some(members) = json::object_members(v, &format!("{at}.signatureVerification"))? else {
        return Ok(());
    };
    for (key, value) in members {
        if key_matches(key, "level") {
            json::decode_string(
                value,
                &mut st.level,
                &format!("{at}.signatureVerification.level"),
            )?;
        } else if key_matches(key, "verifyTimestamp") {
            json::decode_string(
                value,
                &mut st.verify_timestamp,
                &format!("{at}.signatureVerification.verifyTimestamp"),
            )?;
        } else if key_matches(key, "override") {
            let what = format!("{at}.signatureVerification.override");
            // A Go map: `null` leaves it as is, members merge, a repeated key takes the
            // last value, a `null` value decodes to "".
            if let Some(entries) = json::object_members(value, &what)? {
                if entries.len() > 16 {
                    return Err(format!(
                        "{what} has {} entries; at most 5 validation types exist",
                        entries.len()
                    ));
                }
                for (k, val) in entries {
                    let mut action = String::new();
                    json::decode_string(val, &mut action, &format!("{what}.{k}"))?;
                    st.overrides.retain(|(existing, _)| existing != k);
                    st.overrides.push((k.clone(), action));
                }
            }
        }
    }
    Ok(())
}

fn validate(raw: RawDocument, kind: Kind) -> Result<TrustPolicyDocument, PolicyError> {
    if raw.version.is_empty() {
        return Err(invalid(
            kind,
            "document has an empty or missing \"version\"; set it to \"1.0\"",
        ));
    }
    if raw.version != SUPPORTED_VERSION {
        return Err(invalid(
            kind,
            format!(
                "document uses unsupported version {:?}; the supported version is \"1.0\"",
                raw.version
            ),
        ));
    }
    if raw.statements.is_empty() {
        return Err(invalid(
            kind,
            "document has no trust policy statements; add at least one to \"trustPolicies\"",
        ));
    }

    let mut names: HashMap<&str, ()> = HashMap::new();
    let mut statements = Vec::with_capacity(raw.statements.len());
    let mut global_seen = false;
    for st in &raw.statements {
        if names.insert(st.name.as_str(), ()).is_some() {
            return Err(invalid(
                kind,
                format!(
                    "multiple statements use the same name {:?}; statement names must be unique",
                    st.name
                ),
            ));
        }
        let mut statement = validate_core(st, kind)?;
        if kind == Kind::Blob {
            if st.global_policy {
                if global_seen {
                    return Err(invalid(
                        kind,
                        format!(
                            "statement {:?} has \"globalPolicy\": true but another statement already does; only one statement can be the global policy",
                            st.name
                        ),
                    ));
                }
                global_seen = true;
            }
            statement.scope = Scope::Blob {
                global: st.global_policy,
            };
        }
        statements.push(statement);
    }

    if kind == Kind::Oci {
        validate_registry_scopes(&raw.statements)?;
        for (statement, st) in statements.iter_mut().zip(&raw.statements) {
            statement.scope = Scope::Registry(st.registry_scopes.clone());
        }
    }

    Ok(TrustPolicyDocument {
        version: raw.version,
        statements,
    })
}

/// notation-go `validatePolicyCore`.
fn validate_core(st: &RawStatement, kind: Kind) -> Result<Statement, PolicyError> {
    if st.name.is_empty() {
        return Err(invalid(
            kind,
            "a statement is missing a \"name\"; every statement requires a unique name",
        ));
    }
    let name = &st.name;
    let (level, actions) = resolve_actions(&st.level, &st.overrides).map_err(|e| {
        invalid(
            kind,
            format!("statement {name:?} has invalid signatureVerification: {e}"),
        )
    })?;
    let verify_timestamp = match st.verify_timestamp.as_str() {
        "" | "always" => VerifyTimestamp::Always,
        "afterCertExpiry" => VerifyTimestamp::AfterCertExpiry,
        other => {
            return Err(invalid(
                kind,
                format!(
                    "statement {name:?} has invalid signatureVerification: verifyTimestamp must be \"always\" or \"afterCertExpiry\", but got {other:?}"
                ),
            ))
        }
    };

    let mut trust_stores = Vec::new();
    let mut trusted_identities = Vec::new();
    if level == super::Level::Skip {
        if !st.trust_stores.is_empty() || !st.trusted_identities.is_empty() {
            return Err(invalid(
                kind,
                format!(
                    "statement {name:?} is set to skip signature verification but configured with trust stores and/or trusted identities; remove \"trustStores\" and \"trustedIdentities\" to skip verification"
                ),
            ));
        }
    } else {
        if st.trust_stores.is_empty() || st.trusted_identities.is_empty() {
            return Err(invalid(
                kind,
                format!(
                    "statement {name:?} is missing trust stores or trusted identities; level {:?} requires both \"trustStores\" and \"trustedIdentities\"",
                    level.as_str()
                ),
            ));
        }
        for store in &st.trust_stores {
            trust_stores.push(
                parse_trust_store(store)
                    .map_err(|e| invalid(kind, format!("statement {name:?} {e}")))?,
            );
        }
        trusted_identities = parse_trusted_identities(&st.trusted_identities)
            .map_err(|e| invalid(kind, format!("statement {name:?} {e}")))?;
    }

    Ok(Statement {
        name: name.clone(),
        scope: Scope::Registry(Vec::new()),
        level,
        actions,
        verify_timestamp,
        trust_stores,
        trusted_identities,
    })
}

fn parse_trust_store(value: &str) -> Result<TrustStoreRef, String> {
    let Some((store_type, name)) = value.split_once(':') else {
        return Err(format!(
            "has malformed trust store value {value:?}; the required format is <TrustStoreType>:<TrustStoreName>, e.g. \"ca:my-store\""
        ));
    };
    let Some(store_type) = StoreType::parse(store_type) else {
        return Err(format!(
            "uses an unsupported trust store type {store_type:?} in trust store value {value:?}; use \"ca\", \"signingAuthority\" or \"tsa\""
        ));
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "uses an unsupported trust store name {name:?} in trust store value {value:?}; a named store name must match [a-zA-Z0-9_.-]+"
        ));
    }
    Ok(TrustStoreRef {
        store_type,
        name: name.to_owned(),
    })
}

/// notation-go `validateTrustedIdentities`.
fn parse_trusted_identities(values: &[String]) -> Result<Vec<TrustedIdentity>, String> {
    if values.len() > 1 && values.iter().any(|v| v == "*") {
        return Err(
            "uses a wildcard trusted identity '*' together with other values; use '*' alone or list specific identities"
                .to_owned(),
        );
    }
    let mut out = Vec::with_capacity(values.len());
    let mut dns: Vec<(&str, usize)> = Vec::new();
    for identity in values {
        let parsed = TrustedIdentity::parse(identity)?;
        if matches!(parsed, TrustedIdentity::X509Subject(_)) {
            dns.push((identity.as_str(), out.len()));
        }
        out.push(parsed);
    }
    // No x509 identity may be a subset of another (identical ones included).
    for (i, (raw1, idx1)) in dns.iter().enumerate() {
        for (j, (raw2, idx2)) in dns.iter().enumerate() {
            if i == j {
                continue;
            }
            if let (Some(TrustedIdentity::X509Subject(a)), Some(TrustedIdentity::X509Subject(b))) =
                (out.get(*idx1), out.get(*idx2))
            {
                if a.is_subset_of(b) {
                    return Err(format!(
                        "has overlapping x509 trustedIdentities, {raw1:?} overlaps with {raw2:?}; keep only the less specific one"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// notation-go `validateRegistryScopes` (after every statement passed `validate_core`).
fn validate_registry_scopes(statements: &[RawStatement]) -> Result<(), PolicyError> {
    let kind = Kind::Oci;
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for st in statements {
        let name = &st.name;
        if st.registry_scopes.is_empty() {
            return Err(invalid(
                kind,
                format!("statement {name:?} has zero registry scopes; \"registryScopes\" must list at least one value"),
            ));
        }
        if st.registry_scopes.len() > 1 && st.registry_scopes.iter().any(|s| s == "*") {
            return Err(invalid(
                kind,
                format!(
                    "statement {name:?} uses wildcard registry scope '*' together with other scopes; a wildcard scope must be used alone"
                ),
            ));
        }
        for scope in &st.registry_scopes {
            if scope != "*" {
                validate_scope_format(scope)
                    .map_err(|e| invalid(kind, format!("statement {name:?}: {e}")))?;
            }
            if let Some(other) = seen.insert(scope.as_str(), name.as_str()) {
                return Err(invalid(
                    kind,
                    format!(
                        "registry scope {scope:?} is present in statements {other:?} and {name:?}; one registry scope value can only be associated with one statement"
                    ),
                ));
            }
        }
    }
    Ok(())
}

const SCOPE_HINT: &str = "make sure it is a fully qualified repository without the scheme, protocol or tag. For example domain.com/my/repository or a local scope like local/myOCILayout";

/// notation-go `validateRegistryScopeFormat`: `domain[:port]/repository` with the
/// distribution reference grammar, no wildcard.
pub fn validate_scope_format(scope: &str) -> Result<(), String> {
    if scope.len() > 1 && scope.contains('*') {
        return Err(format!(
            "registry scope {scope:?} with wild card(s) is not valid, {SCOPE_HINT}"
        ));
    }
    let ok = match scope.split_once('/') {
        Some((domain, repository)) => is_domain(domain) && is_repository(repository),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "registry scope {scope:?} is not valid, {SCOPE_HINT}"
        ))
    }
}

/// `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:same))*(?::[0-9]+)?`
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            match (b.first(), b.last()) {
                (Some(f), Some(l)) => {
                    f.is_ascii_alphanumeric()
                        && l.is_ascii_alphanumeric()
                        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                }
                _ => false,
            }
        })
}

/// Path components `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*` joined by `/`.
fn is_repository(repository: &str) -> bool {
    !repository.is_empty() && repository.split('/').all(is_path_component)
}

fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators between alphanumeric runs: ".", "_", "__" or one or more "-".
    let mut i = 0;
    while i < b.len() {
        if b.get(i).is_some_and(alnum) {
            i += 1;
            continue;
        }
        let start = i;
        while b.get(i).is_some_and(|x| !alnum(x)) {
            i += 1;
        }
        let sep = b.get(start..i).unwrap_or_default();
        let valid = sep == b"." || sep == b"_" || sep == b"__" || sep.iter().all(|x| *x == b'-');
        if !valid {
            return false;
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "document_tests.rs"]
mod tests;
