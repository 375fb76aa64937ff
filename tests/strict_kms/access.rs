//! IAM through the proxy: the shipped identity policy with the tag lag, key policies, the
//! lockout safety check and principals that do not exist (yet).

use std::time::Duration;

use aws_sdk_kms::types::GrantOperation;

use super::common::{CLUSTER_TAG, Kms, code, policy_for, refusal, root_policy, tag, tagging_for, with_root};
use crate::support::strict::{IdentityPolicy, MOTO_CALLER, StrictConfig};

const APP: &str = "arn:aws:iam::123456789012:role/app";
const DENIED: &str = "AccessDeniedException";
const MALFORMED: &str = "MalformedPolicyDocumentException";
const UID_TAG: &str = "kms.boosterpack.io/uid";

#[tokio::test]
async fn shipped_policy_allows_every_operator_call_on_its_cluster_key_once_the_tag_reaches_iam() {
    let t = Kms::start().await;
    let key = t.new_key().await;
    t.after_tag_lag();
    let (kms, key) = (&t.kms, key.as_str());
    kms.describe_key().key_id(key).send().await.unwrap();
    kms.list_resource_tags().key_id(key).send().await.unwrap();
    kms.get_key_policy().key_id(key).policy_name("default").send().await.unwrap();
    kms.put_key_policy().key_id(key).policy_name("default").policy(root_policy()).send().await.unwrap();
    kms.get_key_rotation_status().key_id(key).send().await.unwrap();
    kms.enable_key_rotation().key_id(key).rotation_period_in_days(180).send().await.unwrap();
    kms.disable_key_rotation().key_id(key).send().await.unwrap();
    kms.update_key_description().key_id(key).description("d").send().await.unwrap();
    kms.tag_resource().key_id(key).tags(tag("team", "blue")).send().await.unwrap();
    kms.untag_resource().key_id(key).tag_keys("team").send().await.unwrap();
    kms.create_alias().alias_name("alias/app").target_key_id(key).send().await.unwrap();
    kms.list_aliases().key_id(key).send().await.unwrap();
    kms.delete_alias().alias_name("alias/app").send().await.unwrap();
    let grant = kms.create_grant().key_id(key).grantee_principal(APP).operations(GrantOperation::Decrypt);
    let grant = grant.name("reader").send().await.unwrap();
    kms.list_grants().key_id(key).send().await.unwrap();
    kms.revoke_grant().key_id(key).grant_id(grant.grant_id().unwrap()).send().await.unwrap();
    kms.disable_key().key_id(key).send().await.unwrap();
    kms.enable_key().key_id(key).send().await.unwrap();
    kms.list_keys().send().await.unwrap();
    kms.schedule_key_deletion().key_id(key).pending_window_in_days(7).send().await.unwrap();
    kms.cancel_key_deletion().key_id(key).send().await.unwrap();
}

#[tokio::test]
async fn shipped_policy_lets_the_operator_find_keys_by_tag() {
    let t = Kms::start().await;
    let found = tagging_for(&t.proxy.url).get_resources().resource_type_filters("kms:key").send().await;
    found.expect("deploy/iam-policy.json should allow tag:GetResources on *");
}

#[tokio::test]
async fn shipped_policy_denies_managing_a_new_key_until_its_tag_reaches_iam() {
    let t = Kms::start().await;
    let key = t.new_key().await;
    let kms = &t.kms;
    kms.describe_key().key_id(&key).send().await.expect("reading any key is allowed");
    assert_eq!(code(kms.update_key_description().key_id(&key).description("d").send().await), DENIED);
    assert_eq!(code(kms.enable_key_rotation().key_id(&key).send().await), DENIED);
    assert_eq!(code(kms.create_alias().alias_name("alias/young").target_key_id(&key).send().await), DENIED);
    assert_eq!(code(kms.schedule_key_deletion().key_id(&key).send().await), DENIED);
    t.proxy.clock().advance(Duration::from_secs(299));
    assert_eq!(code(kms.enable_key_rotation().key_id(&key).send().await), DENIED);
    t.proxy.clock().advance(Duration::from_secs(2));
    kms.enable_key_rotation().key_id(&key).send().await.expect("the tag has reached IAM");
}

#[tokio::test]
async fn shipped_policy_sees_a_tag_change_only_after_the_lag() {
    let t = Kms::start().await;
    let key = t.raw_key("other").await;
    let (raw, kms) = (&t.raw, &t.kms);
    // The proxy never saw this key change, so IAM sees its tags as they are: cluster "other".
    assert_eq!(code(kms.enable_key_rotation().key_id(&key).send().await), DENIED);
    raw.untag_resource().key_id(&key).tag_keys(CLUSTER_TAG).send().await.unwrap();
    // Through the proxy: IAM keeps seeing the key untagged until the tag lag has passed.
    kms.tag_resource().key_id(&key).tags(tag(CLUSTER_TAG, "test")).send().await.unwrap();
    assert_eq!(code(kms.enable_key_rotation().key_id(&key).send().await), DENIED);
    t.after_tag_lag();
    kms.enable_key_rotation().key_id(&key).send().await.expect("the new tag has reached IAM");
}

#[tokio::test]
async fn shipped_policy_denies_keys_tagged_for_another_cluster() {
    let t = Kms::start().await;
    let key = t.raw_key("other").await;
    let kms = &t.kms;
    kms.describe_key().key_id(&key).send().await.expect("reading any key is allowed");
    kms.list_resource_tags().key_id(&key).send().await.expect("reading any key's tags is allowed");
    assert_eq!(code(kms.update_key_description().key_id(&key).description("d").send().await), DENIED);
    assert_eq!(code(kms.disable_key().key_id(&key).send().await), DENIED);
    kms.get_key_policy()
        .key_id(&key)
        .policy_name("default")
        .send()
        .await
        .expect("reading any key's policy is allowed (observe-only)");
    kms.list_grants().key_id(&key).send().await.expect("reading any key's grants is allowed (observe-only)");
    let put = kms.put_key_policy().key_id(&key).policy_name("default").policy(root_policy());
    assert_eq!(code(put.send().await), DENIED);
    let claim = kms.tag_resource().key_id(&key).tags(tag(CLUSTER_TAG, "test"));
    assert_eq!(code(claim.send().await), DENIED, "another cluster's key cannot be re-tagged as ours");
    assert_eq!(code(kms.create_key().tags(tag(CLUSTER_TAG, "other")).send().await), DENIED);
    assert_eq!(code(kms.create_key().send().await), DENIED, "an untagged key is not this cluster's");
    kms.create_key().tags(tag(CLUSTER_TAG, "test")).send().await.expect("this cluster's key");
}

#[tokio::test]
async fn shipped_policy_removes_ownership_tags_only_whole_and_never_bypasses_the_lockout_check() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let kms = &t.kms;
    t.raw.tag_resource().key_id(&key).tags(tag(UID_TAG, "uid-1")).send().await.unwrap();
    let (code, message) = refusal(kms.untag_resource().key_id(&key).tag_keys(UID_TAG).send().await);
    assert_eq!(code, DENIED, "taking the UID off while the cluster tag stays");
    assert!(message.ends_with("with an explicit deny in an identity-based policy"), "{message}");
    let release = kms.untag_resource().key_id(&key).tag_keys(UID_TAG).tag_keys(CLUSTER_TAG);
    release.send().await.expect("a release takes the cluster tag with the rest");
    let bypass = kms.put_key_policy().key_id(&key).policy_name("default").policy(root_policy());
    assert_eq!(super::common::code(bypass.bypass_policy_lockout_safety_check(true).send().await), DENIED);
}

#[tokio::test]
async fn access_denied_names_the_caller_the_action_and_the_key() {
    let t = Kms::start().await;
    let key = t.raw_key("other").await;
    let arn = format!("arn:aws:kms:us-east-1:123456789012:key/{key}");
    let (code, message) = refusal(t.kms.update_key_description().key_id(&key).description("d").send().await);
    assert_eq!(code, DENIED);
    assert_eq!(
        message,
        format!(
            "User: {MOTO_CALLER} is not authorized to perform: kms:UpdateKeyDescription on resource: {arn} \
             because no identity-based policy allows the kms:UpdateKeyDescription action"
        )
    );
}

#[tokio::test]
async fn a_key_policy_without_the_account_shuts_out_the_identity_policy() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let me = "arn:aws:iam::123456789012:user/moto";
    let only_me = policy_for(me, r#"["kms:GetKeyPolicy","kms:PutKeyPolicy"]"#);
    t.raw.put_key_policy().key_id(&key).policy_name("default").policy(&only_me).send().await.unwrap();
    let kms = &t.kms;
    let (code, message) = refusal(kms.update_key_description().key_id(&key).description("d").send().await);
    assert_eq!(code, DENIED);
    assert!(message.ends_with("because no resource-based policy allows the kms:UpdateKeyDescription action"));
    kms.get_key_policy()
        .key_id(&key)
        .policy_name("default")
        .send()
        .await
        .expect("the key policy names the caller");
    kms.put_key_policy().key_id(&key).policy_name("default").policy(root_policy()).send().await.unwrap();
    kms.update_key_description().key_id(&key).description("d").send().await.expect("IAM counts again");
}

#[tokio::test]
async fn a_key_policy_that_would_lock_the_caller_out_is_refused() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let put =
        |policy: String| t.kms.put_key_policy().key_id(&key).policy_name("default").policy(policy).send();
    let app_only = policy_for(APP, r#""kms:*""#);
    let (code, message) = refusal(put(app_only.clone()).await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        (MALFORMED, "The new key policy will not allow you to update the key policy in the future.")
    );
    put(policy_for(MOTO_CALLER, r#""kms:Put*""#)).await.expect("the caller keeps kms:PutKeyPolicy");
    put(policy_for("*", r#""kms:*""#)).await.expect("everyone keeps kms:*");
    put(with_root(APP, r#"["kms:Decrypt"]"#)).await.expect("the account root keeps kms:*");
    let create = t.kms.create_key().tags(tag(CLUSTER_TAG, "test")).policy(app_only);
    assert_eq!(super::common::code(create.send().await), MALFORMED);
}

#[tokio::test]
async fn the_lockout_check_can_be_bypassed_where_iam_allows_it() {
    let t = Kms::start_with(StrictConfig { identity_policy: IdentityPolicy::Off, ..StrictConfig::default() })
        .await;
    let key = t.raw_key("test").await;
    let app_only = policy_for(APP, r#""kms:*""#);
    let put = t.kms.put_key_policy().key_id(&key).policy_name("default").policy(app_only);
    put.bypass_policy_lockout_safety_check(true).send().await.expect("bypassed");
}

#[tokio::test]
async fn a_key_policy_naming_an_unknown_principal_is_refused_until_the_principal_propagates() {
    let ghost = "arn:aws:iam::123456789012:role/ghost";
    let config = StrictConfig { unknown_principals: vec![ghost.to_owned()], ..StrictConfig::default() };
    let t = Kms::start_with(config).await;
    let key = t.raw_key("test").await;
    let put =
        |policy: String| t.kms.put_key_policy().key_id(&key).policy_name("default").policy(policy).send();
    let (code, message) = refusal(put(with_root(ghost, r#""kms:Decrypt""#)).await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        (MALFORMED, "Policy contains a statement with one or more invalid principals.")
    );
    let fresh = "arn:aws:iam::123456789012:role/fresh";
    t.proxy.mark_principal_unknown(fresh, Duration::from_secs(60));
    assert_eq!(super::common::code(put(with_root(fresh, r#""kms:Decrypt""#)).await), MALFORMED);
    t.proxy.clock().advance(Duration::from_secs(61));
    put(with_root(fresh, r#""kms:Decrypt""#)).await.expect("the new role has propagated");
    assert_eq!(super::common::code(put(with_root(ghost, r#""kms:Decrypt""#)).await), MALFORMED);
}
