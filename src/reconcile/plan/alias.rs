//! Alias decisions, for `aliasName` and `additionalAliases`. An alias is never re-pointed from
//! a key this object does not own; a rename creates the new alias before the old one goes, and
//! only aliases this object recorded are ever deleted.

use crate::api::KmsKeySpec;

use super::observed::{ObservedKey, Recorded};
use super::{Action, Blocker, Plan};

/// Adds the calls that give the key the wanted alias, and drops the one it had before.
pub fn plan_alias(spec: &KmsKeySpec, observed: &ObservedKey, recorded: &Recorded, plan: &mut Plan) {
    let wanted = spec.full_alias_name();
    match observed.alias_target.as_deref() {
        None => plan.actions.push(Action::CreateAlias(wanted.clone())),
        Some(holder) if holder != observed.key.key_id => {
            // The key keeps its old alias until the new name is free.
            let holder = holder.to_owned();
            plan.blockers.push(Blocker::AliasConflict { alias: wanted, holder });
            return;
        }
        Some(_) => {}
    }
    // The alias this object used before a rename, unless the spec keeps it as an additional
    // alias (the way to rename without breaking clients); others are left alone.
    let kept = spec.full_additional_aliases();
    let renamed_from = (recorded.alias_name.as_ref())
        .filter(|old| **old != wanted && observed.aliases.contains(old) && !kept.contains(old));
    if let Some(old) = renamed_from {
        plan.actions.push(Action::DeleteAlias(old.clone()));
    }
}

/// Creates the wanted additional aliases that are free, reports those another key holds, and
/// deletes those this object made that left the spec.
pub fn plan_additional_aliases(
    spec: &KmsKeySpec,
    observed: &ObservedKey,
    recorded: &Recorded,
    plan: &mut Plan,
) {
    let wanted = spec.full_additional_aliases();
    for alias in wanted.iter().filter(|a| !observed.aliases.contains(a)) {
        match observed.additional_alias_holders.get(alias).cloned().flatten() {
            None => plan.actions.push(Action::CreateAlias(alias.clone())),
            Some(holder) => plan.blockers.push(Blocker::AliasConflict { alias: alias.clone(), holder }),
        }
    }
    let primary = spec.full_alias_name();
    let dropped = (recorded.additional_aliases.iter())
        .filter(|a| !wanted.contains(a) && **a != primary && observed.aliases.contains(a));
    plan.actions.extend(dropped.cloned().map(Action::DeleteAlias));
}
