//! On-demand rotation, asked for with the `kms.boosterpack.io/rotate-now` annotation: each
//! distinct value rotates the key material once. The request is written to status before
//! RotateKeyOnDemand is called, with how many on-demand rotations the key had until then; a
//! request found in status but never confirmed (the operator stopped in between) is taken as
//! done when the key's history has more on-demand rotations than that, or one is in progress,
//! and is sent again otherwise. So neither a restart nor a resync rotates twice, and a request
//! is never silently lost. Counting, not dates, decides: KMS's clock and ours may differ.

use crate::kms::{PastRotation, Rotation};

use super::{Action, Blocker, ObservedKey, Plan, Recorded};

/// AWS allows this many on-demand rotations per key, ever.
pub const MAX_ON_DEMAND_ROTATIONS: usize = 25;

/// A rotation the operator asked KMS for, as status records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationRequest {
    pub token: String,
    /// On-demand rotations the key had before this one was asked for.
    pub rotations_before: usize,
    /// Whether KMS is known to have taken it.
    pub rotated: bool,
}

/// Rotations of the material that were on demand.
pub fn on_demand_count(past: &[PastRotation]) -> usize {
    past.iter().filter(|r| r.kind == "ON_DEMAND").count()
}

/// When KMS took `request` (the rotation's date, or the start of one in progress), if the key's
/// whole history `past` or its rotation status shows it did.
pub fn taken_at(
    request: &RotationRequest,
    past: &[PastRotation],
    rotation: Option<&Rotation>,
) -> Option<String> {
    if on_demand_count(past) > request.rotations_before {
        return past.iter().rev().find(|r| r.kind == "ON_DEMAND").map(|r| r.date.clone());
    }
    rotation.and_then(|r| r.on_demand_started.clone())
}

/// Whether `token` still waits for its rotation, given what status records: a value acted on
/// before, even long ago, does not rotate again.
pub fn pending<'t>(token: Option<&'t str>, recorded: &Recorded) -> Option<&'t str> {
    let token = token.filter(|t| !t.is_empty())?;
    let done_last = recorded.on_demand.as_ref().is_some_and(|r| r.token == token && r.rotated);
    let done_before = recorded.rotate_now_values.iter().any(|v| v == token);
    (!done_last && !done_before).then_some(token)
}

/// `values` with `token` added as the latest, keeping the last [`MAX_ON_DEMAND_ROTATIONS`].
pub fn remember_value(values: &mut Vec<String>, token: &str) {
    values.retain(|v| v != token);
    values.push(token.to_owned());
    let excess = values.len().saturating_sub(MAX_ON_DEMAND_ROTATIONS);
    values.drain(..excess);
}

/// Whether observe should read the key's rotation history: a rotation is asked for, status
/// has never shown the history, the next automatic rotation moved (one happened), or the last
/// on-demand rotation is not counted in status yet (KMS rotates in the background).
pub fn history_wanted(rotate_now: Option<&str>, recorded: &Recorded, rotation: &Rotation) -> bool {
    recorded.on_demand_rotations.is_none()
        || unsettled(rotate_now, recorded)
        || recorded.next_rotation != rotation.next_rotation.clone().filter(|_| rotation.enabled)
}

/// Whether an on-demand rotation is still to be asked for, or asked for and not yet counted
/// in status.
pub fn unsettled(rotate_now: Option<&str>, recorded: &Recorded) -> bool {
    let counted = recorded.on_demand_rotations.unwrap_or(0);
    let uncounted = recorded.on_demand.as_ref().is_some_and(|r| counted <= r.rotations_before);
    pending(rotate_now, recorded).is_some() || uncounted
}

/// Adds the on-demand rotation the annotation asks for, if it is still to be done. `enabled`
/// says whether the key is enabled (or about to be): KMS rotates only enabled keys.
pub fn plan_on_demand(
    rotate_now: Option<&str>,
    recorded: &Recorded,
    observed: &ObservedKey,
    enabled: bool,
    plan: &mut Plan,
) {
    let Some(token) = pending(rotate_now, recorded) else { return };
    if !observed.key.rotatable() {
        plan.blockers.push(Blocker::CannotRotate { key_spec: observed.key.key_spec.clone() });
        return;
    }
    // Without the history (its read was refused, which is reported) nothing is decided.
    let Some(past) = observed.past_rotations.as_deref() else { return };
    if let Some(request) = recorded.on_demand.as_ref().filter(|r| r.token == token)
        && taken_at(request, past, observed.rotation.as_ref()).is_some()
    {
        return;
    }
    if on_demand_count(past) >= MAX_ON_DEMAND_ROTATIONS {
        plan.blockers.push(Blocker::OnDemandRotationLimit);
    } else if !enabled {
        plan.deferred.push("the on-demand rotation once the key is enabled".to_owned());
    } else {
        let rotations_before = on_demand_count(past);
        plan.actions.push(Action::RotateOnDemand { token: token.to_owned(), rotations_before });
    }
}
