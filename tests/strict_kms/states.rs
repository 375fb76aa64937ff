//! Key states and CreateGrant idempotency through the proxy.

use aws_sdk_kms::types::{GrantConstraints, GrantOperation};

use super::common::{Kms, code, refusal, root_policy, tag};
use crate::support::fault_proxy::Fault;

const APP: &str = "arn:aws:iam::123456789012:role/app";
const INVALID_STATE: &str = "KMSInvalidStateException";

#[tokio::test]
async fn a_key_pending_deletion_refuses_changes_but_can_still_be_read_and_cancelled() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let (kms, key) = (&t.kms, key.as_str());
    kms.schedule_key_deletion().key_id(key).pending_window_in_days(7).send().await.unwrap();
    let (code_, message) = refusal(kms.enable_key().key_id(key).send().await);
    assert_eq!(code_, INVALID_STATE);
    assert_eq!(message, format!("arn:aws:kms:us-east-1:123456789012:key/{key} is pending deletion."));
    assert_eq!(code(kms.disable_key().key_id(key).send().await), INVALID_STATE);
    assert_eq!(
        code(kms.create_alias().alias_name("alias/late").target_key_id(key).send().await),
        INVALID_STATE
    );
    let grant = kms.create_grant().key_id(key).grantee_principal(APP).operations(GrantOperation::Decrypt);
    assert_eq!(code(grant.send().await), INVALID_STATE);
    assert_eq!(code(kms.enable_key_rotation().key_id(key).send().await), INVALID_STATE);
    assert_eq!(code(kms.disable_key_rotation().key_id(key).send().await), INVALID_STATE);
    assert_eq!(code(kms.tag_resource().key_id(key).tags(tag("a", "b")).send().await), INVALID_STATE);
    assert_eq!(code(kms.untag_resource().key_id(key).tag_keys("a").send().await), INVALID_STATE);
    assert_eq!(code(kms.update_key_description().key_id(key).description("d").send().await), INVALID_STATE);
    assert_eq!(
        code(kms.schedule_key_deletion().key_id(key).pending_window_in_days(7).send().await),
        INVALID_STATE
    );
    kms.describe_key().key_id(key).send().await.expect("DescribeKey works");
    kms.list_resource_tags().key_id(key).send().await.expect("ListResourceTags works");
    kms.get_key_policy().key_id(key).policy_name("default").send().await.expect("GetKeyPolicy works");
    kms.put_key_policy().key_id(key).policy_name("default").policy(root_policy()).send().await.unwrap();
    kms.list_grants().key_id(key).send().await.expect("ListGrants works");
    kms.cancel_key_deletion().key_id(key).send().await.expect("CancelKeyDeletion works");
}

#[tokio::test]
async fn a_disabled_key_refuses_grants_and_rotation_changes_but_not_management() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let (kms, key) = (&t.kms, key.as_str());
    kms.disable_key().key_id(key).send().await.unwrap();
    let grant = kms.create_grant().key_id(key).grantee_principal(APP).operations(GrantOperation::Decrypt);
    let (code_, message) = refusal(grant.send().await);
    assert_eq!(
        (code_.as_str(), message.as_str()),
        ("DisabledException", &*format!("arn:aws:kms:us-east-1:123456789012:key/{key} is disabled."))
    );
    assert_eq!(code(kms.enable_key_rotation().key_id(key).send().await), "DisabledException");
    assert_eq!(code(kms.disable_key_rotation().key_id(key).send().await), "DisabledException");
    kms.update_key_description().key_id(key).description("d").send().await.expect("management works");
    kms.tag_resource().key_id(key).tags(tag("a", "b")).send().await.expect("tagging works");
    kms.create_alias().alias_name("alias/off").target_key_id(key).send().await.expect("aliases work");
    kms.schedule_key_deletion().key_id(key).pending_window_in_days(7).send().await.expect("deletion works");
}

#[tokio::test]
async fn cancel_key_deletion_needs_a_pending_key_and_leaves_it_disabled() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let (kms, key) = (&t.kms, key.as_str());
    let (code_, message) = refusal(kms.cancel_key_deletion().key_id(key).send().await);
    assert_eq!(code_, INVALID_STATE);
    assert!(message.ends_with("is not pending deletion."), "{message}");
    kms.schedule_key_deletion().key_id(key).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(t.state(key).await, "PendingDeletion");
    kms.cancel_key_deletion().key_id(key).send().await.unwrap();
    assert_eq!(t.state(key).await, "Disabled");
}

#[tokio::test]
async fn a_key_moto_does_not_know_gets_motos_own_answer() {
    let t = Kms::start().await;
    let unknown = "00000000-0000-0000-0000-000000000000";
    let (code_, message) = refusal(t.kms.enable_key_rotation().key_id(unknown).send().await);
    assert_eq!(code_, "NotFoundException");
    let (_, moto_message) = refusal(t.raw.enable_key_rotation().key_id(unknown).send().await);
    assert_eq!(message, moto_message);
}

#[tokio::test]
async fn faults_are_decided_before_the_strict_checks() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    t.proxy.script("CancelKeyDeletion", &[Fault::Reject("ValidationException", "scripted")]);
    let (code_, message) = refusal(t.kms.cancel_key_deletion().key_id(&key).send().await);
    assert_eq!((code_.as_str(), message.as_str()), ("ValidationException", "scripted"));
    assert_eq!(code(t.kms.cancel_key_deletion().key_id(&key).send().await), INVALID_STATE);
    assert_eq!(t.proxy.calls()["CancelKeyDeletion"], 2);
}

#[tokio::test]
async fn a_grant_with_the_same_name_and_parameters_is_the_same_grant() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let context = GrantConstraints::builder().encryption_context_equals("app", "web").build();
    let grant = |ops: &[GrantOperation]| {
        (t.kms.create_grant().key_id(&key).name("web").grantee_principal(APP))
            .set_operations(Some(ops.to_vec()))
            .constraints(context.clone())
            .retiring_principal(APP)
            .send()
    };
    let first = grant(&[GrantOperation::Decrypt, GrantOperation::Encrypt]).await.unwrap();
    let again = grant(&[GrantOperation::Encrypt, GrantOperation::Decrypt]).await.unwrap();
    assert_eq!(again.grant_id(), first.grant_id());
    assert_eq!(again.grant_token(), first.grant_token());
    let listed = t.raw.list_grants().key_id(&key).send().await.unwrap();
    assert_eq!(listed.grants().len(), 1, "moto made no second grant");
    let other = grant(&[GrantOperation::Decrypt]).await.unwrap();
    assert_ne!(other.grant_id(), first.grant_id(), "other operations make a new grant");
    let listed = t.raw.list_grants().key_id(&key).send().await.unwrap();
    assert_eq!(listed.grants().len(), 2);
    assert_eq!(t.proxy.calls()["CreateGrant"], 3);
}
