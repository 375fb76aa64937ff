//! What to do when the object is deleted: drop the aliases this object made, then schedule
//! the key's deletion unless it already is. A key that may still appear (an interrupted
//! create, a key created moments ago) is waited for, never given up on.

use std::time::Duration;

use crate::api::KmsKeySpec;
use k8s_openapi::jiff::Timestamp;

use super::observed::{Observed, Recorded};
use super::timing::{missing_key_wait, settling_intent};
use super::{Action, is_pending_deletion};

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
pub fn plan_cleanup(spec: &KmsKeySpec, observed: &Observed, recorded: &Recorded, now: Timestamp) -> Cleanup {
    let key = match observed {
        Observed::Foreign { key_id } => return Cleanup::NotOwned { key_id: key_id.clone() },
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
