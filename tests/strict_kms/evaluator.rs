//! The IAM evaluator on its own, with small hand-written policies.

use crate::support::strict::iam::{self, Context, Decision, Denial, Policy, Request, Who};
use crate::support::strict::{StrictConfig, shipped_policy_path};

const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/k1";

fn decide(policy: &str, action: &str, context: Context) -> Decision {
    Policy::parse(policy).evaluate(&Request { action, resource: KEY, context: &context }, Who::Identity)
}

fn allow_if(condition: &str) -> String {
    format!(
        r#"{{"Statement":[{{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:*:123456789012:key/*","Condition":{condition}}}]}}"#
    )
}

#[test]
fn string_equals_on_a_resource_tag_allows_only_that_value() {
    let policy = allow_if(r#"{"StringEquals":{"aws:ResourceTag/team":"blue"}}"#);
    let tagged = |v: &str| Context::new().with("aws:ResourceTag/team", v);
    assert_eq!(decide(&policy, "kms:EnableKey", tagged("blue")), Decision::Allow);
    assert_eq!(decide(&policy, "kms:EnableKey", tagged("Blue")), Decision::NotAllowed);
    assert_eq!(decide(&policy, "kms:EnableKey", Context::new()), Decision::NotAllowed);
    // The tag-key part of the condition key is case-insensitive, as in IAM.
    assert_eq!(
        decide(&policy, "kms:EnableKey", Context::new().with("aws:ResourceTag/TEAM", "blue")),
        Decision::Allow
    );
}

#[test]
fn for_any_value_string_like_matches_when_one_tag_key_matches() {
    let policy = allow_if(r#"{"ForAnyValue:StringLike":{"aws:TagKeys":["team/*","own?r"]}}"#);
    let keys = |k: &[&str]| Context::new().with_all("aws:TagKeys", k);
    assert_eq!(decide(&policy, "kms:TagResource", keys(&["x", "team/a"])), Decision::Allow);
    assert_eq!(decide(&policy, "kms:TagResource", keys(&["owner"])), Decision::Allow);
    assert_eq!(decide(&policy, "kms:TagResource", keys(&["x", "owners"])), Decision::NotAllowed);
    assert_eq!(decide(&policy, "kms:TagResource", keys(&[])), Decision::NotAllowed);
    assert_eq!(decide(&policy, "kms:TagResource", Context::new()), Decision::NotAllowed);
}

#[test]
fn for_all_values_needs_every_tag_key_to_match_and_holds_for_none() {
    let policy = allow_if(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}"#);
    let keys = |k: &[&str]| Context::new().with_all("aws:TagKeys", k);
    assert_eq!(decide(&policy, "kms:TagResource", keys(&["a", "b"])), Decision::Allow);
    assert_eq!(decide(&policy, "kms:TagResource", keys(&["a", "c"])), Decision::NotAllowed);
    assert_eq!(decide(&policy, "kms:TagResource", Context::new()), Decision::Allow);
}

#[test]
fn an_explicit_deny_beats_any_allow() {
    let policy = r#"{"Statement":[
        {"Effect":"Allow","Action":"kms:*","Resource":"*"},
        {"Effect":"Deny","Action":"kms:Untag*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":"owner*"}}}]}"#;
    let untag = |k: &[&str]| Context::new().with_all("aws:TagKeys", k);
    assert_eq!(decide(policy, "kms:UntagResource", untag(&["owner"])), Decision::ExplicitDeny);
    assert_eq!(decide(policy, "kms:UntagResource", untag(&["other"])), Decision::Allow);
    assert_eq!(decide(policy, "kms:TagResource", untag(&["owner"])), Decision::Allow);
}

#[test]
fn bool_compares_the_request_flag_and_fails_when_it_is_missing() {
    let policy = allow_if(r#"{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":"true"}}"#);
    let flag = |v: &str| Context::new().with("kms:BypassPolicyLockoutSafetyCheck", v);
    assert_eq!(decide(&policy, "kms:PutKeyPolicy", flag("true")), Decision::Allow);
    assert_eq!(decide(&policy, "kms:PutKeyPolicy", flag("false")), Decision::NotAllowed);
    assert_eq!(decide(&policy, "kms:PutKeyPolicy", Context::new()), Decision::NotAllowed);
}

#[test]
fn a_missing_key_fails_positive_operators_and_satisfies_negated_ones() {
    let not_equals = allow_if(r#"{"StringNotEquals":{"aws:ResourceTag/team":"red"}}"#);
    assert_eq!(decide(&not_equals, "kms:EnableKey", Context::new()), Decision::Allow);
    assert_eq!(
        decide(&not_equals, "kms:EnableKey", Context::new().with("aws:ResourceTag/team", "red")),
        Decision::NotAllowed
    );
    let not_like = allow_if(r#"{"StringNotLike":{"aws:ResourceTag/team":"r*"}}"#);
    assert_eq!(decide(&not_like, "kms:EnableKey", Context::new()), Decision::Allow);
    let like = allow_if(r#"{"StringLike":{"aws:ResourceTag/team":"*"}}"#);
    assert_eq!(decide(&like, "kms:EnableKey", Context::new()), Decision::NotAllowed);
    let absent = allow_if(r#"{"Null":{"aws:ResourceTag/team":"true"}}"#);
    assert_eq!(decide(&absent, "kms:EnableKey", Context::new()), Decision::Allow);
    assert_eq!(
        decide(&absent, "kms:EnableKey", Context::new().with("aws:ResourceTag/team", "x")),
        Decision::NotAllowed
    );
}

#[test]
fn actions_match_case_insensitively_with_wildcards_and_resources_must_match() {
    let policy = r#"{"Statement":[{"Effect":"Allow","Action":"KMS:Describe*","Resource":"arn:aws:kms:*:123456789012:key/*"}]}"#;
    assert_eq!(decide(policy, "kms:DescribeKey", Context::new()), Decision::Allow);
    assert_eq!(decide(policy, "kms:EnableKey", Context::new()), Decision::NotAllowed);
    let other = Request {
        action: "kms:DescribeKey",
        resource: "arn:aws:kms:us-east-1:999999999999:key/k",
        context: &Context::new(),
    };
    assert_eq!(Policy::parse(policy).evaluate(&other, Who::Identity), Decision::NotAllowed);
}

#[test]
#[should_panic(expected = "unknown condition operator StringEqualsIgnoreCase")]
fn an_unknown_operator_panics() {
    Policy::parse(&allow_if(r#"{"StringEqualsIgnoreCase":{"aws:ResourceTag/team":"blue"}}"#));
}

#[test]
#[should_panic(expected = "unknown condition key kms:viaservice")]
fn an_unknown_condition_key_panics() {
    Policy::parse(&allow_if(r#"{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}"#));
}

#[test]
#[should_panic(expected = "unknown condition operator StringEqualsIfExists")]
fn if_exists_operators_are_not_modelled_and_panic() {
    Policy::parse(&allow_if(r#"{"StringEqualsIfExists":{"aws:ResourceTag/team":"blue"}}"#));
}

#[test]
fn a_key_policy_that_does_not_delegate_to_the_account_shuts_out_iam() {
    let identity = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#);
    let only_app = Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"kms:*","Resource":"*"}]}"#,
    );
    let to_root = Policy::parse(&crate::common::root_policy());
    let context = Context::new();
    let request = Request { action: "kms:EnableKey", resource: KEY, context: &context };
    let me = "arn:aws:iam::123456789012:user/me";
    let authorize = |key: &Policy| iam::authorize(&identity, Some(key), &request, me, "123456789012");
    assert_eq!(authorize(&only_app), Err(Denial::NoResourceAllow));
    assert_eq!(authorize(&to_root), Ok(()));
    let nothing = Policy::parse(r#"{"Statement":[]}"#);
    assert_eq!(
        iam::authorize(&nothing, Some(&to_root), &request, me, "123456789012"),
        Err(Denial::NoIdentityAllow)
    );
}

#[test]
fn the_shipped_iam_policy_has_no_statement_the_evaluator_cannot_evaluate() {
    let text = StrictConfig::default().identity_policy_text().unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    if let Err(problems) = Policy::from_value(&value) {
        panic!(
            "{} has statements the strict layer cannot evaluate: {problems:#?}",
            shipped_policy_path().display()
        );
    }
    assert!(!text.contains("ACCOUNT_ID") && !text.contains("CLUSTER_NAME"), "placeholders left: {text}");
}
