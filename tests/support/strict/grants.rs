//! CreateGrant idempotency, as the CreateGrant API reference documents it: a request with a
//! `Name` that matches an existing grant of the key with the same grantee, operations (as a
//! set), constraints and retiring principal returns that grant's ID instead of making another
//! (the grant token may be new). The same name with any other parameter different makes a new
//! grant. moto makes a duplicate every time, so the strict layer answers such a retry itself
//! from moto's ListGrants (a side call) without forwarding it.

use std::collections::BTreeSet;

use serde_json::{Value, json};

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
