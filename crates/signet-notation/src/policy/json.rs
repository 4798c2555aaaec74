//! A JSON reader that decodes trust policy documents the way Go's `encoding/json`
//! (`json.NewDecoder(r).Decode(&doc)`) does, which is what notation-go uses:
//!
//! - object keys match struct fields case-insensitively (Unicode simple folding of the
//!   few characters Go folds specially included);
//! - unknown fields are ignored;
//! - `null` leaves a field at its zero value;
//! - a field that appears twice is decoded twice: scalars and arrays take the last value,
//!   objects (structs, maps) merge;
//! - only the first JSON value of the input is read; bytes after it are ignored;
//! - a value of the wrong JSON type is an error.
//!
//! Objects keep their member order and duplicates, which `serde_json::Value` would not.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value with object members in document order, duplicates kept.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number,
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The JSON type name, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            members.push((k, v));
        }
        Ok(Json::Object(members))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

/// Reads the first JSON value of `bytes` (as `json.Decoder.Decode` does); trailing bytes
/// are not looked at. serde_json bounds nesting depth (128), so this cannot overflow the stack.
pub(crate) fn read_first_value(bytes: &[u8]) -> Result<Json, String> {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Json>();
    match stream.next() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the document is empty".to_owned()),
    }
}

/// Go's case folding for field-name matching (ASCII case, plus the Kelvin sign and the
/// long s that fold onto ASCII letters).
fn fold_char(c: char) -> char {
    match c {
        '\u{212A}' => 'k',
        '\u{017F}' => 's',
        c => c.to_ascii_lowercase(),
    }
}

/// Whether a JSON object key selects the struct field `field` (Go: exact match, else
/// case-insensitive match).
pub(crate) fn key_matches(key: &str, field: &str) -> bool {
    key.chars().map(fold_char).eq(field.chars().map(fold_char))
}

/// Decodes a JSON string field: `null` leaves `target` unchanged.
pub(crate) fn decode_string(v: &Json, target: &mut String, what: &str) -> Result<(), String> {
    match v {
        Json::Null => Ok(()),
        Json::String(s) => {
            *target = s.clone();
            Ok(())
        }
        other => Err(format!(
            "{what} must be a string, not {}",
            other.type_name()
        )),
    }
}

/// Decodes a JSON boolean field: `null` leaves `target` unchanged.
pub(crate) fn decode_bool(v: &Json, target: &mut bool, what: &str) -> Result<(), String> {
    match v {
        Json::Null => Ok(()),
        Json::Bool(b) => {
            *target = *b;
            Ok(())
        }
        other => Err(format!(
            "{what} must be true or false, not {}",
            other.type_name()
        )),
    }
}

/// Decodes a JSON array of strings: `null` empties it (Go sets a nil slice); `null`
/// elements decode to "".
pub(crate) fn decode_string_array(
    v: &Json,
    target: &mut Vec<String>,
    what: &str,
    max_len: usize,
) -> Result<(), String> {
    match v {
        Json::Null => {
            target.clear();
            Ok(())
        }
        Json::Array(items) => {
            if items.len() > max_len {
                return Err(format!(
                    "{what} has {} entries, more than the {max_len} accepted",
                    items.len()
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let mut s = String::new();
                decode_string(item, &mut s, &format!("{what}[{i}]"))?;
                out.push(s);
            }
            *target = out;
            Ok(())
        }
        other => Err(format!(
            "{what} must be an array of strings, not {}",
            other.type_name()
        )),
    }
}

/// The members of a JSON object field, `None` for `null`.
pub(crate) fn object_members<'a>(
    v: &'a Json,
    what: &str,
) -> Result<Option<&'a [(String, Json)]>, String> {
    match v {
        Json::Null => Ok(None),
        Json::Object(m) => Ok(Some(m)),
        other => Err(format!(
            "{what} must be an object, not {}",
            other.type_name()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_duplicates() {
        let v = read_first_value(br#"{"b":1,"a":null,"b":"x"} trailing"#).unwrap();
        assert_eq!(
            v,
            Json::Object(vec![
                ("b".into(), Json::Number),
                ("a".into(), Json::Null),
                ("b".into(), Json::String("x".into())),
            ])
        );
    }

    #[test]
    fn folds_keys_like_go() {
        assert!(key_matches("Version", "version"));
        assert!(key_matches("TRUSTPOLICIES", "trustPolicies"));
        assert!(key_matches("\u{212A}ey", "key"));
        assert!(!key_matches("versions", "version"));
    }

    #[test]
    fn rejects_garbage_and_deep_nesting() {
        assert!(read_first_value(b"").is_err());
        assert!(read_first_value(b"{").is_err());
        let deep = "[".repeat(100_000);
        assert!(read_first_value(deep.as_bytes()).is_err());
    }
}
