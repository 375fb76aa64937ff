//! The guardrails applied to the key policy the spec asks for (`keyPolicy`, and the statements
//! `policy` builds), statement by statement. Only Allow statements can give anything; a Deny
//! statement is always fine (it can only take rights away, even an administrator's). Whatever
//! the analysis does not recognise is refused rather than passed: an Effect other than
//! `Allow`/`Deny`, a principal that is not a string, an Allow statement naming no principal.

use serde_json::Value;

use super::principals::{Principal, aws_principal};
use super::{Rules, Violation};

/// Condition keys that, with `StringEquals`, limit `"*"` to the accounts they list.
const ACCOUNT_KEYS: [&str; 2] = ["kms:calleraccount", "aws:principalaccount"];

/// The violations in the key policy document `policy` (already known to be a JSON object);
/// `name` gives the field of a statement from its `Sid` and position.
pub fn violations(
    policy: &Value,
    rules: &Rules,
    name: &dyn Fn(Option<&str>, usize) -> String,
) -> Vec<Violation> {
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    };
    let mut found = Vec::new();
    for (index, statement) in statements.into_iter().enumerate() {
        let name = name(statement["Sid"].as_str(), index);
        let mut refuse = |rule: String| found.push(Violation { field: name.clone(), rule });
        match statement["Effect"].as_str() {
            Some("Deny") => continue,
            Some("Allow") => {}
            _ => {
                refuse("Effect must be \"Allow\" or \"Deny\"".to_owned());
                continue;
            }
        }
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
        if principals.is_empty() {
            refuse("an Allow statement must name its principals as strings".to_owned());
        }
        let narrowed = narrowed_accounts(&statement["Condition"]);
        let restricted = restricted_actions_in(&statement["Action"], rules);
        for principal in &principals {
            for rule in rules.principal_violations(principal, narrowed.as_deref()) {
                refuse(rule);
            }
            if let Principal::Service(name) = principal
                && !source_accounts(&statement["Condition"]).is_some_and(|a| rules.accounts_allowed(&a))
            {
                refuse(format!(
                    "service principal {name} needs an aws:SourceAccount or aws:SourceArn condition naming allowed accounts: without one, any account's resources in that service may use the key"
                ));
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
/// `Federated` and `CanonicalUser` lists. A value that is not a string is an unknown
/// principal (and refused), never skipped.
fn principals_of(value: &Value) -> Vec<Principal> {
    let names = |value: &Value| -> Vec<Result<String, String>> {
        let one = |v: &Value| v.as_str().map(str::to_owned).ok_or_else(|| v.to_string());
        match value {
            Value::Array(items) => items.iter().map(one).collect(),
            other => vec![one(other)],
        }
    };
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(kind, value)| {
                names(value).into_iter().map(move |name| match (kind.as_str(), name) {
                    ("AWS", Ok(name)) => aws_principal(&name),
                    ("Service", Ok(name)) => Principal::Service(name),
                    (_, Ok(name) | Err(name)) => Principal::Unknown(format!("{kind}:{name}")),
                })
            })
            .collect(),
        Value::Null => Vec::new(),
        other => names(other)
            .into_iter()
            .map(|name| match name {
                Ok(name) => aws_principal(&name),
                Err(name) => Principal::Unknown(name),
            })
            .collect(),
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

/// The accounts an `aws:SourceAccount` or `aws:SourceArn` condition (any operator) limits a
/// service principal to.
fn source_accounts(condition: &Value) -> Option<Vec<String>> {
    let mut accounts = Vec::new();
    for (_, keys) in condition.as_object()? {
        for (key, values) in keys.as_object().into_iter().flatten() {
            match key.to_ascii_lowercase().as_str() {
                "aws:sourceaccount" => accounts.extend(strings(values)),
                "aws:sourcearn" => accounts.extend(strings(values).iter().map(|arn| super::arn_account(arn))),
                _ => {}
            }
        }
    }
    (!accounts.is_empty()).then_some(accounts)
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
