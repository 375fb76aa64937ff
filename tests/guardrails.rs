//! The cluster's guardrails enforced by the operator alone (no admission policy): each
//! escalation a namespace could try through its KmsKey stalls with `PolicyViolation`, naming
//! the field or statement, before a single call reaches "AWS" (the strict layer's call log).

mod support;

use kms_operator::api::{GrantOperation, GrantSpec, KmsKeyPolicySpec, KmsKeySpec};
use kms_operator::reconcile::guardrails::Rules;
use support::object::{Object, example};
use support::strict::StrictConfig;
use support::strict_env::StrictEnv;

const OWN: &str = "123456789012";

fn rules() -> Rules {
    let policy = KmsKeyPolicySpec {
        alias_prefix: Some("{namespace}/".into()),
        min_deletion_window_in_days: 14,
        ..KmsKeyPolicySpec::default()
    };
    Rules { policy, own_account: OWN.into() }
}

fn in_team_a(name: &str, spec: KmsKeySpec) -> Object {
    let mut obj = Object::new(name, spec);
    obj.owner.namespace = "team-a".into();
    obj.guardrails = Some(rules());
    obj
}

fn grant(principal: &str, operations: Vec<GrantOperation>) -> KmsKeySpec {
    let grant = GrantSpec {
        name: "app".into(),
        grantee_principal: Some(principal.into()),
        grantee_service_principal: None,
        operations,
        encryption_context_equals: Default::default(),
        encryption_context_subset: Default::default(),
        source_arn: None,
        retiring_principal: None,
        retiring_service_principal: None,
    };
    KmsKeySpec {
        alias_name: "team-a/granted".into(),
        create_grants: true,
        grants: vec![grant],
        ..example("basic.yaml").spec
    }
}

fn with_policy(statement: &str) -> KmsKeySpec {
    let key_policy = Some(format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#));
    KmsKeySpec { alias_name: "team-a/policy".into(), key_policy, ..example("basic.yaml").spec }
}

#[tokio::test]
async fn every_escalation_stalls_before_any_kms_call() {
    let env = StrictEnv::start(StrictConfig::default()).await;
    let basic = example("basic.yaml").spec;
    let table = [
        (
            "squat",
            KmsKeySpec { alias_name: "payments".into(), ..basic.clone() },
            "spec.aliasName: must start with 'team-a/'",
        ),
        (
            "hasty",
            KmsKeySpec { alias_name: "team-a/hasty".into(), deletion_window_in_days: 7, ..basic.clone() },
            "spec.deletionWindowInDays: 7 is below the cluster's minimum of 14",
        ),
        (
            "minting",
            grant(
                &format!("arn:aws:iam::{OWN}:role/app"),
                vec![GrantOperation::Decrypt, GrantOperation::CreateGrant],
            ),
            "spec.grants[0] (app): operation CreateGrant is forbidden",
        ),
        (
            "outsider",
            grant("arn:aws:iam::999988887777:role/x", vec![GrantOperation::Decrypt]),
            "spec.grants[0] (app): principal account 999988887777",
        ),
        (
            "anyone",
            with_policy(
                r#"{"Sid":"Open","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#,
            ),
            "spec.keyPolicy statement 'Open': Principal \"*\"",
        ),
        (
            "self-admin",
            with_policy(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{OWN}:role/team-a"}},"Action":"kms:*","Resource":"*"}}"#
            )),
            "spec.keyPolicy statement #1: gives kms:* (which includes kms:PutKeyPolicy)",
        ),
    ];
    for (name, spec, text) in table {
        let obj = in_team_a(name, spec);
        obj.converge(&env.kms, &env.clock).await;
        assert_eq!(obj.stalled_reason().as_deref(), Some("PolicyViolation"), "{name}: {:?}", obj.status());
        let message = obj.condition("Stalled").message;
        assert!(message.contains(text), "{name}: {message}");
        assert!(message.contains("nothing was sent to AWS"), "{message}");
    }
    assert_eq!(env.proxy.total_calls(), 0, "{:?}", env.proxy.calls());

    let fine = in_team_a("fine", KmsKeySpec { alias_name: "team-a/fine".into(), ..basic });
    fine.converge(&env.kms, &env.clock).await;
    assert!(fine.is_ready(), "a spec within the rules goes through: {:?}", fine.status());
}
