//! The replicas of a multi-Region key (`spec.replicaRegions`). A replica has its primary's key
//! ID; only its ARN's Region differs. So a replica made but not recorded (the operator stopped
//! between ReplicateKey and the status write) is found by DescribeKey of that ID in its
//! Region, and AWS refuses a second replica in a Region that has one: no replica is made twice.
//!
//! In each Region the replica is planned as the primary is (description, policy, tags,
//! aliases, enabled state, grants), except that rotation is the primary's, shared by AWS
//! (observe does not read it on a replica, so the plan leaves it alone). A Region taken off
//! the list has its replica released as a deleted object's key is (`plan_cleanup`).

use std::time::Duration;

use crate::api::KmsKeySpec;
use crate::kms::{KeyDescription, NewReplica};

use super::super::policy_builder::wanted_policy;
use super::super::region::{arn_in_region, arn_region};
use super::{Blocker, Context, Hold, Observed, Plan, plan};

/// How long to wait for a replica that the primary lists but its Region does not describe
/// yet (ReplicateKey answered moments ago).
pub const REPLICA_VISIBILITY_WAIT: Duration = Duration::from_secs(5);

/// What to do about the replica in a Region on the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaPlan {
    /// Make it: ReplicateKey, called on the primary.
    Replicate(NewReplica),
    /// It exists (or cannot be made now): this plan for it.
    Keep(Plan),
}

/// The Regions to look at: the spec's, then the other Regions KMS lists a replica of the
/// primary in, then those status still records, each once; never the primary's own (the key
/// found there by its ID is the primary itself, see `own_region_listed`).
pub fn regions_to_look_at(spec: &KmsKeySpec, primary: &KeyDescription, recorded: &[String]) -> Vec<String> {
    let own = arn_region(&primary.arn);
    let mut regions: Vec<String> = Vec::new();
    let listed = spec.replica_regions.iter().chain(&primary.replica_regions).chain(recorded);
    for region in listed {
        if !regions.contains(region) && Some(region.as_str()) != own {
            regions.push(region.clone());
        }
    }
    regions
}

/// The primary's own Region, when `spec.replicaRegions` names it (the schema refuses that only
/// when `spec.region` is set): the object is Stalled, and nothing is done there.
pub fn own_region_listed(spec: &KmsKeySpec, primary: &KeyDescription) -> Option<String> {
    let own = arn_region(&primary.arn)?;
    spec.replica_regions.iter().find(|r| *r == own).cloned()
}

/// Decides what to do about the replica in `region`, a Region on the list, given the primary
/// as last described and what DescribeKey of the primary's key ID found in `region`. (A
/// Region off the list has its replica released by `plan_cleanup`.)
pub fn plan_replica(
    spec: &KmsKeySpec,
    region: &str,
    primary: &KeyDescription,
    observed: &Observed,
    ctx: &Context,
) -> ReplicaPlan {
    match observed {
        Observed::Missing { .. } => missing_replica(spec, region, primary, ctx),
        _ => ReplicaPlan::Keep(plan(spec, observed, ctx)),
    }
}

/// A Region on the list without a replica: make it, unless the primary cannot be replicated
/// (single-Region; disabled, which waits for the spec to enable it; in a passing state) or
/// already lists one there that the Region does not describe yet.
fn missing_replica(spec: &KmsKeySpec, region: &str, primary: &KeyDescription, ctx: &Context) -> ReplicaPlan {
    if !primary.multi_region {
        let field = "multiRegion";
        let blocker = Blocker::WrongKind { field, wanted: "true".into(), actual: "false".into() };
        return ReplicaPlan::Keep(Plan::blocked(blocker));
    }
    if primary.replica_regions.iter().any(|r| r == region) {
        return ReplicaPlan::Keep(Plan {
            hold: Some(Hold::KeyNotVisibleYet(REPLICA_VISIBILITY_WAIT)),
            ..Plan::default()
        });
    }
    if primary.state == "Disabled" {
        let deferred =
            vec!["the replica is made once the key is enabled: AWS does not replicate a disabled key".into()];
        return ReplicaPlan::Keep(Plan { deferred, ..Plan::default() });
    }
    if primary.state != "Enabled" {
        return ReplicaPlan::Keep(Plan {
            hold: Some(Hold::KeyState(primary.state.clone())),
            ..Plan::default()
        });
    }
    let arn = arn_in_region(&primary.arn, region).unwrap_or_else(|| primary.arn.clone());
    let mut tags = spec.tags.clone();
    tags.extend(ctx.owner.tags());
    ReplicaPlan::Replicate(NewReplica {
        region: region.to_owned(),
        description: spec.key_description.clone(),
        policy: wanted_policy(spec, &arn),
        tags,
    })
}
