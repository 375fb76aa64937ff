//! What to do when the object is deleted. With `deletionPolicy: Delete`: drop the aliases this
//! object made, then schedule the key's deletion unless it already is. With `Retain`: revoke
//! the operator's grants if the spec says so, then take the ownership tags off in one call
//! (after which this cluster may no longer manage the key); the key, its aliases and policy
//! stay. A key that may still appear (an interrupted create, a key created moments ago) is
//! waited for, never given up on.

use std::time::Duration;

use crate::api::{DeletionPolicy, KmsKeySpec, ManagementPolicy};
use k8s_openapi::jiff::Timestamp;

use super::super::ownership::OWNERSHIP_TAGS;
use super::grants::managed_name;
use super::observed::{Observed, Recorded};
use super::timing::{missing_key_wait, settling_intent};
use super::{Action, ObservedKey, READ_GRANTS, is_pending_deletion};

/// How to let go of the key when the object is deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Make these calls (maybe none), then release the object.
    Release(Vec<Action>),
    /// The key belongs to another object or cluster: release the object, touch nothing.
    NotOwned { key_id: String },
    /// A key may exist that KMS does not show yet (created moments ago): keep the finalizer
    /// and look again after this long.
    Wait(Duration),
    /// The operator may not read whose the key is: keep the finalizer until it may.
    Unreadable { key_id: String, permission: &'static str },
}

/// Decides how to let go of the key when the object is deleted.
pub fn plan_cleanup(
    spec: &KmsKeySpec,
    observed: &Observed,
    recorded: &Recorded,
    now: Timestamp,
    policy: DeletionPolicy,
) -> Cleanup {
    let key = match observed {
        Observed::Foreign { key_id } => return Cleanup::NotOwned { key_id: key_id.clone() },
        Observed::Unowned { key, .. } => return Cleanup::NotOwned { key_id: key.key.key_id.clone() },
        // A key `adopt` names but the object never took: not its to release.
        Observed::Unreadable { key_id, owned: false, .. } if spec.adopt.is_some() && !recorded.adopted => {
            return Cleanup::NotOwned { key_id: key_id.clone() };
        }
        Observed::Unreadable { key_id, permission, .. } => {
            return Cleanup::Unreadable { key_id: key_id.clone(), permission };
        }
        Observed::NoKey { .. } => {
            return settling_intent(recorded, now).map_or(Cleanup::Release(vec![]), Cleanup::Wait);
        }
        Observed::Missing { key_id } => {
            return missing_key_wait(key_id, recorded, now).map_or(Cleanup::Release(vec![]), Cleanup::Wait);
        }
        Observed::Owned(key) => key,
    };
    if policy == DeletionPolicy::Retain {
        return retain(spec, key);
    }
    let additional = spec.full_additional_aliases();
    let ours = |alias: &String| {
        *alias == spec.full_alias_name()
            || Some(alias) == recorded.alias_name.as_ref()
            || additional.contains(alias)
            || recorded.additional_aliases.contains(alias)
    };
    let mut actions: Vec<Action> =
        key.aliases.iter().filter(|a| ours(a)).cloned().map(Action::DeleteAlias).collect();
    if !is_pending_deletion(&key.key.state) {
        actions.push(Action::ScheduleDeletion(spec.deletion_window_in_days));
    }
    Cleanup::Release(actions)
}

/// The calls that let go of a key that stays: the operator's grants when the spec does not
/// keep them (an `ObserveOnly` object always keeps them), then every ownership tag the key
/// carries, in one call. A key pending deletion is left as it is (AWS refuses both). Grants
/// the operator may not list cannot be revoked: the release waits until it may.
fn retain(spec: &KmsKeySpec, key: &ObservedKey) -> Cleanup {
    if is_pending_deletion(&key.key.state) {
        return Cleanup::Release(Vec::new());
    }
    let keep_grants = spec.retain_grants || spec.management_policy == ManagementPolicy::ObserveOnly;
    if !keep_grants && key.was_denied(READ_GRANTS) {
        return Cleanup::Unreadable { key_id: key.key.key_id.clone(), permission: READ_GRANTS };
    }
    let mut actions: Vec<Action> = match keep_grants {
        true => Vec::new(),
        false => (key.grants.iter())
            .filter_map(|g| {
                let name = managed_name(g)?;
                Some(Action::RevokeGrant { name: name.to_owned(), grant_id: g.grant_id.clone() })
            })
            .collect(),
    };
    let ownership: Vec<String> =
        OWNERSHIP_TAGS.iter().filter(|t| key.tags.contains_key(**t)).map(|t| (*t).to_owned()).collect();
    if !ownership.is_empty() {
        actions.push(Action::Untag(ownership));
    }
    Cleanup::Release(actions)
}
