//! What real AWS does that moto does not, and how the operator copes: IAM applying a new key's
//! tags minutes late, a permission missing from the operator's policy, a key policy that shuts
//! the operator out, AWS's 50-tag limit, stray ownership-prefixed tags, grant idempotency, and
//! an account where the operator may not use the Tagging API or read every key. Every call goes
//! through the strict KMS layer (tests/support/strict) with the shipped IAM policy.

mod support;

use kms_operator::api::DeletionPolicy;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kms::types::{KeyState, Tag};
use kms_operator::reconcile::{Outcome, Released, Report, TAG_CLUSTER, TAG_UID};
use support::moto::Moto;
use support::object::{Object, example};
use support::strict::{IdentityPolicy, StrictConfig};
use support::strict_env::StrictEnv;

type Env = StrictEnv;

async fn setup(strict: StrictConfig) -> Env {
    StrictEnv::start(strict).await
}

fn reason(report: &Report) -> &'static str {
    report.outcome.reason()
}

fn stalled(report: &Report) -> bool {
    matches!(report.outcome, Outcome::Stalled { .. })
}

/// The shipped IAM policy without the statement named `sid`, or without `action` in any.
fn shipped_policy_without(sid: Option<&str>, action: Option<&str>) -> IdentityPolicy {
    let text = std::fs::read_to_string(support::strict::shipped_policy_path()).unwrap();
    let mut policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    let statements = policy["Statement"].as_array_mut().unwrap();
    statements.retain(|s| Some(s["Sid"].as_str().unwrap()) != sid);
    for statement in statements.iter_mut() {
        if let Some(actions) = statement["Action"].as_array_mut() {
            actions.retain(|a| Some(a.as_str().unwrap()) != action);
        }
    }
    IdentityPolicy::Json(policy.to_string())
}

/// A key made straight on moto (as a person or another tool would) with `policy`, tagged as
/// `obj`'s key; recorded in `obj`'s status as its own.
async fn key_of(moto: &Moto, obj: &Object, policy: &str) -> String {
    let tags =
        obj.owner.tags().into_iter().map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build().unwrap());
    let out = (moto.client().create_key())
        .policy(policy)
        .bypass_policy_lockout_safety_check(true)
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .unwrap();
    let meta = out.key_metadata().unwrap();
    let mut status = obj.status.lock().unwrap();
    status.key_id = Some(meta.key_id().to_owned());
    status.key_arn = meta.arn().map(str::to_owned);
    // Long enough ago that IAM sees its tags.
    status.key_created_at =
        Some((k8s_openapi::jiff::Timestamp::now() - Duration::from_secs(86_400)).to_string());
    meta.key_id().to_owned()
}

#[tokio::test]
async fn a_new_key_awaits_iam_tag_propagation_and_is_ready_soon_after_never_stalled() {
    // The shipped policy scopes most calls by the cluster tag, which IAM sees up to 5 min late.
    let lag = Duration::from_secs(60);
    let env = setup(StrictConfig { tag_lag: lag, ..StrictConfig::default() }).await;
    let started = env.clock.now_instant();
    let obj = Object::new("advanced-key", example("advanced.yaml").spec);
    let reports = obj.converge(&env.kms, &env.clock).await;
    let reasons: Vec<&str> = reports.iter().map(reason).collect();
    assert!(reasons.contains(&"AwaitingPermissions"), "{reasons:?}");
    assert!(!reports.iter().any(stalled), "{reasons:?}");
    assert!(obj.is_ready(), "{:?}", obj.status());
    let took = env.clock.now_instant() - started;
    assert!(took <= lag + Duration::from_secs(30), "Ready after {took:?} with a {lag:?} tag lag");
    assert!(obj.status().access_denied_since.is_none(), "cleared once the calls go through");
    assert_eq!(obj.status().grant_ids.len(), 1);
}

#[tokio::test]
async fn a_permission_missing_from_the_iam_policy_stalls_after_the_grace_naming_it() {
    let identity_policy = shipped_policy_without(None, Some("kms:ListGrants"));
    let env =
        setup(StrictConfig { identity_policy, tag_lag: Duration::ZERO, ..StrictConfig::default() }).await;
    let obj = Object::new("advanced-key", example("advanced.yaml").spec);
    let started = env.clock.now_instant();
    let reports = obj.converge(&env.kms, &env.clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("AccessDenied"), "{:?}", obj.status());
    assert!(
        obj.condition("Stalled").message.contains("kms:ListGrants"),
        "{}",
        obj.condition("Stalled").message
    );
    assert!(env.clock.now_instant() - started >= Duration::from_secs(360), "waited out IAM's delay first");
    assert!(reports.iter().rev().skip(1).all(|r| !stalled(r)), "stalled only at the end");
}

/// A key policy that lets the operator (moto's caller) do nothing but PutKeyPolicy.
const ONLY_PUT_KEY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::123456789012:user/moto"},"Action":"kms:PutKeyPolicy","Resource":"*"}]}"#;

#[tokio::test]
async fn a_key_whose_policy_shuts_the_operator_out_but_for_put_key_policy_is_repaired() {
    let env = setup(StrictConfig::default()).await;
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    let key_id = key_of(&env.moto, &obj, ONLY_PUT_KEY_POLICY).await;
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let policy =
        env.moto.client().get_key_policy().key_id(&key_id).policy_name("default").send().await.unwrap();
    assert!(policy.policy().unwrap().contains(":root"), "the default policy is back");
}

#[tokio::test]
async fn a_key_whose_policy_shuts_the_operator_out_but_for_put_key_policy_can_be_deleted() {
    let env = setup(StrictConfig::default()).await;
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    let key_id = key_of(&env.moto, &obj, ONLY_PUT_KEY_POLICY).await;
    let released = obj.release_at(&env.kms, env.clock.now_timestamp(), DeletionPolicy::Delete).await.unwrap();
    assert!(matches!(released, Released::Done { .. }), "{released:?}");
    let meta = env.moto.client().describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(meta.key_metadata().unwrap().key_state(), Some(&KeyState::PendingDeletion));
}

#[tokio::test]
async fn a_key_the_operator_may_not_even_put_a_policy_on_stalls_naming_the_permission() {
    let env = setup(StrictConfig::default()).await;
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    let nothing = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/other"},"Action":"kms:*","Resource":"*"}]}"#;
    key_of(&env.moto, &obj, nothing).await;
    obj.converge(&env.kms, &env.clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("AccessDenied"), "{:?}", obj.status());
    let message = obj.condition("Stalled").message;
    assert!(message.contains("kms:DescribeKey") || message.contains("kms:PutKeyPolicy"), "{message}");
}

#[tokio::test]
async fn forty_six_tags_fit_beside_the_operators_own_within_aws_limit_of_fifty() {
    let env = setup(StrictConfig::default()).await;
    let mut spec = example("basic.yaml").spec;
    spec.tags = (0..46).map(|i| (format!("t{i}"), "v".to_owned())).collect();
    let obj = Object::new("basic-key", spec);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let tags = env.moto.client().list_resource_tags().key_id(obj.key_id()).limit(100).send().await.unwrap();
    assert_eq!(tags.tags().len(), 50);
}

#[tokio::test]
async fn a_stray_tag_under_the_operators_prefix_is_reported_and_other_drift_still_repaired() {
    let env = setup(StrictConfig::default()).await;
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(&env.kms, &env.clock).await;
    let key_id = obj.key_id();
    let raw = env.moto.client();
    for (k, v) in [("kms.boosterpack.io/forged", "x"), ("by-hand", "y")] {
        let tag = Tag::builder().tag_key(k).tag_value(v).build().unwrap();
        raw.tag_resource().key_id(&key_id).tags(tag).send().await.unwrap();
    }
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert!(obj.condition("Ready").message.contains("kms.boosterpack.io/forged"));
    let out = raw.list_resource_tags().key_id(&key_id).send().await.unwrap();
    let tags: BTreeMap<&str, &str> = out.tags().iter().map(|t| (t.tag_key(), t.tag_value())).collect();
    assert_eq!(tags.get("kms.boosterpack.io/forged"), Some(&"x"), "left for a person");
    assert!(!tags.contains_key("by-hand"), "ordinary drift is still removed");
}

#[tokio::test]
async fn a_grant_kms_reports_in_an_unexpected_form_is_never_revoked() {
    // AWS answers a repeated CreateGrant (same name and parameters) with the existing grant's
    // ID; revoking "the old one" would then remove the only grant.
    let env = setup(StrictConfig::default()).await;
    let lagging = support::flaky::Lagging::new(env.kms.clone());
    let obj = Object::new("advanced-key", example("advanced.yaml").spec);
    obj.converge(&lagging, &env.clock).await;
    let key_id = obj.key_id();
    *lagging.misreported_grant_operation.lock().unwrap() = Some("DescribeKey".into());
    for _ in 0..3 {
        obj.reconcile_at(&lagging, env.clock.now_timestamp()).await.unwrap();
        let grants = env.moto.client().list_grants().key_id(&key_id).send().await.unwrap();
        assert_eq!(grants.grants().len(), 1, "{:?}", grants.grants());
        assert!(obj.is_ready(), "KMS confirmed the grant is the spec's: {:?}", obj.status());
    }
}

#[tokio::test]
async fn without_the_tagging_api_an_interrupted_create_is_found_by_scanning_past_keys_it_may_not_read() {
    let identity_policy = shipped_policy_without(Some("FindKeysByOwnershipTag"), None);
    let env = setup(StrictConfig { identity_policy, ..StrictConfig::default() }).await;
    // Someone else's key, whose policy lets the operator read nothing.
    let foreign = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/other"},"Action":"kms:*","Resource":"*"}]}"#;
    let raw = env.moto.client();
    raw.create_key().policy(foreign).bypass_policy_lockout_safety_check(true).send().await.unwrap();

    let obj = Object::new("basic-key", example("basic.yaml").spec);
    *obj.fail_key_write.lock().unwrap() = true;
    assert!(obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.is_err());
    *obj.fail_key_write.lock().unwrap() = false;
    let reports = obj.converge(&env.kms, &env.clock).await;
    let changes: Vec<String> = reports.iter().flat_map(|r| r.changes.clone()).collect();
    assert!(changes.iter().any(|c| c.starts_with("adopted key")), "{changes:?}");
    assert!(obj.is_ready(), "{:?}", obj.status());
    let mut ours = Vec::new();
    for key in raw.list_keys().send().await.unwrap().keys() {
        let tags = raw.list_resource_tags().key_id(key.key_id().unwrap()).send().await.unwrap();
        if tags.tags().iter().any(|t| t.tag_key() == TAG_UID && t.tag_value() == "uid-basic-key") {
            ours.push(key.key_id().unwrap().to_owned());
        }
    }
    assert_eq!(ours, vec![obj.key_id()], "one key, the adopted one");
}

#[tokio::test]
async fn an_interrupted_create_is_found_with_the_tagging_api_in_a_few_calls() {
    let env = setup(StrictConfig::default()).await;
    let raw = env.moto.client();
    for _ in 0..6 {
        let tag = Tag::builder().tag_key(TAG_CLUSTER).tag_value("test").build().unwrap();
        raw.create_key().tags(tag).send().await.unwrap();
    }
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    *obj.fail_key_write.lock().unwrap() = true;
    assert!(obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.is_err());
    *obj.fail_key_write.lock().unwrap() = false;
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let calls = env.proxy.calls();
    assert_eq!(calls.get("ListKeys"), None, "no scan of the account: {calls:?}");
    assert!(calls.get("GetResources").copied().unwrap_or(0) >= 1, "{calls:?}");
}

#[tokio::test]
async fn renaming_a_tag_at_the_limit_of_fifty_makes_room_first() {
    // AWS counts the tags after each call: adding before removing would be refused.
    let env = setup(StrictConfig::default()).await;
    let mut spec = example("basic.yaml").spec;
    spec.tags = (0..46).map(|i| (format!("t{i}"), "v".to_owned())).collect();
    let mut obj = Object::new("basic-key", spec);
    obj.converge(&env.kms, &env.clock).await;
    obj.spec.tags.remove("t0");
    obj.spec.tags.insert("renamed".into(), "v".into());
    obj.generation = 2;
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let tags = env.moto.client().list_resource_tags().key_id(obj.key_id()).limit(100).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.tag_key() == "renamed"));
    assert_eq!(tags.tags().len(), 50);
}

#[tokio::test]
async fn an_alias_held_by_a_key_the_operator_may_not_read_is_an_alias_conflict() {
    // Another team's key, whose policy does not let the operator describe it.
    let env = setup(StrictConfig::default()).await;
    let raw = env.moto.client();
    let theirs = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/other"},"Action":"kms:*","Resource":"*"}]}"#;
    let out = raw.create_key().policy(theirs).bypass_policy_lockout_safety_check(true).send().await.unwrap();
    let other = out.key_metadata().unwrap().key_id().to_owned();
    raw.create_alias().alias_name("alias/basic-key").target_key_id(&other).send().await.unwrap();
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(&env.kms, &env.clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("AliasConflict"), "{:?}", obj.status());
    assert!(obj.condition("Stalled").message.contains(&other));
}

#[tokio::test]
async fn the_rotation_period_reaches_kms_shows_in_status_and_is_put_back_after_drift() {
    let env = setup(StrictConfig::default()).await;
    let mut spec = example("basic.yaml").spec;
    spec.rotation_period_in_days = Some(90);
    let obj = Object::new("basic-key", spec);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert_eq!(obj.status().rotation_period_in_days, Some(90));
    let next: k8s_openapi::jiff::Timestamp = obj.status().next_rotation_date.unwrap().parse().unwrap();
    let days = next.duration_since(env.clock.now_timestamp()).as_secs() / 86_400;
    assert!((88..=90).contains(&days), "next rotation in {days} days");

    // Someone sets another period (through "AWS", so the strict layer sees it).
    let by_hand = support::moto::client_for(&env.proxy.url);
    by_hand.enable_key_rotation().key_id(obj.key_id()).rotation_period_in_days(730).send().await.unwrap();
    let reports = obj.converge(&env.kms, &env.clock).await;
    let changes: Vec<String> = reports.iter().flat_map(|r| r.changes.clone()).collect();
    assert!(changes.contains(&"enabled key rotation every 90 days".to_owned()), "{changes:?}");
    assert_eq!(obj.status().rotation_period_in_days, Some(90));
}
