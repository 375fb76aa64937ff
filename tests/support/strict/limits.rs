//! KMS's documented limits and formats, which moto does not check
//! (<https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html> and the API
//! reference of each operation):
//! - tags: at most 50 per key in total; key 1–128 characters, value 0–256; the `aws:` prefix is
//!   reserved → `TagException`;
//! - alias names: `alias/` + name, the whole 1–256 characters of `[a-zA-Z0-9/_-]` →
//!   `ValidationException`; `alias/aws/` is reserved for AWS managed keys →
//!   `NotAuthorizedException`; at most 50 aliases per key → `LimitExceededException`;
//! - description: at most 8192 characters → `ValidationException`;
//! - key policy: a JSON object (`MalformedPolicyDocumentException`) of at most 32768 bytes
//!   (`LimitExceededException`);
//! - deletion window 7–30 days, rotation period 90–2560 days → `ValidationException`;
//! - automatic rotation only for `SYMMETRIC_DEFAULT` keys with `AWS_KMS` origin →
//!   `UnsupportedOperationException`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{KeyInfo, Refusal};

pub const MAX_TAGS_PER_KEY: usize = 50;
/// Aliases per key (checked by the pipeline, which lists them) → `LimitExceededException`.
pub const MAX_ALIASES_PER_KEY: usize = 50;
pub const MAX_POLICY_BYTES: usize = 32768;
pub const MAX_DESCRIPTION: usize = 8192;

/// The checks that need only the request, done before authorization as AWS validates input first.
pub fn check_request(operation: &str, body: &Value) -> Result<(), Refusal> {
    match operation {
        "CreateKey" => {
            check_tags(&body["Tags"])?;
            check_count(0, &body["Tags"])?;
            check_description(&body["Description"])?;
            check_policy(&body["Policy"])
        }
        "TagResource" => check_tags(&body["Tags"]),
        "UntagResource" => strings(&body["TagKeys"]).try_for_each(check_tag_key),
        "CreateAlias" | "UpdateAlias" | "DeleteAlias" => {
            check_alias(body["AliasName"].as_str().unwrap_or(""))
        }
        "UpdateKeyDescription" => check_description(&body["Description"]),
        "PutKeyPolicy" => check_policy(&body["Policy"]),
        "ScheduleKeyDeletion" => check_range(&body["PendingWindowInDays"], "pendingWindowInDays", 7, 30),
        "EnableKeyRotation" => check_range(&body["RotationPeriodInDays"], "rotationPeriodInDays", 90, 2560),
        _ => Ok(()),
    }
}

/// The checks that need the key: the tag total and rotation support.
pub fn check_with_key(operation: &str, body: &Value, key: &KeyInfo) -> Result<(), Refusal> {
    match operation {
        "TagResource" => check_total(&key.tags, &body["Tags"]),
        "EnableKeyRotation" | "DisableKeyRotation" => check_rotation_supported(key),
        _ => Ok(()),
    }
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn tag_pairs(tags: &Value) -> impl Iterator<Item = (&str, &str)> {
    let pairs = tags.as_array().into_iter().flatten();
    pairs.map(|t| (t["TagKey"].as_str().unwrap_or(""), t["TagValue"].as_str().unwrap_or("")))
}

fn tag_error(message: String) -> Refusal {
    Refusal::new("TagException", message)
}

fn check_tag_key(key: &str) -> Result<(), Refusal> {
    if key.starts_with("aws:") {
        return Err(tag_error(format!(
            "Tag key '{key}' uses the prefix 'aws:', which is reserved for AWS use"
        )));
    }
    let length = key.chars().count();
    if !(1..=128).contains(&length) {
        return Err(tag_error(format!("Tag key '{key}' must be 1 to 128 characters long, not {length}")));
    }
    Ok(())
}

fn check_tags(tags: &Value) -> Result<(), Refusal> {
    for (key, value) in tag_pairs(tags) {
        check_tag_key(key)?;
        let length = value.chars().count();
        if length > 256 {
            return Err(tag_error(format!(
                "The value of tag '{key}' must be at most 256 characters, not {length}"
            )));
        }
    }
    Ok(())
}

fn check_count(existing: usize, tags: &Value) -> Result<(), Refusal> {
    let count = existing + tag_pairs(tags).count();
    if count > MAX_TAGS_PER_KEY {
        return Err(tag_error(format!(
            "A KMS key can have at most {MAX_TAGS_PER_KEY} tags; this request would give it {count}"
        )));
    }
    Ok(())
}

/// TagResource replaces the values of keys the key already has, and adds the others.
fn check_total(existing: &BTreeMap<String, String>, tags: &Value) -> Result<(), Refusal> {
    let mut keys: Vec<&str> =
        tag_pairs(tags).map(|(k, _)| k).filter(|k| !existing.contains_key(*k)).collect();
    keys.sort_unstable();
    keys.dedup();
    let count = existing.len() + keys.len();
    if count > MAX_TAGS_PER_KEY {
        return Err(tag_error(format!(
            "A KMS key can have at most {MAX_TAGS_PER_KEY} tags; this request would give it {count}"
        )));
    }
    Ok(())
}

fn validation(message: String) -> Refusal {
    Refusal::new("ValidationException", message)
}

pub fn check_alias(name: &str) -> Result<(), Refusal> {
    let length = name.chars().count();
    if !(1..=256).contains(&length) {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: \
             Member must have length between 1 and 256"
        )));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-')) {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: ^[a-zA-Z0-9/_-]+$"
        )));
    }
    if !name.starts_with("alias/") {
        return Err(validation("Alias must start with the prefix \"alias/\"".to_owned()));
    }
    if name.starts_with("alias/aws/") {
        return Err(Refusal::new(
            "NotAuthorizedException",
            format!(
                "{name} is not a valid alias name: the prefix alias/aws/ is reserved for AWS managed keys"
            ),
        ));
    }
    Ok(())
}

fn check_description(description: &Value) -> Result<(), Refusal> {
    let length = description.as_str().map_or(0, |d| d.chars().count());
    if length > MAX_DESCRIPTION {
        return Err(validation(format!(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_DESCRIPTION}"
        )));
    }
    Ok(())
}

fn check_policy(policy: &Value) -> Result<(), Refusal> {
    let Some(text) = policy.as_str() else { return Ok(()) };
    if text.len() > MAX_POLICY_BYTES {
        return Err(Refusal::new(
            "LimitExceededException",
            format!("The key policy is {} bytes; the limit is {MAX_POLICY_BYTES}", text.len()),
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(Refusal::new("MalformedPolicyDocumentException", "The policy is not a valid JSON object")),
    }
}

fn check_range(value: &Value, field: &str, min: i64, max: i64) -> Result<(), Refusal> {
    let Some(number) = value.as_i64() else { return Ok(()) };
    let bound = if number < min {
        format!("greater than or equal to {min}")
    } else if number > max {
        format!("less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(validation(format!(
        "1 validation error detected: Value '{number}' at '{field}' failed to satisfy constraint: \
         Member must have value {bound}"
    )))
}

fn check_rotation_supported(key: &KeyInfo) -> Result<(), Refusal> {
    let unsupported = |what: &str, value: &str| {
        Err(Refusal::new(
            "UnsupportedOperationException",
            format!("{} {what} is {value} which is not valid for this operation.", key.arn),
        ))
    };
    if key.spec != "SYMMETRIC_DEFAULT" {
        return unsupported("key spec", &key.spec);
    }
    if key.origin != "AWS_KMS" {
        return unsupported("origin", &key.origin);
    }
    Ok(())
}
