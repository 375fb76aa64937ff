//! The key's own features beyond the Terraform module (key spec and usage, richer grants,
//! on-demand rotation), reconciled against moto through the strict KMS layer with the shipped
//! IAM policy: what AWS would refuse, the layer refuses too.

mod support;

use kms_operator::api::{KeySpec, KeyUsage, KmsKeySpec};
use std::time::Duration;
use support::object::{Object, example};

use aws_sdk_kms::primitives::Blob;
use kms_operator::reconcile::audit;
use support::strict::{IdentityPolicy, StrictConfig};
use support::strict_env::StrictEnv;

async fn setup() -> StrictEnv {
    setup_with(StrictConfig::default()).await
}

async fn setup_with(strict: StrictConfig) -> StrictEnv {
    StrictEnv::start(strict).await
}

#[tokio::test]
async fn a_signing_key_is_made_with_its_spec_and_usage_and_its_rotation_never_read() {
    let env = setup().await;
    let obj = Object::new("signing-key", example("signing-key.yaml").spec);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let status = obj.status();
    assert_eq!(
        (status.key_spec.as_deref(), status.key_usage.as_deref()),
        (Some("ECC_NIST_P256"), Some("SIGN_VERIFY"))
    );
    assert_eq!(status.rotation_period_in_days, None);
    let described = env.moto.client().describe_key().key_id(obj.key_id()).send().await.unwrap();
    let meta = described.key_metadata().unwrap();
    assert_eq!(meta.key_spec().map(|s| s.as_str()), Some("ECC_NIST_P256"));
    assert_eq!(meta.key_usage().map(|u| u.as_str()), Some("SIGN_VERIFY"));
    assert_eq!(status.grant_ids.len(), 1, "the Sign grant");
    let calls = env.proxy.calls();
    assert_eq!(calls.get("GetKeyRotationStatus"), None, "a key AWS does not rotate: {calls:?}");
    assert_eq!(calls.get("EnableKeyRotation"), None, "{calls:?}");
}

#[tokio::test]
async fn post_quantum_and_hmac_keys_are_made_as_asked() {
    let env = setup().await;
    for (name, key_spec, key_usage) in [
        ("ml-dsa", KeySpec::MlDsa65, KeyUsage::SignVerify),
        ("hmac", KeySpec::Hmac512, KeyUsage::GenerateVerifyMac),
    ] {
        let spec = KmsKeySpec {
            alias_name: name.into(),
            key_spec,
            key_usage,
            enable_key_rotation: false,
            ..example("basic.yaml").spec
        };
        let obj = Object::new(name, spec);
        obj.converge(&env.kms, &env.clock).await;
        assert!(obj.is_ready(), "{name}: {:?}", obj.status());
        assert_eq!(obj.status().key_spec.as_deref(), Some(key_spec.as_str()));
    }
}

#[tokio::test]
async fn a_spec_whose_rotation_or_grant_the_key_cannot_take_stalls_before_any_kms_call() {
    let env = setup().await;
    let spec = KmsKeySpec { enable_key_rotation: true, ..example("signing-key.yaml").spec };
    let obj = Object::new("signing-key", spec);
    obj.converge(&env.kms, &env.clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("InvalidSpec"));
    assert!(obj.condition("Stalled").message.starts_with("spec.enableKeyRotation"), "{:?}", obj.status());
    assert_eq!(env.proxy.total_calls(), 0, "{:?}", env.proxy.calls());
}

#[tokio::test]
async fn grants_for_services_with_source_arn_subset_and_retirees_reach_kms_and_stay_put() {
    let env = setup().await;
    let obj = Object::new("payments-key", example("grants-for-services.yaml").spec);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let listed = support::moto::client_for(&env.proxy.url).list_grants().key_id(obj.key_id()).send().await;
    let listed = listed.unwrap();
    let grant = |name: &str| {
        let full = format!("kms-operator/{name}");
        listed.grants().iter().find(|g| g.name() == Some(full.as_str())).cloned().unwrap()
    };
    let logs = grant("payments-logs");
    assert_eq!(logs.grantee_service_principal(), Some("logs.amazonaws.com"));
    assert_eq!(logs.grantee_principal(), None);
    assert_eq!(logs.retiring_service_principal(), Some("logs.amazonaws.com"));
    let source = logs.constraints().and_then(|c| c.source_arn());
    assert_eq!(source, Some("arn:aws:logs:us-east-1:123456789012:log-group:payments"));
    let app = grant("payments-app");
    assert_eq!(app.retiring_principal(), Some("arn:aws:iam::123456789012:role/platform-team"));
    let subset = app.constraints().and_then(|c| c.encryption_context_subset()).unwrap();
    assert_eq!(subset.get("App").map(String::as_str), Some("Payments"));
    assert_eq!(obj.status().grant_ids.len(), 2);

    // A resync finds nothing to change: every term reads back as it was asked for.
    let before = env.proxy.calls();
    let report = obj.reconcile(&env.kms).await;
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    let after = env.proxy.calls();
    assert_eq!(before.get("CreateGrant"), after.get("CreateGrant"));
}

#[tokio::test]
async fn each_rotate_now_value_rotates_once_through_resyncs_and_a_restart() {
    let env = setup().await;
    let manifest = example("rotate-on-demand.yaml");
    let token =
        manifest.metadata.annotations.as_ref().unwrap()[kms_operator::api::ROTATE_NOW_ANNOTATION].clone();
    let obj = Object::new("orders-key", manifest.spec);
    *obj.rotate_now.lock().unwrap() = Some(token.clone());
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let rotations = || env.proxy.calls().get("RotateKeyOnDemand").copied().unwrap_or(0);
    assert_eq!(rotations(), 1);
    let status = obj.status();
    let last = status.last_on_demand_rotation.clone().unwrap();
    assert_eq!((last.token.as_str(), last.rotated_at.is_some()), (token.as_str(), true));
    assert_eq!(status.on_demand_rotations, Some(1));
    assert_eq!(status.rotations.as_ref().map(|r| r[0].type_.as_str()), Some("ON_DEMAND"));

    // Resyncs never rotate again; nor does a restart that lost the final status write.
    obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.unwrap();
    {
        // The status as the request left it: the final write, with the rotation, was lost.
        let mut status = obj.status.lock().unwrap();
        status.last_on_demand_rotation.as_mut().unwrap().rotated_at = None;
        (status.rotate_now_values, status.on_demand_rotations, status.rotations) =
            (vec![], Some(0), Some(vec![]));
    }
    obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.unwrap();
    assert_eq!(rotations(), 1, "{:?}", env.proxy.calls());
    assert!(obj.status().last_on_demand_rotation.unwrap().rotated_at.is_some(), "confirmed from the history");

    // A new value rotates once more.
    *obj.rotate_now.lock().unwrap() = Some("again".into());
    obj.converge(&env.kms, &env.clock).await;
    assert_eq!(rotations(), 2);
    assert_eq!(obj.status().on_demand_rotations, Some(2));
    assert_eq!(obj.status().rotations.unwrap().len(), 2);
}

#[tokio::test]
async fn a_request_that_never_reached_kms_is_sent_after_a_restart() {
    let env = setup().await;
    let obj = Object::new("orders-key", example("rotate-on-demand.yaml").spec);
    obj.converge(&env.kms, &env.clock).await;
    // The operator wrote the request, then stopped before RotateKeyOnDemand.
    obj.status.lock().unwrap().last_on_demand_rotation = Some(kms_operator::api::OnDemandRotation {
        token: "r1".into(),
        requested_at: env.clock.now_timestamp().to_string(),
        rotations_before: 0,
        rotated_at: None,
    });
    *obj.rotate_now.lock().unwrap() = Some("r1".into());
    env.clock.advance(std::time::Duration::from_secs(600));
    obj.converge(&env.kms, &env.clock).await;
    assert_eq!(env.proxy.calls().get("RotateKeyOnDemand"), Some(&1));
    assert!(obj.status().last_on_demand_rotation.unwrap().rotated_at.is_some());
}

#[tokio::test]
async fn rotate_now_on_a_signing_key_stalls_naming_the_annotation() {
    let env = setup().await;
    let obj = Object::new("signing-key", example("signing-key.yaml").spec);
    *obj.rotate_now.lock().unwrap() = Some("r1".into());
    obj.converge(&env.kms, &env.clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("CannotRotate"), "{:?}", obj.status());
    assert!(obj.condition("Stalled").message.contains("kms.boosterpack.io/rotate-now"));
    assert_eq!(env.proxy.calls().get("RotateKeyOnDemand"), None);
}

#[tokio::test]
async fn a_built_policy_reaches_kms_with_aws_default_kept_and_shows_in_status() {
    let env = setup().await;
    let obj = Object::new("shared-data-key", example("policy-builder.yaml").spec);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let got = env.moto.client().get_key_policy().key_id(obj.key_id()).policy_name("default").send().await;
    let policy: serde_json::Value = serde_json::from_str(got.unwrap().policy().unwrap()).unwrap();
    let sids: Vec<&str> =
        policy["Statement"].as_array().unwrap().iter().map(|s| s["Sid"].as_str().unwrap()).collect();
    let want = [
        "Enable IAM User Permissions",
        "KeyAdministration",
        "KeyUsage",
        "KeyServiceUsage",
        "DenyDecryptOutsideTheVpc",
    ];
    assert_eq!(sids, want);
    let generated = obj.status().generated_policy.unwrap();
    assert_eq!(generated.statements, want);
    // The account came from an alias ARN, so the whole policy, Deny included, came with CreateKey.
    assert_eq!(env.proxy.calls().get("PutKeyPolicy"), None, "{:?}", env.proxy.calls());
    obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.unwrap();
    assert_eq!(env.proxy.calls().get("PutKeyPolicy"), None, "no policy-diff loop");
}

#[tokio::test]
async fn a_built_policy_without_aws_default_is_made_with_the_key_and_must_keep_the_operator_in() {
    let env = setup().await;
    let mut spec = example("policy-builder.yaml").spec;
    let builder = spec.policy.as_mut().unwrap();
    builder.enable_default_policy = false;
    // Without the operator among the administrators AWS refuses the policy as a lockout, and
    // no key is made.
    let locked_out = Object::new("locked-out", spec.clone());
    locked_out.converge(&env.kms, &env.clock).await;
    assert_eq!(locked_out.stalled_reason().as_deref(), Some("AwsRejected"), "{:?}", locked_out.status());
    assert!(locked_out.condition("Stalled").message.contains("update the key policy"));
    assert!(locked_out.status().key_id.is_none());

    spec.policy
        .as_mut()
        .unwrap()
        .key_administrators
        .push(support::strict::MOTO_CALLER.replace(":sts::", ":iam::"));
    let obj = Object::new("shared-data-key", spec);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert_eq!(env.proxy.calls().get("PutKeyPolicy"), None, "the built policy came with CreateKey");
}

#[tokio::test]
async fn additional_aliases_are_made_deleted_when_dropped_and_never_taken_from_another_key() {
    let env = setup().await;
    let spec = example("additional-aliases.yaml").spec;
    let mut obj = Object::new("billing-key", spec.clone());
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let target = |alias: &str| {
        let kms = env.moto.client();
        let alias = alias.to_owned();
        async move {
            kms.describe_key()
                .key_id(alias)
                .send()
                .await
                .ok()
                .and_then(|d| d.key_metadata().map(|m| m.key_id().to_owned()))
        }
    };
    for alias in ["alias/billing", "alias/billing-legacy", "alias/finance/billing"] {
        assert_eq!(target(alias).await, Some(obj.key_id()), "{alias}");
    }
    assert_eq!(obj.status().additional_aliases, ["alias/billing-legacy", "alias/finance/billing"]);

    // Dropping one deletes it; a second object wanting the other one stalls without moving it.
    obj.spec = KmsKeySpec { additional_aliases: vec!["finance/billing".into()], ..spec };
    obj.converge(&env.kms, &env.clock).await;
    assert_eq!(target("alias/billing-legacy").await, None);
    assert_eq!(obj.status().additional_aliases, ["alias/finance/billing"]);
    let other_spec = KmsKeySpec {
        alias_name: "other".into(),
        additional_aliases: vec!["finance/billing".into()],
        ..example("basic.yaml").spec
    };
    let other = Object::new("other", other_spec);
    other.converge(&env.kms, &env.clock).await;
    assert_eq!(other.stalled_reason().as_deref(), Some("AliasConflict"), "{:?}", other.status());
    assert_eq!(target("alias/finance/billing").await, Some(obj.key_id()), "never moved");
}

#[tokio::test]
async fn the_last_use_is_read_once_per_resync_and_an_unused_key_is_found() {
    // The shipped IAM policy, plus what an application needs to use the key.
    let text = std::fs::read_to_string(support::strict::shipped_policy_path()).unwrap();
    let mut policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    let app = serde_json::json!({"Sid": "AppUsesKeys", "Effect": "Allow", "Action": ["kms:Encrypt"], "Resource": "*"});
    policy["Statement"].as_array_mut().unwrap().push(app);
    let strict =
        StrictConfig { identity_policy: IdentityPolicy::Json(policy.to_string()), ..StrictConfig::default() };
    let env = setup_with(strict).await;
    let resync = Duration::from_secs(600);
    let mut obj =
        Object::new("basic-key", KmsKeySpec { unused_days: Some(30), ..example("basic.yaml").spec });
    obj.last_usage_every = Some(resync);
    obj.converge(&env.kms, &env.clock).await;
    let usage = obj.status().last_usage.expect("read with the first reconcile");
    assert_eq!((usage.operation, usage.at), (None, None), "never used");
    let reads = || env.proxy.calls().get("GetKeyLastUsage").copied().unwrap_or(0);
    let after_create = reads();
    obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.unwrap();
    assert_eq!(reads(), after_create, "not again before the next resync");

    // 31 days later, never used: the resync finds it unused.
    env.clock.advance(Duration::from_secs(31 * 86_400));
    let report = obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.unwrap();
    let Some(Ok(seen)) = report.last_usage else { panic!("{:?}", report.last_usage) };
    let warning = audit::unused_warning(Some(30), &seen, env.clock.now_timestamp()).expect("unused");
    assert!(warning.contains("never been used in the 31 days"), "{warning}");

    // An application encrypts; the next resync shows it, and the key is no longer unused.
    let app = support::moto::client_for(&env.proxy.url);
    app.encrypt().key_id(obj.key_id()).plaintext(Blob::new("x")).send().await.unwrap();
    env.clock.advance(resync);
    let report = obj.reconcile_at(&env.kms, env.clock.now_timestamp()).await.unwrap();
    let Some(Ok(seen)) = report.last_usage else { panic!("{:?}", report.last_usage) };
    assert_eq!(seen.operation.as_deref(), Some("Encrypt"));
    assert_eq!(audit::unused_warning(Some(30), &seen, env.clock.now_timestamp()), None);
    assert_eq!(obj.status().last_usage.unwrap().operation.as_deref(), Some("Encrypt"));
}

/// A multi-Region key replicated to eu-west-1 and ap-south-1, through the strict layer.
fn replicated(regions: &[&str]) -> KmsKeySpec {
    KmsKeySpec {
        multi_region: true,
        replica_regions: regions.iter().map(|r| r.to_string()).collect(),
        ..example("grants-for-services.yaml").spec
    }
}

/// What moto holds for the key in `region`: its description, type, tags, aliases and grants.
async fn in_region(
    env: &StrictEnv,
    region: &str,
    key_id: &str,
) -> (String, String, Vec<String>, Vec<String>, usize) {
    let kms = support::moto::client_in(&env.moto.url, region);
    let meta = kms.describe_key().key_id(key_id).send().await.unwrap().key_metadata.unwrap();
    let kind = meta
        .multi_region_configuration()
        .and_then(|c| c.multi_region_key_type())
        .unwrap()
        .as_str()
        .to_owned();
    let tags = kms.list_resource_tags().key_id(key_id).send().await.unwrap();
    let tags = tags.tags().iter().map(|t| format!("{}={}", t.tag_key(), t.tag_value())).collect();
    let aliases = kms.list_aliases().key_id(key_id).send().await.unwrap();
    let aliases = aliases.aliases().iter().filter_map(|a| a.alias_name().map(str::to_owned)).collect();
    let grants = kms.list_grants().key_id(key_id).send().await.unwrap().grants().len();
    (meta.description().unwrap_or_default().to_owned(), kind, tags, aliases, grants)
}

#[tokio::test]
async fn each_replica_is_made_once_with_its_own_aliases_tags_and_grants_and_drift_there_is_put_back() {
    let env = setup().await;
    let mut obj = Object::new("replicated", replicated(&["eu-west-1", "ap-south-1"]));
    obj.regions = env.regions();
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let key_id = obj.key_id();
    let status = obj.status();
    let regions: Vec<(&str, bool)> = status.replicas.iter().map(|r| (r.region.as_str(), r.ready)).collect();
    assert_eq!(regions, [("eu-west-1", true), ("ap-south-1", true)]);
    assert_eq!(
        status.replicas[0].key_arn.as_deref(),
        Some(format!("arn:aws:kms:eu-west-1:123456789012:key/{key_id}").as_str())
    );
    let spec = &obj.spec;
    let grants = spec.grants.len();
    for region in ["eu-west-1", "ap-south-1"] {
        let (description, kind, tags, aliases, made) = in_region(&env, region, &key_id).await;
        assert_eq!(
            (description.as_str(), kind.as_str()),
            (spec.key_description.as_str(), "REPLICA"),
            "{region}"
        );
        assert!(tags.contains(&format!("kms.boosterpack.io/uid={}", obj.owner.uid)), "{region}: {tags:?}");
        assert_eq!(aliases, [format!("alias/{}", spec.alias_name)], "{region}");
        assert_eq!(made, grants, "{region}: the spec's grants, made on the replica itself");
    }
    let (_, kind, _, _, made) = in_region(&env, "us-east-1", &key_id).await;
    assert_eq!((kind.as_str(), made), ("PRIMARY", grants), "the primary keeps only its own grants");
    let calls = env.proxy.calls();
    assert_eq!(calls.get("ReplicateKey"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("EnableKeyRotation"), Some(&1), "rotation is set on the primary only: {calls:?}");

    // Drift in one Region is put back there, and a resync makes no replica twice.
    let eu = support::moto::client_in(&env.moto.url, "eu-west-1");
    eu.update_key_description().key_id(&key_id).description("by hand").send().await.unwrap();
    eu.delete_alias().alias_name(format!("alias/{}", spec.alias_name)).send().await.unwrap();
    env.clock.advance(Duration::from_secs(600));
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let (description, _, _, aliases, _) = in_region(&env, "eu-west-1", &key_id).await;
    assert_eq!((description.as_str(), aliases.len()), (spec.key_description.as_str(), 1));
    assert_eq!(env.proxy.calls().get("ReplicateKey"), Some(&2));
}

#[tokio::test]
async fn a_region_taken_off_the_list_and_then_the_object_release_replicas_before_the_primary() {
    let env = setup().await;
    let mut obj = Object::new("shrinking", replicated(&["eu-west-1", "ap-south-1"]));
    obj.regions = env.regions();
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let key_id = obj.key_id();
    let state = |region: &'static str| {
        let kms = support::moto::client_in(&env.moto.url, region);
        let key_id = key_id.clone();
        async move {
            let meta = kms.describe_key().key_id(key_id).send().await.unwrap().key_metadata.unwrap();
            meta.key_state().unwrap().as_str().to_owned()
        }
    };
    let obj = obj.edited(replicated(&["eu-west-1"]));
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert_eq!(state("ap-south-1").await, "PendingDeletion");
    let (_, _, _, aliases, _) = in_region(&env, "ap-south-1", &key_id).await;
    assert!(aliases.is_empty(), "its alias there is dropped: {aliases:?}");
    assert_eq!(state("eu-west-1").await, "Enabled");
    let regions: Vec<String> = obj.status().replicas.iter().map(|r| r.region.clone()).collect();
    assert_eq!(regions, ["eu-west-1"], "a released Region leaves status");

    // Put back on the list: the deletion is cancelled, not a second replica made.
    let obj = obj.edited(replicated(&["eu-west-1", "ap-south-1"]));
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    assert_eq!(state("ap-south-1").await, "Enabled");
    assert_eq!(env.proxy.calls().get("ReplicateKey"), Some(&2));

    let released =
        obj.release_at(&env.kms, env.clock.now_timestamp(), kms_operator::api::DeletionPolicy::Delete);
    let kms_operator::reconcile::Released::Done { changes } = released.await.unwrap() else { panic!() };
    assert_eq!(changes.iter().filter(|c| c.contains("scheduled")).count(), 3, "{changes:?}");
    assert!(changes[0].starts_with("replica in eu-west-1"), "replicas first: {changes:?}");
    assert_eq!(state("eu-west-1").await, "PendingDeletion");
    assert_eq!(state("ap-south-1").await, "PendingDeletion");
    assert_eq!(state("us-east-1").await, "PendingReplicaDeletion", "AWS holds the primary for its replicas");
}

#[tokio::test]
async fn a_replicate_key_whose_answer_was_lost_leaves_one_replica_found_by_the_next_reconcile() {
    let env = setup().await;
    let mut obj = Object::new("lost-answer", replicated(&["eu-west-1"]));
    obj.regions = env.regions();
    env.proxy.script("ReplicateKey", &[support::fault_proxy::Fault::DropResponse]);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let calls = env.proxy.calls();
    assert!(calls.get("ReplicateKey").is_some_and(|n| *n >= 1), "{calls:?}");
    let eu = support::moto::client_in(&env.moto.url, "eu-west-1");
    let keys = eu.list_keys().send().await.unwrap();
    assert_eq!(keys.keys().len(), 1, "one replica in eu-west-1: {:?}", keys.keys());
    assert!(obj.status().replicas[0].ready, "{:?}", obj.status().replicas);
}
