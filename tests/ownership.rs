//! Whose key it is, against moto through the strict KMS layer with the shipped IAM policy:
//! adopting a key made outside the operator, refusing keys held by another object or cluster,
//! letting a key go with `deletionPolicy: Retain` so that another object can adopt it, and
//! observing a key without changing it. The AWS side is checked with plain SDK calls on moto.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kms_operator::api::{AdoptSpec, DeletionPolicy, KmsKeySpec, ManagementPolicy};
use kms_operator::reconcile::Released;
use support::object::{Object, example};
use support::strict::{IdentityPolicy, StrictConfig, shipped_policy_path};
use support::strict_env::StrictEnv;

const OWNERSHIP_PREFIX: &str = "kms.boosterpack.io/";

/// A key as Terraform would leave it: its own description, a tag, rotation off, an alias.
async fn terraform_key(env: &StrictEnv, alias: &str) -> String {
    let raw = env.moto.client();
    let made = raw.create_key().description("made by terraform");
    let made = made.tags(tag("Environment", "prod")).send().await.unwrap();
    let key_id = made.key_metadata().unwrap().key_id().to_owned();
    raw.create_alias().alias_name(format!("alias/{alias}")).target_key_id(&key_id).send().await.unwrap();
    key_id
}

fn tag(key: &str, value: &str) -> aws_sdk_kms::types::Tag {
    aws_sdk_kms::types::Tag::builder().tag_key(key).tag_value(value).build().unwrap()
}

async fn tags(env: &StrictEnv, key_id: &str) -> BTreeMap<String, String> {
    let out = env.moto.client().list_resource_tags().key_id(key_id).send().await.unwrap();
    out.tags().iter().map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned())).collect()
}

async fn alias_target(env: &StrictEnv, alias: &str) -> Option<String> {
    let out = env.moto.client().describe_key().key_id(format!("alias/{alias}")).send().await.ok()?;
    Some(out.key_metadata()?.key_id().to_owned())
}

/// Calls through the proxy that change something in KMS (anything but Describe, Get, List).
fn mutating_calls(env: &StrictEnv) -> BTreeMap<String, u64> {
    let reads = ["Describe", "Get", "List"];
    let calls = env.proxy.calls().into_iter();
    calls.filter(|(op, _)| !reads.iter().any(|r| op.starts_with(r))).collect()
}

fn adopting(alias: &str) -> KmsKeySpec {
    let adopt = AdoptSpec { key_id: None, alias_name: Some(alias.into()), take_over_from_cluster: None };
    KmsKeySpec { alias_name: alias.into(), adopt: Some(adopt), ..example("basic.yaml").spec }
}

async fn release(env: &StrictEnv, obj: &Object, policy: DeletionPolicy) -> Released {
    obj.release_at(&env.kms, env.clock.now_timestamp(), policy).await.unwrap()
}

#[tokio::test]
async fn a_terraform_key_is_adopted_converged_retained_and_adopted_again_elsewhere() {
    let env = StrictEnv::start(StrictConfig::default()).await;
    let key_id = terraform_key(&env, "payments").await;
    let spec = KmsKeySpec { deletion_policy: Some(DeletionPolicy::Retain), ..adopting("payments") };
    let first = Object::new("payments", spec.clone());
    first.converge(&env.kms, &env.clock).await;
    assert!(first.is_ready(), "{:?}", first.status());
    let status = first.status();
    assert_eq!((status.key_id.as_deref(), status.adopted), (Some(key_id.as_str()), Some(true)));
    let described = env.moto.client().describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(described.key_metadata().unwrap().description(), Some("Basic KMS key with rotation"));
    let on_key = tags(&env, &key_id).await;
    assert_eq!(on_key.get("kms.boosterpack.io/uid").map(String::as_str), Some("uid-payments"));
    assert_eq!(on_key.get("Example").map(String::as_str), Some("basic"));
    assert_eq!(on_key.get("Environment").map(String::as_str), Some("dev"), "the spec's tags are the truth");

    // Deleted with Retain: the ownership tags go, the key, its alias and its use stay.
    let Released::Kept { changes } = release(&env, &first, DeletionPolicy::Retain).await else { panic!() };
    assert_eq!(changes.len(), 1, "{changes:?}");
    let left = tags(&env, &key_id).await;
    assert!(left.keys().all(|k| !k.starts_with(OWNERSHIP_PREFIX)), "{left:?}");
    assert_eq!(left.get("Environment").map(String::as_str), Some("dev"));
    assert_eq!(alias_target(&env, "payments").await.as_deref(), Some(key_id.as_str()));
    let described = env.moto.client().describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(described.key_metadata().unwrap().key_state().map(|s| s.as_str()), Some("Enabled"));

    // Another object, in another namespace, adopts the released key.
    let mut second = Object::with_uid("payments", "uid-second", adopting("payments"));
    second.owner.namespace = "team-b".into();
    second.converge(&env.kms, &env.clock).await;
    assert!(second.is_ready(), "{:?}", second.status());
    assert_eq!(second.key_id(), key_id);
    let on_key = tags(&env, &key_id).await;
    assert_eq!(on_key.get("kms.boosterpack.io/owner").map(String::as_str), Some("team-b/payments"));
}

#[tokio::test]
async fn keys_held_elsewhere_pending_deletion_or_missing_are_refused_without_a_single_change() {
    let env = StrictEnv::start(StrictConfig::default()).await;
    let raw = env.moto.client();
    let staging = raw.create_key().tags(tag("kms.boosterpack.io/cluster", "staging")).send().await.unwrap();
    let staging = staging.key_metadata().unwrap().key_id().to_owned();
    let neighbour = raw.create_key().tags(tag("kms.boosterpack.io/cluster", "test"));
    let neighbour = neighbour.tags(tag("kms.boosterpack.io/uid", "uid-neighbour"));
    let neighbour = neighbour.tags(tag("kms.boosterpack.io/owner", "team-b/orders")).send().await.unwrap();
    let neighbour = neighbour.key_metadata().unwrap().key_id().to_owned();
    let pending = terraform_key(&env, "doomed").await;
    raw.schedule_key_deletion().key_id(&pending).pending_window_in_days(7).send().await.unwrap();
    let by_id =
        |id: &str| AdoptSpec { key_id: Some(id.into()), alias_name: None, take_over_from_cluster: None };
    let table = [
        (by_id(&staging), "NotOwned", "in cluster staging"),
        (by_id(&neighbour), "NotOwned", "belongs to team-b/orders in this cluster"),
        (by_id(&pending), "AdoptPendingDeletion", "cancel-key-deletion"),
        (by_id("11111111-2222-3333-4444-555555555555"), "AdoptTargetNotFound", "no key in KMS matches"),
    ];
    for (adopt, reason, text) in table {
        let obj = Object::new("taker", KmsKeySpec { adopt: Some(adopt), ..adopting("taker") });
        obj.converge(&env.kms, &env.clock).await;
        assert_eq!(obj.stalled_reason().as_deref(), Some(reason), "{:?}", obj.status());
        assert!(obj.condition("Stalled").message.contains(text), "{:?}", obj.condition("Stalled"));
        assert_eq!(obj.status().key_id, None, "a refused key is not recorded");
        assert_eq!(mutating_calls(&env), BTreeMap::new());
    }
    let mut barred = Object::new("barred", adopting("doomed"));
    barred.may_adopt = false;
    let before = env.proxy.total_calls();
    barred.converge(&env.kms, &env.clock).await;
    assert_eq!(barred.stalled_reason().as_deref(), Some("AdoptionNotAllowed"));
    assert_eq!(env.proxy.total_calls(), before, "not even a read");
}

/// The shipped IAM policy with `also` added to the clusters whose keys may be re-tagged.
fn policy_allowing_takeover_from(also: &str) -> IdentityPolicy {
    let mut policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shipped_policy_path()).unwrap()).unwrap();
    let statements = policy["Statement"].as_array_mut().unwrap();
    let retag = statements.iter_mut().find(|s| s["Sid"] == "NeverRetagAnotherClustersKey").unwrap();
    retag["Condition"]["StringNotEquals"]["aws:ResourceTag/kms.boosterpack.io/cluster"] =
        serde_json::json!(["CLUSTER_NAME", also]);
    IdentityPolicy::Json(policy.to_string())
}

#[tokio::test]
async fn a_key_is_taken_from_another_cluster_only_when_named_and_when_iam_allows_it() {
    for (identity_policy, taken) in
        [(IdentityPolicy::Shipped, false), (policy_allowing_takeover_from("staging"), true)]
    {
        let env = StrictEnv::start(StrictConfig { identity_policy, ..StrictConfig::default() }).await;
        let made = env.moto.client().create_key().tags(tag("kms.boosterpack.io/cluster", "staging"));
        let key_id = made.send().await.unwrap().key_metadata().unwrap().key_id().to_owned();
        let adopt = AdoptSpec {
            key_id: Some(key_id.clone()),
            alias_name: None,
            take_over_from_cluster: Some("staging".into()),
        };
        let obj = Object::new("mover", KmsKeySpec { adopt: Some(adopt), ..adopting("mover") });
        obj.converge(&env.kms, &env.clock).await;
        let cluster = tags(&env, &key_id).await.get("kms.boosterpack.io/cluster").cloned();
        match taken {
            true => {
                assert!(obj.is_ready(), "{:?}", obj.status());
                assert_eq!(cluster.as_deref(), Some("test"));
            }
            false => {
                assert_eq!(obj.stalled_reason().as_deref(), Some("AccessDenied"), "{:?}", obj.status());
                assert!(obj.condition("Stalled").message.contains("kms:TagResource"));
                assert_eq!(cluster.as_deref(), Some("staging"), "the other cluster's tags stay");
            }
        }
    }
}

#[tokio::test]
async fn observe_only_lists_the_plan_without_a_change_and_full_then_runs_exactly_it() {
    let strict = StrictConfig { tag_lag: Duration::ZERO, ..StrictConfig::default() };
    let env = StrictEnv::start(strict).await;
    let key_id = terraform_key(&env, "ledger").await;
    let spec = KmsKeySpec { management_policy: ManagementPolicy::ObserveOnly, ..adopting("ledger") };
    let watcher = Object::new("ledger", spec.clone());
    watcher.converge(&env.kms, &env.clock).await;
    let reconciling = watcher.condition("Reconciling");
    assert_eq!(
        (reconciling.status, reconciling.reason.as_str()),
        (kms_operator::api::ConditionStatus::True, "DriftDetected")
    );
    let status = watcher.status();
    assert_eq!(status.key_id.as_deref(), Some(key_id.as_str()), "outputs are filled");
    assert_eq!(status.adopted, None);
    let plan = status.plan.clone().unwrap();
    assert_eq!(
        plan,
        vec![
            "tag the key as this object's (adopt it)",
            "update the description",
            "set tags Environment, Example",
            "enable key rotation every 365 days",
        ]
    );
    assert_eq!(mutating_calls(&env), BTreeMap::new());
    // Deleting an observing object touches nothing either.
    assert!(matches!(release(&env, &watcher, DeletionPolicy::Delete).await, Released::Kept { .. }));
    assert_eq!(mutating_calls(&env), BTreeMap::new());

    let full = watcher.edited(KmsKeySpec { management_policy: ManagementPolicy::Full, ..spec.clone() });
    full.converge(&env.kms, &env.clock).await;
    assert!(full.is_ready(), "{:?}", full.status());
    let ran = mutating_calls(&env);
    let expected = BTreeMap::from([
        ("TagResource".to_owned(), 2),
        ("UpdateKeyDescription".to_owned(), 1),
        ("EnableKeyRotation".to_owned(), 1),
    ]);
    assert_eq!(ran, expected, "one call per line of the plan");
    assert_eq!(full.status().plan, None);

    let again = full.edited(spec);
    again.converge(&env.kms, &env.clock).await;
    assert!(again.is_ready(), "{:?}", again.status());
    assert_eq!(again.status().plan, Some(vec![]));
}

#[tokio::test]
async fn a_restart_between_tagging_and_recording_finds_the_adopted_key_whatever_the_spec_says_then() {
    let env = StrictEnv::start(StrictConfig::default()).await;
    let key_id = terraform_key(&env, "orders").await;
    let obj = Object::new("orders", adopting("orders"));
    *obj.fail_key_write.lock().unwrap() = true;
    assert!(obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.is_err(), "the record fails");
    assert!(obj.status().create_intent.is_some(), "the attempt was recorded before the tag");
    assert_eq!(
        tags(&env, &key_id).await.get("kms.boosterpack.io/uid").map(String::as_str),
        Some("uid-orders")
    );

    // The user drops `adopt` meanwhile: the tagged key is still found, and no key is created.
    let edited = obj.edited(KmsKeySpec { adopt: None, ..adopting("orders") });
    edited.converge(&env.kms, &env.clock).await;
    assert!(edited.is_ready(), "{:?}", edited.status());
    assert_eq!(edited.key_id(), key_id);
    assert_eq!(mutating_calls(&env).get("CreateKey"), None, "{:?}", mutating_calls(&env));
}

#[tokio::test]
async fn ownership_tags_forged_onto_a_key_do_not_make_it_the_objects() {
    let env = StrictEnv::start(StrictConfig::default()).await;
    let raw = env.moto.client();
    let now = env.clock.now_timestamp();
    // (object name, token on the forged key, when the interrupted attempt began)
    let table = [
        ("no-token", None, now),
        ("made-before", Some("t-read-from-status"), now + Duration::from_secs(600)),
    ];
    for (name, token, started_at) in table {
        let forged = raw.create_key().tags(tag("kms.boosterpack.io/cluster", "test"));
        let mut forged = forged.tags(tag("kms.boosterpack.io/uid", &format!("uid-{name}")));
        if let Some(token) = token {
            forged = forged.tags(tag("kms.boosterpack.io/create-token", token));
        }
        let forged = forged.send().await.unwrap().key_metadata().unwrap().key_id().to_owned();
        let obj = Object::new(
            name,
            KmsKeySpec { alias_name: format!("forged-{name}"), ..example("basic.yaml").spec },
        );
        let intent = kms_operator::api::CreateIntent {
            token: "t-read-from-status".into(),
            started_at: started_at.to_string(),
            adopting: None,
            region: None,
            account_id: None,
        };
        obj.status.lock().unwrap().create_intent = Some(intent);
        obj.converge(&env.kms, &env.clock).await;
        assert!(obj.is_ready(), "{name}: {:?}", obj.status());
        assert_ne!(obj.key_id(), forged, "{name}: the forged key was taken");
    }
}
