//! Reads what KMS holds for an object into an [`Observed`]. Reads only; a missing key is a
//! value, not an error, and so is a read AWS refuses on the object's own key: the plan decides
//! what can be done without it (putting the spec's policy may be what gives the operator its
//! other permissions back).

use std::collections::BTreeMap;

use crate::api::{KmsKeySpec, ManagementPolicy};
use crate::kms::{ErrorKind, KmsError, KmsPort, Rotation};

use super::ownership::{Holder, Owner, TAG_UID};
use super::plan::{
    Observed, ObservedKey, READ_ALIASES, READ_GRANTS, READ_POLICY, READ_ROTATION, READ_ROTATIONS, Recorded,
    on_demand,
};
use super::{adopt, policy_builder};

/// How much of the key to read (see `plan::reads`).
#[derive(Clone, Debug)]
pub enum Basis<'a> {
    /// Everything; but when `no_grants` says the key has none of the operator's grants
    /// (`plan::reads::grants_unread_are_none`), ListGrants is not called.
    Full { no_grants: bool },
    /// Description and tags; aliases from this listing of the account's (alias → key ID); the
    /// rest unread.
    Quick(&'a BTreeMap<String, String>),
    /// Description, tags and the parts `reread` names; the rest as `before` shows it.
    Confirm { before: &'a ObservedKey, reread: Vec<&'static str> },
}

/// Observes the object's recorded key; else the key an interrupted create or adoption left
/// (found by its tags); else the key `spec.adopt` names; else whether the wanted alias is free.
pub async fn observe(
    kms: &dyn KmsPort,
    spec: &KmsKeySpec,
    owner: &Owner,
    recorded: &Recorded,
    rotate_now: Option<&str>,
    last_usage_due: bool,
    basis: Basis<'_>,
) -> Result<Observed, KmsError> {
    let wanted_alias = spec.full_alias_name();
    let adopting = spec.adopt.as_ref().filter(|_| !recorded.adopted);
    let key_id = match (&recorded.key_id, &recorded.intent, adopting) {
        (Some(id), _, None) => id.clone(),
        (None, Some(intent), _) => match adopt::find_owned_key(kms, owner, intent).await? {
            Some(id) => id,
            None => match adopting {
                Some(adopt) => adopt.key_reference(),
                None => return no_key(kms, spec, &wanted_alias).await,
            },
        },
        // Not adopted yet (a recorded key is one an ObserveOnly object looked at): the key
        // `adopt` names now.
        (_, _, Some(adopt)) => adopt.key_reference(),
        (None, None, None) => return no_key(kms, spec, &wanted_alias).await,
    };
    let key = match kms.describe_key(&key_id).await {
        Ok(Some(key)) => key,
        Ok(None) => return Ok(Observed::Missing { key_id }),
        Err(err) if err.kind == ErrorKind::AccessDenied => {
            return unreadable(kms, owner, key_id, "kms:DescribeKey").await;
        }
        Err(err) => return Err(err),
    };
    let tags = match kms.list_tags(&key.key_id).await {
        Ok(tags) => tags,
        Err(err) if err.kind == ErrorKind::AccessDenied => {
            return unreadable(kms, owner, key_id, "kms:ListResourceTags").await;
        }
        Err(err) => return Err(err),
    };
    let unrecorded = recorded.key_id.as_deref() != Some(key.key_id.as_str());
    let holder = (!owner.owns(&tags)).then(|| Holder::of(&tags));
    let observe_only = spec.management_policy == ManagementPolicy::ObserveOnly;
    match &holder {
        Some(_) if adopting.is_none() && !observe_only => {
            return Ok(Observed::Foreign { key_id: key.key_id });
        }
        // To adopt, the description and tags are all the plan needs; the rest is read once
        // the key is the object's. A key another object holds is not read further either,
        // not even to observe it: its policy and grants are that object's business.
        Some(holder) if !observe_only || *holder != Holder::Nobody => {
            let key = Box::new(ObservedKey::described(key, tags, unrecorded));
            return Ok(Observed::Unowned { key, holder: holder.clone() });
        }
        _ => {}
    }
    let mut observed = ObservedKey::described(key, tags, unrecorded);
    observed.unread.clear();
    let history_due =
        |rotation: &Rotation| holder.is_none() && on_demand::history_wanted(rotate_now, recorded, rotation);
    read_parts(kms, spec, &basis, history_due, &mut observed).await?;
    if last_usage_due && holder.is_none() {
        match kms.last_usage(&observed.key.key_id).await {
            Ok(usage) => observed.last_usage = Some(usage),
            Err(err) => observed.last_usage_unreadable = Some(err.to_string()),
        }
    }
    Ok(match holder {
        None => Observed::Owned(Box::new(observed)),
        Some(holder) => Observed::Unowned { key: Box::new(observed), holder },
    })
}

/// The key's parts besides its description and tags, each read, carried over from the
/// previous pass, taken from the account's alias listing, or left unread, as `basis` says.
/// `history_due` says whether the rotation history is worth reading, given the rotation status.
async fn read_parts(
    kms: &dyn KmsPort,
    spec: &KmsKeySpec,
    basis: &Basis<'_>,
    history_due: impl Fn(&Rotation) -> bool,
    observed: &mut ObservedKey,
) -> Result<(), KmsError> {
    let key_id = observed.key.key_id.clone();
    let carried = match basis {
        Basis::Confirm { before, reread } if before.key.key_id == key_id => {
            Some((*before, reread.as_slice()))
        }
        _ => None,
    };
    let source = |part: &str| match (basis, carried) {
        (_, Some((before, reread))) if !reread.contains(&part) => Source::Carry(before),
        (Basis::Full { no_grants: true }, _) if part == READ_GRANTS => Source::NoneMade,
        (Basis::Quick(listing), _) if part == READ_ALIASES => Source::Listing(listing),
        (Basis::Quick(_), _) => Source::Unread,
        _ => Source::Read,
    };
    let denied = &mut observed.denied;
    match source(READ_ROTATION) {
        Source::Read if observed.key.rotatable() => {
            let read = readable_in_state(kms.rotation(&key_id).await);
            observed.rotation = allowed(read, READ_ROTATION, denied)?.flatten();
        }
        Source::Read | Source::Listing(_) | Source::NoneMade => {}
        Source::Carry(before) => observed.rotation = before.rotation.clone(),
        Source::Unread => observed.unread.push(READ_ROTATION),
    }
    observed.past_rotations = match (&observed.rotation, source(READ_ROTATIONS)) {
        (Some(_), Source::Carry(before)) if before.past_rotations.is_some() => before.past_rotations.clone(),
        (Some(rotation), Source::Read | Source::Carry(_)) if history_due(rotation) => {
            allowed(kms.past_rotations(&key_id).await, READ_ROTATIONS, denied)?
        }
        _ => None,
    };
    match source(READ_POLICY) {
        Source::Read | Source::Listing(_) | Source::NoneMade => {
            observed.policy = allowed(kms.key_policy(&key_id).await, READ_POLICY, denied)?.flatten();
        }
        Source::Carry(before) => observed.policy = before.policy.clone(),
        Source::Unread => observed.unread.push(READ_POLICY),
    }
    let wanted_alias = spec.full_alias_name();
    match source(READ_ALIASES) {
        Source::Read | Source::NoneMade => {
            let aliases = allowed(kms.list_aliases(&key_id).await, READ_ALIASES, denied)?.unwrap_or_default();
            // An alias the key's own list shows needs no second look.
            observed.alias_target = match aliases.contains(&wanted_alias) {
                true => Some(key_id.clone()),
                false => kms.alias_target(&wanted_alias).await?,
            };
            for alias in spec.full_additional_aliases().into_iter().filter(|a| !aliases.contains(a)) {
                let holder = kms.alias_target(&alias).await?;
                observed.additional_alias_holders.insert(alias, holder);
            }
            observed.aliases = aliases;
        }
        Source::Listing(listing) => {
            let holder = |alias: &str| listing.get(alias).cloned();
            observed.aliases =
                (listing.iter()).filter(|(_, k)| **k == key_id).map(|(a, _)| a.clone()).collect();
            observed.alias_target = holder(&wanted_alias);
            for alias in spec.full_additional_aliases().into_iter().filter(|a| !observed.aliases.contains(a))
            {
                let held_by = holder(&alias);
                observed.additional_alias_holders.insert(alias, held_by);
            }
        }
        Source::Carry(before) => {
            observed.aliases = before.aliases.clone();
            observed.alias_target = before.alias_target.clone();
            observed.additional_alias_holders = before.additional_alias_holders.clone();
        }
        Source::Unread => observed.unread.push(READ_ALIASES),
    }
    match source(READ_GRANTS) {
        Source::Read | Source::Listing(_) => {
            let grants = allowed(kms.list_grants(&key_id).await, READ_GRANTS, &mut observed.denied)?;
            observed.grants = grants.unwrap_or_default();
        }
        Source::Carry(before) => observed.grants = before.grants.clone(),
        Source::Unread => observed.unread.push(READ_GRANTS),
        Source::NoneMade => {}
    }
    Ok(())
}

/// Where one part of the key comes from in this pass.
enum Source<'a> {
    Read,
    Carry(&'a ObservedKey),
    Listing(&'a BTreeMap<String, String>),
    Unread,
    /// Known to hold nothing the operator made, without a read.
    NoneMade,
}

/// No key yet: whether the wanted alias is free, and, when a built policy needs the account's
/// root before the key exists, an ARN naming the account.
async fn no_key(kms: &dyn KmsPort, spec: &KmsKeySpec, wanted_alias: &str) -> Result<Observed, KmsError> {
    let alias_target = kms.alias_target(wanted_alias).await?;
    let account_arn = match policy_builder::needs_account_at_create(spec) {
        true => kms.any_alias_arn().await?,
        false => None,
    };
    Ok(Observed::NoKey { alias_target, account_arn })
}

/// A key the operator may not call `permission` on, with whether the Tagging API (which needs
/// no key policy) shows it with this object's ownership tags.
async fn unreadable(
    kms: &dyn KmsPort,
    owner: &Owner,
    key_id: String,
    permission: &'static str,
) -> Result<Observed, KmsError> {
    let tagged = kms.find_tagged_keys(TAG_UID, &owner.uid).await.unwrap_or_default();
    let owned = tagged.iter().any(|k| k.key_id == key_id && owner.owns(&k.tags));
    Ok(Observed::Unreadable { key_id, permission, owned })
}

/// A read AWS refused is noted under `permission` and gives `None`.
fn allowed<T>(
    result: Result<T, KmsError>,
    permission: &'static str,
    denied: &mut Vec<&'static str>,
) -> Result<Option<T>, KmsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind == ErrorKind::AccessDenied => {
            denied.push(permission);
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// KMS refuses some reads in some key states (rotation status of a key pending deletion);
/// that makes the value unknown rather than the observation failed.
fn readable_in_state<T>(result: Result<T, KmsError>) -> Result<Option<T>, KmsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if matches!(err.kind, ErrorKind::InvalidState) => Ok(None),
        Err(err) if err.code.as_deref() == Some("UnsupportedOperationException") => Ok(None),
        Err(err) => Err(err),
    }
}
