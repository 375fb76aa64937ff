//! observe → plan → apply against moto's KMS server. Every check of the AWS side is made with
//! plain SDK calls, not with the operator's code.

mod support;

use kms_operator::api::DeletionPolicy;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kms::types::KeyState;
use kms_operator::api::KmsKeySpec;
use kms_operator::kms::AwsKms;
use kms_operator::reconcile::{self, Released, TAG_UID};
use support::clock::TestClock;
use support::object::{Object, example};
use support::strict::StrictConfig;
use support::strict_env::StrictEnv;

struct Aws {
    client: aws_sdk_kms::Client,
}

impl Aws {
    async fn tags(&self, key_id: &str) -> BTreeMap<String, String> {
        let out = self.client.list_resource_tags().key_id(key_id).send().await.unwrap();
        out.tags().iter().map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned())).collect()
    }

    async fn describe(&self, key_id: &str) -> aws_sdk_kms::types::KeyMetadata {
        let out = self.client.describe_key().key_id(key_id).send().await.unwrap();
        out.key_metadata().unwrap().clone()
    }

    async fn rotation(&self, key_id: &str) -> bool {
        let out = self.client.get_key_rotation_status().key_id(key_id).send().await.unwrap();
        out.key_rotation_enabled()
    }

    async fn alias_target(&self, alias: &str) -> Option<String> {
        let out = self.client.list_aliases().send().await.unwrap();
        out.aliases()
            .iter()
            .find(|a| a.alias_name() == Some(alias))
            .and_then(|a| a.target_key_id().map(str::to_owned))
    }

    async fn policy(&self, key_id: &str) -> serde_json::Value {
        let out = self.client.get_key_policy().key_id(key_id).policy_name("default").send().await.unwrap();
        serde_json::from_str(out.policy().unwrap()).unwrap()
    }

    async fn grants(&self, key_id: &str) -> Vec<aws_sdk_kms::types::GrantListEntry> {
        self.client.list_grants().key_id(key_id).send().await.unwrap().grants().to_vec()
    }

    async fn key_ids(&self) -> Vec<String> {
        let out = self.client.list_keys().send().await.unwrap();
        out.keys().iter().filter_map(|k| k.key_id().map(str::to_owned)).collect()
    }

    /// Keys carrying the ownership UID tag `uid`.
    async fn keys_of(&self, uid: &str) -> Vec<String> {
        let mut found = Vec::new();
        for id in self.key_ids().await {
            if self.tags(&id).await.get(TAG_UID).map(String::as_str) == Some(uid) {
                found.push(id);
            }
        }
        found
    }
}

/// moto behind the strict KMS layer (AWS's rules, the shipped IAM policy with its five-minute
/// tag lag, paged lists) as the operator's KMS; `aws` checks moto directly. `clock` is the
/// strict layer's: `Object::converge` moves it on as requeues would.
type Env = StrictEnv;

impl StrictEnv {
    /// moto itself, for checking what the operator did without going through the proxy.
    fn aws(&self) -> Aws {
        Aws { client: self.moto.client() }
    }
}

fn outcome_reason(outcome: &reconcile::Outcome) -> &'static str {
    outcome.reason()
}

/// Releases the object's key as the controller's finalizer would: a wait, or a refusal while
/// IAM catches up with a new key, is retried after time passes.
async fn release(obj: &Object, kms: &AwsKms, clock: &TestClock) -> Released {
    for _ in 0..60 {
        match obj.release_at(kms, clock.now_timestamp(), DeletionPolicy::Delete).await {
            Ok(Released::Wait(wait)) => clock.advance(wait),
            Ok(released) => return released,
            Err(err) if err.is_permission_refusal() => clock.advance(Duration::from_secs(10)),
            Err(err) => panic!("cleanup failed: {err}"),
        }
    }
    panic!("the key of {} was never released", obj.owner.name);
}

/// Every change the reports name, in order.
fn changes(reports: &[reconcile::Report]) -> Vec<String> {
    reports.iter().flat_map(|r| r.changes.clone()).collect()
}

async fn setup() -> Env {
    setup_with(StrictConfig::default()).await
}

async fn setup_with(strict: StrictConfig) -> Env {
    StrictEnv::start(strict).await
}

#[tokio::test]
async fn the_basic_example_becomes_a_rotating_key_with_its_alias_and_tags() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(kms, clock).await;

    assert!(obj.is_ready(), "{:?}", obj.status());
    let key_id = obj.key_id();
    let status = obj.status();
    assert_eq!(status.alias_name.as_deref(), Some("alias/basic-key"));
    assert!(status.key_arn.as_deref().unwrap().ends_with(&key_id));
    assert_eq!(status.key_state.as_deref(), Some("Enabled"));
    assert_eq!(aws.alias_target("alias/basic-key").await, Some(key_id.clone()));
    assert!(aws.rotation(&key_id).await);
    let meta = aws.describe(&key_id).await;
    assert_eq!(meta.description(), Some("Basic KMS key with rotation"));
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    let tags = aws.tags(&key_id).await;
    assert_eq!(tags.get("Environment").map(String::as_str), Some("dev"));
    assert_eq!(tags.get(TAG_UID).map(String::as_str), Some("uid-basic-key"));
    assert_eq!(aws.key_ids().await, vec![key_id]);
}

#[tokio::test]
async fn the_advanced_example_is_multi_region_with_its_grant_and_deletes_with_a_7_day_window() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let obj = Object::new("advanced-key", example("advanced.yaml").spec);
    obj.converge(kms, clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let key_id = obj.key_id();
    assert!(key_id.starts_with("mrk-"), "{key_id}");
    assert_eq!(aws.describe(&key_id).await.multi_region(), Some(true));
    assert_eq!(obj.status().multi_region, Some(true));

    let grants = aws.grants(&key_id).await;
    assert_eq!(grants.len(), 1);
    let grant = &grants[0];
    assert_eq!(grant.grantee_principal(), Some("arn:aws:iam::123456789012:role/app-server"));
    let mut ops: Vec<&str> = grant.operations().iter().map(|o| o.as_str()).collect();
    ops.sort();
    assert_eq!(ops, vec!["Decrypt", "Encrypt"]);
    let context = grant.constraints().unwrap().encryption_context_equals().unwrap();
    assert_eq!(context.get("App").map(String::as_str), Some("Finance"));
    assert_eq!(obj.status().grant_ids.get("app-server").map(String::as_str), grant.grant_id());

    let released = obj.release_at(kms, clock.now_timestamp(), DeletionPolicy::Delete).await.unwrap();
    assert!(matches!(released, Released::Done { ref changes } if !changes.is_empty()), "{released:?}");
    let meta = aws.describe(&key_id).await;
    assert_eq!(meta.key_state(), Some(&KeyState::PendingDeletion));
    let when = meta.deletion_date().unwrap().secs();
    // moto dates the deletion by its own (real) clock, not the test's advanced one.
    let expected = k8s_openapi::jiff::Timestamp::now().as_second() + 7 * 86_400;
    assert!((when - expected).abs() < 120, "deletion at {when}, expected about {expected}");
    assert_eq!(aws.alias_target("alias/advanced-key").await, None);

    // Deleting again (the finalizer runs twice) releases without touching the key.
    let again = obj.release_at(kms, clock.now_timestamp(), DeletionPolicy::Delete).await.unwrap();
    assert_eq!(again, Released::Done { changes: vec![] });
}

#[tokio::test]
async fn every_spec_field_change_reaches_aws() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let mut obj = Object::new("orders", example("basic.yaml").spec);
    obj.converge(kms, clock).await;
    let key_id = obj.key_id();

    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"},{"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":["kms:Decrypt"],"Resource":"*"}]}"#;
    obj.spec = KmsKeySpec {
        key_description: "changed".into(),
        enable_key_rotation: false,
        is_enabled: false,
        key_policy: Some(policy.into()),
        tags: BTreeMap::from([("Environment".into(), "prod".into()), ("Owner".into(), "sec".into())]),
        alias_name: "orders-renamed".into(),
        create_grants: true,
        grants: example("advanced.yaml").spec.grants,
        ..obj.spec.clone()
    };
    obj.generation = 2;
    let report = obj.converge(kms, clock).await;
    assert!(obj.is_ready(), "{:?} {:?}", obj.status(), report);

    let meta = aws.describe(&key_id).await;
    assert_eq!(meta.description(), Some("changed"));
    assert_eq!(meta.key_state(), Some(&KeyState::Disabled));
    assert!(!aws.rotation(&key_id).await);
    assert_eq!(aws.policy(&key_id).await, serde_json::from_str::<serde_json::Value>(policy).unwrap());
    let tags = aws.tags(&key_id).await;
    assert_eq!(tags.get("Environment").map(String::as_str), Some("prod"));
    assert_eq!(tags.get("Owner").map(String::as_str), Some("sec"));
    assert!(!tags.contains_key("Example"), "tags gone from the spec are removed: {tags:?}");
    assert_eq!(aws.alias_target("alias/orders-renamed").await, Some(key_id.clone()));
    assert_eq!(aws.alias_target("alias/basic-key").await, None, "the old alias is deleted");
    assert_eq!(obj.status().alias_name.as_deref(), Some("alias/orders-renamed"));
    assert_eq!(aws.grants(&key_id).await.len(), 1, "grants are created before the key is disabled");
    assert_eq!(obj.status().observed_generation, Some(2));

    // Change the grant, then drop it; grants made by others stay.
    let service_grant = (aws.client.create_grant())
        .key_id(&key_id)
        .name("made-by-a-service")
        .grantee_principal("arn:aws:iam::123456789012:role/other")
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    obj.spec.is_enabled = true;
    obj.spec.grants[0].operations.retain(|o| o.as_str() == "Decrypt");
    obj.converge(kms, clock).await;
    let grants = aws.grants(&key_id).await;
    let ours: Vec<_> = grants.iter().filter(|g| g.name() == Some("kms-operator/app-server")).collect();
    assert_eq!(ours.len(), 1);
    let ops: Vec<&str> = ours[0].operations().iter().map(|o| o.as_str()).collect();
    assert_eq!(ops, vec!["Decrypt"]);

    obj.spec.grants.clear();
    obj.converge(kms, clock).await;
    let grants = aws.grants(&key_id).await;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].grant_id(), service_grant.grant_id());
    assert!(obj.status().grant_ids.is_empty());
    assert_eq!(aws.describe(&key_id).await.key_state(), Some(&KeyState::Enabled));
}

#[tokio::test]
async fn drift_made_outside_the_operator_is_put_back() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(kms, clock).await;
    let key_id = obj.key_id();
    let c = &aws.client;
    c.update_key_description().key_id(&key_id).description("hand edit").send().await.unwrap();
    let tag = aws_sdk_kms::types::Tag::builder().tag_key("extra").tag_value("x").build().unwrap();
    c.tag_resource().key_id(&key_id).tags(tag).send().await.unwrap();
    c.disable_key_rotation().key_id(&key_id).send().await.unwrap();
    // A hand edit that keeps the account's access (AWS's lockout check refuses one that does not).
    let drifted = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"},{"Sid":"Extra","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/intruder"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
    c.put_key_policy().key_id(&key_id).policy_name("default").policy(drifted).send().await.unwrap();
    c.disable_key().key_id(&key_id).send().await.unwrap();
    c.schedule_key_deletion().key_id(&key_id).pending_window_in_days(7).send().await.unwrap();

    let report = obj.converge(kms, clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert!(changes(&report).iter().any(|c| c.contains("cancelled a deletion")), "{:?}", changes(&report));
    let meta = aws.describe(&key_id).await;
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert_eq!(meta.description(), Some("Basic KMS key with rotation"));
    assert!(aws.rotation(&key_id).await);
    assert!(!aws.tags(&key_id).await.contains_key("extra"));
    let policy = aws.policy(&key_id).await;
    assert_eq!(policy["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
    assert_eq!(policy["Statement"].as_array().unwrap().len(), 1, "the intruder's statement is gone");
}

#[tokio::test]
async fn a_policy_aws_reformatted_is_not_put_again() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let mut spec = example("basic.yaml").spec;
    spec.key_policy = Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["kms:*"],"Resource":"*"}]}"#.into());
    let obj = Object::new("basic-key", spec);
    obj.converge(kms, clock).await;
    let key_id = obj.key_id();
    // Store the same policy the way AWS would reformat it.
    let reformatted = "{\n  \"Statement\" : [ {\n    \"Resource\" : \"*\",\n    \"Action\" : \"kms:*\",\n    \"Principal\" : { \"AWS\" : \"arn:aws:iam::123456789012:root\" },\n    \"Effect\" : \"Allow\"\n  } ],\n  \"Version\" : \"2012-10-17\"\n}";
    let c = &aws.client;
    c.put_key_policy().key_id(&key_id).policy_name("default").policy(reformatted).send().await.unwrap();
    let report = obj.converge(kms, clock).await;
    assert!(changes(&report).is_empty(), "{:?}", changes(&report));
    assert!(obj.is_ready());
}

#[tokio::test]
async fn an_alias_held_by_an_unmanaged_key_stalls_without_creating_a_key() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let other = aws.client.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_owned();
    aws.client.create_alias().alias_name("alias/basic-key").target_key_id(&other).send().await.unwrap();

    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(kms, clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("AliasConflict"));
    assert!(obj.condition("Stalled").message.contains(&other), "the message names the other key");
    assert_eq!(aws.key_ids().await, vec![other.clone()], "no key was created");
    assert_eq!(aws.alias_target("alias/basic-key").await, Some(other));
}

#[tokio::test]
async fn two_objects_asking_for_one_alias_the_first_keeps_it_and_the_second_converges_later() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let first = Object::new("first", example("basic.yaml").spec);
    first.converge(kms, clock).await;
    let mut second_spec = example("basic.yaml").spec;
    second_spec.alias_name = "second".into();
    let mut second = Object::new("second", second_spec);
    second.converge(kms, clock).await;
    assert!(second.is_ready());

    second.spec.alias_name = "basic-key".into();
    second.converge(kms, clock).await;
    assert_eq!(second.stalled_reason().as_deref(), Some("AliasConflict"));
    assert_eq!(aws.alias_target("alias/basic-key").await, Some(first.key_id()));
    assert_eq!(
        aws.alias_target("alias/second").await,
        Some(second.key_id()),
        "its old alias stays until the rename can happen"
    );

    first.release_at(kms, clock.now_timestamp(), DeletionPolicy::Delete).await.unwrap();
    second.converge(kms, clock).await;
    assert!(second.is_ready(), "{:?}", second.status());
    assert_eq!(aws.alias_target("alias/basic-key").await, Some(second.key_id()));
    assert_eq!(aws.alias_target("alias/second").await, None);
}

#[tokio::test]
async fn a_policy_that_is_not_json_stalls_and_nothing_reaches_aws() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let mut spec = example("basic.yaml").spec;
    spec.key_policy = Some("{\"Statement\": [".into());
    let obj = Object::new("basic-key", spec);
    obj.converge(kms, clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("InvalidSpec"));
    assert!(obj.condition("Stalled").message.starts_with("spec.keyPolicy"));
    assert!(aws.key_ids().await.is_empty());
}

#[tokio::test]
async fn a_crash_after_create_key_adopts_the_key_instead_of_creating_another() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    *obj.fail_key_write.lock().unwrap() = true;
    let crashed = obj.reconcile_at(kms, clock.now_timestamp()).await;
    assert!(crashed.is_err(), "the injected status failure stops the reconcile");
    assert!(obj.status().key_id.is_none());
    assert!(obj.status().create_intent.is_some(), "the intent was recorded before CreateKey");
    assert_eq!(aws.keys_of("uid-basic-key").await.len(), 1);

    *obj.fail_key_write.lock().unwrap() = false;
    let report = obj.converge(kms, clock).await;
    assert!(changes(&report).iter().any(|c| c.starts_with("adopted key")), "{:?}", changes(&report));
    assert!(obj.is_ready(), "{:?}", obj.status());
    let keys = aws.keys_of("uid-basic-key").await;
    assert_eq!(keys, vec![obj.key_id()], "exactly one key, the adopted one");
    assert!(obj.status().create_intent.is_none());
}

#[tokio::test]
async fn deleting_during_an_interrupted_create_schedules_the_key_it_made() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    *obj.fail_key_write.lock().unwrap() = true;
    assert!(obj.reconcile_at(kms, clock.now_timestamp()).await.is_err());
    let keys = aws.keys_of("uid-basic-key").await;
    assert_eq!(keys.len(), 1);

    // KMS's listings do not show the new key yet, and IAM does not see its tags: the finalizer
    // waits rather than let go.
    let released = release(&obj, kms, clock).await;
    assert!(matches!(released, Released::Done { .. }), "{released:?}");
    assert_eq!(aws.describe(&keys[0]).await.key_state(), Some(&KeyState::PendingDeletion));
}

#[tokio::test]
async fn deleting_just_after_a_create_attempt_that_left_no_key_waits_before_releasing() {
    let env = setup().await;
    let (kms, clock) = (&env.kms, &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    let started = clock.now_timestamp();
    obj.status.lock().unwrap().create_intent = Some(kms_operator::api::CreateIntent {
        token: "lost".into(),
        started_at: started.to_string(),
        adopting: None,
        region: None,
        account_id: None,
    });
    let early = started + Duration::from_secs(5);
    let released = obj.release_at(kms, early, DeletionPolicy::Delete).await.unwrap();
    assert_eq!(released, Released::Wait(Duration::from_secs(25)));
    let late = started + Duration::from_secs(31);
    let released = obj.release_at(kms, late, DeletionPolicy::Delete).await.unwrap();
    assert_eq!(released, Released::Done { changes: vec![] });
}

#[tokio::test]
async fn a_crash_before_create_key_waits_out_the_settle_time_then_creates_once() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    let started = clock.now_timestamp();
    obj.status.lock().unwrap().create_intent = Some(kms_operator::api::CreateIntent {
        token: "lost".into(),
        started_at: started.to_string(),
        adopting: None,
        region: None,
        account_id: None,
    });
    obj.reconcile_at(kms, started + Duration::from_secs(5)).await.unwrap();
    assert_eq!(obj.condition("Reconciling").reason, "CreateInFlight");
    assert!(aws.key_ids().await.is_empty());

    obj.converge(kms, clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert_eq!(aws.keys_of("uid-basic-key").await.len(), 1);
}

#[tokio::test]
async fn a_new_key_that_kms_does_not_describe_yet_is_waited_for_not_reported_missing() {
    let env =
        setup_with(StrictConfig { describe_lag: Duration::from_secs(20), ..StrictConfig::default() }).await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    let reports = obj.converge(kms, clock).await;
    let reasons: Vec<&str> = reports.iter().map(|r| outcome_reason(&r.outcome)).collect();
    assert!(reasons.contains(&"Converging"), "{reasons:?}");
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert_eq!(aws.keys_of("uid-basic-key").await, vec![obj.key_id()]);
}

#[tokio::test]
async fn an_alias_that_already_points_at_the_key_is_not_a_conflict() {
    // A lagging alias read (or an SDK retry of a CreateAlias that succeeded) must not stall.
    let env = setup().await;
    let (kms, clock) = (&env.kms, &env.clock);
    let lagging = support::flaky::Lagging::new(kms.clone());
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(&lagging, clock).await;
    lagging.hidden_aliases.store(1, std::sync::atomic::Ordering::SeqCst);
    obj.converge(&lagging, clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
}

#[tokio::test]
async fn a_policy_kms_keeps_reporting_differently_is_put_once_per_reconcile_not_in_a_loop() {
    let env = setup().await;
    let (kms, clock) = (&env.kms, &env.clock);
    let lagging = support::flaky::Lagging::new(kms.clone());
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(&lagging, clock).await;
    *lagging.stale_policy.lock().unwrap() = Some(r#"{"Statement":[]}"#.into());
    lagging.policy_puts.store(0, std::sync::atomic::Ordering::SeqCst);
    obj.reconcile_at(&lagging, clock.now_timestamp()).await.unwrap();
    assert_eq!(lagging.policy_puts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(obj.condition("Reconciling").reason, "Converging");
}

#[tokio::test]
async fn a_recorded_key_that_vanished_is_reported_and_not_recreated() {
    // No tag lag here: the key must be Ready moments after its creation.
    let env = setup_with(StrictConfig { tag_lag: Duration::ZERO, ..StrictConfig::default() }).await;
    let (moto, kms, aws, clock) = (&env.moto, &env.kms, &env.aws(), &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(kms, clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let key_id = obj.key_id();
    moto.reset();
    // Right after creation a missing key may only be lagging; minutes later it is gone.
    obj.reconcile_at(kms, clock.now_timestamp()).await.unwrap();
    assert_eq!(obj.condition("Reconciling").reason, "Converging");
    clock.advance(Duration::from_secs(180));
    obj.reconcile_at(kms, clock.now_timestamp()).await.unwrap();
    assert_eq!(obj.stalled_reason().as_deref(), Some("KeyNotFound"));
    assert!(obj.condition("Stalled").message.contains(&key_id));
    assert!(aws.key_ids().await.is_empty());
    // Deleting the object then lets go: there is nothing left to schedule.
    let released = obj.release_at(kms, clock.now_timestamp(), DeletionPolicy::Delete).await.unwrap();
    assert_eq!(released, Released::Done { changes: vec![] });
}

#[tokio::test]
async fn a_key_tagged_for_another_object_is_never_modified_or_deleted() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let original = Object::new("basic-key", example("basic.yaml").spec);
    original.converge(kms, clock).await;
    let key_id = original.key_id();

    let mut spec = example("basic.yaml").spec;
    spec.key_description = "hijack".into();
    let impostor = Object::with_uid("basic-key", "another-uid", spec);
    impostor.status.lock().unwrap().key_id = Some(key_id.clone());
    impostor.converge(kms, clock).await;
    assert_eq!(impostor.stalled_reason().as_deref(), Some("NotOwned"));
    assert_eq!(aws.describe(&key_id).await.description(), Some("Basic KMS key with rotation"));

    let released = impostor.release_at(kms, clock.now_timestamp(), DeletionPolicy::Delete).await.unwrap();
    assert_eq!(released, Released::NotOwned { key_id: key_id.clone() });
    assert_eq!(aws.describe(&key_id).await.key_state(), Some(&KeyState::Enabled));
}

#[tokio::test]
async fn a_steady_resync_changes_nothing_and_describes_the_key_once() {
    let env = setup().await;
    let (kms, clock) = (&env.kms, &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.converge(kms, clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let before = env.proxy.calls();
    obj.reconcile_at(kms, clock.now_timestamp()).await.unwrap();
    let made = calls_between(&before, &env.proxy.calls());
    assert!(made.keys().all(|op| is_read(op)), "a steady resync writes nothing: {made:?}");
    assert_eq!(made.get("DescribeKey"), Some(&1), "{made:?}");
}

/// Calls made through the proxy between two of its counts, by operation.
fn calls_between(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    (after.iter())
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List"].iter().any(|r| operation.starts_with(r))
}

#[tokio::test]
async fn a_new_key_with_an_alias_and_rotation_takes_at_most_ten_calls() {
    // IAM without its tag lag (that wait is measured elsewhere) and pages as large as AWS's
    // defaults, so that calls count requests, not pages.
    let strict = StrictConfig { tag_lag: Duration::ZERO, page_size: 50, ..StrictConfig::default() };
    let env = setup_with(strict).await;
    let (kms, clock) = (&env.kms, &env.clock);
    let obj = Object::new("basic-key", example("basic.yaml").spec);
    let before = env.proxy.calls();
    let reports = obj.converge(kms, clock).await;
    let made = calls_between(&before, &env.proxy.calls());
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert_eq!(reports.len(), 1, "one reconcile creates and configures the key: {reports:?}");
    let total: u64 = made.values().sum();
    assert!(total <= 8, "{total} calls (the README says 8): {made:?}");
    for op in ["CreateKey", "CreateAlias", "EnableKeyRotation"] {
        assert_eq!(made.get(op), Some(&1), "{made:?}");
    }
    assert_eq!(
        made.get("GetKeyPolicy"),
        None,
        "the new key's policy is the one CreateKey was given: {made:?}"
    );
}

#[tokio::test]
async fn quick_resyncs_read_the_description_and_tags_and_share_one_alias_listing() {
    // Pages as large as AWS's defaults, so that calls count keys, not pages.
    let env = setup_with(StrictConfig { page_size: 50, ..StrictConfig::default() }).await;
    let (kms, clock) = (&env.kms, &env.clock);
    let shared = std::sync::Arc::new(reconcile::AccountAliases::new(Duration::from_secs(300)));
    let objects: Vec<Object> = (0..3)
        .map(|i| {
            let mut spec = example("basic.yaml").spec;
            spec.alias_name = format!("quick-{i}");
            let mut obj = Object::new(&format!("quick-{i}"), spec);
            obj.deep_resync = Some(Duration::from_secs(3600));
            obj.account_aliases = shared.clone();
            obj
        })
        .collect();
    for obj in &objects {
        obj.converge(kms, clock).await;
        assert!(obj.is_ready(), "{:?}", obj.status());
    }
    let status_before: Vec<_> = objects.iter().map(Object::status).collect();
    clock.advance(Duration::from_secs(600));
    let before = env.proxy.calls();
    for obj in &objects {
        let report = obj.reconcile_at(kms, clock.now_timestamp()).await.unwrap();
        assert!(!report.full_read, "{report:?}");
    }
    let made = calls_between(&before, &env.proxy.calls());
    assert!(made.keys().all(|op| is_read(op)), "a quick resync writes nothing: {made:?}");
    assert_eq!(made.get("DescribeKey"), Some(&3), "{made:?}");
    assert_eq!(made.get("ListResourceTags"), Some(&3), "{made:?}");
    assert_eq!(made.get("ListAliases"), Some(&1), "one listing for all three: {made:?}");
    assert_eq!(made.len(), 3, "{made:?}");
    let status_after: Vec<_> = objects.iter().map(Object::status).collect();
    assert_eq!(status_before, status_after, "a quick resync that finds nothing leaves status as it was");

    // Past the deep-resync interval, each key is read in full once.
    clock.advance(Duration::from_secs(3600));
    let before = env.proxy.calls();
    for obj in &objects {
        assert!(obj.reconcile_at(kms, clock.now_timestamp()).await.unwrap().full_read);
    }
    let made = calls_between(&before, &env.proxy.calls());
    for op in ["GetKeyPolicy", "GetKeyRotationStatus"] {
        assert_eq!(made.get(op), Some(&3), "{made:?}");
    }
    assert_eq!(made.get("ListGrants"), None, "keys that manage no grants and record none: {made:?}");
}

#[tokio::test]
async fn a_quick_resync_that_sees_drift_reads_in_full_before_repairing_and_misses_none_at_the_deep_one() {
    let env = setup().await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let mut obj = Object::new("basic-key", example("basic.yaml").spec);
    obj.deep_resync = Some(Duration::from_secs(3600));
    obj.converge(kms, clock).await;
    let key_id = obj.key_id();
    clock.advance(Duration::from_secs(600));

    // Drift the quick look sees (the description): read in full, then repaired.
    aws.client.update_key_description().key_id(&key_id).description("by hand").send().await.unwrap();
    let report = obj.reconcile_at(kms, clock.now_timestamp()).await.unwrap();
    assert!(report.full_read, "{report:?}");
    assert_eq!(aws.describe(&key_id).await.description(), Some("Basic KMS key with rotation"));
    assert!(obj.is_ready(), "{:?}", obj.status());

    // Drift it cannot see (rotation turned off) waits for the deep resync, then is repaired.
    aws.client.disable_key_rotation().key_id(&key_id).send().await.unwrap();
    clock.advance(Duration::from_secs(600));
    let report = obj.reconcile_at(kms, clock.now_timestamp()).await.unwrap();
    assert!(!report.full_read && !aws.rotation(&key_id).await, "{report:?}");
    clock.advance(Duration::from_secs(3600));
    let report = obj.reconcile_at(kms, clock.now_timestamp()).await.unwrap();
    assert!(report.full_read, "{report:?}");
    assert!(aws.rotation(&key_id).await, "the deep resync turned rotation back on");
    assert!(obj.is_ready(), "{:?}", obj.status());
}

#[tokio::test]
async fn a_new_keys_additional_alias_held_elsewhere_stalls_it_after_the_rest_is_set_up() {
    let strict = StrictConfig { tag_lag: Duration::ZERO, ..StrictConfig::default() };
    let env = setup_with(strict).await;
    let (kms, aws, clock) = (&env.kms, &env.aws(), &env.clock);
    let other = aws.client.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_owned();
    aws.client.create_alias().alias_name("alias/taken").target_key_id(&other).send().await.unwrap();
    let mut spec = example("basic.yaml").spec;
    spec.additional_aliases = vec!["taken".to_owned()];
    let obj = Object::new("basic-key", spec);
    obj.converge(kms, clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("AliasConflict"), "{:?}", obj.status());
    let key_id = obj.key_id();
    assert!(aws.rotation(&key_id).await, "rotation was set up all the same");
    assert_eq!(aws.alias_target("alias/basic-key").await.as_deref(), Some(key_id.as_str()));
    assert_eq!(aws.alias_target("alias/taken").await, Some(other), "never taken from its key");
}
