//! The decisions: given the spec, what the operator recorded, and what KMS holds, which calls
//! to make and in which order. Pure and synchronous; time, the create token and the previous
//! pass's actions come in as arguments, so every branch is tested with plain values. One file
//! per concern; the order of the calls is decided here, in [`plan_update`]:
//!
//! - a key found after an interrupted create is recorded before anything else;
//! - a key pending deletion is first cancelled, and nothing else is done in that pass (KMS
//!   refuses almost everything then);
//! - the policy comes first (it may be what lets the operator do the rest); a key to enable
//!   is enabled next, before rotation and grants are set;
//! - grants are created before the ones they replace are revoked;
//! - a key to disable is disabled last.

use k8s_openapi::jiff::Timestamp;
use std::time::Duration;

use crate::api::{KmsKeySpec, ManagementPolicy};
use crate::kms::{KeyDescription, NewGrant, NewKey};

use super::ownership::{Holder, Owner};
use super::policy::{differing_statements, policies_equal};
use super::policy_builder::wanted_policy;

mod adoption;
mod alias;
mod cleanup;
mod create;
pub mod grants;
mod observed;
pub mod on_demand;
pub mod reads;
pub mod replicas;
mod rotation;
pub mod summary;
mod tags;
pub mod timing;

pub use cleanup::{Cleanup, plan_cleanup};
pub use observed::{Intent, Observed, ObservedKey, Recorded};
pub use timing::{Denial, judge_denial};

/// Permission names of the reads observe makes, as AWS names them in a refusal.
pub const READ_POLICY: &str = "kms:GetKeyPolicy";
pub const READ_ROTATION: &str = "kms:GetKeyRotationStatus";
pub const READ_ROTATIONS: &str = "kms:ListKeyRotations";
pub const READ_ALIASES: &str = "kms:ListAliases";
pub const READ_GRANTS: &str = "kms:ListGrants";

/// One KMS call to make (or, for `RecordKey`, one status write). Calls on an existing key
/// apply to the observed key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    CreateKey {
        key: NewKey,
        token: String,
    },
    /// Tag a key the object adopts with the object's ownership tags, after recording the
    /// attempt (`token`, also written as the create-token tag) so that a restart in between
    /// finds the key by its tags whatever the spec says by then.
    Adopt {
        tags: std::collections::BTreeMap<String, String>,
        token: String,
    },
    /// Record in status a key that an interrupted create left behind, or one just adopted.
    RecordKey(KeyDescription),
    CancelDeletion,
    SetEnabled(bool),
    UpdateDescription(String),
    /// Put this policy; `statements` names those that differ from the key's (by `Sid`).
    PutPolicy {
        policy: String,
        statements: Vec<String>,
    },
    Tag(std::collections::BTreeMap<String, String>),
    Untag(Vec<String>),
    CreateAlias(String),
    DeleteAlias(String),
    /// Enable rotation every `period_days`, or disable it.
    SetRotation {
        enabled: bool,
        period_days: Option<i32>,
    },
    RevokeGrant {
        name: String,
        grant_id: String,
    },
    CreateGrant(NewGrant),
    /// Rotate the key material now, for the `rotate-now` annotation's value `token`.
    RotateOnDemand {
        token: String,
        /// On-demand rotations the key had until now (recorded with the request).
        rotations_before: usize,
    },
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
    /// The key `spec.adopt` names carries another object's ownership tags: in this cluster
    /// (never taken) or in another one that `takeOverFromCluster` does not name.
    HeldElsewhere { key_id: String, cluster: String, owner: String, same_cluster: bool },
    /// The key `spec.adopt` names (`reference`: the field and its value) does not exist.
    AdoptTargetMissing { reference: String },
    /// The key to adopt is pending deletion: AWS refuses to tag it, and the operator may not
    /// cancel the deletion of a key that is not tagged for its cluster.
    AdoptPendingDeletion { key_id: String },
    /// AWS has refused these reads for longer than IAM takes to catch up.
    ReadDenied { key_id: String, permissions: Vec<&'static str> },
    /// The key's spec or usage (`field`) differs from the spec's; KMS cannot change either.
    WrongKind { field: &'static str, wanted: String, actual: String },
    /// An on-demand rotation is asked for a key whose material AWS does not rotate.
    CannotRotate { key_spec: String },
    /// An on-demand rotation is asked for a key that has had all AWS allows.
    OnDemandRotationLimit,
    /// The alias this object was stalled on is free, but the cluster does not let a stalled
    /// object take it by itself.
    AliasHandoverHeld { alias: String },
}

/// Something to wait for that resolves without anyone acting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The key is in a transitional state (Creating, Updating, ...).
    KeyState(String),
    /// A create attempt may still appear in KMS; look again after this long.
    CreateSettling(Duration),
    /// The key was created moments ago and KMS does not describe it yet.
    KeyNotVisibleYet(Duration),
    /// AWS refuses these reads, probably while IAM catches up; look again after this long.
    AwaitingPermissions { permissions: Vec<&'static str>, retry: Duration },
    /// The previous pass made these very calls and KMS still does not show their effect: it
    /// lags, or reports the change in a form the plan does not recognise. Looking again later
    /// costs less than repeating them. Names the policy statements still differing, if any.
    NotConverged { policy_statements: Vec<String> },
}

/// The decided calls, plus what keeps the object from being Ready.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub blockers: Vec<Blocker>,
    pub hold: Option<Hold>,
    /// Changes that the key's state does not allow now (rotation of a disabled key).
    pub deferred: Vec<String>,
    /// Things a person should know that do not keep the key from being Ready.
    pub notices: Vec<String>,
    /// The plan was made from a quick look and must be made again from a full read before
    /// anything is done (see `reads::needs_full_read`); everything else is empty then.
    pub read_in_full: bool,
}

impl Plan {
    fn blocked(blocker: Blocker) -> Self {
        Plan { blockers: vec![blocker], ..Plan::default() }
    }
}

/// Inputs of one planning step besides the spec and the observation.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub owner: &'a Owner,
    pub recorded: &'a Recorded,
    pub now: Timestamp,
    /// Token for a CreateKey this plan may decide on.
    pub fresh_token: &'a str,
    /// The actions the previous pass of the same reconcile ran (empty on the first pass).
    pub previous: &'a [Action],
    /// Grant IDs that a CreateGrant of this reconcile answered with (AWS answers a repeated
    /// grant with the existing one's ID): KMS says they are the spec's grants.
    pub confirmed_grants: &'a std::collections::BTreeSet<String>,
    /// The value of the `kms.boosterpack.io/rotate-now` annotation, if any.
    pub rotate_now: Option<&'a str>,
    /// The object was stalled on an alias another key held, and may not take it by itself
    /// now that it may be free (see `guardrails::alias_handover_held`).
    pub alias_handover_held: bool,
}

/// Decides how to make KMS match the spec.
pub fn plan(spec: &KmsKeySpec, observed: &Observed, ctx: &Context) -> Plan {
    let mut plan = match observed {
        Observed::NoKey { alias_target, account_arn } => {
            create::plan_create(spec, alias_target.as_deref(), account_arn.as_deref(), ctx)
        }
        Observed::Missing { .. } if let (Some(adopt), None) = (&spec.adopt, &ctx.recorded.key_id) => {
            Plan::blocked(Blocker::AdoptTargetMissing { reference: adopt.describe() })
        }
        Observed::Missing { key_id } => match timing::missing_key_wait(key_id, ctx.recorded, ctx.now) {
            Some(left) => Plan { hold: Some(Hold::KeyNotVisibleYet(left)), ..Plan::default() },
            None => Plan::blocked(Blocker::KeyNotFound { key_id: key_id.clone() }),
        },
        Observed::Unowned { key, holder } => plan_unowned(spec, key, holder, ctx),
        Observed::Foreign { key_id } => Plan::blocked(Blocker::NotOwned { key_id: key_id.clone() }),
        Observed::Unreadable { .. } => {
            let actions = blind_policy_repair(spec, observed, ctx.recorded, ctx.now).into_iter().collect();
            Plan { actions, ..Plan::default() }
        }
        Observed::Owned(key) => plan_update(spec, key, ctx),
    };
    if let Observed::Owned(key) = observed
        && reads::needs_full_read(key, spec, &plan)
    {
        return Plan { read_in_full: true, ..Plan::default() };
    }
    if let Observed::Owned(key) = observed
        && !key.denied.is_empty()
        && timing::iam_may_lag(ctx.recorded, ctx.now)
    {
        // IAM does not see the new key's tags yet: every change would be refused too, and
        // each try spends the account's quota (PutKeyPolicy: 15 a second). Only record it.
        plan.actions.retain(|a| matches!(a, Action::RecordKey(_)));
    }
    if !plan.actions.is_empty() && plan.actions == ctx.previous {
        let policy_statements = (plan.actions.iter())
            .find_map(|a| match a {
                Action::PutPolicy { statements, .. } => Some(statements.clone()),
                _ => None,
            })
            .unwrap_or_default();
        plan.actions.clear();
        plan.hold = Some(Hold::NotConverged { policy_statements });
    }
    let denied = match observed {
        Observed::Owned(key) if !key.denied.is_empty() => Some((key.key.key_id.as_str(), key.denied.clone())),
        Observed::Unreadable { key_id, permission, .. } => Some((key_id.as_str(), vec![*permission])),
        _ => None,
    };
    if let Some((key_id, permissions)) = denied
        && plan.actions.is_empty()
        && plan.blockers.is_empty()
    {
        let judged = denied_reads(key_id, permissions, ctx);
        plan.hold = judged.hold;
        plan.blockers = judged.blockers;
    }
    plan
}

/// The PutKeyPolicy that may let the operator back into a key it may not read, whose policy
/// may shut it out: the spec's policy, or AWS's default. Only for the key status records,
/// when the Tagging API (which needs no key policy) shows it with this object's ownership
/// tags, and not while IAM may still be catching up with a new key's tags: status alone is no
/// proof (it can be restored from a backup, or written by anyone with rights on it).
pub fn blind_policy_repair(
    spec: &KmsKeySpec,
    observed: &Observed,
    recorded: &Recorded,
    now: Timestamp,
) -> Option<Action> {
    let Observed::Unreadable { key_id, owned: true, .. } = observed else { return None };
    if recorded.key_id.as_deref() != Some(key_id.as_str()) || timing::iam_may_lag(recorded, now) {
        return None;
    }
    let arn = recorded.key_arn.as_deref().filter(|arn| arn.ends_with(&format!("/{key_id}")))?;
    let policy = wanted_policy(spec, arn)?;
    Some(Action::PutPolicy { policy, statements: Vec::new() })
}

/// Reads AWS refused: waited for while IAM may be catching up, then reported.
fn denied_reads(key_id: &str, permissions: Vec<&'static str>, ctx: &Context) -> Plan {
    match judge_denial(ctx.recorded, ctx.now) {
        Denial::Propagating(retry) => {
            Plan { hold: Some(Hold::AwaitingPermissions { permissions, retry }), ..Plan::default() }
        }
        Denial::Lasting => Plan::blocked(Blocker::ReadDenied { key_id: key_id.to_owned(), permissions }),
    }
}

/// The adoption of a key that is not the object's; when the object only observes (and so read
/// the whole key), followed by what would be done once it is the object's, so that the plan
/// shown is the one `Full` runs.
fn plan_unowned(spec: &KmsKeySpec, key: &ObservedKey, holder: &Holder, ctx: &Context) -> Plan {
    let mut plan = adoption::plan_adoption(spec, key, holder, ctx);
    let adoptable = plan.blockers.is_empty() && plan.hold.is_none();
    if adoptable && spec.management_policy == ManagementPolicy::ObserveOnly {
        let mut adopted = key.clone();
        adopted.tags.extend(ctx.owner.tags());
        adopted.unrecorded = false;
        let after = plan_update(spec, &adopted, ctx);
        plan.actions.extend(after.actions);
        plan.blockers = after.blockers;
        plan.hold = after.hold;
        plan.deferred = after.deferred;
        plan.notices = after.notices;
        if !key.denied.is_empty() {
            plan.notices.push(format!(
                "AWS refuses {} on this key to the operator, so what those reads would show is left out of this plan",
                key.denied.join(", ")
            ));
        }
    }
    plan
}

pub fn is_pending_deletion(state: &str) -> bool {
    matches!(state, "PendingDeletion" | "PendingReplicaDeletion")
}

/// The plan for the object's own key, in the order the module docs give.
fn plan_update(spec: &KmsKeySpec, observed: &ObservedKey, ctx: &Context) -> Plan {
    let mut plan = Plan::default();
    if observed.unrecorded {
        plan.actions.push(Action::RecordKey(observed.key.clone()));
    }
    let state = observed.key.state.as_str();
    if is_pending_deletion(state) {
        plan.actions.push(Action::CancelDeletion);
        return plan;
    }
    if !matches!(state, "Enabled" | "Disabled") {
        plan.hold = Some(Hold::KeyState(state.to_owned()));
        return plan;
    }
    if let Some(blocker) = wrong_kind(spec, &observed.key) {
        plan.blockers.push(blocker);
        return plan;
    }
    let enabled_now = state == "Enabled";
    // The policy first: a new policy may be what allows the rest (terraform-provider-aws
    // #44422 puts it after and fails).
    plan_policy(spec, observed, &mut plan);
    if spec.is_enabled && !enabled_now {
        plan.actions.push(Action::SetEnabled(true));
    }
    if observed.key.description != spec.key_description {
        plan.actions.push(Action::UpdateDescription(spec.key_description.clone()));
    }
    tags::plan_tags(spec, ctx.owner, &observed.tags, &mut plan);
    if observed.known(READ_ALIASES) {
        alias::plan_alias(spec, observed, ctx, &mut plan);
        alias::plan_additional_aliases(spec, observed, ctx, &mut plan);
    }
    let usable = spec.is_enabled || enabled_now;
    if let Some(rotation) = &observed.rotation {
        rotation::plan_rotation(spec, rotation, usable, &mut plan);
    }
    on_demand::plan_on_demand(ctx.rotate_now, ctx.recorded, observed, usable, &mut plan);
    if observed.known(READ_GRANTS) {
        grants::plan_grants(spec, &observed.grants, ctx.confirmed_grants, usable, &mut plan);
    }
    if !spec.is_enabled && enabled_now {
        plan.actions.push(Action::SetEnabled(false));
    }
    plan
}

/// A key whose spec or usage is not the spec's: nothing else is changed on it (KMS cannot
/// change what a key is, and grants or rotation meant for another kind would be refused).
/// An empty value (a KMS that does not report it) is taken as right.
fn wrong_kind(spec: &KmsKeySpec, key: &KeyDescription) -> Option<Blocker> {
    let checks = [
        ("keySpec", spec.key_spec.as_str(), key.key_spec.as_str()),
        ("keyUsage", spec.key_usage.as_str(), key.key_usage.as_str()),
    ];
    let (field, wanted, actual) =
        checks.into_iter().find(|(_, wanted, actual)| !actual.is_empty() && wanted != actual)?;
    Some(Blocker::WrongKind { field, wanted: wanted.to_owned(), actual: actual.to_owned() })
}

/// Puts the wanted policy when it differs, and also when the operator may not read it: the
/// spec's policy is what the key should have either way, and putting it may be what gives
/// the operator back its other permissions.
fn plan_policy(spec: &KmsKeySpec, observed: &ObservedKey, plan: &mut Plan) {
    let Some(wanted) = wanted_policy(spec, &observed.key.arn) else {
        return;
    };
    let statements = match &observed.policy {
        _ if observed.unread.contains(&READ_POLICY) => return,
        _ if observed.was_denied(READ_POLICY) => Vec::new(),
        Some(current) if policies_equal(&wanted, current) => return,
        Some(current) => differing_statements(&wanted, current),
        None => Vec::new(),
    };
    plan.actions.push(Action::PutPolicy { policy: wanted, statements });
}

#[cfg(test)]
pub(crate) mod tests;
