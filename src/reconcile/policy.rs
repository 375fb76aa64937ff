//! Key policies compared as parsed JSON. AWS reformats the documents it stores (whitespace,
//! key order, a one-element list written as a scalar, an account ID principal written as its
//! root ARN, `true` written as `"true"`), so comparing strings would make the operator
//! rewrite the policy forever. A document with a repeated key is refused: which of the two
//! values AWS would honour is unclear, so it can never be called equal to anything.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The `Sid` of AWS's default statement.
pub const DEFAULT_STATEMENT_SID: &str = "Enable IAM User Permissions";

/// AWS's default statement: the account root (`root`, its ARN) may use `kms:*`, so IAM
/// policies of the account grant access.
pub fn default_statement(root: &str) -> Value {
    serde_json::json!({
        "Sid": DEFAULT_STATEMENT_SID,
        "Effect": "Allow",
        "Principal": {"AWS": root},
        "Action": "kms:*",
        "Resource": "*"
    })
}

/// The policy AWS attaches when CreateKey gets none: the key's account may grant access
/// through IAM. `key_arn` gives the partition and the account.
pub fn default_policy(key_arn: &str) -> Option<String> {
    let mut parts = key_arn.split(':');
    let partition = parts.nth(1).filter(|p| !p.is_empty())?;
    let account = parts.nth(2).filter(|a| !a.is_empty())?;
    let root = format!("arn:{partition}:iam::{account}:root");
    let doc = serde_json::json!({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [default_statement(&root)]});
    Some(doc.to_string())
}

/// A policy document's statements: IAM allows one statement written as an object, not a list.
pub fn statements_of(document: &Value) -> Vec<Value> {
    match &document["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// The statements (by `Sid`, or `#<n>` for one without) that differ between two policies:
/// in one and not the other, or not equal. Empty when the documents differ elsewhere only.
pub fn differing_statements(wanted: &str, current: &str) -> Vec<String> {
    let statements = |text: &str| -> Vec<(String, Value)> {
        let parsed = parse_policy(text).map(|doc| statements_of(&doc)).unwrap_or_default();
        let list: Vec<Value> = parsed.into_iter().map(canonical).collect();
        let label =
            |n: usize, s: &Value| s["Sid"].as_str().map_or_else(|| format!("#{}", n + 1), str::to_owned);
        list.into_iter().enumerate().map(|(n, s)| (label(n, &s), s)).collect()
    };
    let (wanted, current) = (statements(wanted), statements(current));
    let only_in = |these: &[(String, Value)], those: &[(String, Value)]| -> Vec<String> {
        these.iter().filter(|pair| !those.contains(pair)).map(|(label, _)| label.clone()).collect()
    };
    let mut differ = only_in(&wanted, &current);
    for label in only_in(&current, &wanted) {
        if !differ.contains(&label) {
            differ.push(label);
        }
    }
    differ
}

/// Parses a policy into a JSON object, or says why it is not one.
pub fn parse_policy(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<NoRepeatedKeys>(text) {
        Ok(NoRepeatedKeys(value @ Value::Object(_))) => Ok(value),
        Ok(_) => Err("the policy must be a JSON object".to_owned()),
        Err(err) => Err(format!("the policy is not valid JSON: {err}")),
    }
}

/// A JSON value in which no object repeats a key.
struct NoRepeatedKeys(Value);

impl<'de> Deserialize<'de> for NoRepeatedKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoRepeatedKeysVisitor).map(NoRepeatedKeys)
    }
}

struct NoRepeatedKeysVisitor;

impl<'de> Visitor<'de> for NoRepeatedKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(NoRepeatedKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("the key {key:?} appears twice in one object")));
            }
            let NoRepeatedKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
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
/// map), a one-element list equals its element, lists of plain values are sorted (the order
/// of actions, principals and resources does not matter to IAM), booleans and numbers equal
/// their text, and an account's root ARN as a principal equals the bare account ID.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            (map.into_iter())
                .map(|(k, v)| {
                    let v =
                        if matches!(k.as_str(), "Principal" | "NotPrincipal") { principals(v) } else { v };
                    (k, canonical(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
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

/// Within a `Principal`, writes `arn:<partition>:iam::<account>:root` as `<account>`, the
/// form both mean to IAM.
fn principals(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(account_of_root_arn(&text).unwrap_or(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(principals).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, principals(v))).collect()),
        other => other,
    }
}

fn account_of_root_arn(text: &str) -> Option<String> {
    let rest = text.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(":iam::")?;
    let account = rest.strip_suffix(":root")?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then(|| account.to_owned())
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
    fn an_account_id_principal_equals_its_root_arn_as_aws_rewrites_it() {
        let bare = r#"{"Statement":[{"Principal":{"AWS":"111122223333"},"Action":"kms:*"}]}"#;
        let arn =
            r#"{"Statement":[{"Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*"}]}"#;
        assert!(policies_equal(bare, arn));
        let role =
            r#"{"Statement":[{"Principal":{"AWS":"arn:aws:iam::111122223333:role/x"},"Action":"kms:*"}]}"#;
        assert!(!policies_equal(bare, role));
    }

    #[test]
    fn a_root_arn_outside_a_principal_is_compared_as_written() {
        // In a condition, the ARN and the account ID are different strings to IAM.
        let arn = r#"{"Condition":{"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:root"}}}"#;
        let bare = r#"{"Condition":{"StringEquals":{"aws:PrincipalArn":"111122223333"}}}"#;
        assert!(!policies_equal(arn, bare));
    }

    #[test]
    fn booleans_equal_their_text() {
        let a = r#"{"Condition":{"Bool":{"aws:SecureTransport":false}}}"#;
        let b = r#"{"Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#;
        assert!(policies_equal(a, b));
        assert!(!policies_equal(a, &b.replace("false", "true")));
    }

    #[test]
    fn a_policy_repeating_a_key_is_refused_and_never_equal() {
        let repeated = r#"{"Statement":[{"Principal":"*","Principal":{"AWS":"111122223333"}}]}"#;
        assert!(parse_policy(repeated).unwrap_err().contains("appears twice"));
        let last_wins = r#"{"Statement":[{"Principal":{"AWS":"111122223333"}}]}"#;
        assert!(!policies_equal(repeated, last_wins));
    }

    #[test]
    fn text_that_is_not_a_json_object_is_refused_with_a_reason() {
        assert!(parse_policy("{not json").unwrap_err().contains("not valid JSON"));
        assert!(parse_policy("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_policy(POLICY).is_ok());
    }

    #[test]
    fn differing_statements_are_named_by_sid() {
        let wanted = r#"{"Statement":[{"Sid":"A","Action":"kms:Encrypt"},{"Sid":"B","Action":["kms:Decrypt","kms:Encrypt"]},{"Sid":"C"}]}"#;
        let current = r#"{"Statement":[{"Sid":"B","Action":["kms:Encrypt","kms:Decrypt"]},{"Sid":"A","Action":"kms:Decrypt"},{"Sid":"D"}]}"#;
        assert_eq!(differing_statements(wanted, current), ["A", "C", "D"]);
        assert!(differing_statements(wanted, wanted).is_empty());
        let unnamed = r#"{"Statement":{"Action":"kms:*"}}"#;
        assert_eq!(differing_statements(unnamed, r#"{"Statement":[]}"#), ["#1"]);
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
