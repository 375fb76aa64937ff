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
