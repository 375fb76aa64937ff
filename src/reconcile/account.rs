//! Which AWS identity reaches an object's key: the operator's own, or an IAM role a
//! `KmsAccount` maps the object's namespace to. A key never moves between accounts: once status
//! records a key (or a create in flight) in an account, a mapping that now points elsewhere
//! makes the object Stalled instead of looking for (or making) the key in the other account.

use std::collections::BTreeMap;

use crate::api::KmsAccountSpec;

use super::outcome::Outcome;

/// The identity the operator acts as for one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// The operator's own credentials (the AWS default chain).
    Own,
    /// An IAM role assumed with STS.
    Role(AssumedRole),
}

/// A role to assume, as a `KmsAccount` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AssumedRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_tags: BTreeMap<String, String>,
    /// The account the role is in: where the keys live.
    pub account_id: String,
}

/// What decides an object's identity besides the KmsAccounts.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccountRules<'a> {
    /// `--require-account-mapping`: a namespace no KmsAccount maps gets no key.
    pub require_mapping: bool,
    /// The operator's own account, once known.
    pub own_account: Option<&'a str>,
    /// The account status records the key (or its create in flight) in.
    pub recorded_account: Option<&'a str>,
}

/// The identity for the namespace `namespace` (with `labels`), given every KmsAccount (name,
/// spec); or why the object gets none (Stalled, nothing read or made).
pub fn identity_for(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    accounts: &[(&str, &KmsAccountSpec)],
    rules: AccountRules,
) -> Result<Identity, Outcome> {
    let mapping: Vec<&(&str, &KmsAccountSpec)> =
        accounts.iter().filter(|(_, spec)| spec.maps(namespace, labels)).collect();
    let stalled = |reason, message| Err(Outcome::Stalled { reason, message });
    let identity = match mapping.as_slice() {
        [] if rules.require_mapping => {
            return stalled(
                "AccountNotMapped",
                format!(
                    "no KmsAccount maps namespace {namespace}, and the operator requires one (--require-account-mapping); nothing was read or made"
                ),
            );
        }
        [] => Identity::Own,
        [(name, spec)] => {
            let Some(account_id) = spec.account_id() else {
                return stalled("InvalidAccount", format!("KmsAccount {name}: roleArn names no account"));
            };
            Identity::Role(AssumedRole {
                role_arn: spec.role_arn.clone(),
                external_id: spec.external_id.clone(),
                session_tags: spec.session_tags.clone(),
                account_id: account_id.to_owned(),
            })
        }
        several => {
            let mut names: Vec<&str> = several.iter().map(|(name, _)| *name).collect();
            names.sort_unstable();
            return stalled(
                "AccountMappingConflict",
                format!(
                    "namespace {namespace} is mapped by more than one KmsAccount ({}); a cluster administrator must keep one",
                    names.join(", ")
                ),
            );
        }
    };
    let account = match &identity {
        Identity::Own => rules.own_account,
        Identity::Role(role) => Some(role.account_id.as_str()),
    };
    match (rules.recorded_account, account) {
        (Some(recorded), Some(now)) if recorded != now => stalled(
            "AccountChanged",
            format!(
                "the key lives in AWS account {recorded}, but namespace {namespace} now maps to account {now}; a key never moves between accounts: restore the mapping (until then nothing is done, a deletion of the object included)"
            ),
        ),
        _ => Ok(identity),
    }
}

/// The account of an ARN (`arn:aws:kms:<region>:<account>:key/...`).
pub fn arn_account(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NamespaceSelector;

    fn account(role_account: &str, namespaces: &[&str], labels: &[(&str, &str)]) -> KmsAccountSpec {
        let selector = (!labels.is_empty()).then(|| NamespaceSelector {
            match_labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        });
        KmsAccountSpec {
            role_arn: format!("arn:aws:iam::{role_account}:role/kms-operator"),
            external_id: Some("ext-1".into()),
            session_tags: BTreeMap::new(),
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            namespace_selector: selector,
        }
    }

    fn reason(result: Result<Identity, Outcome>) -> &'static str {
        match result {
            Err(Outcome::Stalled { reason, .. }) => reason,
            other => panic!("not stalled: {other:?}"),
        }
    }

    #[test]
    fn a_namespace_maps_by_name_or_by_every_label_else_the_operators_own_identity() {
        let (a, payments) = (
            account("111111111111", &["team-a"], &[]),
            account("222222222222", &[], &[("team", "payments"), ("env", "prod")]),
        );
        let accounts = [("team-a", &a), ("payments", &payments)];
        let none = BTreeMap::new();
        let rules = AccountRules::default();
        let Ok(Identity::Role(role)) = identity_for("team-a", &none, &accounts, rules) else { panic!() };
        assert_eq!((role.account_id.as_str(), role.external_id.as_deref()), ("111111111111", Some("ext-1")));
        let prod = BTreeMap::from([("team".into(), "payments".into()), ("env".into(), "prod".into())]);
        let Ok(Identity::Role(role)) = identity_for("pay", &prod, &accounts, rules) else { panic!() };
        assert_eq!(role.account_id, "222222222222");
        let partial = BTreeMap::from([("team".into(), "payments".into())]);
        assert_eq!(
            identity_for("pay", &partial, &accounts, rules),
            Ok(Identity::Own),
            "every label must match"
        );
        assert_eq!(identity_for("team-b", &none, &accounts, rules), Ok(Identity::Own));
    }

    #[test]
    fn no_mapping_when_one_is_required_and_two_mappings_are_refused() {
        let (a, b) =
            (account("111111111111", &["shared"], &[]), account("222222222222", &[], &[("team", "x")]));
        let accounts = [("b", &b), ("a", &a)];
        let required = AccountRules { require_mapping: true, ..AccountRules::default() };
        assert_eq!(reason(identity_for("other", &BTreeMap::new(), &accounts, required)), "AccountNotMapped");
        let labels = BTreeMap::from([("team".into(), "x".into())]);
        let Err(Outcome::Stalled { reason, message }) =
            identity_for("shared", &labels, &accounts, AccountRules::default())
        else {
            panic!()
        };
        assert_eq!(reason, "AccountMappingConflict");
        assert!(message.contains("(a, b)"), "{message}");
    }

    #[test]
    fn a_key_recorded_in_one_account_is_never_looked_for_in_another() {
        let a = account("111111111111", &["team-a"], &[]);
        let accounts = [("a", &a)];
        let none = BTreeMap::new();
        let moved = AccountRules { recorded_account: Some("999999999999"), ..AccountRules::default() };
        assert_eq!(reason(identity_for("team-a", &none, &accounts, moved)), "AccountChanged");
        let unmapped = AccountRules {
            own_account: Some("999999999999"),
            recorded_account: Some("111111111111"),
            ..AccountRules::default()
        };
        assert_eq!(
            reason(identity_for("team-b", &none, &accounts, unmapped)),
            "AccountChanged",
            "a mapping removed"
        );
        let same = AccountRules { recorded_account: Some("111111111111"), ..AccountRules::default() };
        assert!(matches!(identity_for("team-a", &none, &accounts, same), Ok(Identity::Role(_))));
        assert_eq!(arn_account("arn:aws:kms:eu-west-1:111111111111:key/k1"), Some("111111111111"));
        assert_eq!(arn_account("arn:k1"), None);
    }
}
