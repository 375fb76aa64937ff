//! The JSON merge patch (RFC 7396) between two status documents, so a status write carries
//! only what changed.

use serde_json::{Map, Value};

/// The JSON merge patch (RFC 7396) that turns `old` into `new`: changed values, and `null`
/// for every field `new` no longer has.
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(before) if before == value => {}
                    Some(before) => {
                        patch.insert(key.clone(), merge_patch(before, value));
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_merge_patch_carries_changes_and_nulls_for_removed_fields() {
        let old = json!({"keyId": "k1", "createIntent": {"token": "t"}, "grantIds": {"a": "1", "b": "2"}});
        let new = json!({"keyId": "k1", "keyArn": "arn", "grantIds": {"a": "1"}});
        assert_eq!(
            merge_patch(&old, &new),
            json!({"keyArn": "arn", "createIntent": null, "grantIds": {"b": null}})
        );
    }

    #[test]
    fn lists_are_replaced_whole() {
        let old = json!({"conditions": [{"type": "Ready"}]});
        let new = json!({"conditions": [{"type": "Ready"}, {"type": "Stalled"}]});
        assert_eq!(merge_patch(&old, &new), new);
    }

    #[test]
    fn an_unchanged_status_gives_an_empty_patch() {
        let same = json!({"keyId": "k1"});
        assert_eq!(merge_patch(&same, &same), json!({}));
    }
}
