//! Replicas: made once per Region with the spec's description, policy and tags, then kept like
//! the primary except for rotation, which is the primary's.

use super::*;
use crate::reconcile::plan::replicas::{
    REPLICA_VISIBILITY_WAIT, ReplicaPlan, own_region_listed, plan_replica, regions_to_look_at,
};

const PRIMARY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/mrk-1";
const REPLICA_ARN: &str = "arn:aws:kms:eu-west-1:123456789012:key/mrk-1";

fn replicated_spec(regions: &[&str]) -> KmsKeySpec {
    KmsKeySpec {
        multi_region: true,
        replica_regions: regions.iter().map(|r| r.to_string()).collect(),
        ..mk_spec()
    }
}

fn primary(replicas: &[&str]) -> KeyDescription {
    KeyDescription {
        key_id: "mrk-1".into(),
        arn: PRIMARY_ARN.into(),
        multi_region: true,
        replica_regions: replicas.iter().map(|r| r.to_string()).collect(),
        ..mk_key().key
    }
}

/// The replica in eu-west-1, matching `mk_spec()`.
fn replica() -> ObservedKey {
    let mut key = mk_key();
    key.key = KeyDescription { arn: REPLICA_ARN.into(), replica: true, ..primary(&["eu-west-1"]) };
    key.alias_target = Some("mrk-1".into());
    key.policy = default_policy(REPLICA_ARN);
    key.rotation = None;
    key
}

fn decide(spec: &KmsKeySpec, primary: &KeyDescription, observed: &Observed) -> ReplicaPlan {
    let owner = mk_owner();
    let recorded = Recorded {
        key_id: Some("mrk-1".into()),
        adopted: true,
        key_arn: Some(REPLICA_ARN.into()),
        ..Recorded::default()
    };
    let ctx = Context {
        owner: &owner,
        recorded: &recorded,
        now: now(),
        fresh_token: "",
        previous: &[],
        confirmed_grants: &Default::default(),
        rotate_now: None,
        alias_handover_held: false,
    };
    plan_replica(spec, "eu-west-1", primary, observed, &ctx)
}

fn missing() -> Observed {
    Observed::Missing { key_id: "mrk-1".into() }
}

#[test]
fn a_missing_replica_is_made_with_the_specs_description_policy_and_ownership_tags() {
    let spec = replicated_spec(&["eu-west-1"]);
    let ReplicaPlan::Replicate(made) = decide(&spec, &primary(&[]), &missing()) else { panic!() };
    assert_eq!(made.region, "eu-west-1");
    assert_eq!(made.description, spec.key_description);
    assert_eq!(made.policy, default_policy(REPLICA_ARN), "the policy names the replica's own ARN");
    let mut tags = spec.tags.clone();
    tags.extend(mk_owner().tags());
    assert_eq!(made.tags, tags, "ownership tags, and no create token: nothing is looked up by it");
    let with_policy = KmsKeySpec { key_policy: Some(r#"{"Statement":[]}"#.into()), ..spec };
    let ReplicaPlan::Replicate(made) = decide(&with_policy, &primary(&[]), &missing()) else { panic!() };
    assert_eq!(made.policy.as_deref(), Some(r#"{"Statement":[]}"#));
}

#[test]
fn a_replica_the_primary_lists_but_its_region_does_not_describe_yet_is_waited_for() {
    let spec = replicated_spec(&["eu-west-1"]);
    let hold = Some(Hold::KeyNotVisibleYet(REPLICA_VISIBILITY_WAIT));
    assert_eq!(
        decide(&spec, &primary(&["eu-west-1"]), &missing()),
        ReplicaPlan::Keep(Plan { hold, ..Plan::default() })
    );
}

#[test]
fn no_replica_is_made_of_a_single_region_disabled_or_passing_primary() {
    let spec = replicated_spec(&["eu-west-1"]);
    let single = KeyDescription { multi_region: false, ..primary(&[]) };
    let ReplicaPlan::Keep(plan) = decide(&spec, &single, &missing()) else { panic!() };
    assert!(matches!(plan.blockers.as_slice(), [Blocker::WrongKind { field: "multiRegion", .. }]));
    let disabled = KeyDescription { state: "Disabled".into(), ..primary(&[]) };
    let ReplicaPlan::Keep(plan) = decide(&spec, &disabled, &missing()) else { panic!() };
    assert!(plan.actions.is_empty() && plan.hold.is_none());
    assert!(plan.deferred[0].contains("once the key is enabled"), "{:?}", plan.deferred);
    for state in ["Updating", "PendingDeletion", "PendingReplicaDeletion"] {
        let passing = KeyDescription { state: state.into(), ..primary(&[]) };
        let ReplicaPlan::Keep(plan) = decide(&spec, &passing, &missing()) else { panic!() };
        assert_eq!(plan.hold, Some(Hold::KeyState(state.into())), "{state}");
        assert!(plan.actions.is_empty());
    }
}

#[test]
fn a_replica_that_matches_needs_nothing_and_its_rotation_is_left_to_the_primary() {
    let spec = replicated_spec(&["eu-west-1"]);
    let observed = Observed::Owned(Box::new(replica()));
    assert_eq!(decide(&spec, &primary(&["eu-west-1"]), &observed), ReplicaPlan::Keep(Plan::default()));
    let rotation_off = KmsKeySpec { enable_key_rotation: false, ..spec };
    assert_eq!(
        decide(&rotation_off, &primary(&["eu-west-1"]), &observed),
        ReplicaPlan::Keep(Plan::default())
    );
}

#[test]
fn drift_on_a_replica_is_put_back_in_its_region() {
    let spec = replicated_spec(&["eu-west-1"]);
    let mut drifted = replica();
    drifted.key.description = "changed by hand".into();
    drifted.key.state = "Disabled".into();
    drifted.aliases.clear();
    drifted.alias_target = None;
    drifted.tags.remove("team");
    let ReplicaPlan::Keep(plan) =
        decide(&spec, &primary(&["eu-west-1"]), &Observed::Owned(Box::new(drifted)))
    else {
        panic!()
    };
    assert_eq!(
        plan.actions,
        vec![
            Action::SetEnabled(true),
            Action::UpdateDescription(spec.key_description.clone()),
            Action::Tag(BTreeMap::from([("team".into(), "a".into())])),
            Action::CreateAlias("alias/orders".into()),
        ]
    );
}

#[test]
fn a_replica_tagged_for_someone_else_is_never_touched() {
    let spec = replicated_spec(&["eu-west-1"]);
    let foreign = Observed::Foreign { key_id: "mrk-1".into() };
    let ReplicaPlan::Keep(plan) = decide(&spec, &primary(&["eu-west-1"]), &foreign) else { panic!() };
    assert!(plan.actions.is_empty());
    assert_eq!(plan.blockers, vec![Blocker::NotOwned { key_id: "mrk-1".into() }]);
}

#[test]
fn a_replica_pending_deletion_in_a_region_back_on_the_list_is_cancelled() {
    let spec = replicated_spec(&["eu-west-1"]);
    let mut pending = replica();
    pending.key.state = "PendingDeletion".into();
    let ReplicaPlan::Keep(plan) =
        decide(&spec, &primary(&["eu-west-1"]), &Observed::Owned(Box::new(pending)))
    else {
        panic!()
    };
    assert_eq!(plan.actions, vec![Action::CancelDeletion]);
}

#[test]
fn the_regions_looked_at_are_the_specs_then_those_kms_lists_then_those_status_records() {
    let spec = replicated_spec(&["eu-west-1", "ap-south-1"]);
    let looked_at = regions_to_look_at(
        &spec,
        &primary(&["us-west-2", "eu-west-1"]),
        &["ca-central-1".into(), "us-west-2".into()],
    );
    assert_eq!(looked_at, ["eu-west-1", "ap-south-1", "us-west-2", "ca-central-1"]);
    assert!(regions_to_look_at(&mk_spec(), &primary(&[]), &[]).is_empty());
}

#[test]
fn the_primarys_own_region_is_never_looked_at_as_a_replicas_and_naming_it_is_reported() {
    let spec = replicated_spec(&["us-east-1", "eu-west-1"]);
    assert_eq!(regions_to_look_at(&spec, &primary(&["eu-west-1"]), &["us-east-1".into()]), ["eu-west-1"]);
    assert_eq!(own_region_listed(&spec, &primary(&[])).as_deref(), Some("us-east-1"));
    assert_eq!(own_region_listed(&replicated_spec(&["eu-west-1"]), &primary(&[])), None);
}
