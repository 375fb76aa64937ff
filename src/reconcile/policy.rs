//! Key policies compared as parsed JSON. AWS reformats the documents it stores (whitespace,
//! key order, a one-element list written as a scalar), so comparing strings would make the
//! operator rewrite the policy forever.

use serde_json::{Map, Value};

/// The policy AWS attaches when CreateKey gets none: the key's account may grant access
/// through IAM. `key_arn` gives the partition and the account.
pub fn default_policy(key_arn: &str) -> Option<String> {
    let mut parts = key_arn.split(':');
    let partition = parts.nth(1).filter(|p| !p.is_empty())?;
    let account = parts.nth(2).filter(|a| !a.is_empty())?;
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    });
    Some(doc.to_string())
}

/// Parses a policy into a JSON object, or says why it is not one.
pub fn parse_policy(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("the policy must be a JSON object".to_owned()),
        Err(err) => Err(format!("the policy is not valid JSON: {err}")),
    }
}

/// Whether two policy documents mean the same once AWS's reformatting is undone. Text that
/// does not parse is compared as text.
pub fn policies_equal(a: &str, b: &str) -> bool {
    match (parse_policy(a), parse_policy(b)) {
        (Ok(a), Ok(b)) => canonical(a) == canonical(b),
        _ => a == b,
    }
}

/// A form in which equivalent policies are equal: object keys are unordered (serde_json's
/// map), a one-element list equals its element, and lists of plain values are sorted (the
/// order of actions, principals and resources does not matter to IAM).
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, canonical(v))).collect::<Map<_, _>>())
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.into_iter().map(canonical).collect();
            if items.len() == 1 {
                return items.remove(0);
            }
            if items.iter().all(|v| !v.is_object() && !v.is_array()) {
                items.sort_by_key(|v| v.to_string());
            }
            Value::Array(items)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;

    #[test]
    fn reformatted_policies_are_equal() {
        let reformatted = r#"{
          "Statement" : [ {
            "Resource" : "*", "Action" : ["kms:*"], "Effect" : "Allow",
            "Principal" : { "AWS" : [ "arn:aws:iam::111122223333:root" ] }
          } ],
          "Version" : "2012-10-17"
        }"#;
        assert!(policies_equal(POLICY, reformatted));
    }

    #[test]
    fn action_order_does_not_matter() {
        let a = r#"{"Statement":[{"Action":["kms:Encrypt","kms:Decrypt"]}]}"#;
        let b = r#"{"Statement":[{"Action":["kms:Decrypt","kms:Encrypt"]}]}"#;
        assert!(policies_equal(a, b));
    }

    #[test]
    fn a_changed_principal_or_statement_order_is_a_difference() {
        let other = POLICY.replace("111122223333", "444455556666");
        assert!(!policies_equal(POLICY, &other));
        let two = r#"{"Statement":[{"Sid":"a"},{"Sid":"b"}]}"#;
        let swapped = r#"{"Statement":[{"Sid":"b"},{"Sid":"a"}]}"#;
        assert!(!policies_equal(two, swapped));
    }

    #[test]
    fn text_that_is_not_a_json_object_is_refused_with_a_reason() {
        assert!(parse_policy("{not json").unwrap_err().contains("not valid JSON"));
        assert!(parse_policy("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_policy(POLICY).is_ok());
    }

    #[test]
    fn the_default_policy_names_the_keys_account_root() {
        let arn = "arn:aws:kms:eu-west-1:123456789012:key/abc";
        let policy = default_policy(arn).unwrap();
        assert!(policy.contains("arn:aws:iam::123456789012:root"));
        assert!(parse_policy(&policy).is_ok());
        assert_eq!(default_policy("not-an-arn"), None);
    }
}
