//! `x509.subject` trusted identities: Notation's distinguished-name rules and matching a
//! leaf certificate's subject against them.
//!
//! The policy DN is parsed the way notation-go does (go-ldap `ParseDN` followed by
//! notation-go's `pkix.ParseDistinguishedName` rules): RFC 4514-style `type=value` pairs
//! separated by `,` (or `;`), `\`-escapes of specials and hex pairs, unescaped leading and
//! trailing spaces dropped; `=#` (BER hex values) refused; no multi-valued RDNs (`+`); no
//! repeated attribute type; `S` is an alias of `ST`; `C`, `ST` and `O` are mandatory.
//!
//! A leaf matches when every attribute of the policy DN is present in its subject with an
//! equal value (subset match). The leaf subject is read the way notation-go reads Go's
//! rendering of it (`pkix.Name.String()`): a standard attribute type other than `CN` and
//! `SERIALNUMBER` that appears more than once (two `OU`s, two `O`s) is rendered as one
//! multi-valued RDN, which notation-go's DN parser refuses, so such a leaf matches no
//! `x509.subject` identity (only `*`); a repeated `CN` or `SERIALNUMBER` counts with its
//! last value only. Accepting "any of the values" would let a CA-issued leaf saying
//! `O=Evil, O=Trusted` pass a policy naming `O=Trusted`. Signet deviation (b) remains for
//! uncommon attribute types (`emailAddress`, `DC`, ...), which notation-go renders as
//! `=#` hex and refuses: Signet matches them by name or OID.

use std::fmt;

use crate::cert::Certificate;

/// A parsed `x509.subject` distinguished name: unique attribute types with their values,
/// in the order written.
#[derive(Clone, PartialEq, Eq)]
pub struct DistinguishedName {
    raw: String,
    attributes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DistinguishedName").field(&self.raw).finish()
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Largest DN accepted (characters).
const MAX_DN_LEN: usize = 8 * 1024;

const MANDATORY: [&str; 3] = ["C", "ST", "O"];

impl DistinguishedName {
    /// Parses a DN with Notation's rules (see the module documentation).
    pub fn parse(name: &str) -> Result<DistinguishedName, String> {
        if name.len() > MAX_DN_LEN {
            return Err(format!(
                "distinguished name (DN) is {} bytes long, more than the {MAX_DN_LEN} accepted",
                name.len()
            ));
        }
        if name.contains("=#") {
            return Err(format!(
                "unsupported distinguished name (DN) {name:?}: hex-encoded values (\"=#\") are not supported in x509.subject identities; write the value as a string"
            ));
        }
        let rdns = parse_ldap_dn(name).map_err(|e| {
            format!(
                "parsing distinguished name (DN) {name:?} failed: {e}. A valid DN must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum, and follow RFC 4514"
            )
        })?;
        let mut attributes: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for rdn in rdns {
            if rdn.len() > 1 {
                return Err(format!(
                    "distinguished name (DN) {name:?} has multi-valued RDN attributes ('+'); remove them, they are not supported"
                ));
            }
            for (mut attr_type, value) in rdn {
                if attr_type == b"S" {
                    attr_type = b"ST".to_vec();
                }
                match attributes.iter_mut().find(|(t, _)| *t == attr_type) {
                    // notation-go keeps a map and only refuses a repeat whose first value
                    // was non-empty.
                    Some((_, existing)) if existing.is_empty() => *existing = value,
                    Some(_) => {
                        return Err(format!(
                            "distinguished name (DN) {name:?} has duplicate RDN attribute for {:?}; a DN can only have unique RDN attributes",
                            String::from_utf8_lossy(&attr_type)
                        ))
                    }
                    None => attributes.push((attr_type, value)),
                }
            }
        }
        let dn = DistinguishedName {
            raw: name.to_owned(),
            attributes,
        };
        for field in MANDATORY {
            if dn.get(field).is_none_or(|v| v.is_empty()) {
                return Err(format!(
                    "distinguished name (DN) {name:?} has no mandatory RDN attribute for {field:?}; it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"
                ));
            }
        }
        Ok(dn)
    }

    /// The DN as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The value of an attribute type (exact, case-sensitive; `S` is stored as `ST`).
    pub fn get(&self, attr_type: &str) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(t, _)| t.as_slice() == attr_type.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The attributes, type and value, in the order written.
    pub fn attributes(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.attributes
            .iter()
            .map(|(t, v)| (t.as_slice(), v.as_slice()))
    }

    /// Whether every attribute of `self` has the same value in `other` (a missing attribute
    /// counts as the empty value, as in notation-go's `IsSubsetDN`).
    pub fn is_subset_of(&self, other: &DistinguishedName) -> bool {
        self.attributes.iter().all(|(t, v)| {
            other
                .attributes
                .iter()
                .find(|(ot, _)| ot == t)
                .map_or(v.is_empty(), |(_, ov)| ov == v)
        })
    }

    /// Whether the leaf certificate's subject contains every attribute of this DN.
    pub fn matches_certificate(&self, leaf: &Certificate) -> bool {
        match leaf_attributes(leaf) {
            Some(leaf_attrs) => self.attributes.iter().all(|(t, v)| {
                let mut values = leaf_attrs.iter().filter(|a| a.has_name(t)).peekable();
                if v.is_empty() {
                    values.peek().is_none() || values.any(|a| a.value.is_empty())
                } else {
                    values.any(|a| a.value == *v)
                }
            }),
            None => false,
        }
    }
}

type Rdn = Vec<(Vec<u8>, Vec<u8>)>;

/// go-ldap's `ParseDN` (v3.4): a byte-wise scanner. `=#` never reaches it (refused
/// before), so BER hex values are not decoded here.
fn parse_ldap_dn(s: &str) -> Result<Vec<Rdn>, String> {
    let bytes = s.as_bytes();
    let mut rdns: Vec<Rdn> = Vec::new();
    let mut rdn: Rdn = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut attr_type: Vec<u8> = Vec::new();
    let mut escaping = false;
    let mut trailing_spaces = 0usize;

    fn take(buffer: &mut Vec<u8>, trailing_spaces: &mut usize) -> Vec<u8> {
        let keep = buffer.len().saturating_sub(*trailing_spaces);
        buffer.truncate(keep);
        *trailing_spaces = 0;
        std::mem::take(buffer)
    }

    let mut i = 0usize;
    while let Some(&c) = bytes.get(i) {
        if escaping {
            trailing_spaces = 0;
            escaping = false;
            if matches!(
                c,
                b' ' | b'"' | b'#' | b'+' | b',' | b';' | b'<' | b'=' | b'>' | b'\\'
            ) {
                buffer.push(c);
                i += 1;
                continue;
            }
            let Some(&c2) = bytes.get(i + 1) else {
                return Err("got corrupted escaped character".to_owned());
            };
            match (hex_val(c), hex_val(c2)) {
                (Some(h), Some(l)) => buffer.push((h << 4) | l),
                _ => return Err("failed to decode escaped character: invalid hex pair".to_owned()),
            }
            i += 2;
            continue;
        }
        match c {
            b'\\' => {
                trailing_spaces = 0;
                escaping = true;
            }
            b'=' if attr_type.is_empty() => {
                attr_type = take(&mut buffer, &mut trailing_spaces);
            }
            b',' | b'+' | b';' => {
                if attr_type.is_empty() {
                    return Err("incomplete type, value pair".to_owned());
                }
                let value = take(&mut buffer, &mut trailing_spaces);
                rdn.push((std::mem::take(&mut attr_type), value));
                if c != b'+' {
                    rdns.push(std::mem::take(&mut rdn));
                }
            }
            b' ' if buffer.is_empty() => {}
            _ => {
                if c == b' ' {
                    trailing_spaces += 1;
                } else {
                    trailing_spaces = 0;
                }
                buffer.push(c);
            }
        }
        i += 1;
    }
    if !buffer.is_empty() {
        if attr_type.is_empty() {
            return Err("DN ended with incomplete type, value pair".to_owned());
        }
        let value = take(&mut buffer, &mut trailing_spaces);
        rdn.push((attr_type, value));
        rdns.push(rdn);
    }
    Ok(rdns)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The attribute types Go's `pkix.Name.String()` prints by short name; notation-go compares
/// policy attribute types against exactly these names.
const STANDARD_NAMES: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
];

/// Names accepted (case-insensitively) for uncommon attribute types (Signet deviation (b));
/// the dotted OID is always accepted too.
const UNCOMMON_NAMES: [(&str, &[&str]); 16] = [
    ("1.2.840.113549.1.9.1", &["emailAddress", "E", "email"]),
    ("0.9.2342.19200300.100.1.25", &["DC", "domainComponent"]),
    ("0.9.2342.19200300.100.1.1", &["UID", "userId"]),
    ("2.5.4.4", &["SN", "surname"]),
    ("2.5.4.42", &["GN", "givenName"]),
    ("2.5.4.12", &["title", "T"]),
    ("2.5.4.43", &["initials"]),
    ("2.5.4.44", &["generationQualifier"]),
    ("2.5.4.46", &["dnQualifier"]),
    ("2.5.4.65", &["pseudonym"]),
    ("2.5.4.15", &["businessCategory"]),
    ("2.5.4.13", &["description"]),
    ("2.5.4.97", &["organizationIdentifier"]),
    (
        "1.3.6.1.4.1.311.60.2.1.3",
        &["jurisdictionC", "jurisdictionCountryName"],
    ),
    (
        "1.3.6.1.4.1.311.60.2.1.2",
        &["jurisdictionST", "jurisdictionStateOrProvinceName"],
    ),
    (
        "1.3.6.1.4.1.311.60.2.1.1",
        &["jurisdictionL", "jurisdictionLocalityName"],
    ),
];

struct LeafAttribute {
    oid: String,
    standard: Option<&'static str>,
    value: Vec<u8>,
}

impl LeafAttribute {
    fn has_name(&self, name: &[u8]) -> bool {
        if let Some(std_name) = self.standard {
            return std_name.as_bytes() == name;
        }
        if self.oid.as_bytes() == name {
            return true;
        }
        UNCOMMON_NAMES
            .iter()
            .filter(|(oid, _)| *oid == self.oid)
            .flat_map(|(_, names)| names.iter())
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Standard attribute types Go renders with their last value only (`pkix.Name` keeps one
/// `CommonName` and one `SerialNumber`).
const SINGLE_VALUED: [&str; 2] = ["CN", "SERIALNUMBER"];

/// The leaf subject's attributes with decoded string values; `None` when notation-go could
/// not match any `x509.subject` identity against this subject for a reason that is not
/// deviation (b): a standard attribute's value contains `=#`, or a standard attribute type
/// (other than `CN`, `SERIALNUMBER`) is repeated, both of which notation-go refuses after
/// rendering the subject as a string.
fn leaf_attributes(leaf: &Certificate) -> Option<Vec<LeafAttribute>> {
    let mut out = all_leaf_attributes(leaf)?;
    for (i, attr) in out.iter().enumerate() {
        let Some(name) = attr.standard else {
            continue;
        };
        let repeated = out
            .iter()
            .skip(i + 1)
            .any(|later| later.standard == Some(name));
        if repeated && !SINGLE_VALUED.contains(&name) {
            return None;
        }
    }
    // Go keeps the last CN / SERIALNUMBER.
    let mut keep = vec![true; out.len()];
    for (i, attr) in out.iter().enumerate() {
        if let Some(name) = attr.standard.filter(|n| SINGLE_VALUED.contains(n)) {
            keep[i] = !out
                .iter()
                .skip(i + 1)
                .any(|later| later.standard == Some(name));
        }
    }
    let mut keep = keep.into_iter();
    out.retain(|_| keep.next().unwrap_or(true));
    Some(out)
}

fn all_leaf_attributes(leaf: &Certificate) -> Option<Vec<LeafAttribute>> {
    let cert = leaf.x509();
    let mut out = Vec::new();
    for rdn in cert.subject().iter() {
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let standard = STANDARD_NAMES
                .iter()
                .find(|(o, _)| *o == oid)
                .map(|(_, n)| *n);
            let any = atv.attr_value();
            let universal = any.header.class() == x509_parser::asn1_rs::Class::Universal;
            let Some(value) = universal
                .then(|| decode_string_value(any.tag().0, any.data))
                .flatten()
            else {
                // Not a string: Go drops it for standard types; it can match nothing here.
                continue;
            };
            if standard.is_some() && value.windows(2).any(|w| w == b"=#") {
                return None;
            }
            out.push(LeafAttribute {
                oid,
                standard,
                value,
            });
        }
    }
    Some(out)
}

/// Decodes a DirectoryString-like value to UTF-8 bytes.
fn decode_string_value(tag: u32, data: &[u8]) -> Option<Vec<u8>> {
    match tag {
        // UTF8String
        12 => std::str::from_utf8(data)
            .ok()
            .map(|s| s.as_bytes().to_vec()),
        // NumericString, PrintableString, IA5String, VisibleString: ASCII subsets.
        18 | 19 | 22 | 26 => data.is_ascii().then(|| data.to_vec()),
        // TeletexString (T61): Go keeps the bytes; read them as Latin-1 when not UTF-8.
        20 => Some(match std::str::from_utf8(data) {
            Ok(s) => s.as_bytes().to_vec(),
            Err(_) => data
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
                .into_bytes(),
        }),
        // BMPString: UTF-16BE.
        30 => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|c| <[u8; 2]>::try_from(c).map_or(0xFFFF, u16::from_be_bytes));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
                .map(String::into_bytes)
        }
        // UniversalString: UTF-32BE.
        28 => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| {
                    <[u8; 4]>::try_from(c)
                        .ok()
                        .and_then(|b| char::from_u32(u32::from_be_bytes(b)))
                })
                .collect::<Option<String>>()
                .map(String::into_bytes)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dn(s: &str) -> DistinguishedName {
        DistinguishedName::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_rfc4514_escapes_and_spaces() {
        let d = dn("C=US,ST=WA,O=My \"special\" Org \\, \\; \\\\ others");
        assert_eq!(d.get("O"), Some(&b"My \"special\" Org , ; \\ others"[..]));
        let d = dn("C=US,ST=WA,O=  My.  Org  ");
        assert_eq!(d.get("O"), Some(&b"My.  Org"[..]));
        let d = dn(" CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US");
        assert_eq!(d.get("CN"), Some(&b"wabbit-networks.io"[..]));
        let d = dn("C=US,S=WA,O=x\\41\\ ");
        assert_eq!(d.get("ST"), Some(&b"WA"[..]));
        assert_eq!(d.get("O"), Some(&b"xA "[..]));
    }

    #[test]
    fn refuses_what_notation_refuses() {
        for bad in [
            ",,,",
            "C=US,C=IN",
            "C=US,ST=WA",
            "C=US+ST=WA,O=MyOrg",
            "C=US,ST=WA,O=#abcd",
            "C=US,ST=WA,O=x\\",
            "C=US,ST=WA,O=x\\4",
            "C=US,ST=WA,O=x\\zz",
            "C=US,ST=WA,O=",
            "C=US,ST=WA,=x,O=y",
            "C=US,ST=WA,S=OR,O=y",
        ] {
            if bad == "C=US,ST=WA,O=x\\" {
                // go-ldap ignores a trailing lone backslash.
                assert!(DistinguishedName::parse(bad).is_ok());
                continue;
            }
            assert!(
                DistinguishedName::parse(bad).is_err(),
                "{bad} should be refused"
            );
        }
        assert!(DistinguishedName::parse("C=US,ST=WA,O=MyOrg,CustomRDN=CustomValue").is_ok());
    }

    #[test]
    fn subset() {
        let a = dn("C=US,ST=WA,O=MyOrg");
        let b = dn("C=US,ST=WA,O=MyOrg,X=Y");
        assert!(a.is_subset_of(&b));
        assert!(!b.is_subset_of(&a));
    }

    #[test]
    fn repeated_leaf_attributes_as_notation_go() {
        // C=US, ST=WA, O=Signet Test, OU=builders, OU=attackers, CN=first, CN=repeated subject
        let leaf = Certificate::parse_pem(include_bytes!(
            "../../tests/data/identity/repeated-ou-cn.pem"
        ))
        .unwrap()
        .remove(0);
        // Two OUs: Go renders "OU=builders+OU=attackers", which notation-go refuses; no
        // x509.subject identity matches, not even one that does not name OU.
        for identity in [
            "C=US,ST=WA,O=Signet Test",
            "C=US,ST=WA,O=Signet Test,OU=builders",
            "C=US,ST=WA,O=Signet Test,OU=attackers",
        ] {
            assert!(!dn(identity).matches_certificate(&leaf), "{identity}");
        }
    }

    #[test]
    fn repeated_common_name_counts_with_its_last_value() {
        // C=US, ST=WA, O=Signet Test, OU=builders, CN=first, CN=last
        let leaf =
            Certificate::parse_pem(include_bytes!("../../tests/data/identity/repeated-cn.pem"))
                .unwrap()
                .remove(0);
        assert!(dn("C=US,ST=WA,O=Signet Test,OU=builders,CN=last").matches_certificate(&leaf));
        assert!(!dn("C=US,ST=WA,O=Signet Test,CN=first").matches_certificate(&leaf));
    }

    #[test]
    fn decodes_string_types() {
        assert_eq!(
            decode_string_value(30, &[0, b'A', 0x00, 0xE9]),
            Some("Aé".as_bytes().to_vec())
        );
        assert_eq!(
            decode_string_value(28, &[0, 0, 0, b'Z']),
            Some(b"Z".to_vec())
        );
        assert_eq!(
            decode_string_value(20, &[0xE9]),
            Some("é".as_bytes().to_vec())
        );
        assert_eq!(decode_string_value(30, &[0]), None);
        assert_eq!(decode_string_value(4, b"x"), None);
    }
}
