//! On-demand rotation through the `rotate-now` annotation.

use super::*;
use crate::kms::PastRotation;
use crate::reconcile::plan::on_demand::{RotationRequest, history_wanted, taken_at};

fn run_with(token: Option<&str>, recorded: &Recorded, key: ObservedKey) -> Plan {
    run_spec(&mk_spec(), token, recorded, key)
}

fn run_spec(spec: &KmsKeySpec, token: Option<&str>, recorded: &Recorded, key: ObservedKey) -> Plan {
    run_annotated(spec, &Observed::Owned(Box::new(key)), recorded, token)
}

fn past(kind: &str) -> PastRotation {
    PastRotation { date: now().to_string(), kind: kind.into() }
}

fn with_history(history: Vec<PastRotation>) -> ObservedKey {
    ObservedKey { past_rotations: Some(history), ..mk_key() }
}

/// Status records a request for `token` made when the key had `before` on-demand rotations.
fn requested(token: &str, before: usize, rotated: bool) -> Recorded {
    let request = RotationRequest { token: token.into(), rotations_before: before, rotated };
    Recorded { on_demand: Some(request), ..recorded() }
}

fn rotate(token: &str, before: usize) -> Vec<Action> {
    vec![Action::RotateOnDemand { token: token.into(), rotations_before: before }]
}

#[test]
fn a_new_token_rotates_once_and_a_rotated_one_never_again() {
    assert!(run_with(None, &recorded(), with_history(vec![])).actions.is_empty());
    assert_eq!(run_with(Some("r1"), &recorded(), with_history(vec![])).actions, rotate("r1", 0));
    let one = || with_history(vec![past("ON_DEMAND")]);
    assert!(run_with(Some("r1"), &requested("r1", 0, true), one()).actions.is_empty());
    assert_eq!(run_with(Some("r2"), &requested("r1", 0, true), one()).actions, rotate("r2", 1));
    assert!(run_with(Some(""), &recorded(), one()).actions.is_empty(), "an empty value asks nothing");
}

#[test]
fn a_request_cut_off_by_a_restart_is_confirmed_by_the_history_or_sent_again() {
    let unconfirmed = requested("r1", 1, false);
    let done = with_history(vec![past("ON_DEMAND"), past("AUTOMATIC"), past("ON_DEMAND")]);
    assert!(run_with(Some("r1"), &unconfirmed, done).actions.is_empty(), "KMS took it: not again");
    let not_reached = with_history(vec![past("ON_DEMAND"), past("AUTOMATIC")]);
    assert_eq!(run_with(Some("r1"), &unconfirmed, not_reached).actions, rotate("r1", 1));
    let mut in_progress = with_history(vec![past("ON_DEMAND")]);
    in_progress.rotation.as_mut().unwrap().on_demand_started = Some(now().to_string());
    assert!(run_with(Some("r1"), &unconfirmed, in_progress).actions.is_empty(), "still rotating");
}

#[test]
fn nothing_is_decided_without_the_history() {
    let plan = run_with(Some("r1"), &recorded(), mk_key());
    assert!(plan.actions.is_empty() && plan.blockers.is_empty(), "{plan:?}");
}

#[test]
fn a_key_that_cannot_rotate_or_has_used_its_25_rotations_stalls() {
    let mut rsa = with_history(vec![]);
    (rsa.key.key_spec, rsa.key.key_usage, rsa.rotation) = ("RSA_2048".into(), "SIGN_VERIFY".into(), None);
    let spec = KmsKeySpec {
        key_spec: KeySpec::Rsa2048,
        key_usage: KeyUsage::SignVerify,
        enable_key_rotation: false,
        ..mk_spec()
    };
    let plan = run_spec(&spec, Some("r1"), &recorded(), rsa);
    assert_eq!(plan.blockers, vec![Blocker::CannotRotate { key_spec: "RSA_2048".into() }]);
    let used = with_history((0..25).map(|_| past("ON_DEMAND")).collect());
    let plan = run_with(Some("r1"), &recorded(), used);
    assert_eq!((plan.actions.len(), plan.blockers), (0, vec![Blocker::OnDemandRotationLimit]));
    let automatic = with_history((0..30).map(|_| past("AUTOMATIC")).collect());
    assert_eq!(
        run_with(Some("r1"), &recorded(), automatic).actions,
        rotate("r1", 0),
        "automatic ones do not count"
    );
}

#[test]
fn a_key_that_stays_disabled_rotates_once_enabled() {
    let mut key = with_history(vec![]);
    key.key.state = "Disabled".into();
    let spec = KmsKeySpec { is_enabled: false, ..mk_spec() };
    let plan = run_spec(&spec, Some("r1"), &recorded(), key);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(plan.deferred, vec!["the on-demand rotation once the key is enabled".to_owned()]);
}

#[test]
fn the_history_is_read_only_when_a_rotation_is_asked_for_or_happened_or_never_counted() {
    let rotation = Rotation {
        enabled: true,
        period_days: Some(365),
        next_rotation: Some("n1".into()),
        on_demand_started: None,
    };
    let seen = |recorded: Recorded, counted: usize| Recorded {
        on_demand_rotations: Some(counted),
        next_rotation: Some("n1".into()),
        ..recorded
    };
    assert!(!history_wanted(None, &seen(recorded(), 0), &rotation), "a steady resync reads no history");
    assert!(history_wanted(Some("r1"), &seen(recorded(), 0), &rotation), "asked for");
    assert!(!history_wanted(Some("r1"), &seen(requested("r1", 0, true), 1), &rotation), "done and counted");
    assert!(history_wanted(None, &seen(requested("r1", 0, true), 0), &rotation), "done, not counted yet");
    let moved = Recorded { next_rotation: Some("n0".into()), ..seen(recorded(), 0) };
    assert!(history_wanted(None, &moved, &rotation), "an automatic rotation happened");
    assert!(history_wanted(None, &Recorded { on_demand_rotations: None, ..seen(recorded(), 0) }, &rotation));
}

#[test]
fn a_request_is_taken_when_the_history_counts_more_on_demand_rotations_than_before_it() {
    let request = RotationRequest { token: "r".into(), rotations_before: 1, rotated: false };
    assert_eq!(taken_at(&request, &[past("ON_DEMAND")], None), None);
    assert_eq!(taken_at(&request, &[past("ON_DEMAND"), past("ON_DEMAND")], None), Some(now().to_string()));
    assert_eq!(taken_at(&request, &[past("ON_DEMAND"), past("AUTOMATIC")], None), None);
}

#[test]
fn a_value_acted_on_before_does_not_rotate_again_when_restored() {
    let recorded = Recorded { rotate_now_values: vec!["r1".into()], ..requested("r2", 1, true) };
    assert!(
        run_with(Some("r1"), &recorded, with_history(vec![past("ON_DEMAND")])).actions.is_empty(),
        "a GitOps revert"
    );
    let mut values: Vec<String> = (0..25).map(|i| format!("v{i}")).collect();
    crate::reconcile::plan::on_demand::remember_value(&mut values, "v3");
    assert_eq!(
        (values.len(), values.last().map(String::as_str)),
        (25, Some("v3")),
        "moved to the end, not repeated"
    );
    crate::reconcile::plan::on_demand::remember_value(&mut values, "new");
    assert_eq!((values.len(), values[0].as_str()), (25, "v1"), "the oldest goes");
}
