//! Keys in other accounts, reached by assuming a role (KmsAccount): AssumeRole only of a role
//! that trusts the operator, with the external ID its trust policy requires; the calls signed
//! with the role's credentials land in its account (moto keeps accounts apart by access key)
//! and are evaluated there, against the shipped policy attached to the role; quotas are that
//! account's.

use crate::common::{CLUSTER_TAG, Kms, code, tag};
use crate::support::moto::client_as_role;
use crate::support::strict::StrictConfig;
use crate::support::strict::sts::{TrustedRole, check_assume_role, form};

const ROLE_A: &str = "arn:aws:iam::111111111111:role/kms-operator";

#[test]
fn only_a_trusting_role_with_its_external_id_is_assumed() {
    let roles = [TrustedRole { role_arn: ROLE_A.into(), external_id: Some("ext-a".into()) }];
    let ask = |body: &str| check_assume_role(&form(body.as_bytes()), &roles, "me");
    let role = "RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Fkms-operator";
    assert!(ask(&format!("Action=AssumeRole&{role}&ExternalId=ext-a")).is_ok());
    assert!(ask(&format!("Action=AssumeRole&{role}")).is_err(), "the external ID is required");
    assert!(ask(&format!("Action=AssumeRole&{role}&ExternalId=other")).is_err());
    let elsewhere = "RoleArn=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fkms-operator";
    assert!(ask(&format!("Action=AssumeRole&{elsewhere}&ExternalId=ext-a")).is_err(), "no trust");
    let open = [TrustedRole { role_arn: ROLE_A.into(), external_id: None }];
    let body = format!("Action=AssumeRole&{role}&ExternalId=unasked");
    assert!(
        check_assume_role(&form(body.as_bytes()), &open, "me").is_ok(),
        "an external ID not asked for is ignored"
    );
}

/// A KMS client through the proxy with the credentials of `ROLE_A`, assumed through the proxy.
async fn as_role_a(t: &Kms, external_id: &str) -> Result<aws_sdk_kms::Client, String> {
    client_as_role(&t.proxy.url, "us-east-1", ROLE_A, Some(external_id)).await
}

fn strict_with_role_a() -> StrictConfig {
    let roles = vec![TrustedRole { role_arn: ROLE_A.into(), external_id: Some("ext-a".into()) }];
    StrictConfig { roles, ..StrictConfig::default() }
}

#[tokio::test]
async fn a_role_is_assumed_only_with_its_external_id_and_its_keys_live_in_its_account() {
    let t = Kms::start_with(strict_with_role_a()).await;
    let refused = as_role_a(&t, "wrong").await.expect_err("a wrong external ID is refused");
    assert!(refused.contains("AccessDenied") && refused.contains("403"), "{refused}");
    let role = as_role_a(&t, "ext-a").await.unwrap();
    let made = role
        .create_key()
        .tags(tag(CLUSTER_TAG, "test"))
        .send()
        .await
        .expect("the shipped policy, attached in 111111111111");
    let arn = made.key_metadata().unwrap().arn().unwrap().to_owned();
    assert!(arn.starts_with("arn:aws:kms:us-east-1:111111111111:key/"), "{arn}");
    let own = t.kms.list_keys().send().await.unwrap();
    assert!(own.keys().is_empty(), "nothing in the operator's own account");
    assert_eq!(code(role.create_key().send().await), "AccessDeniedException", "untagged: refused there too");
}

#[tokio::test]
async fn each_account_has_its_own_request_quotas() {
    let t = Kms::start_with(strict_with_role_a()).await;
    t.proxy.enforce_quotas(&[("CreateKey", 1.0)]);
    let role = as_role_a(&t, "ext-a").await.unwrap();
    t.kms.create_key().tags(tag(CLUSTER_TAG, "test")).send().await.expect("the own account's token");
    role.create_key().tags(tag(CLUSTER_TAG, "test")).send().await.expect("111111111111 has its own bucket");
    assert_eq!(t.proxy.throttled_by_quota(), 0);
    let _ = role.create_key().tags(tag(CLUSTER_TAG, "test")).send().await;
    assert!(t.proxy.throttled_by_quota() >= 1, "111111111111's bucket is spent");
}
