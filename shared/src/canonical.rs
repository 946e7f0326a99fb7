//! The one canonical JSON of everything Latchkey hashes (audit events, backup fingerprints):
//! RFC 8785, the JSON Canonicalization Scheme, from `serde_json_canonicalizer`. Object keys are
//! sorted at every depth and numbers and strings have one spelling, so a hash does not depend
//! on how a backend returned the attributes. A leaf module: ports and domain both use it.
use serde_json::Value;

/// The canonical bytes of `value`. A `Value` always serialises (its keys are strings and its
/// numbers finite), so there is no error to return.
pub fn bytes(value: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_depth_and_arrays_keep_their_order() {
        let v =
            serde_json::json!({"b": 1, "a": {"z": [3, 1, {"d": 0, "c": "é\u{1f}"}], "y": null}});
        assert_eq!(
            String::from_utf8(bytes(&v)).unwrap_or_default(),
            r#"{"a":{"y":null,"z":[3,1,{"c":"é\u001f","d":0}]},"b":1}"#
        );
    }
}
