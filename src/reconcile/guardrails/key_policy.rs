//! The guardrails applied to `keyPolicy`, statement by statement. Only Allow statements can
//! give anything; a Deny statement is always fine. A statement is named by its `Sid`, or by
//! its position (`#1` is the first) when it has none.

use serde_json::Value;

use super::principals::{Principal, aws_principal};
use super::{Rules, Violation};

/// Condition keys that, with `StringEquals`, limit `"*"` to the accounts they list.
const ACCOUNT_KEYS: [&str; 2] = ["kms:calleraccount", "aws:principalaccount"];

/// The violations in the key policy document `policy` (already known to be a JSON object).
pub fn violations(policy: &Value, rules: &Rules) -> Vec<Violation> {
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    };
    let mut found = Vec::new();
    for (index, statement) in statements.into_iter().enumerate() {
        if statement["Effect"].as_str() != Some("Allow") {
            continue;
        }
        let name = match statement["Sid"].as_str() {
            Some(sid) => format!("spec.keyPolicy statement '{sid}'"),
            None => format!("spec.keyPolicy statement #{}", index + 1),
        };
        let mut refuse = |rule: String| found.push(Violation { field: name.clone(), rule });
        if !statement["NotPrincipal"].is_null() {
            refuse("NotPrincipal in an Allow statement gives the key to everyone not listed".to_owned());
        }
        if !statement["NotAction"].is_null() {
            refuse(
                "NotAction in an Allow statement gives every action not listed, restricted ones included"
                    .to_owned(),
            );
        }
        let principals = principals_of(&statement["Principal"]);
        let narrowed = narrowed_accounts(&statement["Condition"]);
        let restricted = restricted_actions_in(&statement["Action"], rules);
        for principal in &principals {
            for rule in rules.principal_violations(principal, narrowed.as_deref()) {
                refuse(rule);
            }
            if let Some(action) = &restricted
                && !rules.may_hold_restricted(principal)
            {
                refuse(format!(
                    "gives {action} to {}, which only the account root or adminPrincipals may have",
                    describe(principal)
                ));
            }
        }
    }
    found
}

/// The principals a statement's `Principal` names: `"*"`, or an object of `AWS`, `Service`,
/// `Federated` and `CanonicalUser` lists.
fn principals_of(value: &Value) -> Vec<Principal> {
    match value {
        Value::String(text) => vec![aws_principal(text)],
        Value::Object(map) => map
            .iter()
            .flat_map(|(kind, names)| {
                strings(names).into_iter().map(move |name| match kind.as_str() {
                    "AWS" => aws_principal(&name),
                    "Service" => Principal::Service(name),
                    _ => Principal::Unknown(format!("{kind}:{name}")),
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The accounts a `StringEquals` condition on the caller's account limits the statement to.
fn narrowed_accounts(condition: &Value) -> Option<Vec<String>> {
    let equals = condition.as_object()?.iter().find(|(op, _)| op.as_str() == "StringEquals")?.1;
    let (_, accounts) = equals
        .as_object()?
        .iter()
        .find(|(key, _)| ACCOUNT_KEYS.contains(&key.to_ascii_lowercase().as_str()))?;
    Some(strings(accounts))
}

/// The first restricted action the statement's `Action` gives, if any (wildcards count both
/// ways: `kms:*` gives `kms:PutKeyPolicy`, and a restricted `kms:Put*` covers `kms:PutKeyPolicy`).
fn restricted_actions_in(actions: &Value, rules: &Rules) -> Option<String> {
    let given = strings(actions);
    for restricted in &rules.policy.restricted_actions {
        if let Some(action) = given.iter().find(|a| glob(a, restricted) || glob(restricted, a)) {
            return Some(match action.eq_ignore_ascii_case(restricted) {
                true => action.clone(),
                false => format!("{action} (which includes {restricted})"),
            });
        }
    }
    None
}

fn describe(principal: &Principal) -> String {
    match principal {
        Principal::Anyone => "anyone (\"*\")".to_owned(),
        Principal::Root { account } => format!("account {account}"),
        Principal::Identity { arn, .. } => arn.clone(),
        Principal::Service(name) => name.clone(),
        Principal::Unknown(name) => name.clone(),
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// IAM's case-insensitive match with `*` and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) =
        (pattern.to_ascii_lowercase().chars().collect(), text.to_ascii_lowercase().chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_matches_actions() {
        assert!(glob("kms:*", "kms:PutKeyPolicy"));
        assert!(glob("KMS:put*", "kms:PutKeyPolicy"));
        assert!(glob("*", "kms:TagResource"));
        assert!(glob("kms:?agResource", "kms:TagResource"));
        assert!(!glob("kms:Get*", "kms:PutKeyPolicy"));
        assert!(!glob("kms:Tag", "kms:TagResource"));
    }
}
