//! The key policy: built from lists, put before anything else, named by statement.

use super::*;
use crate::api::PolicyBuilder;

fn builder_spec() -> KmsKeySpec {
    let builder = PolicyBuilder {
        enable_default_policy: true,
        key_administrators: vec!["arn:aws:iam::123456789012:role/admin".into()],
        key_users: vec!["arn:aws:iam::123456789012:role/app".into()],
        key_service_users: vec![],
    };
    KmsKeySpec { policy: Some(builder), ..mk_spec() }
}

#[test]
fn the_policy_goes_before_enabling_the_key_and_everything_else() {
    // A new policy may be what allows the other calls (terraform-provider-aws #44422).
    let mut key = ObservedKey { policy: Some(r#"{"Statement":[]}"#.into()), ..mk_key() };
    key.key.state = "Disabled".into();
    key.key.description = "old".into();
    let got = actions(&mk_spec(), key);
    assert!(matches!(got[0], Action::PutPolicy { .. }), "{got:?}");
    assert_eq!(got[1], Action::SetEnabled(true));
    assert_eq!(got[2], Action::UpdateDescription("Orders key".into()));
}

#[test]
fn a_built_policy_is_put_over_aws_default_naming_the_new_statements() {
    let got = actions(&builder_spec(), mk_key());
    let [Action::PutPolicy { policy, statements }] = &got[..] else { panic!("{got:?}") };
    assert_eq!(statements, &["KeyAdministration", "KeyUsage"]);
    assert!(policy.contains("arn:aws:iam::123456789012:root"), "AWS's default statement is kept");
    let key = ObservedKey { policy: Some(policy.clone()), ..mk_key() };
    assert!(actions(&builder_spec(), key).is_empty(), "then it holds");
}

#[test]
fn a_new_key_with_a_built_policy_starts_from_aws_default_unless_the_default_is_off() {
    let create = |spec: &KmsKeySpec| match &run(
        spec,
        &Observed::NoKey { alias_target: None, account_arn: None },
        &Recorded::default(),
    )
    .actions[..]
    {
        [Action::CreateKey { key, .. }] => key.policy.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(create(&builder_spec()), None);
    let mut only_listed = builder_spec();
    only_listed.policy.as_mut().unwrap().enable_default_policy = false;
    let policy = create(&only_listed).expect("known before the key exists");
    assert!(policy.contains("KeyAdministration") && !policy.contains(":root"), "{policy}");
}

#[test]
fn a_policy_put_that_kms_does_not_show_names_the_statements_in_the_message() {
    let key = ObservedKey { policy: Some(r#"{"Statement":[]}"#.into()), ..mk_key() };
    let first = actions(&builder_spec(), key.clone());
    let plan = run_after(&builder_spec(), &Observed::Owned(Box::new(key)), &first);
    let statements = vec![DEFAULT_SID.to_owned(), "KeyAdministration".into(), "KeyUsage".into()];
    assert_eq!(plan.hold, Some(Hold::NotConverged { policy_statements: statements }));
    let crate::reconcile::Outcome::Progressing { message, .. } =
        crate::reconcile::Outcome::of_settled_plan(&plan)
    else {
        panic!()
    };
    assert!(
        message.ends_with("statements differing: Enable IAM User Permissions, KeyAdministration, KeyUsage"),
        "{message}"
    );
}
