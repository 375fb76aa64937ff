//! The replicas of the object's multi-Region key, after its primary: per Region, observe the
//! replica (DescribeKey of the primary's key ID there), let `plan::replicas` decide, run the
//! calls (ReplicateKey on the primary, the rest on the replica). A Region taken off
//! `spec.replicaRegions` has its replica released as a deleted object's key is (`cleanup`),
//! and deleting the object releases every replica before the primary.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::api::{DeletionPolicy, KmsKeySpec, ReplicaStatus};
use crate::kms::{ErrorKind, KeyDescription, KmsError, KmsPort};

use super::account_aliases::AccountAliases;
use super::cleanup::{Released, cleanup};
use super::observe::{Basis, observe};
use super::ownership::Owner;
use super::plan::replicas::{ReplicaPlan, own_region_listed, plan_replica, regions_to_look_at};
use super::plan::{self, Action, Observed, Plan, Recorded};
use super::region::{arn_in_region, arn_region};
use super::run::MAX_PASSES;
use super::writer::{Error, StatusWriter};
use super::{apply, outcome::Outcome};

/// KMS in one Region.
pub struct Regional {
    pub kms: Arc<dyn KmsPort>,
    /// The Region's aliases, shared by the quick resyncs of its keys.
    pub account_aliases: AccountAliases,
}

/// The Regions replicas are reached in.
pub trait ReplicaRegions: Send + Sync {
    /// KMS in `region`. `holds_key`: a replica of the object's is known to live there (it is
    /// always reached). `Err`: why the operator does not serve the Region.
    fn regional(&self, region: &str, holds_key: bool) -> Result<Arc<Regional>, String>;
}

/// The primary, as this reconcile left it, and what status records about its replicas.
pub struct Primary<'a> {
    pub key: &'a KeyDescription,
    pub kms: &'a dyn KmsPort,
    /// What status records of the object: a refusal of ReplicateKey while IAM may not see the
    /// new primary's tags yet is waited out like one on the primary, and the aliases it
    /// records are the object's in every Region.
    pub recorded: &'a Recorded,
    /// The Regions where `status.replicas` records a replica (with its ARN).
    pub recorded_regions: Vec<String>,
    /// The primary needed no more than a quick look: its replicas get one too.
    pub quick: bool,
    /// See `guardrails::alias_handover_held`: it holds in every Region.
    pub alias_handover_held: bool,
}

/// What the replicas' reconcile did and where each replica stands.
#[derive(Debug, Default)]
pub struct Replicas {
    pub statuses: Vec<ReplicaStatus>,
    /// Each Region's outcome, for the object's (see `Outcome::with_replicas`).
    pub outcomes: Vec<(String, Outcome)>,
    pub changes: Vec<String>,
}

/// Makes every replica match the spec and releases those of Regions taken off the list.
/// Only a failed status write is an error.
pub async fn reconcile_replicas(
    regions: &dyn ReplicaRegions,
    writer: &dyn StatusWriter,
    spec: &KmsKeySpec,
    owner: &Owner,
    primary: Primary<'_>,
    policy: DeletionPolicy,
    now: Timestamp,
) -> Result<Replicas, Error> {
    let mut replicas = Replicas::default();
    if primary.key.replica {
        // Adopted as a replica, or its primary moved (UpdatePrimaryRegion): the key's copies
        // are not this object's to make or let go of from here.
        let message = "the object's key is a multi-Region replica; its replicas are managed from its primary, so spec.replicaRegions is not acted on".to_owned();
        let outcome = Outcome::Stalled { reason: "KeyIsReplica", message };
        replicas.outcomes.push((arn_region(&primary.key.arn).unwrap_or_default().to_owned(), outcome));
        return Ok(replicas);
    }
    if let Some(own) = own_region_listed(spec, primary.key) {
        let message = format!(
            "spec.replicaRegions names {own}, the key's own Region: the primary is there, and a Region holds one of the key's copies"
        );
        let outcome = Outcome::Stalled { reason: "InvalidSpec", message };
        replicas.statuses.push(status_of(&own, None, &outcome));
        replicas.outcomes.push((own, outcome));
    }
    for region in regions_to_look_at(spec, primary.key, &primary.recorded_regions) {
        let holds_key =
            primary.key.replica_regions.contains(&region) || primary.recorded_regions.contains(&region);
        let regional = match regions.regional(&region, holds_key) {
            Ok(regional) => regional,
            Err(message) => {
                let outcome = Outcome::Stalled { reason: "RegionNotAllowed", message };
                replicas.statuses.push(status_of(&region, None, &outcome));
                replicas.outcomes.push((region, outcome));
                continue;
            }
        };
        let recorded = replica_recorded(primary.key, primary.recorded, &region);
        let (key, outcome) = match spec.replica_regions.contains(&region) {
            true => {
                keep(&regional, writer, spec, owner, &region, &primary, recorded, now, &mut replicas.changes)
                    .await?
            }
            false => match cleanup(regional.kms.as_ref(), spec, owner, &recorded, now, policy).await {
                Ok(Released::Done { changes } | Released::Kept { changes }) => {
                    replicas.changes.extend(changes.into_iter().map(|c| format!("replica in {region}: {c}")));
                    continue;
                }
                Ok(Released::NotOwned { .. }) => continue,
                // A replica someone else made, whose policy keeps the operator out: not ours.
                Err(err) if err.kind == ErrorKind::AccessDenied && !holds_recorded(&primary, &region) => {
                    continue;
                }
                Ok(Released::Wait(wait)) => (
                    None,
                    Outcome::of_settled_plan(&Plan {
                        hold: Some(plan::Hold::KeyNotVisibleYet(wait)),
                        ..Plan::default()
                    }),
                ),
                Err(err) => (None, Outcome::of_kms_error(&err, &recorded, now)),
            },
        };
        replicas.statuses.push(status_of(&region, key.as_ref(), &outcome));
        replicas.outcomes.push((region, outcome));
    }
    Ok(replicas)
}

/// What status records of a replica; `key` as last described, if it exists.
fn status_of(region: &str, key: Option<&KeyDescription>, outcome: &Outcome) -> ReplicaStatus {
    // A Region whose replica waits for the key to be enabled is not ready, the object may be.
    let ready = matches!(outcome, Outcome::Ready { .. }) && key.is_some();
    ReplicaStatus {
        region: region.to_owned(),
        key_arn: key.map(|k| k.arn.clone()),
        state: key.map(|k| k.state.clone()),
        ready,
        message: (!ready).then(|| outcome_message(outcome)),
    }
}

fn outcome_message(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ready { message }
        | Outcome::Progressing { message, .. }
        | Outcome::Stalled { message, .. }
        | Outcome::Held { message, .. } => format!("{}: {message}", outcome.reason()),
    }
}

/// Whether status records a replica of the object's in `region`.
fn holds_recorded(primary: &Primary, region: &str) -> bool {
    primary.recorded_regions.iter().any(|r| r == region)
}

/// The replica in `region` as the operator knows it before looking: the primary's key ID, at
/// the ARN it has there, with the aliases status records for the object (so an alias renamed
/// or dropped is deleted in every Region). Never adopted by tags: a replica of the object's
/// primary is the object's when it carries the object's ownership tags.
fn replica_recorded(primary: &KeyDescription, object: &Recorded, region: &str) -> Recorded {
    Recorded {
        key_id: Some(primary.key_id.clone()),
        adopted: true,
        key_arn: arn_in_region(&primary.arn, region),
        alias_name: object.alias_name.clone(),
        additional_aliases: object.additional_aliases.clone(),
        ..Recorded::default()
    }
}

/// The passes for a Region on the list: returns the replica as last described, and how it
/// ended.
#[allow(clippy::too_many_arguments)]
async fn keep(
    regional: &Regional,
    writer: &dyn StatusWriter,
    spec: &KmsKeySpec,
    owner: &Owner,
    region: &str,
    primary: &Primary<'_>,
    mut recorded: Recorded,
    now: Timestamp,
    changes: &mut Vec<String>,
) -> Result<(Option<KeyDescription>, Outcome), Error> {
    let kms = regional.kms.as_ref();
    // Without the Region's alias listing (throttled, say), the replica is read in full.
    let listing = match primary.quick {
        true => regional.account_aliases.get(kms).await.ok(),
        false => None,
    };
    let mut previous: Vec<Action> = Vec::new();
    let mut confirmed_grants = std::collections::BTreeSet::new();
    let mut seen: Option<KeyDescription> = None;
    let mut replicated = false;
    for pass in 0..MAX_PASSES {
        let first_look = match (&listing, pass) {
            (Some(listing), 0) => Basis::Quick(listing),
            _ => Basis::Full { no_grants: false },
        };
        let mut observed = match observe(kms, spec, owner, &recorded, None, false, first_look).await {
            Ok(observed) => observed,
            Err(err) => return Ok((seen, Outcome::of_kms_error(&err, &recorded, now))),
        };
        let token = String::new(); // a replica is never made with CreateKey
        let mut decided = {
            learn(&observed, &mut recorded, &mut seen);
            let ctx = context(owner, &recorded, now, &token, &previous, &confirmed_grants);
            let ctx = plan::Context { alias_handover_held: primary.alias_handover_held, ..ctx };
            plan_replica(spec, region, primary.key, &observed, &ctx)
        };
        if matches!(&decided, ReplicaPlan::Keep(plan) if plan.read_in_full) {
            observed =
                match observe(kms, spec, owner, &recorded, None, false, Basis::Full { no_grants: false })
                    .await
                {
                    Ok(observed) => observed,
                    Err(err) => return Ok((seen, Outcome::of_kms_error(&err, &recorded, now))),
                };
            learn(&observed, &mut recorded, &mut seen);
            let ctx = context(owner, &recorded, now, &token, &previous, &confirmed_grants);
            let ctx = plan::Context { alias_handover_held: primary.alias_handover_held, ..ctx };
            decided = plan_replica(spec, region, primary.key, &observed, &ctx);
        }
        let plan = match decided {
            // Made in this reconcile, not described in its Region yet: look again shortly
            // rather than spend a ReplicateKey on AlreadyExistsException.
            ReplicaPlan::Replicate(_) if replicated => {
                let hold = plan::Hold::KeyNotVisibleYet(plan::replicas::REPLICA_VISIBILITY_WAIT);
                return Ok((seen, Outcome::of_settled_plan(&Plan { hold: Some(hold), ..Plan::default() })));
            }
            ReplicaPlan::Replicate(replica) => {
                kms.spend_quota("CreateKey").await; // AWS counts the new replica there too
                match primary.kms.replicate_key(&primary.key.key_id, &replica).await {
                    Ok(made) => {
                        changes.push(format!("replicated the key to {region}"));
                        replicated = true;
                        recorded.key_created_at = Some(now);
                        seen = Some(made);
                        previous.clear();
                        continue;
                    }
                    // Made moments ago by an earlier attempt whose answer was lost: AWS keeps
                    // one replica per Region, so it is the object's. Look again shortly.
                    Err(err) if err.kind == ErrorKind::AlreadyExists => {
                        let hold = plan::Hold::KeyNotVisibleYet(plan::replicas::REPLICA_VISIBILITY_WAIT);
                        return Ok((
                            seen,
                            Outcome::of_settled_plan(&Plan { hold: Some(hold), ..Plan::default() }),
                        ));
                    }
                    Err(err) => return Ok((seen, Outcome::of_kms_error(&err, primary.recorded, now))),
                }
            }
            ReplicaPlan::Keep(plan) => plan,
        };
        if plan.actions.is_empty() {
            return Ok((seen, Outcome::of_settled_plan(&plan)));
        }
        let applied = apply::apply(kms, writer, observed.key_to_act_on(), &plan.actions).await;
        changes.extend(applied.changes.iter().map(|c| format!("replica in {region}: {c}")));
        confirmed_grants.extend(applied.confirmed_grants);
        match applied.failed {
            None => {}
            Some(Error::Kms(err)) => return Ok((seen, Outcome::of_kms_error(&err, &recorded, now))),
            Some(err) => return Err(err),
        }
        previous = plan.actions;
    }
    Ok((seen, Outcome::not_converged()))
}

/// Takes what an observation tells of the replica: its description, and its creation time
/// (a refusal on a replica made moments ago is IAM catching up with its tags).
fn learn(observed: &Observed, recorded: &mut Recorded, seen: &mut Option<KeyDescription>) {
    if let Some(key) = observed.owned_key() {
        recorded.key_created_at = key.key.created_at.or(recorded.key_created_at);
        *seen = Some(key.key.clone());
    }
}

fn context<'a>(
    owner: &'a Owner,
    recorded: &'a Recorded,
    now: Timestamp,
    token: &'a str,
    previous: &'a [Action],
    confirmed_grants: &'a std::collections::BTreeSet<String>,
) -> plan::Context<'a> {
    plan::Context {
        owner,
        recorded,
        now,
        fresh_token: token,
        previous,
        confirmed_grants,
        rotate_now: None,
        alias_handover_held: false,
    }
}

/// Lets go of every replica of the object's key, before the primary is: each as `cleanup`
/// lets go of a key. The replicas are looked for in the Regions the primary (DescribeKey on
/// `primary_kms`) lists, the spec's and those status records. A primary that is gone has
/// none (AWS keeps it in PendingReplicaDeletion until its last replica is deleted); a key that
/// is itself a replica has none of the object's. An `ObserveOnly` object's replicas lose the
/// ownership tags it wrote while it was `Full`, as its key does (see `cleanup`).
#[allow(clippy::too_many_arguments)]
pub async fn release_replicas(
    regions: &dyn ReplicaRegions,
    primary_kms: &dyn KmsPort,
    spec: &KmsKeySpec,
    owner: &Owner,
    recorded: &Recorded,
    recorded_regions: &[String],
    now: Timestamp,
    policy: DeletionPolicy,
) -> Result<Released, KmsError> {
    let mut changes = Vec::new();
    let may_have_replicas = spec.multi_region || !recorded_regions.is_empty();
    let primary = match &recorded.key_id {
        Some(key_id) if may_have_replicas => primary_kms.describe_key(key_id).await?,
        _ => None,
    };
    // A key that is itself a replica: its copies are not let go of from here.
    let primary = primary.filter(|p| !p.replica);
    for region in primary.iter().flat_map(|p| regions_to_look_at(spec, p, recorded_regions)) {
        let primary = primary.as_ref().expect("looked at only with a primary");
        let Ok(regional) = regions.regional(&region, true) else { continue };
        let replica = replica_recorded(primary, recorded, &region);
        let released = match cleanup(regional.kms.as_ref(), spec, owner, &replica, now, policy).await {
            // A replica someone else made, whose policy keeps the operator out: not ours.
            Err(err) if err.kind == ErrorKind::AccessDenied && !recorded_regions.contains(&region) => {
                continue;
            }
            released => released?,
        };
        match released {
            Released::Done { changes: done } | Released::Kept { changes: done } => {
                changes.extend(done.into_iter().map(|c| format!("replica in {region}: {c}")));
            }
            Released::NotOwned { .. } => {}
            Released::Wait(wait) => return Ok(Released::Wait(wait)),
        }
    }
    Ok(match policy {
        DeletionPolicy::Delete => Released::Done { changes },
        DeletionPolicy::Retain => Released::Kept { changes },
    })
}
