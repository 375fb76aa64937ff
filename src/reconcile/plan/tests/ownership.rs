//! Whose key it is: adoption (`spec.adopt`), `deletionPolicy: Retain` and `ObserveOnly`.

use super::*;
use crate::api::AdoptSpec;
use crate::reconcile::ownership::{Holder, OWNERSHIP_TAGS, TAG_CLUSTER, TAG_OWNER, TAG_UID};

fn adopting(take_over_from_cluster: Option<&str>) -> KmsKeySpec {
    let adopt = AdoptSpec {
        key_id: None,
        alias_name: Some("orders".into()),
        take_over_from_cluster: take_over_from_cluster.map(str::to_owned),
    };
    KmsKeySpec { adopt: Some(adopt), ..mk_spec() }
}

/// A key made outside the operator: the spec's kind, no ownership tags, another description
/// and a tag the spec does not have.
fn outside_key() -> ObservedKey {
    let mut key = mk_key();
    key.tags = BTreeMap::from([("made-by".into(), "terraform".into())]);
    key.key.description = "made by hand".into();
    key.unrecorded = true;
    key
}

fn adopt_action() -> Action {
    Action::Adopt { tags: mk_owner().tags(), token: "t1".into() }
}

fn unowned(key: ObservedKey, holder: Holder) -> Observed {
    Observed::Unowned { key: Box::new(key), holder }
}

fn held_by(cluster: &str) -> Holder {
    Holder::Object { cluster: cluster.into(), owner: "team-b/orders".into() }
}

#[test]
fn a_free_key_is_tagged_as_the_objects_then_recorded_and_nothing_else_yet() {
    let key = outside_key();
    let plan = run(&adopting(None), &unowned(key.clone(), Holder::Nobody), &Recorded::default());
    assert_eq!(plan.actions, vec![adopt_action(), Action::RecordKey(key.key)]);
    assert!(plan.blockers.is_empty());
}

#[test]
fn a_key_of_another_object_or_cluster_is_refused_and_left_untouched() {
    let table = [
        // (holder, takeOverFromCluster, refused?)
        (held_by("staging"), None, true),
        (held_by("staging"), Some("qa"), true),
        (held_by("staging"), Some("staging"), false),
        // This cluster's own objects never lose their key to another, whatever the spec says.
        (held_by("prod"), Some("prod"), true),
        (held_by("prod"), None, true),
        (Holder::Nobody, Some("staging"), false),
    ];
    for (holder, take_over, refused) in table {
        let plan = run(&adopting(take_over), &unowned(outside_key(), holder.clone()), &Recorded::default());
        assert_eq!(plan.actions.is_empty(), refused, "{holder:?} {take_over:?}: {plan:?}");
        if refused {
            let [Blocker::HeldElsewhere { same_cluster, .. }] = plan.blockers.as_slice() else {
                panic!("{plan:?}")
            };
            assert_eq!(*same_cluster, holder == held_by("prod"));
        }
    }
}

#[test]
fn a_key_not_the_objects_without_adopt_is_not_owned() {
    let observe_only = KmsKeySpec { management_policy: ManagementPolicy::ObserveOnly, ..mk_spec() };
    let plan = run(&observe_only, &unowned(outside_key(), Holder::Nobody), &recorded());
    assert_eq!(plan.blockers, vec![Blocker::NotOwned { key_id: "k1".into() }]);
}

#[test]
fn a_key_to_adopt_that_is_pending_deletion_or_of_another_kind_is_refused() {
    let mut pending = outside_key();
    pending.key.state = "PendingDeletion".into();
    let plan = run(&adopting(None), &unowned(pending, Holder::Nobody), &Recorded::default());
    assert_eq!(plan.blockers, vec![Blocker::AdoptPendingDeletion { key_id: "k1".into() }]);

    let mut signing = outside_key();
    signing.key.key_spec = "RSA_2048".into();
    let plan = run(&adopting(None), &unowned(signing, Holder::Nobody), &Recorded::default());
    assert!(matches!(plan.blockers.as_slice(), [Blocker::WrongKind { field: "keySpec", .. }]), "{plan:?}");

    let mut multi = outside_key();
    multi.key.multi_region = true;
    let plan = run(&adopting(None), &unowned(multi, Holder::Nobody), &Recorded::default());
    assert!(
        matches!(plan.blockers.as_slice(), [Blocker::WrongKind { field: "multiRegion", .. }]),
        "{plan:?}"
    );
    assert!(plan.actions.is_empty());
}

#[test]
fn a_key_to_adopt_in_a_transitional_state_is_waited_for() {
    let mut key = outside_key();
    key.key.state = "Creating".into();
    let plan = run(&adopting(None), &unowned(key, Holder::Nobody), &Recorded::default());
    assert_eq!(plan.hold, Some(Hold::KeyState("Creating".into())));
    assert!(plan.actions.is_empty());
}

#[test]
fn a_key_to_adopt_that_does_not_exist_stalls_and_nothing_is_created() {
    let plan =
        run(&adopting(None), &Observed::Missing { key_id: "alias/orders".into() }, &Recorded::default());
    assert_eq!(
        plan.blockers,
        vec![Blocker::AdoptTargetMissing { reference: "adopt.aliasName orders".into() }]
    );
    assert!(plan.actions.is_empty());
}

#[test]
fn once_adopted_the_key_is_converged_like_any_other() {
    let mut key = outside_key();
    key.tags.extend(mk_owner().tags());
    key.unrecorded = false;
    let plan = run(&adopting(None), &Observed::Owned(Box::new(key)), &recorded());
    assert_eq!(
        plan.actions,
        vec![
            Action::UpdateDescription("Orders key".into()),
            Action::Untag(vec!["made-by".into()]),
            Action::Tag(BTreeMap::from([("team".into(), "a".into())])),
        ]
    );
}

#[test]
fn observe_only_shows_the_adoption_and_everything_full_would_do_after_it() {
    let spec = KmsKeySpec { management_policy: ManagementPolicy::ObserveOnly, ..adopting(None) };
    let key = outside_key();
    let plan = run(&spec, &unowned(key.clone(), Holder::Nobody), &Recorded::default());
    assert_eq!(
        plan.actions,
        vec![
            adopt_action(),
            Action::RecordKey(key.key),
            Action::UpdateDescription("Orders key".into()),
            Action::Untag(vec!["made-by".into()]),
            Action::Tag(BTreeMap::from([("team".into(), "a".into())])),
        ]
    );
    let lines = summary::plan_lines(&plan.actions, &plan.notices);
    assert_eq!(
        lines,
        vec![
            "tag the key as this object's (adopt it)",
            "update the description",
            "remove tags made-by",
            "set tags team",
        ]
    );
}

fn retain(spec: &KmsKeySpec, key: ObservedKey) -> Cleanup {
    plan_cleanup(spec, &Observed::Owned(Box::new(key)), &recorded(), now(), DeletionPolicy::Retain)
}

#[test]
fn retain_takes_every_ownership_tag_off_in_one_call_and_keeps_aliases_and_the_key() {
    let Cleanup::Release(actions) = retain(&mk_spec(), mk_key()) else { panic!() };
    let all: Vec<String> = OWNERSHIP_TAGS.iter().map(|t| t.to_string()).collect();
    assert_eq!(actions, vec![Action::Untag(all)]);
}

#[test]
fn retain_removes_only_the_ownership_tags_the_key_has_cluster_included() {
    let mut key = mk_key();
    key.tags.remove(TAG_CREATE_TOKEN);
    let Cleanup::Release(actions) = retain(&mk_spec(), key) else { panic!() };
    let [Action::Untag(tags)] = actions.as_slice() else { panic!("{actions:?}") };
    assert_eq!(tags, &vec![TAG_OWNER.to_owned(), TAG_UID.to_owned(), TAG_CLUSTER.to_owned()]);
}

#[test]
fn retain_revokes_the_operators_grants_first_only_when_asked() {
    let key = ObservedKey {
        grants: vec![
            mk_grant_info("g1", &format!("{GRANT_PREFIX}app"), &["Encrypt"]),
            mk_grant_info("g2", "made-by-hand", &["Decrypt"]),
        ],
        ..mk_key()
    };
    let Cleanup::Release(kept) = retain(&mk_spec(), key.clone()) else { panic!() };
    assert!(!kept.iter().any(|a| matches!(a, Action::RevokeGrant { .. })), "{kept:?}");

    let spec = KmsKeySpec { retain_grants: false, ..mk_spec() };
    let Cleanup::Release(actions) = retain(&spec, key) else { panic!() };
    assert_eq!(actions[0], Action::RevokeGrant { name: "app".into(), grant_id: "g1".into() });
    assert!(matches!(actions[1], Action::Untag(_)));
    assert_eq!(actions.len(), 2);
}

#[test]
fn retain_leaves_a_key_pending_deletion_as_it_is() {
    let mut key = mk_key();
    key.key.state = "PendingDeletion".into();
    assert_eq!(retain(&mk_spec(), key), Cleanup::Release(vec![]));
}

#[test]
fn a_key_that_is_not_the_objects_is_never_touched_on_delete() {
    for policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
        let observed = unowned(outside_key(), Holder::Nobody);
        assert_eq!(
            plan_cleanup(&adopting(None), &observed, &recorded(), now(), policy),
            Cleanup::NotOwned { key_id: "k1".into() }
        );
    }
}

#[test]
fn a_key_once_adopted_and_tagged_away_by_someone_else_is_not_taken_back() {
    let observe_only = KmsKeySpec { management_policy: ManagementPolicy::ObserveOnly, ..adopting(None) };
    let adopted = Recorded { adopted: true, ..recorded() };
    let plan = run(&observe_only, &unowned(outside_key(), Holder::Nobody), &adopted);
    assert_eq!(plan.blockers, vec![Blocker::NotOwned { key_id: "k1".into() }]);
    assert!(plan.actions.is_empty());
}

#[test]
fn an_adoption_waits_while_an_earlier_attempt_may_still_surface() {
    let intent = Intent {
        token: "t0".into(),
        started_at: now() - std::time::Duration::from_secs(5),
        adopting: Some("k1".into()),
    };
    let pending = Recorded { intent: Some(intent), ..Recorded::default() };
    let plan = run(&adopting(None), &unowned(outside_key(), Holder::Nobody), &pending);
    assert!(matches!(plan.hold, Some(Hold::CreateSettling(_))), "{plan:?}");
    assert!(plan.actions.is_empty());
}

#[test]
fn an_observer_says_which_reads_aws_refused() {
    let spec = KmsKeySpec { management_policy: ManagementPolicy::ObserveOnly, ..adopting(None) };
    let key = ObservedKey { denied: vec![READ_GRANTS], ..outside_key() };
    let plan = run(&spec, &unowned(key, Holder::Nobody), &Recorded::default());
    let lines = summary::plan_lines(&plan.actions, &plan.notices);
    assert!(lines[0].starts_with("note: AWS refuses kms:ListGrants on this key"), "{lines:?}");
}

#[test]
fn retain_without_the_grants_it_must_revoke_waits_until_it_may_list_them() {
    let spec = KmsKeySpec { retain_grants: false, ..mk_spec() };
    let key = ObservedKey { denied: vec![READ_GRANTS], ..mk_key() };
    assert_eq!(retain(&spec, key), Cleanup::Unreadable { key_id: "k1".into(), permission: READ_GRANTS });
}

#[test]
fn an_observer_deleted_takes_only_its_own_ownership_tags_off_and_keeps_grants() {
    let spec =
        KmsKeySpec { management_policy: ManagementPolicy::ObserveOnly, retain_grants: false, ..mk_spec() };
    let key = ObservedKey {
        grants: vec![mk_grant_info("g1", &format!("{GRANT_PREFIX}app"), &["Encrypt"])],
        ..mk_key()
    };
    let Cleanup::Release(actions) = retain(&spec, key) else { panic!() };
    assert!(matches!(actions.as_slice(), [Action::Untag(_)]), "{actions:?}");
}

#[test]
fn a_key_adopt_names_but_the_object_may_not_read_is_let_go_untouched() {
    let observed =
        Observed::Unreadable { key_id: "k1".into(), permission: "kms:ListResourceTags", owned: false };
    assert_eq!(
        plan_cleanup(&adopting(None), &observed, &Recorded::default(), now(), DeletionPolicy::Delete),
        Cleanup::NotOwned { key_id: "k1".into() }
    );
    let adopted = Recorded { adopted: true, ..recorded() };
    assert!(matches!(
        plan_cleanup(&adopting(None), &observed, &adopted, now(), DeletionPolicy::Delete),
        Cleanup::Unreadable { .. }
    ));
}
