//! How much each pass reads: the quick look of a settled object, the full read it falls back
//! to, the confirmation of a pass's own calls, and the key CreateKey just made.

use super::*;
use crate::kms::NewKey;
use crate::reconcile::plan::on_demand::RotationRequest;
use crate::reconcile::plan::reads::{self as looks, Depth, NextLook, Standing, depth, next_look, to_reread};

/// A case name, the spec, what status records, the standing, `rotate-now`, and the depth wanted.
type DepthCase<'a> = (&'a str, &'a KmsKeySpec, Recorded, Standing, Option<&'a str>, Depth);

const SETTLED: Standing = Standing { settled: true, full_read_due: false };

/// `mk_key()` as a quick look shows it: policy, rotation and grants unread.
fn quick(key: ObservedKey) -> Observed {
    let unread = vec![READ_POLICY, READ_ROTATION, READ_GRANTS];
    Observed::Owned(Box::new(ObservedKey { unread, policy: None, rotation: None, ..key }))
}

#[test]
fn only_a_settled_object_owning_its_recorded_key_gets_a_quick_look() {
    let spec = mk_spec();
    let adopting = KmsKeySpec {
        adopt: Some(crate::api::AdoptSpec {
            key_id: Some("k1".into()),
            alias_name: None,
            take_over_from_cluster: None,
        }),
        ..mk_spec()
    };
    let observer = KmsKeySpec { management_policy: ManagementPolicy::ObserveOnly, ..mk_spec() };
    let intent = Intent { token: "t".into(), started_at: now(), adopting: None };
    let uncounted = Recorded {
        on_demand: Some(RotationRequest { token: "r".into(), rotations_before: 1, rotated: true }),
        on_demand_rotations: Some(1),
        ..recorded()
    };
    let cases: [DepthCase; 9] = [
        ("settled", &spec, recorded(), SETTLED, None, Depth::Quick),
        ("not Ready at this generation", &spec, recorded(), Standing::default(), None, Depth::Full),
        ("full read due", &spec, recorded(), Standing { full_read_due: true, ..SETTLED }, None, Depth::Full),
        ("no key yet", &spec, Recorded::default(), SETTLED, None, Depth::Full),
        (
            "create in flight",
            &spec,
            Recorded { intent: Some(intent), ..recorded() },
            SETTLED,
            None,
            Depth::Full,
        ),
        ("adoption not done", &adopting, recorded(), SETTLED, None, Depth::Full),
        ("observer", &observer, recorded(), SETTLED, None, Depth::Full),
        ("rotate-now waiting", &spec, recorded(), SETTLED, Some("now"), Depth::Full),
        ("on-demand rotation not counted", &spec, uncounted, SETTLED, None, Depth::Full),
    ];
    for (case, spec, recorded, standing, rotate_now, wanted) in cases {
        assert_eq!(depth(spec, &recorded, standing, rotate_now), wanted, "{case}");
    }
    let adopted = Recorded { adopted: true, ..recorded() };
    assert_eq!(depth(&adopting, &adopted, SETTLED, None), Depth::Quick, "adoption done");
}

#[test]
fn a_quick_look_that_finds_nothing_to_do_settles_without_touching_unread_parts() {
    let plan = run(&mk_spec(), &quick(mk_key()), &recorded());
    assert_eq!(plan, Plan::default());
}

#[test]
fn a_quick_look_that_finds_anything_asks_for_a_full_read_and_changes_nothing() {
    let by_hand = KeyDescription { description: "by hand".into(), ..mk_key().key };
    let disabled = KeyDescription { state: "Disabled".into(), ..mk_key().key };
    let held = ObservedKey { alias_target: Some("k2".into()), aliases: vec![], ..mk_key() };
    let cases = [
        ("description", ObservedKey { key: by_hand, ..mk_key() }, mk_spec()),
        ("disabled", ObservedKey { key: disabled.clone(), ..mk_key() }, mk_spec()),
        ("alias held elsewhere", held, mk_spec()),
        (
            "kept disabled",
            ObservedKey { key: disabled, ..mk_key() },
            KmsKeySpec { is_enabled: false, ..mk_spec() },
        ),
    ];
    for (case, key, spec) in cases {
        let plan = run(&spec, &quick(key), &recorded());
        assert_eq!(plan, Plan { read_in_full: true, ..Plan::default() }, "{case}");
    }
}

#[test]
fn a_full_read_never_asks_for_another() {
    let key =
        ObservedKey { key: KeyDescription { description: "by hand".into(), ..mk_key().key }, ..mk_key() };
    let plan = run(&mk_spec(), &Observed::Owned(Box::new(key)), &recorded());
    assert!(!plan.read_in_full);
    assert_eq!(plan.actions, vec![Action::UpdateDescription("Orders key".into())]);
}

#[test]
fn a_pass_confirms_what_its_calls_touched_and_what_it_did_not_see() {
    let policy = Action::PutPolicy { policy: "{}".into(), statements: vec![] };
    let rotation = Action::SetRotation { enabled: true, period_days: None };
    let on_demand = Action::RotateOnDemand { token: "t".into(), rotations_before: 0 };
    let revoke = Action::RevokeGrant { name: "a".into(), grant_id: "g".into() };
    let pending = ObservedKey {
        key: KeyDescription { state: "PendingDeletion".into(), ..mk_key().key },
        rotation: None,
        ..mk_key()
    };
    let denied = ObservedKey { denied: vec![READ_GRANTS], ..mk_key() };
    let cases: [(&str, ObservedKey, Vec<Action>, Vec<&str>); 7] = [
        ("description only", mk_key(), vec![Action::UpdateDescription("d".into())], vec![]),
        ("policy", mk_key(), vec![policy], vec![READ_POLICY]),
        (
            "alias and rotation",
            mk_key(),
            vec![Action::CreateAlias("alias/a".into()), rotation],
            vec![READ_ALIASES, READ_ROTATION],
        ),
        ("on-demand rotation", mk_key(), vec![on_demand], vec![READ_ROTATION, READ_ROTATIONS]),
        ("grants", mk_key(), vec![revoke], vec![READ_GRANTS]),
        (
            "cancelled deletion: rotation was unreadable",
            pending,
            vec![Action::CancelDeletion],
            vec![READ_ROTATION],
        ),
        ("a refused read is tried again", denied, vec![Action::SetEnabled(true)], vec![READ_GRANTS]),
    ];
    for (case, before, actions, mut wanted) in cases {
        wanted.sort();
        assert_eq!(to_reread(&before, &actions), wanted, "{case}");
    }
    let adopted = ObservedKey::described(mk_key().key, mk_key().tags, false);
    let mut all = looks::PARTS.to_vec();
    all.sort();
    assert_eq!(to_reread(&adopted, &[]), all, "a key known by its description and tags only");
}

#[test]
fn the_key_createkey_just_made_is_known_without_a_read_and_then_configured() {
    let spec = mk_spec();
    let new_key = NewKey {
        description: "Orders key".into(),
        policy: None,
        tags: mk_key().tags,
        multi_region: false,
        key_spec: "SYMMETRIC_DEFAULT".into(),
        key_usage: "ENCRYPT_DECRYPT".into(),
    };
    let create = Action::CreateKey { key: new_key, token: "t0".into() };
    let before = Observed::NoKey { alias_target: None, account_arn: None };
    let NextLook::Known(key) = next_look(&spec, &before, std::slice::from_ref(&create), Some(mk_key().key))
    else {
        panic!("a created key is known")
    };
    assert_eq!(key.policy, default_policy(ARN), "AWS's default policy, as CreateKey without one gives");
    assert_eq!((key.aliases.len(), key.grants.len(), key.unread.len()), (0, 0, 0));
    let plan = run_after(&spec, &Observed::Owned(key), std::slice::from_ref(&create));
    assert_eq!(
        plan.actions,
        vec![
            Action::CreateAlias("alias/orders".into()),
            Action::SetRotation { enabled: true, period_days: Some(365) },
        ]
    );

    let with_extra = KmsKeySpec { additional_aliases: vec!["orders-v2".into()], ..mk_spec() };
    let extra = next_look(&with_extra, &before, std::slice::from_ref(&create), Some(mk_key().key));
    assert!(
        matches!(&extra, NextLook::Confirm { reread, .. } if *reread == vec![READ_ALIASES]),
        "who holds an additional alias was not looked up before CreateKey: {extra:?}"
    );
    let refused = next_look(&spec, &before, &[create], None);
    assert_eq!(refused, NextLook::Full, "a CreateKey that did not answer: read everything");
    let confirm = next_look(&spec, &Observed::Owned(Box::new(mk_key())), &[Action::SetEnabled(true)], None);
    assert!(matches!(confirm, NextLook::Confirm { reread, .. } if reread.is_empty()));
}

#[test]
fn grants_go_unread_only_for_a_settled_object_that_wants_and_records_none() {
    let with_grants = KmsKeySpec { create_grants: true, grants: vec![mk_grant_spec()], ..mk_spec() };
    let listed_but_off = KmsKeySpec { create_grants: false, ..with_grants.clone() };
    let recording = Recorded { grants_recorded: true, ..recorded() };
    let cases: [(&str, &KmsKeySpec, &Recorded, Standing, bool); 5] = [
        ("wants none, records none, settled", &mk_spec(), &recorded(), SETTLED, true),
        ("grants listed but createGrants off", &listed_but_off, &recorded(), SETTLED, true),
        ("wants grants", &with_grants, &recorded(), SETTLED, false),
        ("records a grant", &mk_spec(), &recording, SETTLED, false),
        ("spec changed since Ready", &mk_spec(), &recorded(), Standing::default(), false),
    ];
    for (case, spec, recorded, standing, wanted) in cases {
        assert_eq!(looks::grants_unread_are_none(spec, recorded, standing), wanted, "{case}");
    }
}
