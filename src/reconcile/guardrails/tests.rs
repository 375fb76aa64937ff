//! The guardrails, one table per rule.

use super::*;
use crate::api::{GrantOperation, PolicyBuilder};
use crate::reconcile::plan::tests::{mk_grant_spec, mk_spec};

const OWN: &str = "123456789012";
const PARTNER: &str = "444455556666";
const STRANGER: &str = "999988887777";

fn rules() -> Rules {
    let policy = KmsKeyPolicySpec {
        alias_prefix: Some("{namespace}/".into()),
        allowed_accounts: vec![PARTNER.into()],
        min_deletion_window_in_days: 14,
        admin_namespaces: vec!["platform".into()],
        admin_principals: vec![format!("arn:aws:iam::{OWN}:role/key-admin")],
        allowed_service_principals: Some(vec!["logs.amazonaws.com".into()]),
        ..KmsKeyPolicySpec::default()
    };
    Rules { policy, own_account: OWN.into() }
}

/// A spec that keeps every rule in namespace `team-a`.
fn good() -> KmsKeySpec {
    KmsKeySpec { alias_name: "team-a/orders".into(), deletion_window_in_days: 30, ..mk_spec() }
}

fn fields(spec: &KmsKeySpec) -> Vec<String> {
    check(spec, "team-a", &rules()).into_iter().map(|v| v.to_string()).collect()
}

fn with_policy(statement: &str) -> KmsKeySpec {
    let policy = format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#);
    KmsKeySpec { key_policy: Some(policy), ..good() }
}

#[test]
fn a_spec_within_the_rules_passes_and_admin_namespaces_are_exempt() {
    assert_eq!(fields(&good()), Vec::<String>::new());
    let wild = KmsKeySpec { alias_name: "payments".into(), deletion_window_in_days: 7, ..good() };
    assert_eq!(check(&wild, "platform", &rules()), vec![]);
}

#[test]
fn aliases_must_carry_the_namespace_prefix() {
    let spec = KmsKeySpec {
        alias_name: "payments".into(),
        additional_aliases: vec!["team-a/ok".into(), "team-b/theirs".into()],
        ..good()
    };
    assert_eq!(
        fields(&spec),
        vec![
            "spec.aliasName: must start with 'team-a/' in namespace team-a (aliasPrefix)",
            "spec.additionalAliases: team-b/theirs must start with 'team-a/' (aliasPrefix)",
        ]
    );
}

#[test]
fn namespaces_listed_with_their_own_prefixes_use_those_instead_of_the_template() {
    let mut listed = rules();
    listed.policy.namespace_alias_prefixes = vec![crate::api::NamespaceAliasPrefixes {
        namespaces: vec!["team-a".into()],
        prefixes: vec!["payments/".into(), "billing/".into()],
    }];
    let ok = KmsKeySpec { alias_name: "billing/ledger".into(), ..good() };
    assert_eq!(check(&ok, "team-a", &listed), vec![]);
    let got = check(&good(), "team-a", &listed);
    assert_eq!(
        got[0].to_string(),
        "spec.aliasName: must start with 'payments/' or 'billing/' in namespace team-a (namespaceAliasPrefixes)"
    );
    assert_eq!(check(&KmsKeySpec { alias_name: "team-b/x".into(), ..good() }, "team-b", &listed), vec![]);
}

#[test]
fn the_deletion_window_cannot_go_below_the_minimum() {
    let spec = KmsKeySpec { deletion_window_in_days: 7, ..good() };
    assert_eq!(
        fields(&spec),
        vec!["spec.deletionWindowInDays: 7 is below the cluster's minimum of 14 (minDeletionWindowInDays)"]
    );
}

#[test]
fn grants_may_not_mint_grants_nor_reach_other_accounts_or_services() {
    let table = [
        (
            GrantSpec {
                operations: vec![GrantOperation::Decrypt, GrantOperation::CreateGrant],
                ..mk_grant_spec()
            },
            "operation CreateGrant is forbidden",
        ),
        (
            GrantSpec {
                grantee_principal: Some(format!("arn:aws:iam::{STRANGER}:role/x")),
                ..mk_grant_spec()
            },
            "principal account 999988887777",
        ),
        (
            GrantSpec {
                retiring_principal: Some(format!("arn:aws:iam::{STRANGER}:root")),
                ..mk_grant_spec()
            },
            "principal account 999988887777",
        ),
        (
            GrantSpec {
                grantee_principal: None,
                grantee_service_principal: Some("evil.amazonaws.com".into()),
                source_arn: Some("arn:aws:logs:us-east-1:123456789012:log-group:x".into()),
                retiring_service_principal: Some("logs.amazonaws.com".into()),
                ..mk_grant_spec()
            },
            "service principal evil.amazonaws.com is not in allowedServicePrincipals",
        ),
    ];
    for (grant, want) in table {
        let spec = KmsKeySpec { create_grants: true, grants: vec![grant], ..good() };
        let got = fields(&spec);
        assert!(
            got.len() == 1 && got[0].starts_with("spec.grants[0] (app): ") && got[0].contains(want),
            "{got:?}"
        );
    }
    let partner =
        GrantSpec { grantee_principal: Some(format!("arn:aws:iam::{PARTNER}:role/x")), ..mk_grant_spec() };
    assert_eq!(
        fields(&KmsKeySpec { create_grants: true, grants: vec![partner], ..good() }),
        Vec::<String>::new()
    );
}

#[test]
fn key_policy_principals_are_checked_in_every_form() {
    let allow = |principal: &str, condition: &str| {
        with_policy(&format!(
            r#"{{"Sid":"Use","Effect":"Allow","Principal":{principal},"Action":"kms:Decrypt","Resource":"*"{condition}}}"#
        ))
    };
    let narrow =
        |account: &str| format!(r#","Condition":{{"StringEquals":{{"kms:CallerAccount":"{account}"}}}}"#);
    let table: [(KmsKeySpec, Option<&str>); 11] = [
        (allow(&format!(r#"{{"AWS":"arn:aws:iam::{OWN}:role/app"}}"#), ""), None),
        (allow(&format!(r#"{{"AWS":["{PARTNER}", "arn:aws:iam::{OWN}:root"]}}"#), ""), None),
        (
            allow(&format!(r#"{{"AWS":"arn:aws:iam::{STRANGER}:role/x"}}"#), ""),
            Some("principal account 999988887777"),
        ),
        (allow(r#""*""#, ""), Some("Principal \"*\" gives the key to anyone")),
        (allow(r#"{"AWS":"*"}"#, ""), Some("Principal \"*\" gives the key to anyone")),
        (allow(r#""*""#, &narrow(OWN)), None),
        (allow(r#""*""#, &narrow(STRANGER)), Some("Principal \"*\"")),
        (
            allow(
                r#"{"Service":"logs.amazonaws.com"}"#,
                r#","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}"#,
            ),
            None,
        ),
        (
            allow(r#"{"Service":"logs.amazonaws.com"}"#, ""),
            Some("needs an aws:SourceAccount or aws:SourceArn condition"),
        ),
        (
            allow(
                r#"{"Service":"logs.amazonaws.com"}"#,
                r#","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:logs:us-east-1:999988887777:*"}}"#,
            ),
            Some("needs an aws:SourceAccount or aws:SourceArn condition"),
        ),
        (
            allow(r#"{"Federated":"cognito-identity.amazonaws.com"}"#, ""),
            Some("cannot be placed in an account"),
        ),
    ];
    for (spec, want) in table {
        let got = fields(&spec);
        match want {
            None => assert_eq!(got, Vec::<String>::new(), "{:?}", spec.key_policy),
            Some(text) => assert!(
                got.len() == 1
                    && got[0].starts_with("spec.keyPolicy statement 'Use': ")
                    && got[0].contains(text),
                "{:?}: {got:?}",
                spec.key_policy
            ),
        }
    }
}

#[test]
fn restricted_actions_go_only_to_the_root_or_admin_principals() {
    let give = |principal: &str, action: &str| {
        with_policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":{action},"Resource":"*"}}"#
        ))
    };
    let team_role = format!("arn:aws:iam::{OWN}:role/team-a");
    let table = [
        (
            give(&team_role, r#""kms:*""#),
            Some("gives kms:* (which includes kms:PutKeyPolicy) to arn:aws:iam::123456789012:role/team-a"),
        ),
        (give(&team_role, r#"["kms:Decrypt","kms:TagResource"]"#), Some("gives kms:TagResource to")),
        (give(&team_role, r#""kms:Put*""#), Some("kms:Put* (which includes kms:PutKeyPolicy)")),
        (give(&team_role, r#"["kms:Decrypt","kms:Encrypt"]"#), None),
        (give(&format!("arn:aws:iam::{OWN}:root"), r#""kms:*""#), None),
        (give(&format!("arn:aws:iam::{OWN}:role/key-admin"), r#""kms:*""#), None),
    ];
    for (spec, want) in table {
        let got = fields(&spec);
        match want {
            None => assert_eq!(got, Vec::<String>::new(), "{:?}", spec.key_policy),
            Some(text) => {
                assert!(
                    got.len() == 1
                        && got[0].starts_with("spec.keyPolicy statement #1: ")
                        && got[0].contains(text),
                    "{got:?}"
                )
            }
        }
    }
}

#[test]
fn deny_statements_are_never_refused_and_broad_allow_forms_always_are() {
    let deny = with_policy(r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}"#);
    assert_eq!(fields(&deny), Vec::<String>::new());
    let not_action = with_policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{OWN}:root"}},"NotAction":"kms:Decrypt","Resource":"*"}}"#
    ));
    assert!(fields(&not_action)[0].contains("NotAction in an Allow statement"));
}

#[test]
fn a_cluster_that_forbids_key_policies_refuses_them_but_not_the_builder_within_its_accounts() {
    let mut strict = rules();
    strict.policy.key_policy = KeyPolicyRule::Forbidden;
    let spec = with_policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{OWN}"}},"Action":"kms:Decrypt","Resource":"*"}}"#
    ));
    let got = check(&spec, "team-a", &strict);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field, "spec.keyPolicy");
    let builder = PolicyBuilder {
        key_users: vec![format!("arn:aws:iam::{OWN}:role/app")],
        key_administrators: vec![format!("arn:aws:iam::{OWN}:role/team-a")],
        ..PolicyBuilder::default()
    };
    let spec = KmsKeySpec { policy: Some(builder), ..good() };
    let got = check(&spec, "team-a", &strict);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].field, "spec.policy statement 'KeyAdministration'");
    assert!(got[0].rule.contains("arn:aws:iam::123456789012:role/team-a"), "{got:?}");
}

#[test]
fn builder_statements_are_analysed_like_written_ones() {
    let service_users = PolicyBuilder {
        key_service_users: vec![format!("arn:aws:iam::{OWN}:role/team-a")],
        ..PolicyBuilder::default()
    };
    let got = fields(&KmsKeySpec { policy: Some(service_users), ..good() });
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("spec.policy statement 'KeyServiceUsage': gives kms:CreateGrant"), "{got:?}");
    let users = PolicyBuilder {
        key_users: vec![format!("arn:aws:iam::{STRANGER}:role/x")],
        ..PolicyBuilder::default()
    };
    let got = fields(&KmsKeySpec { policy: Some(users), ..good() });
    assert!(
        got.len() == 1 && got[0].contains("spec.policy statement 'KeyUsage': principal account 999988887777"),
        "{got:?}"
    );
}

#[test]
fn what_the_analysis_does_not_recognise_is_refused_not_skipped() {
    let table = [
        (
            r#"{"Effect":"Allow","Principal":{"AWS":999988887777},"Action":"kms:Decrypt","Resource":"*"}"#,
            "cannot be placed in an account",
        ),
        (r#"{"Effect":"Allow","Principal":["*"],"Action":"kms:Decrypt","Resource":"*"}"#, "Principal \"*\""),
        (r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}"#, "must name its principals"),
        (r#"{"Effect":"allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#, "Effect must be"),
    ];
    for (statement, want) in table {
        let got = fields(&with_policy(statement));
        assert!(got.iter().any(|v| v.contains(want)), "{statement}: {got:?}");
    }
}

#[test]
fn another_allowed_accounts_root_may_use_keys_but_not_run_them() {
    let give = |action: &str| {
        with_policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{PARTNER}:root"}},"Action":"{action}","Resource":"*"}}"#
        ))
    };
    assert_eq!(fields(&give("kms:Decrypt")), Vec::<String>::new());
    assert!(
        fields(&give("kms:*"))[0]
            .contains("gives kms:* (which includes kms:PutKeyPolicy) to account 444455556666")
    );
}

#[test]
fn the_message_names_the_first_violations_and_counts_the_rest() {
    let v = |i: usize| Violation { field: format!("f{i}"), rule: "r".into() };
    let text = message(&(0..7).map(v).collect::<Vec<_>>());
    assert!(text.ends_with("f0: r; f1: r; f2: r; f3: r; f4: r; and 2 more"), "{text}");
}

#[test]
fn a_grant_for_a_service_is_limited_to_resources_of_allowed_accounts() {
    let grant = |source_arn: &str| GrantSpec {
        grantee_principal: None,
        grantee_service_principal: Some("logs.amazonaws.com".into()),
        source_arn: Some(source_arn.into()),
        retiring_service_principal: Some("logs.amazonaws.com".into()),
        ..mk_grant_spec()
    };
    let spec = |g| KmsKeySpec { create_grants: true, grants: vec![g], ..good() };
    assert_eq!(
        fields(&spec(grant(&format!("arn:aws:logs:us-east-1:{OWN}:log-group:app")))),
        Vec::<String>::new()
    );
    let got = fields(&spec(grant(&format!("arn:aws:logs:us-east-1:{STRANGER}:log-group:x"))));
    assert!(got.len() == 1 && got[0].contains("sourceArn arn:aws:logs:us-east-1:999988887777"), "{got:?}");
}
