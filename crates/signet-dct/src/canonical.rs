//! Canonical JSON as Notary (`github.com/docker/go/canonical/json`) writes it: object keys
//! sorted by their bytes, no whitespace, integers only, strings escaped only for `"` and `\`
//! (every other byte, control and non-ASCII alike, is written as is).

use serde_json::Value;

/// The canonical bytes of a JSON value, or `None` when the value has no canonical form
/// (a number that is not an integer).
pub(crate) fn to_canonical(value: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Some(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Option<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                // Go decodes into float64 and writes integral floats as integers.
                let f = n.as_f64()?;
                if !f.is_finite() || f.fract() != 0.0 || f.abs() > 9.007_199_254_740_992e15 {
                    return None;
                }
                #[allow(clippy::cast_possible_truncation)]
                out.extend_from_slice((f as i64).to_string().as_bytes());
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write(&map[key], out)?;
            }
            out.push(b'}');
        }
    }
    Some(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let v: Value =
            serde_json::from_str(r#"{ "b": 1, "a": [true, null, "x\"y\\z\n"] }"#).expect("json");
        assert_eq!(
            to_canonical(&v).expect("canonical"),
            b"{\"a\":[true,null,\"x\\\"y\\\\z\n\"],\"b\":1}".to_vec()
        );
    }

    #[test]
    fn refuses_fractions() {
        let v: Value = serde_json::from_str("1.5").expect("json");
        assert!(to_canonical(&v).is_none());
        let v: Value = serde_json::from_str("2.0").expect("json");
        assert_eq!(to_canonical(&v).expect("canonical"), b"2".to_vec());
    }
}
