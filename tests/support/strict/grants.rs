//! CreateGrant idempotency, as the CreateGrant API reference documents it: a request with a
//! `Name` that matches an existing grant of the key with the same grantee, operations (as a
//! set), constraints and retiring principal returns that grant's ID instead of making another
//! (the grant token may be new). The same name with any other parameter different makes a new
//! grant. moto makes a duplicate every time, so the strict layer answers such a retry itself
//! from moto's ListGrants (a side call) without forwarding it.
//!
//! Also CreateGrant's input rules, which moto does not check: a name of 1–256 characters of
//! `[a-zA-Z0-9:/_-]`; exactly one of `GranteePrincipal` and `GranteeServicePrincipal`; a grant
//! for a service principal needs a `SourceArn` constraint and a `RetiringPrincipal` or
//! `RetiringServicePrincipal`; encryption-context constraints of at most 8 pairs with values of
//! at most 384 characters, one kind per grant → `ValidationException`. moto forgets the service
//! principals; the layer remembers them and puts them back in ListGrants answers.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::Refusal;

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::new("ValidationException", message)
}

/// CreateGrant's input rules.
pub fn check_request(body: &Value) -> Result<(), Refusal> {
    if let Some(name) = body["Name"].as_str() {
        let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || ":/_-".contains(c));
        if !(1..=256).contains(&name.chars().count()) || !valid {
            return Err(invalid(format!("Grant name '{name}' must be 1-256 characters of [a-zA-Z0-9:/_-]")));
        }
    }
    let service = optional(&body["GranteeServicePrincipal"]).is_some();
    if optional(&body["GranteePrincipal"]).is_some() == service {
        return Err(invalid("Specify exactly one of GranteePrincipal and GranteeServicePrincipal"));
    }
    let constraints = &body["Constraints"];
    if service && optional(&constraints["SourceArn"]).is_none() {
        return Err(invalid("A grant for a service principal requires the SourceArn grant constraint"));
    }
    let retiring = ["RetiringPrincipal", "RetiringServicePrincipal"].map(|f| optional(&body[f]).is_some());
    if service && !retiring.contains(&true) {
        return Err(invalid(
            "A grant for a service principal requires a RetiringPrincipal or RetiringServicePrincipal",
        ));
    }
    let contexts: Vec<&serde_json::Map<String, Value>> =
        ["EncryptionContextEquals", "EncryptionContextSubset"]
            .iter()
            .filter_map(|c| constraints[c].as_object().filter(|m| !m.is_empty()))
            .collect();
    if contexts.len() > 1 {
        return Err(invalid("A grant can have only one encryption context constraint"));
    }
    for pairs in contexts {
        let long = pairs.values().any(|v| v.as_str().is_none_or(|v| v.chars().count() > 384));
        if pairs.len() > 8 || long {
            return Err(invalid(
                "An encryption context constraint has at most 8 pairs, values at most 384 characters",
            ));
        }
    }
    Ok(())
}

/// The fields moto forgets: a grant's service principals.
pub const SERVICE_FIELDS: [&str; 2] = ["GranteeServicePrincipal", "RetiringServicePrincipal"];

/// What CreateGrant's `request` said of the fields moto forgets, if anything.
pub fn service_fields(request: &Value) -> Option<Value> {
    let fields: serde_json::Map<String, Value> = (SERVICE_FIELDS.iter())
        .filter(|f| optional(&request[**f]).is_some())
        .map(|f| (f.to_string(), request[*f].clone()))
        .collect();
    (!fields.is_empty()).then_some(Value::Object(fields))
}

/// Puts back into `grants` (ListGrants items) the fields moto forgot, by grant ID.
pub fn restore_service_fields(grants: &mut [Value], remembered: &std::collections::HashMap<String, Value>) {
    for grant in grants {
        let Some(fields) = grant["GrantId"].as_str().and_then(|id| remembered.get(id)) else { continue };
        for (field, value) in fields.as_object().into_iter().flatten() {
            grant[field] = value.clone();
        }
    }
}

/// The existing grant that an idempotent retry of `request` returns, among `grants` (the key's
/// grants as ListGrants shows them).
pub fn existing<'a>(request: &Value, grants: &'a [Value]) -> Option<&'a Value> {
    let name = request["Name"].as_str().filter(|n| !n.is_empty())?;
    grants.iter().find(|grant| grant["Name"].as_str() == Some(name) && same_parameters(request, grant))
}

fn same_parameters(request: &Value, grant: &Value) -> bool {
    request["GranteePrincipal"] == grant["GranteePrincipal"]
        && operations(request) == operations(grant)
        && constraints(&request["Constraints"]) == constraints(&grant["Constraints"])
        && optional(&request["RetiringPrincipal"]) == optional(&grant["RetiringPrincipal"])
        && SERVICE_FIELDS.iter().all(|f| optional(&request[*f]) == optional(&grant[*f]))
}

fn operations(value: &Value) -> BTreeSet<&str> {
    value["Operations"].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// Constraints with absent, null and empty parts treated alike.
fn constraints(value: &Value) -> Value {
    let parts = value.as_object().into_iter().flatten();
    let set = parts.filter(|(_, v)| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()));
    Value::Object(set.map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn optional(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| !s.is_empty())
}

/// The CreateGrant answer for an idempotent retry: the grant's ID, and `token` (the one seen
/// when the grant was made, or a fresh one).
pub fn answer(grant: &Value, token: &str) -> Value {
    json!({"GrantId": grant["GrantId"], "GrantToken": token})
}

/// A new grant token in moto's form (8 hex characters).
pub fn fresh_token() -> String {
    format!("{:08x}", rand::random::<u32>())
}
