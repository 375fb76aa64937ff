//! Additional aliases: made like `aliasName`, never taken from another key, deleted when they
//! leave the spec.

use super::*;
use crate::api::DeletionPolicy;

fn with_extra(names: &[&str]) -> KmsKeySpec {
    KmsKeySpec { additional_aliases: names.iter().map(|n| n.to_string()).collect(), ..mk_spec() }
}

fn key_with_aliases(aliases: &[&str], holders: &[(&str, Option<&str>)]) -> ObservedKey {
    ObservedKey {
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        additional_alias_holders: holders
            .iter()
            .map(|(a, h)| (a.to_string(), h.map(str::to_owned)))
            .collect(),
        ..mk_key()
    }
}

#[test]
fn free_additional_aliases_are_created_and_present_ones_kept() {
    let spec = with_extra(&["orders-v2", "billing/orders"]);
    let key = key_with_aliases(&["alias/orders", "alias/orders-v2"], &[("alias/billing/orders", None)]);
    assert_eq!(actions(&spec, key), vec![Action::CreateAlias("alias/billing/orders".into())]);
}

#[test]
fn an_additional_alias_held_by_another_key_is_a_conflict_and_never_moved() {
    let spec = with_extra(&["shared"]);
    let key = key_with_aliases(&["alias/orders"], &[("alias/shared", Some("k2"))]);
    let plan = run_key(&spec, key);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(
        plan.blockers,
        vec![Blocker::AliasConflict { alias: "alias/shared".into(), holder: "k2".into() }]
    );
}

#[test]
fn only_additional_aliases_this_object_made_are_deleted_when_they_leave_the_spec() {
    let recorded = Recorded { additional_aliases: vec!["alias/old".into()], ..recorded() };
    let key = key_with_aliases(&["alias/orders", "alias/old", "alias/by-hand"], &[]);
    let plan = run(&mk_spec(), &Observed::Owned(Box::new(key)), &recorded);
    assert_eq!(plan.actions, vec![Action::DeleteAlias("alias/old".into())]);
}

#[test]
fn deleting_the_object_drops_its_additional_aliases_too() {
    let spec = with_extra(&["orders-v2"]);
    let recorded = Recorded { additional_aliases: vec!["alias/old".into()], ..recorded() };
    let key = key_with_aliases(&["alias/orders", "alias/orders-v2", "alias/old", "alias/by-hand"], &[]);
    let Cleanup::Release(got) =
        plan_cleanup(&spec, &Observed::Owned(Box::new(key)), &recorded, now(), DeletionPolicy::Delete)
    else {
        panic!()
    };
    let deleted: Vec<&Action> = got.iter().filter(|a| matches!(a, Action::DeleteAlias(_))).collect();
    assert_eq!(deleted.len(), 3, "{got:?}");
    assert!(!got.contains(&Action::DeleteAlias("alias/by-hand".into())));
}

#[test]
fn renaming_while_keeping_the_old_name_as_an_additional_alias_deletes_nothing() {
    let spec = KmsKeySpec { alias_name: "orders-v2".into(), ..with_extra(&["orders"]) };
    let key = key_with_aliases(&["alias/orders"], &[]);
    let key = ObservedKey { alias_target: None, ..key };
    assert_eq!(actions(&spec, key), vec![Action::CreateAlias("alias/orders-v2".into())]);
}

/// A plan for an object that was stalled on its alias and may not take it by itself.
fn run_held(spec: &KmsKeySpec, observed: &Observed, recorded: &Recorded) -> Plan {
    run_in(spec, observed, recorded, None, true)
}

#[test]
fn a_freed_alias_is_not_taken_by_an_object_that_waited_for_it_unless_allowed() {
    let free = Observed::NoKey { alias_target: None, account_arn: None };
    let held = run_held(&mk_spec(), &free, &Recorded::default());
    assert_eq!(held.blockers, vec![Blocker::AliasHandoverHeld { alias: "alias/orders".into() }]);
    assert!(held.actions.is_empty(), "no key is made for an alias it may not take");

    let mut renamed = mk_key();
    renamed.alias_target = None;
    let spec =
        KmsKeySpec { alias_name: "payments".into(), additional_aliases: vec!["extra".into()], ..mk_spec() };
    renamed.additional_alias_holders.insert("alias/extra".into(), None);
    let held = run_held(&spec, &Observed::Owned(Box::new(renamed.clone())), &recorded());
    assert_eq!(
        held.blockers,
        vec![
            Blocker::AliasHandoverHeld { alias: "alias/payments".into() },
            Blocker::AliasHandoverHeld { alias: "alias/extra".into() },
        ]
    );
    assert!(
        !held.actions.iter().any(|a| matches!(a, Action::CreateAlias(_) | Action::DeleteAlias(_))),
        "{held:?}"
    );
    let free_to_take = run(&spec, &Observed::Owned(Box::new(renamed)), &recorded());
    assert!(free_to_take.actions.contains(&Action::CreateAlias("alias/payments".into())));
}

#[test]
fn only_a_stalled_object_without_a_claim_under_a_manual_policy_is_held() {
    use crate::api::{AliasHandover, AliasHold, KmsKeyPolicySpec};
    use crate::reconcile::guardrails::{Rules, alias_handover_held};
    let rules = |handover| Rules {
        policy: KmsKeyPolicySpec { alias_handover: handover, ..KmsKeyPolicySpec::default() },
        own_account: "123456789012".into(),
    };
    let (manual, automatic) = (rules(AliasHandover::Manual), rules(AliasHandover::Automatic));
    let hold = AliasHold { generation: 3, token: "t-9".into() };
    assert!(alias_handover_held(None, Some(&hold), Some(3), None), "no policy: Manual");
    assert!(alias_handover_held(Some(&manual), Some(&hold), Some(3), None));
    assert!(
        alias_handover_held(Some(&manual), Some(&hold), Some(3), Some("true")),
        "a claim made in advance is no claim"
    );
    assert!(
        !alias_handover_held(Some(&manual), Some(&hold), Some(3), Some("t-9")),
        "claimed with the hold's token"
    );
    assert!(!alias_handover_held(Some(&manual), Some(&hold), Some(4), None), "the spec changed since");
    assert!(!alias_handover_held(Some(&manual), None, Some(3), None), "never stalled on it");
    assert!(!alias_handover_held(Some(&automatic), Some(&hold), Some(3), None));
}

#[test]
fn an_alias_recorded_as_the_objects_own_is_taken_back_even_while_held() {
    let mut key = mk_key();
    key.aliases.clear();
    key.alias_target = None;
    let plan = run_held(&mk_spec(), &Observed::Owned(Box::new(key)), &recorded());
    assert!(plan.actions.contains(&Action::CreateAlias("alias/orders".into())), "{plan:?}");
    assert!(plan.blockers.is_empty());
}
