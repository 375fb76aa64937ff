//! Alias decisions, for `aliasName` and `additionalAliases`. An alias is never re-pointed from
//! a key this object does not own; a rename creates the new alias before the old one goes, and
//! only aliases this object recorded are ever deleted. An object that was stalled on an alias
//! does not take it by itself once it is free, unless the cluster allows it
//! (`Context::alias_handover_held`).

use crate::api::KmsKeySpec;

use super::observed::ObservedKey;
use super::{Action, Blocker, Context, Plan};

/// The call that creates a free alias, or the blocker while a stalled object may not take it.
/// An alias status records as this object's own (deleted out of band, say) is always taken back.
fn take(alias: &str, ctx: &Context) -> Result<Action, Blocker> {
    let recorded = ctx.recorded;
    let own = recorded.alias_name.as_deref() == Some(alias)
        || recorded.additional_aliases.iter().any(|a| a == alias);
    match ctx.alias_handover_held && !own {
        true => Err(Blocker::AliasHandoverHeld { alias: alias.to_owned() }),
        false => Ok(Action::CreateAlias(alias.to_owned())),
    }
}

/// Adds the calls that give the key the wanted alias, and drops the one it had before.
pub fn plan_alias(spec: &KmsKeySpec, observed: &ObservedKey, ctx: &Context, plan: &mut Plan) {
    let wanted = spec.full_alias_name();
    let recorded = ctx.recorded;
    match observed.alias_target.as_deref() {
        None => match take(&wanted, ctx) {
            Ok(create) => plan.actions.push(create),
            Err(held) => {
                plan.blockers.push(held);
                return;
            }
        },
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
pub fn plan_additional_aliases(spec: &KmsKeySpec, observed: &ObservedKey, ctx: &Context, plan: &mut Plan) {
    let recorded = ctx.recorded;
    let wanted = spec.full_additional_aliases();
    for alias in wanted.iter().filter(|a| !observed.aliases.contains(a)) {
        match observed.additional_alias_holders.get(alias).cloned().flatten() {
            None => match take(alias, ctx) {
                Ok(create) => plan.actions.push(create),
                Err(held) => plan.blockers.push(held),
            },
            Some(holder) => plan.blockers.push(Blocker::AliasConflict { alias: alias.clone(), holder }),
        }
    }
    let primary = spec.full_alias_name();
    let dropped = (recorded.additional_aliases.iter())
        .filter(|a| !wanted.contains(a) && **a != primary && observed.aliases.contains(a));
    plan.actions.extend(dropped.cloned().map(Action::DeleteAlias));
}
