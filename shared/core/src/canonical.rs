//! Canonical JSON: object keys sorted, no insignificant whitespace. Two documents that
//! mean the same thing have the same canonical text, so it can be compared and hashed.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical text of a JSON value.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A content hash of a JSON value: the first 16 hex digits of the SHA-256 of its
/// canonical text.
pub fn content_hash(value: &Value) -> String {
    let digest = Sha256::digest(canonical_json(value).as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_spacing_do_not_change_the_text() {
        let a: Value =
            serde_json::from_str(r#"{"b": 2, "a": {"y": [1, {"z": 0, "x": 1}]}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"y":[1,{"x":1,"z":0}]},"b":2}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"y":[1,{"x":1,"z":0}]},"b":2}"#);
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(content_hash(&a), content_hash(&b));
    }

    #[test]
    fn different_values_hash_differently() {
        assert_ne!(
            content_hash(&json!({"a": 1})),
            content_hash(&json!({"a": 2}))
        );
        assert_eq!(content_hash(&json!(null)).len(), 16);
    }
}
