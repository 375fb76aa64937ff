//! The decisions: given the spec, what the operator recorded, and what KMS holds, which calls
//! to make and in which order. Pure and synchronous; time and the create token come in as
//! arguments, so every branch is tested with plain values.
//!
//! Order matters because KMS refuses some calls in some key states: a key pending deletion is
//! first cancelled (and nothing else is done in that pass); a key to enable is enabled before
//! rotation and grants are set; a key to disable is disabled last.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::KmsKeySpec;
use crate::kms::{GrantInfo, KeyDescription, NewGrant, NewKey};

use super::grants::plan_grants;
use super::ownership::{Owner, TAG_CREATE_TOKEN};
use super::policy::{default_policy, policies_equal};

/// How long after a create attempt a key may still be missing from ListKeys. Until then a
/// pending attempt is waited for instead of repeated.
pub const CREATE_SETTLE: Duration = Duration::from_secs(30);

/// How long after its creation a key may still be unknown to DescribeKey (KMS is eventually
/// consistent). Until then a missing key is waited for, not reported as gone.
pub const KEY_VISIBILITY_GRACE: Duration = Duration::from_secs(120);

/// What the operator wrote in status earlier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    pub key_id: Option<String>,
    /// When the key ID was recorded.
    pub key_created_at: Option<Timestamp>,
    pub alias_name: Option<String>,
    pub intent: Option<Intent>,
}

/// A create attempt that was started but never saw its key ID recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    pub token: String,
    pub started_at: Timestamp,
}

/// What KMS holds for the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// No key is recorded and none carries this object's tags. `alias_target` is the key
    /// that holds the wanted alias, if any.
    NoKey { alias_target: Option<String> },
    /// The recorded key ID does not exist in KMS.
    Missing { key_id: String },
    /// The recorded key exists but is tagged for another object or cluster.
    Foreign { key_id: String },
    /// The object's own key.
    Owned(Box<ObservedKey>),
}

/// The object's key as KMS describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedKey {
    pub key: KeyDescription,
    pub tags: BTreeMap<String, String>,
    /// `None` when the key's state does not let KMS report it.
    pub rotation_enabled: Option<bool>,
    pub policy: Option<String>,
    /// Aliases that point at this key.
    pub aliases: Vec<String>,
    /// The key that holds the wanted alias, if any (maybe this one).
    pub alias_target: Option<String>,
    pub grants: Vec<GrantInfo>,
}

/// One KMS call to make. Calls on an existing key apply to the observed key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    CreateKey { key: NewKey, token: String },
    CancelDeletion,
    SetEnabled(bool),
    UpdateDescription(String),
    PutPolicy(String),
    Tag(BTreeMap<String, String>),
    Untag(Vec<String>),
    CreateAlias(String),
    DeleteAlias(String),
    SetRotation(bool),
    RevokeGrant { name: String, grant_id: String },
    CreateGrant(NewGrant),
    ScheduleDeletion(i32),
}

/// Something that stops the operator until a person (or another object) acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// The alias belongs to another key; it is never re-pointed.
    AliasConflict { alias: String, holder: String },
    /// The recorded key no longer exists; it is not silently re-created.
    KeyNotFound { key_id: String },
    /// The recorded key is tagged for another object or cluster.
    NotOwned { key_id: String },
    /// The key's multi-Region flag differs from the spec and cannot change.
    MultiRegionMismatch { key_is_multi_region: bool },
}

/// Something to wait for that resolves without anyone acting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The key is in a transitional state (Creating, Updating, ...).
    KeyState(String),
    /// A create attempt may still appear in ListKeys; look again after this long.
    CreateSettling(Duration),
    /// The key was created moments ago and KMS does not describe it yet.
    KeyNotVisibleYet(Duration),
}

/// The decided calls, plus what keeps the object from being Ready.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub blockers: Vec<Blocker>,
    pub hold: Option<Hold>,
    /// Changes that the key's state does not allow now (rotation of a disabled key).
    pub deferred: Vec<String>,
}

/// Inputs of one planning step besides the spec and the observation.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub owner: &'a Owner,
    pub recorded: &'a Recorded,
    pub now: Timestamp,
    /// Token for a CreateKey this plan may decide on.
    pub fresh_token: &'a str,
}

/// Decides how to make KMS match the spec.
pub fn plan(spec: &KmsKeySpec, observed: &Observed, ctx: &Context) -> Plan {
    match observed {
        Observed::NoKey { alias_target } => plan_create(spec, alias_target.as_deref(), ctx),
        Observed::Missing { key_id } => match young_key(ctx.recorded, ctx.now) {
            Some(left) => Plan { hold: Some(Hold::KeyNotVisibleYet(left)), ..Plan::default() },
            None => blocked(Blocker::KeyNotFound { key_id: key_id.clone() }),
        },
        Observed::Foreign { key_id } => blocked(Blocker::NotOwned { key_id: key_id.clone() }),
        Observed::Owned(key) => plan_update(spec, key, ctx),
    }
}

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
}

/// Decides how to let go of the key when the object is deleted: drop the aliases this object
/// made, then schedule deletion unless it already is. A key that may still appear (an
/// interrupted create, a key created moments ago) is waited for, never given up on.
pub fn plan_cleanup(spec: &KmsKeySpec, observed: &Observed, recorded: &Recorded, now: Timestamp) -> Cleanup {
    let key = match observed {
        Observed::Foreign { key_id } => return Cleanup::NotOwned { key_id: key_id.clone() },
        Observed::NoKey { .. } => {
            return settling_intent(recorded, now).map_or(Cleanup::Release(vec![]), Cleanup::Wait);
        }
        Observed::Missing { .. } => {
            return young_key(recorded, now).map_or(Cleanup::Release(vec![]), Cleanup::Wait);
        }
        Observed::Owned(key) => key,
    };
    let ours =
        |alias: &String| *alias == spec.full_alias_name() || Some(alias) == recorded.alias_name.as_ref();
    let mut actions: Vec<Action> =
        key.aliases.iter().filter(|a| ours(a)).cloned().map(Action::DeleteAlias).collect();
    if !is_pending_deletion(&key.key.state) {
        actions.push(Action::ScheduleDeletion(spec.deletion_window_in_days));
    }
    Cleanup::Release(actions)
}

/// How much longer a missing key may be waited for, while it was recorded moments ago.
pub fn young_key(recorded: &Recorded, now: Timestamp) -> Option<Duration> {
    let age = now.duration_since(recorded.key_created_at?).unsigned_abs();
    KEY_VISIBILITY_GRACE.checked_sub(age).filter(|left| !left.is_zero())
}

/// How much longer an unfinished create attempt may still surface in ListKeys.
pub fn settling_intent(recorded: &Recorded, now: Timestamp) -> Option<Duration> {
    let age = now.duration_since(recorded.intent.as_ref()?.started_at).unsigned_abs();
    CREATE_SETTLE.checked_sub(age).filter(|left| !left.is_zero())
}

fn blocked(blocker: Blocker) -> Plan {
    Plan { blockers: vec![blocker], ..Plan::default() }
}

pub fn is_pending_deletion(state: &str) -> bool {
    matches!(state, "PendingDeletion" | "PendingReplicaDeletion")
}

fn plan_create(spec: &KmsKeySpec, alias_target: Option<&str>, ctx: &Context) -> Plan {
    if let Some(left) = settling_intent(ctx.recorded, ctx.now) {
        return Plan { hold: Some(Hold::CreateSettling(left)), ..Plan::default() };
    }
    if let Some(holder) = alias_target {
        let alias = spec.full_alias_name();
        return blocked(Blocker::AliasConflict { alias, holder: holder.to_owned() });
    }
    let mut tags = spec.tags.clone();
    tags.extend(ctx.owner.tags());
    tags.insert(TAG_CREATE_TOKEN.to_owned(), ctx.fresh_token.to_owned());
    let key = NewKey {
        description: spec.key_description.clone(),
        policy: spec.key_policy.clone(),
        tags,
        multi_region: spec.multi_region,
    };
    Plan { actions: vec![Action::CreateKey { key, token: ctx.fresh_token.to_owned() }], ..Plan::default() }
}

fn plan_update(spec: &KmsKeySpec, observed: &ObservedKey, ctx: &Context) -> Plan {
    let mut plan = Plan::default();
    let state = observed.key.state.as_str();
    if is_pending_deletion(state) {
        plan.actions.push(Action::CancelDeletion);
        return plan;
    }
    if !matches!(state, "Enabled" | "Disabled") {
        plan.hold = Some(Hold::KeyState(state.to_owned()));
        return plan;
    }
    if observed.key.multi_region != spec.multi_region {
        let key_is_multi_region = observed.key.multi_region;
        plan.blockers.push(Blocker::MultiRegionMismatch { key_is_multi_region });
    }
    let enabled_now = state == "Enabled";
    if spec.is_enabled && !enabled_now {
        plan.actions.push(Action::SetEnabled(true));
    }
    plan_metadata(spec, observed, ctx, &mut plan.actions);
    plan_alias(spec, observed, ctx.recorded, &mut plan);

    let usable = spec.is_enabled || enabled_now;
    match observed.rotation_enabled {
        Some(on) if on != spec.enable_key_rotation && usable => {
            plan.actions.push(Action::SetRotation(spec.enable_key_rotation));
        }
        Some(on) if on != spec.enable_key_rotation => {
            plan.deferred.push("key rotation changes once the key is enabled".to_owned());
        }
        _ => {}
    }
    plan_grants(spec, &observed.grants, usable, &mut plan);

    if !spec.is_enabled && enabled_now {
        plan.actions.push(Action::SetEnabled(false));
    }
    plan
}

fn plan_metadata(spec: &KmsKeySpec, observed: &ObservedKey, ctx: &Context, out: &mut Vec<Action>) {
    if observed.key.description != spec.key_description {
        out.push(Action::UpdateDescription(spec.key_description.clone()));
    }
    let wanted_policy = spec.key_policy.clone().or_else(|| default_policy(&observed.key.arn));
    if let Some(wanted) = wanted_policy {
        let current = observed.policy.as_deref().unwrap_or_default();
        if !policies_equal(&wanted, current) {
            out.push(Action::PutPolicy(wanted));
        }
    }
    let mut wanted_tags = spec.tags.clone();
    wanted_tags.extend(ctx.owner.tags());
    let to_set: BTreeMap<String, String> = (wanted_tags.iter())
        .filter(|(k, v)| observed.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let to_remove: Vec<String> = (observed.tags.keys())
        .filter(|k| !wanted_tags.contains_key(*k) && *k != TAG_CREATE_TOKEN)
        .cloned()
        .collect();
    if !to_set.is_empty() {
        out.push(Action::Tag(to_set));
    }
    if !to_remove.is_empty() {
        out.push(Action::Untag(to_remove));
    }
}

fn plan_alias(spec: &KmsKeySpec, observed: &ObservedKey, recorded: &Recorded, plan: &mut Plan) {
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
    // The alias this object used before a rename; others pointing at the key are left alone.
    let renamed_from =
        (recorded.alias_name.as_ref()).filter(|old| **old != wanted && observed.aliases.contains(old));
    if let Some(old) = renamed_from {
        plan.actions.push(Action::DeleteAlias(old.clone()));
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
pub(crate) mod tests;
