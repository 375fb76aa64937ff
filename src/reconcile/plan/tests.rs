use std::collections::BTreeMap;

use super::*;
use crate::api::{
    DeletionPolicy, GrantOperation, GrantSpec, KeySpec, KeyUsage, KmsKeySpec, ManagementPolicy,
};
use crate::kms::{GrantInfo, GrantTerms, Rotation};
use crate::reconcile::ownership::TAG_CREATE_TOKEN;
use crate::reconcile::ownership::tests::mk_owner;
use crate::reconcile::policy::default_policy;
use grants::GRANT_PREFIX;

pub fn mk_spec() -> KmsKeySpec {
    KmsKeySpec {
        alias_name: "orders".into(),
        additional_aliases: Vec::new(),
        key_description: "Orders key".into(),
        deletion_window_in_days: 30,
        key_spec: KeySpec::SymmetricDefault,
        key_usage: KeyUsage::EncryptDecrypt,
        enable_key_rotation: true,
        rotation_period_in_days: None,
        unused_days: None,
        is_enabled: true,
        region: None,
        multi_region: false,
        replica_regions: vec![],
        key_policy: None,
        policy: None,
        tags: BTreeMap::from([("team".into(), "a".into())]),
        create_grants: false,
        grants: Vec::new(),
        adopt: None,
        deletion_policy: None,
        retain_grants: true,
        management_policy: ManagementPolicy::Full,
        export_to: None,
    }
}

pub(crate) fn mk_grant_spec() -> GrantSpec {
    GrantSpec {
        name: "app".into(),
        grantee_principal: Some("arn:aws:iam::123456789012:role/app-server".into()),
        grantee_service_principal: None,
        operations: vec![GrantOperation::Encrypt, GrantOperation::Decrypt],
        encryption_context_equals: BTreeMap::from([("App".into(), "Finance".into())]),
        encryption_context_subset: BTreeMap::new(),
        source_arn: None,
        retiring_principal: None,
        retiring_service_principal: None,
    }
}

fn mk_grant_info(id: &str, name: &str, ops: &[&str]) -> GrantInfo {
    let terms = GrantTerms {
        grantee_principal: Some("arn:aws:iam::123456789012:role/app-server".into()),
        operations: ops.iter().map(|o| o.to_string()).collect(),
        encryption_context_equals: BTreeMap::from([("App".into(), "Finance".into())]),
        ..GrantTerms::default()
    };
    GrantInfo { grant_id: id.into(), name: Some(name.into()), terms }
}

const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/k1";

/// A key that already matches `mk_spec()` exactly.
pub(crate) fn mk_key() -> ObservedKey {
    let mut tags = mk_spec().tags;
    tags.extend(mk_owner().tags());
    tags.insert(TAG_CREATE_TOKEN.into(), "t0".into());
    ObservedKey {
        key: KeyDescription {
            key_id: "k1".into(),
            arn: ARN.into(),
            state: "Enabled".into(),
            description: "Orders key".into(),
            multi_region: false,
            replica: false,
            replica_regions: Vec::new(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            created_at: None,
        },
        unrecorded: false,
        tags,
        past_rotations: None,
        rotation: Some(Rotation {
            enabled: true,
            period_days: Some(365),
            next_rotation: None,
            on_demand_started: None,
        }),
        policy: default_policy(ARN),
        aliases: vec!["alias/orders".into()],
        alias_target: Some("k1".into()),
        additional_alias_holders: BTreeMap::new(),
        last_usage: None,
        last_usage_unreadable: None,
        grants: Vec::new(),
        denied: Vec::new(),
        unread: Vec::new(),
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn recorded() -> Recorded {
    Recorded {
        key_id: Some("k1".into()),
        key_arn: Some(ARN.into()),
        key_created_at: Some(now() - std::time::Duration::from_secs(3600)),
        alias_name: Some("alias/orders".into()),
        intent: None,
        denied_since: None,
        ..Recorded::default()
    }
}

const DEFAULT_SID: &str = crate::reconcile::policy::DEFAULT_STATEMENT_SID;

/// AWS's default policy put without knowing what the key has.
fn put_default() -> Action {
    Action::PutPolicy { policy: default_policy(ARN).unwrap(), statements: vec![] }
}

fn run(spec: &KmsKeySpec, observed: &Observed, recorded: &Recorded) -> Plan {
    run_annotated(spec, observed, recorded, None)
}

/// `run` after a pass that ran `previous`.
fn run_after(spec: &KmsKeySpec, observed: &Observed, previous: &[Action]) -> Plan {
    let owner = mk_owner();
    let recorded = recorded();
    let ctx = Context {
        owner: &owner,
        recorded: &recorded,
        now: now(),
        fresh_token: "t1",
        previous,
        confirmed_grants: &Default::default(),
        rotate_now: None,
        alias_handover_held: false,
    };
    plan(spec, observed, &ctx)
}

/// `run` for an object whose `rotate-now` annotation is `rotate_now`.
fn run_annotated(
    spec: &KmsKeySpec,
    observed: &Observed,
    recorded: &Recorded,
    rotate_now: Option<&str>,
) -> Plan {
    run_in(spec, observed, recorded, rotate_now, false)
}

/// A first pass's plan, with the annotation and the alias hold given.
fn run_in(
    spec: &KmsKeySpec,
    observed: &Observed,
    recorded: &Recorded,
    rotate_now: Option<&str>,
    alias_handover_held: bool,
) -> Plan {
    let owner = mk_owner();
    let ctx = Context {
        owner: &owner,
        recorded,
        now: now(),
        fresh_token: "t1",
        previous: &[],
        confirmed_grants: &Default::default(),
        rotate_now,
        alias_handover_held,
    };
    plan(spec, observed, &ctx)
}

fn run_key(spec: &KmsKeySpec, key: ObservedKey) -> Plan {
    run(spec, &Observed::Owned(Box::new(key)), &recorded())
}

fn actions(spec: &KmsKeySpec, key: ObservedKey) -> Vec<Action> {
    run_key(spec, key).actions
}

#[test]
fn a_key_that_matches_the_spec_needs_nothing() {
    assert_eq!(run_key(&mk_spec(), mk_key()), Plan::default());
}

#[test]
fn a_new_object_creates_one_key_tagged_with_its_owner_and_token() {
    let plan =
        run(&mk_spec(), &Observed::NoKey { alias_target: None, account_arn: None }, &Recorded::default());
    let mut tags = mk_spec().tags;
    tags.extend(mk_owner().tags());
    tags.insert(TAG_CREATE_TOKEN.into(), "t1".into());
    let key = NewKey {
        description: "Orders key".into(),
        policy: None,
        tags,
        multi_region: false,
        key_spec: "SYMMETRIC_DEFAULT".into(),
        key_usage: "ENCRYPT_DECRYPT".into(),
    };
    assert_eq!(plan.actions, vec![Action::CreateKey { key, token: "t1".into() }]);
    assert!(plan.blockers.is_empty());
}

#[test]
fn a_create_attempt_that_may_still_appear_is_waited_for_not_repeated() {
    // CreateKey has no idempotency token: a second call would leak the first key.
    let started_at = now() - std::time::Duration::from_secs(10);
    let rec = Recorded {
        intent: Some(Intent { token: "t0".into(), started_at, adopting: None }),
        ..Default::default()
    };
    let plan = run(&mk_spec(), &Observed::NoKey { alias_target: None, account_arn: None }, &rec);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.hold, Some(Hold::CreateSettling(std::time::Duration::from_secs(20))));
}

#[test]
fn a_create_attempt_older_than_the_settle_time_that_left_no_key_is_retried() {
    let started_at = now() - std::time::Duration::from_secs(31);
    let rec = Recorded {
        intent: Some(Intent { token: "t0".into(), started_at, adopting: None }),
        ..Default::default()
    };
    let plan = run(&mk_spec(), &Observed::NoKey { alias_target: None, account_arn: None }, &rec);
    assert!(matches!(plan.actions.as_slice(), [Action::CreateKey { token, .. }] if token == "t1"));
}

#[test]
fn no_key_is_created_when_its_alias_belongs_to_another_key() {
    let plan = run(
        &mk_spec(),
        &Observed::NoKey { alias_target: Some("other".into()), account_arn: None },
        &Recorded::default(),
    );
    assert!(plan.actions.is_empty());
    let alias = "alias/orders".to_owned();
    assert_eq!(plan.blockers, vec![Blocker::AliasConflict { alias, holder: "other".into() }]);
}

#[test]
fn a_recorded_key_that_vanished_is_reported_not_recreated() {
    let plan = run(&mk_spec(), &Observed::Missing { key_id: "k1".into() }, &recorded());
    assert!(plan.actions.is_empty());
    assert_eq!(plan.blockers, vec![Blocker::KeyNotFound { key_id: "k1".into() }]);
}

#[test]
fn a_key_created_moments_ago_that_kms_does_not_describe_yet_is_waited_for() {
    // KMS is eventually consistent; reporting KeyNotFound here would be a false alarm.
    let rec = Recorded { key_created_at: Some(now() - std::time::Duration::from_secs(20)), ..recorded() };
    let plan = run(&mk_spec(), &Observed::Missing { key_id: "k1".into() }, &rec);
    assert!(plan.actions.is_empty() && plan.blockers.is_empty());
    assert_eq!(plan.hold, Some(Hold::KeyNotVisibleYet(std::time::Duration::from_secs(100))));
}

#[test]
fn a_key_tagged_for_someone_else_is_never_touched() {
    let plan = run(&mk_spec(), &Observed::Foreign { key_id: "k1".into() }, &recorded());
    assert!(plan.actions.is_empty());
    assert_eq!(plan.blockers, vec![Blocker::NotOwned { key_id: "k1".into() }]);
}

#[test]
fn a_changed_description_is_updated() {
    let spec = KmsKeySpec { key_description: "new".into(), ..mk_spec() };
    assert_eq!(actions(&spec, mk_key()), vec![Action::UpdateDescription("new".into())]);
}

#[test]
fn a_policy_is_put_only_when_it_means_something_else() {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}"#;
    let reformatted = r#"{ "Statement": [ { "Resource": "*", "Action": ["kms:*"], "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"} } ], "Version": "2012-10-17" }"#;
    let spec = KmsKeySpec { key_policy: Some(policy.into()), ..mk_spec() };
    let key = ObservedKey { policy: Some(reformatted.into()), ..mk_key() };
    assert!(actions(&spec, key).is_empty(), "reformatting by AWS is no change");
    let put = Action::PutPolicy { policy: policy.into(), statements: vec!["#1".into(), DEFAULT_SID.into()] };
    assert_eq!(actions(&spec, mk_key()), vec![put], "named by Sid, or by position without one");
}

#[test]
fn removing_the_policy_from_the_spec_restores_the_aws_default() {
    let key = ObservedKey { policy: Some(r#"{"Statement":[]}"#.into()), ..mk_key() };
    let put =
        Action::PutPolicy { policy: default_policy(ARN).unwrap(), statements: vec![DEFAULT_SID.into()] };
    assert_eq!(actions(&mk_spec(), key), vec![put]);
}

#[test]
fn tags_follow_the_spec_and_foreign_tags_are_removed_first_to_make_room() {
    let mut key = mk_key();
    key.tags.insert("team".into(), "b".into());
    key.tags.insert("added-by-hand".into(), "x".into());
    key.tags.remove(crate::reconcile::ownership::TAG_UID);
    let want_set = BTreeMap::from([
        ("team".to_owned(), "a".to_owned()),
        (crate::reconcile::ownership::TAG_UID.to_owned(), "uid-1".to_owned()),
    ]);
    assert_eq!(
        actions(&mk_spec(), key),
        vec![Action::Untag(vec!["added-by-hand".into()]), Action::Tag(want_set)]
    );
}

#[test]
fn the_create_token_tag_is_kept() {
    let key = mk_key();
    assert!(key.tags.contains_key(TAG_CREATE_TOKEN));
    assert!(actions(&mk_spec(), key).is_empty());
}

#[test]
fn rotation_follows_the_spec() {
    let spec = KmsKeySpec { enable_key_rotation: false, ..mk_spec() };
    assert_eq!(actions(&spec, mk_key()), vec![rotation_off()]);
    let key = ObservedKey { rotation: Some(rotation_state(false, None)), ..mk_key() };
    assert_eq!(actions(&mk_spec(), key), vec![rotation_on(365)]);
}

#[test]
fn a_key_to_disable_gets_its_other_changes_first_and_is_disabled_last() {
    // KMS refuses rotation changes on a disabled key.
    let spec = KmsKeySpec { is_enabled: false, enable_key_rotation: false, ..mk_spec() };
    assert_eq!(actions(&spec, mk_key()), vec![rotation_off(), Action::SetEnabled(false)]);
}

#[test]
fn a_disabled_key_to_enable_is_enabled_before_rotation_changes() {
    let mut key = mk_key();
    key.key.state = "Disabled".into();
    key.rotation = Some(rotation_state(false, None));
    assert_eq!(actions(&mk_spec(), key), vec![Action::SetEnabled(true), rotation_on(365)]);
}

#[test]
fn rotation_changes_on_a_key_that_stays_disabled_are_deferred() {
    let mut key = mk_key();
    key.key.state = "Disabled".into();
    let spec = KmsKeySpec { is_enabled: false, enable_key_rotation: false, ..mk_spec() };
    let plan = run_key(&spec, key);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.deferred, vec!["key rotation changes once the key is enabled".to_owned()]);
}

#[test]
fn a_deletion_scheduled_outside_the_operator_is_cancelled_first_and_alone() {
    // KMS refuses almost every other call while the key is pending deletion.
    let mut key = mk_key();
    key.key.state = "PendingDeletion".into();
    key.key.description = "changed".into();
    assert_eq!(actions(&mk_spec(), key), vec![Action::CancelDeletion]);
}

#[test]
fn a_key_in_a_transitional_state_is_waited_for() {
    let mut key = mk_key();
    key.key.state = "Updating".into();
    let plan = run_key(&mk_spec(), key);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.hold, Some(Hold::KeyState("Updating".into())));
}

#[test]
fn a_missing_alias_is_created() {
    let key = ObservedKey { alias_target: None, aliases: vec![], ..mk_key() };
    assert_eq!(actions(&mk_spec(), key), vec![Action::CreateAlias("alias/orders".into())]);
}

#[test]
fn a_rename_creates_the_new_alias_then_deletes_the_old_one() {
    let spec = KmsKeySpec { alias_name: "payments".into(), ..mk_spec() };
    let key = ObservedKey { alias_target: None, ..mk_key() };
    assert_eq!(
        actions(&spec, key),
        vec![Action::CreateAlias("alias/payments".into()), Action::DeleteAlias("alias/orders".into())]
    );
}

#[test]
fn aliases_this_object_did_not_record_are_left_on_the_key() {
    let key = ObservedKey { aliases: vec!["alias/orders".into(), "alias/by-hand".into()], ..mk_key() };
    assert!(actions(&mk_spec(), key).is_empty());
}

#[test]
fn an_alias_held_by_another_key_is_never_repointed() {
    let key = ObservedKey { alias_target: Some("k2".into()), aliases: vec![], ..mk_key() };
    let plan = run_key(&mk_spec(), key);
    assert!(plan.actions.is_empty());
    let alias = "alias/orders".to_owned();
    assert_eq!(plan.blockers, vec![Blocker::AliasConflict { alias, holder: "k2".into() }]);
}

#[test]
fn a_rename_to_an_alias_held_by_another_key_keeps_the_old_alias() {
    let spec = KmsKeySpec { alias_name: "payments".into(), ..mk_spec() };
    let key = ObservedKey { alias_target: Some("k2".into()), ..mk_key() };
    let plan = run_key(&spec, key);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let alias = "alias/payments".to_owned();
    assert_eq!(plan.blockers, vec![Blocker::AliasConflict { alias, holder: "k2".into() }]);
}

#[test]
fn missing_grants_are_created_when_grants_are_managed() {
    let spec = KmsKeySpec { create_grants: true, grants: vec![mk_grant_spec()], ..mk_spec() };
    let want = NewGrant {
        name: format!("{GRANT_PREFIX}app"),
        terms: mk_grant_info("", "", &["Decrypt", "Encrypt"]).terms,
    };
    assert_eq!(actions(&spec, mk_key()), vec![Action::CreateGrant(want)]);
}

#[test]
fn grants_in_the_spec_are_ignored_while_create_grants_is_false() {
    let spec = KmsKeySpec { grants: vec![mk_grant_spec()], ..mk_spec() };
    assert!(actions(&spec, mk_key()).is_empty());
}

#[test]
fn a_matching_grant_is_kept_whatever_the_order_of_its_operations() {
    let spec = KmsKeySpec { create_grants: true, grants: vec![mk_grant_spec()], ..mk_spec() };
    let key = ObservedKey {
        grants: vec![mk_grant_info("g1", "kms-operator/app", &["Encrypt", "Decrypt"])],
        ..mk_key()
    };
    assert!(actions(&spec, key).is_empty());
}

#[test]
fn a_changed_grant_is_created_anew_before_the_old_one_is_revoked() {
    // A new grant can take minutes to take effect; revoking first would cut access meanwhile.
    let spec = KmsKeySpec { create_grants: true, grants: vec![mk_grant_spec()], ..mk_spec() };
    let key = ObservedKey { grants: vec![mk_grant_info("g1", "kms-operator/app", &["Encrypt"])], ..mk_key() };
    let got = actions(&spec, key);
    assert_eq!(got.len(), 2);
    assert!(matches!(&got[0], Action::CreateGrant(g) if g.name == "kms-operator/app"));
    assert_eq!(got[1], Action::RevokeGrant { name: "app".into(), grant_id: "g1".into() });
}

#[test]
fn grants_gone_from_the_spec_or_duplicated_are_revoked_and_others_grants_kept() {
    let spec = KmsKeySpec { create_grants: true, grants: vec![mk_grant_spec()], ..mk_spec() };
    let key = ObservedKey {
        grants: vec![
            mk_grant_info("g1", "kms-operator/app", &["Encrypt", "Decrypt"]),
            mk_grant_info("g2", "kms-operator/app", &["Encrypt", "Decrypt"]),
            mk_grant_info("g3", "kms-operator/old", &["Encrypt"]),
            mk_grant_info("g4", "made-by-a-service", &["Decrypt"]),
        ],
        ..mk_key()
    };
    assert_eq!(
        actions(&spec, key),
        vec![
            Action::RevokeGrant { name: "app".into(), grant_id: "g2".into() },
            Action::RevokeGrant { name: "old".into(), grant_id: "g3".into() },
        ]
    );
}

#[test]
fn turning_create_grants_off_revokes_only_the_operators_grants() {
    let key = ObservedKey {
        grants: vec![
            mk_grant_info("g1", "kms-operator/app", &["Encrypt"]),
            mk_grant_info("g4", "made-by-a-service", &["Decrypt"]),
        ],
        ..mk_key()
    };
    assert_eq!(
        actions(&mk_spec(), key),
        vec![Action::RevokeGrant { name: "app".into(), grant_id: "g1".into() }]
    );
}

#[test]
fn new_grants_wait_while_the_key_stays_disabled() {
    let spec =
        KmsKeySpec { create_grants: true, grants: vec![mk_grant_spec()], is_enabled: false, ..mk_spec() };
    let mut key = mk_key();
    key.key.state = "Disabled".into();
    let plan = run_key(&spec, key);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.deferred, vec!["grants are created once the key is enabled".to_owned()]);
}

#[test]
fn cleanup_drops_this_objects_aliases_and_schedules_deletion_with_the_window() {
    let spec = KmsKeySpec { deletion_window_in_days: 7, ..mk_spec() };
    let key = ObservedKey { aliases: vec!["alias/orders".into(), "alias/by-hand".into()], ..mk_key() };
    assert_eq!(
        plan_cleanup(&spec, &Observed::Owned(Box::new(key)), &recorded(), now(), DeletionPolicy::Delete),
        Cleanup::Release(vec![Action::DeleteAlias("alias/orders".into()), Action::ScheduleDeletion(7)])
    );
}

#[test]
fn cleanup_of_a_key_already_pending_deletion_only_drops_aliases() {
    let mut key = mk_key();
    key.key.state = "PendingDeletion".into();
    assert_eq!(
        plan_cleanup(&mk_spec(), &Observed::Owned(Box::new(key)), &recorded(), now(), DeletionPolicy::Delete),
        Cleanup::Release(vec![Action::DeleteAlias("alias/orders".into())])
    );
}

/// The calls a cleanup makes (none unless it releases an owned key).
fn cleanup_actions(cleanup: &Cleanup) -> &[Action] {
    match cleanup {
        Cleanup::Release(actions) => actions,
        Cleanup::NotOwned { .. } | Cleanup::Wait(_) | Cleanup::Unreadable { .. } => &[],
    }
}

#[test]
fn cleanup_never_touches_a_missing_or_foreign_key() {
    for observed in [
        Observed::NoKey { alias_target: Some("k9".into()), account_arn: None },
        Observed::Missing { key_id: "k1".into() },
        Observed::Foreign { key_id: "k1".into() },
    ] {
        assert!(
            cleanup_actions(&plan_cleanup(&mk_spec(), &observed, &recorded(), now(), DeletionPolicy::Delete))
                .is_empty(),
            "{observed:?}"
        );
    }
}

#[test]
fn cleanup_of_a_foreign_key_releases_the_object_without_touching_the_key() {
    let observed = Observed::Foreign { key_id: "k1".into() };
    assert_eq!(
        plan_cleanup(&mk_spec(), &observed, &recorded(), now(), DeletionPolicy::Delete),
        Cleanup::NotOwned { key_id: "k1".into() }
    );
}

#[test]
fn cleanup_waits_for_a_key_that_may_still_appear() {
    // Releasing the finalizer now would leave a key no object tracks.
    let started_at = now() - std::time::Duration::from_secs(10);
    let interrupted = Recorded {
        intent: Some(Intent { token: "t0".into(), started_at, adopting: None }),
        ..Default::default()
    };
    let no_key = Observed::NoKey { alias_target: None, account_arn: None };
    let wait = std::time::Duration::from_secs(20);
    assert_eq!(
        plan_cleanup(&mk_spec(), &no_key, &interrupted, now(), DeletionPolicy::Delete),
        Cleanup::Wait(wait)
    );
    let young = Recorded { key_created_at: Some(started_at), ..recorded() };
    let missing = Observed::Missing { key_id: "k1".into() };
    assert_eq!(
        plan_cleanup(&mk_spec(), &missing, &young, now(), DeletionPolicy::Delete),
        Cleanup::Wait(std::time::Duration::from_secs(110))
    );
}

#[test]
fn the_same_actions_as_the_previous_pass_are_not_repeated() {
    // KMS lags, or reports the change in a form the plan does not recognise.
    let spec = KmsKeySpec { key_description: "new".into(), ..mk_spec() };
    let previous = vec![Action::UpdateDescription("new".into())];
    let plan = run_after(&spec, &Observed::Owned(Box::new(mk_key())), &previous);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.hold, Some(Hold::NotConverged { policy_statements: vec![] }));
}

#[test]
fn a_key_left_by_an_interrupted_create_is_recorded_before_anything_else() {
    let key = ObservedKey {
        unrecorded: true,
        key: KeyDescription { description: "old".into(), ..mk_key().key },
        ..mk_key()
    };
    let got = actions(&mk_spec(), key.clone());
    assert_eq!(got, vec![Action::RecordKey(key.key), Action::UpdateDescription("Orders key".into())]);
}

#[test]
fn a_stray_tag_under_the_operators_prefix_is_reported_not_removed() {
    // The shipped IAM policy forbids removing such tags: an Untag holding one fails whole.
    let mut key = mk_key();
    key.tags.insert("kms.boosterpack.io/forged".into(), "x".into());
    key.tags.insert("by-hand".into(), "y".into());
    let plan = run_key(&mk_spec(), key);
    assert_eq!(plan.actions, vec![Action::Untag(vec!["by-hand".into()])]);
    assert_eq!(plan.notices.len(), 1);
    assert!(plan.notices[0].contains("kms.boosterpack.io/forged"), "{:?}", plan.notices);
}

#[test]
fn nothing_is_tried_on_a_new_key_while_iam_may_not_see_its_tags() {
    // Every call would be refused, and each spends the account's quota.
    let key =
        ObservedKey { policy: None, denied: vec![READ_POLICY, READ_GRANTS], unrecorded: true, ..mk_key() };
    let young = Recorded { key_created_at: Some(now() - std::time::Duration::from_secs(30)), ..recorded() };
    let plan = run(&mk_spec(), &Observed::Owned(Box::new(key.clone())), &young);
    assert_eq!(plan.actions, vec![Action::RecordKey(key.key.clone())], "it is still recorded");
    let recorded_key = ObservedKey { unrecorded: false, ..key };
    let plan = run(&mk_spec(), &Observed::Owned(Box::new(recorded_key)), &young);
    assert!(plan.actions.is_empty());
    assert!(matches!(plan.hold, Some(Hold::AwaitingPermissions { .. })), "{plan:?}");
}

#[test]
fn a_policy_the_operator_may_not_read_is_put_from_the_spec() {
    // Putting the spec's policy may be what gives the operator its other permissions back.
    let key = ObservedKey { policy: None, denied: vec![READ_POLICY], ..mk_key() };
    assert_eq!(actions(&mk_spec(), key), vec![put_default()]);
}

#[test]
fn grants_and_aliases_the_operator_may_not_list_are_left_alone_and_waited_for() {
    let spec = KmsKeySpec { create_grants: true, grants: vec![mk_grant_spec()], ..mk_spec() };
    let key = ObservedKey { alias_target: None, denied: vec![READ_GRANTS, READ_ALIASES], ..mk_key() };
    let plan = run(&spec, &Observed::Owned(Box::new(key)), &Recorded { denied_since: None, ..recorded() });
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let permissions = vec![READ_GRANTS, READ_ALIASES];
    let retry = timing::PERMISSION_RETRY;
    assert_eq!(plan.hold, Some(Hold::AwaitingPermissions { permissions, retry }));
}

#[test]
fn reads_refused_for_longer_than_iam_takes_stall_naming_the_permission() {
    let key = ObservedKey { denied: vec![READ_GRANTS], ..mk_key() };
    let since = now() - std::time::Duration::from_secs(600);
    let plan = run(
        &mk_spec(),
        &Observed::Owned(Box::new(key)),
        &Recorded { denied_since: Some(since), ..recorded() },
    );
    let blocker = Blocker::ReadDenied { key_id: "k1".into(), permissions: vec![READ_GRANTS] };
    assert_eq!(plan.blockers, vec![blocker]);
}

#[test]
fn a_recorded_key_the_operator_may_not_describe_gets_the_specs_policy_put_blind() {
    // Its policy may shut the operator out; the spec's (here AWS's default) lets it back in.
    let observed = Observed::Unreadable { key_id: "k1".into(), permission: "kms:DescribeKey", owned: true };
    assert_eq!(run(&mk_spec(), &observed, &recorded()).actions, vec![put_default()]);
    let not_recorded = Recorded { key_id: Some("k2".into()), ..recorded() };
    assert!(run(&mk_spec(), &observed, &not_recorded).actions.is_empty(), "never blind on another key");
}

#[test]
fn a_key_whose_ownership_cannot_be_read_even_after_the_repair_is_waited_for_then_reported() {
    let observed =
        Observed::Unreadable { key_id: "k1".into(), permission: "kms:ListResourceTags", owned: true };
    let plan = run_after(&mk_spec(), &observed, &[put_default()]);
    assert!(plan.actions.is_empty());
    assert!(matches!(plan.hold, Some(Hold::AwaitingPermissions { .. })), "{plan:?}");
    assert_eq!(
        plan_cleanup(&mk_spec(), &observed, &recorded(), now(), DeletionPolicy::Delete),
        Cleanup::Unreadable { key_id: "k1".into(), permission: "kms:ListResourceTags" }
    );
}

#[test]
fn a_key_found_by_its_tags_that_kms_does_not_describe_yet_is_waited_for_not_reported_gone() {
    // The Tagging API says it exists; releasing or stalling now would leak it.
    let started_at = now() - std::time::Duration::from_secs(40);
    let rec = Recorded {
        intent: Some(Intent { token: "t0".into(), started_at, adopting: None }),
        ..Default::default()
    };
    let found = Observed::Missing { key_id: "k7".into() };
    let wait = std::time::Duration::from_secs(80);
    assert_eq!(run(&mk_spec(), &found, &rec).hold, Some(Hold::KeyNotVisibleYet(wait)));
    assert_eq!(plan_cleanup(&mk_spec(), &found, &rec, now(), DeletionPolicy::Delete), Cleanup::Wait(wait));
}

#[test]
fn the_blind_policy_repair_needs_the_tagging_api_to_confirm_the_key_is_ours() {
    // status.keyId alone is no proof: it can come from a backup or another writer.
    let unconfirmed =
        Observed::Unreadable { key_id: "k1".into(), permission: "kms:DescribeKey", owned: false };
    assert!(run(&mk_spec(), &unconfirmed, &recorded()).actions.is_empty());
    let wrong_arn =
        Recorded { key_arn: Some("arn:aws:kms:us-east-1:123456789012:key/k9".into()), ..recorded() };
    let confirmed = Observed::Unreadable { key_id: "k1".into(), permission: "kms:DescribeKey", owned: true };
    assert!(run(&mk_spec(), &confirmed, &wrong_arn).actions.is_empty());
    let young = Recorded { key_created_at: Some(now() - std::time::Duration::from_secs(60)), ..recorded() };
    assert!(run(&mk_spec(), &confirmed, &young).actions.is_empty(), "not while IAM may lag");
}

#[test]
fn a_grant_kms_confirmed_by_answering_create_grant_with_its_id_is_kept() {
    // AWS answers a repeated CreateGrant with the existing grant's ID: it is the spec's grant.
    let spec = KmsKeySpec { create_grants: true, grants: vec![mk_grant_spec()], ..mk_spec() };
    let odd = mk_grant_info("g1", "kms-operator/app", &["Encrypt", "Decrypt", "DescribeKey"]);
    let key = ObservedKey { grants: vec![odd], ..mk_key() };
    let owner = mk_owner();
    let rec = recorded();
    let confirmed = std::collections::BTreeSet::from(["g1".to_owned()]);
    let ctx = Context {
        owner: &owner,
        recorded: &rec,
        now: now(),
        fresh_token: "t1",
        previous: &[],
        confirmed_grants: &confirmed,
        rotate_now: None,
        alias_handover_held: false,
    };
    assert!(plan(&spec, &Observed::Owned(Box::new(key)), &ctx).actions.is_empty());
}

fn rotation_state(enabled: bool, period_days: Option<i32>) -> Rotation {
    Rotation { enabled, period_days, next_rotation: None, on_demand_started: None }
}

fn rotation_on(days: i32) -> Action {
    Action::SetRotation { enabled: true, period_days: Some(days) }
}

fn rotation_off() -> Action {
    Action::SetRotation { enabled: false, period_days: None }
}

#[test]
fn the_rotation_period_follows_the_spec_and_defaults_to_aws_365_days() {
    let spec = KmsKeySpec { rotation_period_in_days: Some(90), ..mk_spec() };
    assert_eq!(actions(&spec, mk_key()), vec![rotation_on(90)]);
    let changed_by_hand = ObservedKey { rotation: Some(rotation_state(true, Some(730))), ..mk_key() };
    assert_eq!(actions(&mk_spec(), changed_by_hand), vec![rotation_on(365)], "drift is put back");
    let off = ObservedKey { rotation: Some(rotation_state(false, None)), ..mk_key() };
    assert_eq!(actions(&spec, off), vec![rotation_on(90)], "enabled with the period");
}

#[test]
fn a_period_kms_does_not_report_is_taken_as_right() {
    let spec = KmsKeySpec { rotation_period_in_days: Some(90), ..mk_spec() };
    let unknown = ObservedKey { rotation: Some(rotation_state(true, None)), ..mk_key() };
    assert!(actions(&spec, unknown).is_empty());
}

#[test]
fn a_period_change_on_a_key_that_stays_disabled_is_deferred() {
    let spec = KmsKeySpec { rotation_period_in_days: Some(90), is_enabled: false, ..mk_spec() };
    let mut key = mk_key();
    key.key.state = "Disabled".into();
    let plan = run_key(&spec, key);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.deferred, vec!["key rotation changes once the key is enabled".to_owned()]);
}

mod aliases;
mod grant_terms;
mod kind;
mod on_demand;
mod ownership;
mod policy;
mod reads;
mod replicas;
