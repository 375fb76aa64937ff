//! KMS's limits and formats through the proxy.

use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag};

use super::common::{CLUSTER_TAG, Kms, code, refusal, tag};

fn tags(prefix: &str, count: usize) -> Vec<Tag> {
    (0..count).map(|i| tag(&format!("{prefix}{i}"), "v")).collect()
}

#[tokio::test]
async fn a_key_has_at_most_fifty_tags() {
    let t = Kms::start().await;
    let mut many = tags("t", 50);
    many.push(tag(CLUSTER_TAG, "test"));
    assert_eq!(code(t.kms.create_key().set_tags(Some(many)).send().await), "TagException");
    let key = t.raw_key("test").await;
    let tag_many = |tags: Vec<Tag>| t.kms.tag_resource().key_id(&key).set_tags(Some(tags)).send();
    tag_many(tags("a", 29)).await.expect("30 tags");
    assert_eq!(code(tag_many(tags("b", 21)).await), "TagException", "30 + 21 > 50");
    tag_many(tags("b", 20)).await.expect("exactly 50");
    tag_many(tags("a", 29)).await.expect("new values for existing keys add nothing");
    assert_eq!(code(tag_many(tags("c", 1)).await), "TagException");
}

#[tokio::test]
async fn tag_keys_and_values_are_checked() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let tag_one = |k: String, v: String| t.kms.tag_resource().key_id(&key).tags(tag(&k, &v)).send();
    let (code_, message) = refusal(tag_one("aws:owner".into(), "x".into()).await);
    assert_eq!(code_, "TagException");
    assert!(message.contains("aws:"), "{message}");
    assert_eq!(code(tag_one("k".repeat(129), "x".into()).await), "TagException");
    assert_eq!(code(tag_one(String::new(), "x".into()).await), "TagException");
    assert_eq!(code(tag_one("k".into(), "v".repeat(257)).await), "TagException");
    tag_one("k".repeat(128), "v".repeat(256)).await.expect("at the limits");
    tag_one("empty".into(), String::new()).await.expect("an empty value");
    let reserved = t.kms.create_key().tags(tag(CLUSTER_TAG, "test")).tags(tag("aws:x", "y"));
    assert_eq!(code(reserved.send().await), "TagException");
}

#[tokio::test]
async fn alias_names_are_checked() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let alias = |name: String| t.kms.create_alias().alias_name(name).target_key_id(&key).send();
    assert_eq!(code(alias("app".into()).await), "ValidationException", "no alias/ prefix");
    assert_eq!(code(alias("alias/a b".into()).await), "ValidationException");
    assert_eq!(code(alias("alias/a.b".into()).await), "ValidationException");
    assert_eq!(code(alias(format!("alias/{}", "a".repeat(251))).await), "ValidationException");
    alias(format!("alias/{}", "a".repeat(250))).await.expect("256 characters");
    alias("alias/Team_1/app-2".into()).await.expect("letters, digits, / _ -");
    assert_eq!(code(alias("alias/aws/mine".into()).await), "NotAuthorizedException");
    assert_eq!(code(t.kms.delete_alias().alias_name("alias/aws/ebs").send().await), "NotAuthorizedException");
}

#[tokio::test]
async fn a_description_has_at_most_8192_characters() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let describe = |d: String| t.kms.update_key_description().key_id(&key).description(d).send();
    assert_eq!(code(describe("d".repeat(8193)).await), "ValidationException");
    describe("d".repeat(8192)).await.expect("8192 characters");
    let create = t.kms.create_key().tags(tag(CLUSTER_TAG, "test")).description("d".repeat(8193));
    assert_eq!(code(create.send().await), "ValidationException");
}

#[tokio::test]
async fn deletion_windows_and_rotation_periods_must_be_in_range() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let (kms, key) = (&t.kms, key.as_str());
    let rotate = |days: i32| kms.enable_key_rotation().key_id(key).rotation_period_in_days(days).send();
    assert_eq!(code(rotate(89).await), "ValidationException");
    assert_eq!(code(rotate(2561).await), "ValidationException");
    rotate(90).await.expect("90 days");
    rotate(2560).await.expect("2560 days");
    let schedule = |days: i32| kms.schedule_key_deletion().key_id(key).pending_window_in_days(days).send();
    let (code_, message) = refusal(schedule(6).await);
    assert_eq!(code_, "ValidationException");
    assert!(message.contains("pendingWindowInDays"), "{message}");
    assert_eq!(code(schedule(31).await), "ValidationException");
    assert_eq!(t.state(key).await, "Enabled");
    schedule(30).await.expect("30 days");
}

#[tokio::test]
async fn the_rotation_period_is_returned_while_rotation_is_enabled() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let status = || t.kms.get_key_rotation_status().key_id(&key).send();
    assert_eq!(status().await.unwrap().rotation_period_in_days(), None);
    t.kms.enable_key_rotation().key_id(&key).rotation_period_in_days(180).send().await.unwrap();
    assert_eq!(status().await.unwrap().rotation_period_in_days(), Some(180));
    t.kms.enable_key_rotation().key_id(&key).send().await.unwrap();
    assert_eq!(status().await.unwrap().rotation_period_in_days(), Some(365), "AWS's default period");
}

#[tokio::test]
async fn automatic_rotation_is_only_for_symmetric_keys_made_by_kms() {
    let t = Kms::start().await;
    let rsa = t.raw.create_key().key_spec(KeySpec::Rsa2048).key_usage(KeyUsageType::SignVerify);
    let rsa = rsa.tags(tag(CLUSTER_TAG, "test")).send().await.unwrap();
    let rsa = rsa.key_metadata().unwrap().key_id();
    assert_eq!(code(t.kms.enable_key_rotation().key_id(rsa).send().await), "UnsupportedOperationException");
    assert_eq!(code(t.kms.disable_key_rotation().key_id(rsa).send().await), "UnsupportedOperationException");
    t.kms.get_key_rotation_status().key_id(rsa).send().await.expect("the status can be read");
}

#[tokio::test]
async fn a_key_policy_must_be_a_json_object_of_at_most_32_kib() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let put =
        |policy: String| t.kms.put_key_policy().key_id(&key).policy_name("default").policy(policy).send();
    assert_eq!(code(put("not json".into()).await), "MalformedPolicyDocumentException");
    assert_eq!(code(put("[1]".into()).await), "MalformedPolicyDocumentException");
    let root = super::common::root_policy();
    let padded = |size: usize| {
        root.replacen(
            "\"Version\"",
            &format!("\"Id\":\"{}\",\"Version\"", "x".repeat(size - root.len() - 8)),
            1,
        )
    };
    assert_eq!(padded(32768).len(), 32768);
    put(padded(32768)).await.expect("32768 bytes");
    assert_eq!(code(put(padded(32769)).await), "LimitExceededException");
}

#[tokio::test]
async fn a_key_has_at_most_fifty_aliases() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let alias = |i: usize| t.kms.create_alias().alias_name(format!("alias/a{i}")).target_key_id(&key).send();
    for i in 0..50 {
        alias(i).await.expect("within AWS's 50");
    }
    assert_eq!(code(alias(50).await), "LimitExceededException");
}

#[tokio::test]
async fn request_quotas_are_counted_per_region() {
    let t = Kms::start().await;
    // One CreateKey a second (a bucket of one): a second call at once is throttled, but only
    // in the Region whose bucket is spent. AWS's quotas are per account and Region.
    t.proxy.enforce_quotas(&[("CreateKey", 1.0)]);
    let eu = crate::support::moto::client_in(&t.proxy.url, "eu-west-1");
    let create = |kms: &aws_sdk_kms::Client| kms.create_key().tags(tag(CLUSTER_TAG, "test")).send();
    create(&t.kms).await.expect("us-east-1's first");
    create(&eu).await.expect("eu-west-1 has its own bucket");
    assert_eq!(t.proxy.throttled_by_quota(), 0);
    let _ = create(&t.kms).await;
    assert!(t.proxy.throttled_by_quota() >= 1, "us-east-1's bucket is spent");
}
