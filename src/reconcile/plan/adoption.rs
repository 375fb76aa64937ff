//! Taking over a key the object did not create (`spec.adopt`). The key is first checked, with
//! nothing changed: it must be free (no kms-operator's ownership tags) or held by the other
//! cluster `takeOverFromCluster` names, in a state that allows tagging, and of the kind the
//! spec asks for. Then the attempt is recorded (an intent, as for CreateKey), the ownership
//! tags written and the key recorded; from the next pass on it is the object's key like any
//! other. A restart in between finds the key by its tags, whatever the spec names by then.
//! A key once adopted and then tagged away by someone else is never taken back.

use crate::api::KmsKeySpec;

use super::super::ownership::{Holder, Owner};
use super::observed::ObservedKey;
use super::timing::settling_intent;
use super::{Action, Blocker, Context, Hold, Plan, is_pending_deletion, wrong_kind};

/// The calls that make `observed`, held by `holder`, the object's key, or why it cannot be.
pub fn plan_adoption(spec: &KmsKeySpec, observed: &ObservedKey, holder: &Holder, ctx: &Context) -> Plan {
    let key = &observed.key;
    if ctx.recorded.adopted {
        return Plan::blocked(Blocker::NotOwned { key_id: key.key_id.clone() });
    }
    if let Some(blocker) = refusal(spec, &key.key_id, holder, ctx.owner) {
        return Plan::blocked(blocker);
    }
    if let Some(left) = settling_intent(ctx.recorded, ctx.now) {
        // An earlier attempt may have tagged a key the Tagging API does not list yet.
        return Plan { hold: Some(Hold::CreateSettling(left)), ..Plan::default() };
    }
    if is_pending_deletion(&key.state) {
        // AWS refuses to tag a key pending deletion, and the operator may cancel the deletion
        // only of keys tagged for its cluster.
        return Plan::blocked(Blocker::AdoptPendingDeletion { key_id: key.key_id.clone() });
    }
    if !matches!(key.state.as_str(), "Enabled" | "Disabled") {
        return Plan { hold: Some(Hold::KeyState(key.state.clone())), ..Plan::default() };
    }
    let multi_region = (spec.multi_region != key.multi_region).then(|| Blocker::WrongKind {
        field: "multiRegion",
        wanted: spec.multi_region.to_string(),
        actual: key.multi_region.to_string(),
    });
    if let Some(blocker) = wrong_kind(spec, key).or(multi_region) {
        return Plan::blocked(blocker);
    }
    let adopt = Action::Adopt { tags: ctx.owner.tags(), token: ctx.fresh_token.to_owned() };
    Plan { actions: vec![adopt, Action::RecordKey(key.clone())], ..Plan::default() }
}

/// Why the key may not be taken: it is held by another object of this cluster (never taken:
/// that object must let it go), or by another cluster that `takeOverFromCluster` does not
/// name; or the object does not ask to adopt at all.
fn refusal(spec: &KmsKeySpec, key_id: &str, holder: &Holder, owner: &Owner) -> Option<Blocker> {
    let Some(adopt) = &spec.adopt else {
        return Some(Blocker::NotOwned { key_id: key_id.to_owned() });
    };
    match holder {
        Holder::Nobody => None,
        Holder::Object { cluster, .. }
            if *cluster != owner.cluster && adopt.take_over_from_cluster.as_ref() == Some(cluster) =>
        {
            None
        }
        Holder::Object { cluster, owner: held_by } => Some(Blocker::HeldElsewhere {
            key_id: key_id.to_owned(),
            cluster: cluster.clone(),
            owner: held_by.clone(),
            same_cluster: *cluster == owner.cluster,
        }),
    }
}
