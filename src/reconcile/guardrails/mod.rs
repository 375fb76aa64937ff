//! The cluster administrator's guardrails (`KmsKeyPolicy` named `cluster`) applied to one
//! KmsKey before any KMS call: alias prefixes, the smallest deletion window, forbidden grant
//! operations, and who may appear in the key policy and grants, with which actions. A
//! namespace's right to create KmsKeys must not become power over other teams' keys or the
//! account. Pure: the policy and the operator's own account come in as arguments.

mod key_policy;
mod principals;

use crate::api::{GrantSpec, KeyPolicyRule, KmsKeyPolicySpec, KmsKeySpec};

use super::policy::{DEFAULT_STATEMENT_SID, parse_policy};
use super::policy_builder::{ADMINISTRATION_SID, SERVICE_USAGE_SID, USAGE_SID, wanted_policy};
use principals::{Principal, aws_principal};

/// One rule a spec breaks: the field (or policy statement) and the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

/// The guardrails in force, with the account the operator's keys live in.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub policy: KmsKeyPolicySpec,
    pub own_account: String,
}

impl Rules {
    /// Whether `account` may appear in policies and grants.
    fn account_allowed(&self, account: &str) -> bool {
        account == self.own_account || self.policy.allowed_accounts.iter().any(|a| a == account)
    }

    /// Whether every one of `accounts` may appear.
    fn accounts_allowed(&self, accounts: &[String]) -> bool {
        accounts.iter().all(|a| self.account_allowed(a))
    }

    /// Whether the service principal `name` may appear.
    fn service_allowed(&self, name: &str) -> bool {
        self.policy
            .allowed_service_principals
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|a| a == name))
    }

    /// What is wrong with naming `principal` in an Allow statement (or a grant); `narrowed`
    /// are the accounts a condition limits `"*"` to.
    fn principal_violations(&self, principal: &Principal, narrowed: Option<&[String]>) -> Vec<String> {
        match principal {
            Principal::Anyone if self.policy.allow_any_principal => vec![],
            Principal::Anyone => match narrowed {
                Some(accounts) if !accounts.is_empty() && accounts.iter().all(|a| self.account_allowed(a)) => vec![],
                _ => vec![
                    "Principal \"*\" gives the key to anyone; narrow it with a kms:CallerAccount condition to allowed accounts, or have the administrator set allowAnyPrincipal".to_owned(),
                ],
            },
            Principal::Root { account } | Principal::Identity { account, .. } if !self.account_allowed(account) => {
                vec![format!(
                    "principal account {account} is neither the operator's account ({}) nor in allowedAccounts",
                    self.own_account
                )]
            }
            Principal::Service(name) if !self.service_allowed(name) => {
                vec![format!("service principal {name} is not in allowedServicePrincipals")]
            }
            Principal::Unknown(name) => vec![format!("principal {name} cannot be placed in an account")],
            _ => vec![],
        }
    }

    /// Whether `principal` may be given restricted actions: the operator's account root (not
    /// another allowed account's: those are allowed to use keys, not to run them), or one of
    /// `adminPrincipals`.
    fn may_hold_restricted(&self, principal: &Principal) -> bool {
        match principal {
            Principal::Root { account } => *account == self.own_account,
            Principal::Identity { arn, .. } => self.policy.admin_principals.iter().any(|a| a == arn),
            _ => false,
        }
    }
}

/// The rules `spec`, in `namespace`, breaks.
pub fn check(spec: &KmsKeySpec, namespace: &str, rules: &Rules) -> Vec<Violation> {
    let policy = &rules.policy;
    if policy.admin_namespaces.iter().any(|n| n == namespace) {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut refuse = |field: &str, rule: String| found.push(Violation { field: field.to_owned(), rule });
    let (prefixes, rule) = alias_prefixes(policy, namespace);
    if !prefixes.is_empty() {
        let allowed = |alias: &String| prefixes.iter().any(|p| alias.starts_with(p.as_str()));
        let shown = prefixes.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(" or ");
        if !allowed(&spec.alias_name) {
            refuse("spec.aliasName", format!("must start with {shown} in namespace {namespace} ({rule})"));
        }
        for alias in spec.additional_aliases.iter().filter(|a| !allowed(a)) {
            refuse("spec.additionalAliases", format!("{alias} must start with {shown} ({rule})"));
        }
    }
    if spec.deletion_window_in_days < policy.min_deletion_window_in_days {
        refuse(
            "spec.deletionWindowInDays",
            format!(
                "{} is below the cluster's minimum of {} (minDeletionWindowInDays)",
                spec.deletion_window_in_days, policy.min_deletion_window_in_days
            ),
        );
    }
    for (index, grant) in spec.grants.iter().enumerate().filter(|_| spec.create_grants) {
        for rule in grant_violations(grant, rules) {
            refuse(&format!("spec.grants[{index}] ({})", grant.name), rule);
        }
    }
    if spec.key_policy.is_some() && policy.key_policy == KeyPolicyRule::Forbidden {
        refuse(
            "spec.keyPolicy",
            "namespaces may not write key policies here (keyPolicy: Forbidden); use spec.policy".to_owned(),
        );
    }
    // The policy as it would be put: `keyPolicy` merged with the statements `policy` builds.
    let key_arn = format!("arn:aws:kms:us-east-1:{}:key/guardrails", rules.own_account);
    let built = spec.policy.as_ref().and_then(|_| wanted_policy(spec, &key_arn));
    let written = spec.key_policy.clone().filter(|_| policy.key_policy == KeyPolicyRule::Allowed);
    if let Some(document) = built.or(written).and_then(|text| parse_policy(&text).ok()) {
        let written_sids = written_sids(spec);
        let built = spec.policy.is_some();
        found.extend(key_policy::violations(&document, rules, &|sid, index| {
            statement_field(built, &written_sids, sid, index)
        }));
    }
    found
}

/// The `Sid`s of the statements `keyPolicy` writes.
fn written_sids(spec: &KmsKeySpec) -> Vec<String> {
    let written = spec.key_policy.as_deref().and_then(|p| parse_policy(p).ok());
    let statements = written.as_ref().map(super::policy::statements_of).unwrap_or_default();
    statements.iter().filter_map(|s| s["Sid"].as_str().map(str::to_owned)).collect()
}

/// The field a key policy statement comes from: one `policy` builds (when `built`, and
/// `keyPolicy` does not write a statement of that `Sid`), or one of `keyPolicy`.
fn statement_field(built: bool, written_sids: &[String], sid: Option<&str>, index: usize) -> String {
    let builder_sids = [ADMINISTRATION_SID, USAGE_SID, SERVICE_USAGE_SID, DEFAULT_STATEMENT_SID];
    match sid {
        Some(sid) if built && builder_sids.contains(&sid) && !written_sids.iter().any(|w| w == sid) => {
            format!("spec.policy statement '{sid}'")
        }
        Some(sid) => format!("spec.keyPolicy statement '{sid}'"),
        None => format!("spec.keyPolicy statement #{}", index + 1),
    }
}

/// The prefixes aliases in `namespace` must start with (none: no rule), and the rule's name.
fn alias_prefixes(policy: &KmsKeyPolicySpec, namespace: &str) -> (Vec<String>, &'static str) {
    let listed = policy.namespace_alias_prefixes.iter().find(|e| e.namespaces.iter().any(|n| n == namespace));
    match listed {
        Some(entry) => (entry.prefixes.clone(), "namespaceAliasPrefixes"),
        None => {
            let template = policy.alias_prefix.iter().map(|t| t.replace("{namespace}", namespace));
            (template.collect(), "aliasPrefix")
        }
    }
}

/// What is wrong with one grant: a forbidden operation, or a grantee or retiree outside the
/// allowed accounts and services.
fn grant_violations(grant: &GrantSpec, rules: &Rules) -> Vec<String> {
    let mut found: Vec<String> = (grant.operations.iter())
        .filter(|op| rules.policy.forbidden_grant_operations.contains(op))
        .map(|op| format!("operation {} is forbidden (forbiddenGrantOperations)", op.as_str()))
        .collect();
    let principals =
        [&grant.grantee_principal, &grant.retiring_principal].into_iter().flatten().map(|p| aws_principal(p));
    let services = [&grant.grantee_service_principal, &grant.retiring_service_principal]
        .into_iter()
        .flatten()
        .map(|s| Principal::Service(s.clone()));
    if let Some(arn) = &grant.source_arn
        && !rules.account_allowed(&arn_account(arn))
    {
        found.push(format!("sourceArn {arn} is not in the operator's account or allowedAccounts"));
    }
    for principal in principals.chain(services) {
        if principal == Principal::Anyone {
            found.push("a grant cannot name \"*\"".to_owned());
            continue;
        }
        found.extend(rules.principal_violations(&principal, None));
    }
    found
}

/// The account field of an ARN (`arn:partition:service:region:account:resource`); empty when
/// it has none.
fn arn_account(arn: &str) -> String {
    arn.split(':').nth(4).unwrap_or_default().to_owned()
}

/// The deletion window a deletion uses: the spec's, raised to the cluster's minimum (which
/// binds objects admitted before it was set, too).
pub fn deletion_window(spec: &KmsKeySpec, namespace: &str, rules: Option<&Rules>) -> i32 {
    let binding = rules.filter(|r| !r.policy.admin_namespaces.iter().any(|n| n == namespace));
    spec.deletion_window_in_days.max(binding.map_or(0, |r| r.policy.min_deletion_window_in_days))
}

/// Whether an object stalled on an alias at its current `generation` (its `hold`) must keep
/// waiting now that the alias may be free: unless the cluster's policy says
/// `aliasHandover: Automatic` (without a policy, `Manual` holds too), or the object's `claim`
/// annotation carries the hold's token, which exists only once the object has stalled.
pub fn alias_handover_held(
    rules: Option<&Rules>,
    hold: Option<&crate::api::AliasHold>,
    generation: Option<i64>,
    claim: Option<&str>,
) -> bool {
    let automatic = rules.is_some_and(|r| r.policy.alias_handover == crate::api::AliasHandover::Automatic);
    let held = hold.is_some_and(|h| Some(h.generation) == generation && claim != Some(h.token.as_str()));
    held && !automatic
}

/// One message for all of `violations`, for the `PolicyViolation` condition.
pub fn message(violations: &[Violation]) -> String {
    let shown: Vec<String> = violations.iter().take(5).map(Violation::to_string).collect();
    let more = match violations.len() {
        n if n > 5 => format!("; and {} more", n - 5),
        _ => String::new(),
    };
    format!(
        "the cluster's KmsKeyPolicy refuses this spec, and nothing was sent to AWS: {}{more}",
        shown.join("; ")
    )
}

#[cfg(test)]
mod tests;
