//! The one canonical JSON of everything Latchkey hashes (audit events, backup fingerprints):
//! object keys sorted at every depth, no whitespace, strings and numbers as serde_json writes
//! them. A leaf module: ports and domain both use it.
//!
//! Hand-written rather than RFC 8785 (JCS, e.g. `serde_json_canonicalizer`): JCS writes every
//! number through an `f64`, so integers above 2^53 (ids tenants put in rule conditions) lose
//! their last digits and two different items could fingerprint alike, and `100.0` would hash as
//! `100`, changing the fingerprints of backups already taken. Keys sort by UTF-8 bytes (JCS:
//! UTF-16 units); the two orders differ only for keys mixing U+E000–U+FFFF with characters
//! beyond U+FFFF.
use serde_json::Value;

/// The canonical bytes of `value`.
pub fn bytes(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write(value, &mut out);
    out.into_bytes()
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &Value) -> String {
        String::from_utf8(bytes(v)).unwrap_or_default()
    }

    #[test]
    fn keys_are_sorted_at_every_depth_and_arrays_keep_their_order() {
        let v =
            serde_json::json!({"b": 1, "a": {"z": [3, 1, {"d": 0, "c": "é\u{1f}"}], "y": null}});
        assert_eq!(
            text(&v),
            r#"{"a":{"y":null,"z":[3,1,{"c":"é\u001f","d":0}]},"b":1}"#
        );
    }

    #[test]
    fn numbers_keep_their_spelling_and_precision() {
        let v = serde_json::json!([9_007_199_254_740_993_u64, 100.0, -5, 1.5]);
        assert_eq!(text(&v), "[9007199254740993,100.0,-5,1.5]");
    }
}
