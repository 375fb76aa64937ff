//! How much of a key each pass reads. Reads cost AWS quota shared with every other user of the
//! account, so a reconcile reads only what can have changed:
//!
//! - a **quick** resync of a settled object reads the key's description and tags, and takes
//!   its aliases from the account's listing shared by all objects; the policy, rotation and
//!   grants are read by the **full** resync, every `--deep-resync-interval`, and whenever the
//!   quick look finds anything to do;
//! - the pass after CreateKey reads nothing: a key made moments ago holds what CreateKey was
//!   given;
//! - the pass that confirms a pass's calls reads the description, the tags and the parts those
//!   calls touched, and keeps the rest of what the previous pass saw.

use crate::api::{KmsKeySpec, ManagementPolicy};
use crate::kms::{KeyDescription, NewKey, Rotation};

use super::on_demand;
use super::{
    Action, ObservedKey, Plan, READ_ALIASES, READ_GRANTS, READ_POLICY, READ_ROTATION, READ_ROTATIONS,
    Recorded,
};
use crate::reconcile::policy::default_policy;

/// The parts of a key read besides its description and tags, named by their reads'
/// permissions.
pub const PARTS: [&str; 4] = [READ_POLICY, READ_ROTATION, READ_ALIASES, READ_GRANTS];

/// How a reconcile's first pass reads the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Everything.
    Full,
    /// Description, tags and the shared alias listing.
    Quick,
}

/// Where the object stands, as far as the choice of [`Depth`] goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// Status says Ready for the object's current generation.
    pub settled: bool,
    /// The object's last full read is older than `--deep-resync-interval`.
    pub full_read_due: bool,
}

/// A quick look suffices only for an object that was Ready at its current generation, owns its
/// recorded key outright (no create or adoption in flight), manages it, has no on-demand
/// rotation waiting or uncounted, and had a full read recently.
pub fn depth(spec: &KmsKeySpec, recorded: &Recorded, standing: Standing, rotate_now: Option<&str>) -> Depth {
    let owns_recorded_key =
        recorded.key_id.is_some() && recorded.intent.is_none() && (spec.adopt.is_none() || recorded.adopted);
    let quick = standing.settled
        && !standing.full_read_due
        && owns_recorded_key
        && spec.management_policy == ManagementPolicy::Full
        && !on_demand::unsettled(rotate_now, recorded);
    match quick {
        true => Depth::Quick,
        false => Depth::Full,
    }
}

/// Whether a full read may take the key to have none of the operator's grants without
/// ListGrants: the spec asks for none, status records none, and the spec has not changed since
/// the object was last Ready (a spec that just dropped its grants must see them to revoke
/// them, even those whose ID never reached status). A grant named `kms-operator/...` that a
/// person made by hand on such a key is thus never seen, and never revoked.
pub fn grants_unread_are_none(spec: &KmsKeySpec, recorded: &Recorded, standing: Standing) -> bool {
    let wanted = spec.create_grants && !spec.grants.is_empty();
    !wanted && !recorded.grants_recorded && standing.settled
}

/// Whether a plan made from a quick look must be made again from a full read: it would change
/// something, something keeps the key from being Ready, or the key is one whose unread parts
/// decide what status says (a key kept disabled, whose rotation and grant changes wait).
pub fn needs_full_read(key: &ObservedKey, spec: &KmsKeySpec, plan: &Plan) -> bool {
    let kept_disabled = !spec.is_enabled && key.key.state != "Enabled";
    !key.unread.is_empty()
        && (!plan.actions.is_empty()
            || !plan.blockers.is_empty()
            || plan.hold.is_some()
            || !plan.deferred.is_empty()
            || kept_disabled)
}

/// The parts to read again after `actions` ran on the key observed as `before`: those the
/// calls touched, and those `before` did not show (unread, refused, or not reportable in the
/// key's state then). Description and tags are always read again.
pub fn to_reread(before: &ObservedKey, actions: &[Action]) -> Vec<&'static str> {
    let mut parts: Vec<&'static str> = actions.iter().flat_map(touched_parts).copied().collect();
    parts.extend(PARTS.iter().filter(|part| !before.known(part)));
    if before.rotation.is_none() && before.key.rotatable() {
        parts.push(READ_ROTATION);
    }
    if before.policy.is_none() {
        parts.push(READ_POLICY);
    }
    parts.sort();
    parts.dedup();
    parts
}

/// The parts (and, for an on-demand rotation, the rotation history) a call changes.
fn touched_parts(action: &Action) -> &'static [&'static str] {
    match action {
        Action::PutPolicy { .. } => &[READ_POLICY],
        Action::CreateAlias(_) | Action::DeleteAlias(_) => &[READ_ALIASES],
        Action::SetRotation { .. } => &[READ_ROTATION],
        Action::RotateOnDemand { .. } => &[READ_ROTATION, READ_ROTATIONS],
        Action::CreateGrant(_) | Action::RevokeGrant { .. } => &[READ_GRANTS],
        _ => &[],
    }
}

/// The key CreateKey just made, as KMS holds it: what it was given, rotation off, no alias and
/// no grant. `alias_target` is the wanted alias's holder as the create's pass saw it.
pub fn after_create(new_key: &NewKey, created: KeyDescription, alias_target: Option<String>) -> ObservedKey {
    let rotation = created.rotatable().then_some(Rotation {
        enabled: false,
        period_days: None,
        next_rotation: None,
        on_demand_started: None,
    });
    ObservedKey {
        rotation,
        policy: new_key.policy.clone().or_else(|| default_policy(&created.arn)),
        tags: new_key.tags.clone(),
        alias_target,
        past_rotations: Some(Vec::new()),
        unread: Vec::new(),
        ..ObservedKey::described(created, Default::default(), false)
    }
}

/// How the next pass learns the key, after a pass ran `actions` on what it saw as `observed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextLook {
    /// Read it in full.
    Full,
    /// Read the description, the tags and `reread`; the rest is as `before` shows it.
    Confirm { before: Box<ObservedKey>, reread: Vec<&'static str> },
    /// Nothing to read: this is the key (one CreateKey just made).
    Known(Box<ObservedKey>),
}

/// The next pass's look: a key CreateKey just answered with (`created`) is known (but for who
/// holds the spec's additional aliases, not looked up before CreateKey: those are read); a key
/// seen this pass is confirmed; anything else is read in full.
pub fn next_look(
    spec: &KmsKeySpec,
    observed: &super::Observed,
    actions: &[Action],
    created: Option<KeyDescription>,
) -> NextLook {
    let new_key = actions.iter().find_map(|a| match a {
        Action::CreateKey { key, .. } => Some(key),
        _ => None,
    });
    match (observed, new_key, created) {
        (super::Observed::NoKey { alias_target, .. }, Some(new_key), Some(created)) => {
            let key = Box::new(after_create(new_key, created, alias_target.clone()));
            match spec.additional_aliases.is_empty() {
                true => NextLook::Known(key),
                false => NextLook::Confirm { before: key, reread: vec![READ_ALIASES] },
            }
        }
        (super::Observed::Owned(key) | super::Observed::Unowned { key, .. }, _, None) => {
            NextLook::Confirm { before: key.clone(), reread: to_reread(key, actions) }
        }
        _ => NextLook::Full,
    }
}
