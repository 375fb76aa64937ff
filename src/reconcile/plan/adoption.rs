//! Taking over a key the object did not create (`spec.adopt`). The key is first checked, with
//! nothing changed: it must be free (no kms-operator's ownership tags) or held by the other
//! cluster `takeOverFromCluster` names, in a state that allows tagging, and of the kind the
//! spec asks for. Then the ownership tags are written and the key recorded; from the next
//! pass on it is the object's key like any other. Tagging before recording means a restart
//! in between finds a key that is already the object's.

use crate::api::KmsKeySpec;

use super::super::ownership::{Holder, Owner};
use super::observed::ObservedKey;
use super::{Action, Blocker, Hold, Plan, is_pending_deletion, wrong_kind};

/// The calls that make `observed`, held by `holder`, the object's key, or why it cannot be.
pub fn plan_adoption(spec: &KmsKeySpec, observed: &ObservedKey, holder: &Holder, owner: &Owner) -> Plan {
    let key = &observed.key;
    if let Some(blocker) = refusal(spec, &key.key_id, holder, owner) {
        return Plan::blocked(blocker);
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
    Plan { actions: vec![Action::Adopt(owner.tags()), Action::RecordKey(key.clone())], ..Plan::default() }
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
