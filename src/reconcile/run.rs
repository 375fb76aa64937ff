//! One reconcile: up to [`MAX_PASSES`] passes of observe, plan, apply. Creating a key takes one
//! pass, configuring it the next, and a final observation checks that KMS shows the result.
//! Every decision is the plan's; this loop only carries what a pass learned to the next.

use k8s_openapi::jiff::Timestamp;

use crate::api::{DeletionPolicy, KmsKeySpec, ManagementPolicy};
use crate::kms::{KmsPort, LastUsage};

use super::account_aliases::AccountAliases;
use super::guardrails::{self, Rules};
use super::observe::Basis;
use super::ownership::Holder;
use super::ownership::Owner;
use super::plan::reads::{self, Depth, NextLook, Standing};
use super::plan::{self, Action, Observed, ObservedKey, Recorded};
use super::replicas::{Primary, ReplicaRegions, reconcile_replicas};
use super::writer::{Error, StatusWriter};
use super::{apply, observe, outcome::Outcome, policy_builder, token, validate};
use crate::api::GeneratedPolicy;

/// Most observe-plan-apply passes in one reconcile.
pub const MAX_PASSES: usize = 3;

/// What a reconcile ended in and the key it last saw.
#[derive(Debug)]
pub struct Report {
    pub outcome: Outcome,
    /// The object's key as last observed (absent when there is none, or it is not ours).
    pub key: Option<ObservedKey>,
    /// The changes made, one line each.
    pub changes: Vec<String>,
    /// The ID of the key this reconcile created, if it created one.
    pub created: Option<String>,
    /// Whether this reconcile adopted the key (tagged it as the object's).
    pub adopted: bool,
    /// When KMS took the on-demand rotation this reconcile asked for.
    pub rotated_on_demand: Option<Timestamp>,
    /// The policy built from `spec.policy` for the key last observed.
    pub generated_policy: Option<GeneratedPolicy>,
    /// The key's last use, when it was due to be read: what KMS said, or why it said nothing.
    pub last_usage: Option<Result<LastUsage, String>>,
    /// For an `ObserveOnly` object: what `Full` would change, one line per call.
    pub plan: Option<Vec<String>>,
    /// Whether this reconcile read the key in full (not only a quick look).
    pub full_read: bool,
    /// Where each replica stands, when they were looked at (only once the primary is Ready).
    pub replicas: Option<Vec<crate::api::ReplicaStatus>>,
}

impl Report {
    /// A report of `outcome` with nothing done.
    pub fn of(outcome: Outcome) -> Self {
        Report {
            outcome,
            key: None,
            changes: vec![],
            created: None,
            adopted: false,
            rotated_on_demand: None,
            generated_policy: None,
            last_usage: None,
            plan: None,
            full_read: false,
            replicas: None,
        }
    }
}

/// Everything a reconcile needs to know about the object.
#[derive(Clone)]
pub struct Target<'a> {
    pub spec: &'a KmsKeySpec,
    pub owner: &'a Owner,
    pub recorded: Recorded,
    /// The value of the `kms.boosterpack.io/rotate-now` annotation, if any.
    pub rotate_now: Option<&'a str>,
    /// Whether to ask KMS for the key's last use (see `audit::last_usage_due`).
    pub last_usage_due: bool,
    /// Whether the administrator lets this object's namespace take over keys (`spec.adopt`).
    pub may_adopt: bool,
    /// The cluster's guardrails, when it has a KmsKeyPolicy.
    pub guardrails: Option<&'a Rules>,
    /// See `guardrails::alias_handover_held`.
    pub alias_handover_held: bool,
    /// What decides whether a quick look at the key suffices (see `plan::reads`).
    pub standing: Standing,
    /// The account's aliases, listed once for every object's quick look.
    pub account_aliases: &'a AccountAliases,
    /// The Regions replicas are reached in.
    pub replica_regions: &'a dyn ReplicaRegions,
    /// The Regions where `status.replicas` records a replica (with its ARN).
    pub recorded_replica_regions: Vec<String>,
    /// How a replica of a Region taken off `spec.replicaRegions` is let go of.
    pub deletion_policy: DeletionPolicy,
}

/// Makes KMS match `target.spec`. KMS failures end in an outcome; only a failed status write
/// is an error, because the next step must not run without it.
pub async fn reconcile(
    kms: &dyn KmsPort,
    writer: &dyn StatusWriter,
    target: Target<'_>,
    now: Timestamp,
) -> Result<Report, Error> {
    let spec = target.spec;
    let (replica_regions, policy) = (target.replica_regions, target.deletion_policy);
    let recorded_regions = target.recorded_replica_regions.clone();
    let primary_recorded = target.recorded.clone();
    let owner = target.owner;
    let alias_handover_held = target.alias_handover_held;
    let mut report = passes(kms, writer, target, now).await?;
    report.generated_policy =
        report.key.as_ref().and_then(|key| policy_builder::generated(spec, &key.key.arn));
    let has_replicas = |key: &ObservedKey| {
        !spec.replica_regions.is_empty()
            || !recorded_regions.is_empty()
            || !key.key.replica_regions.is_empty()
    };
    let primary_ready = matches!(report.outcome, Outcome::Ready { .. });
    if let Some(key) = report.key.clone().filter(|key| primary_ready && has_replicas(key))
        && spec.management_policy == ManagementPolicy::Full
    {
        let primary = Primary {
            key: &key.key,
            kms,
            recorded: &primary_recorded,
            recorded_regions,
            quick: !report.full_read,
            alias_handover_held,
        };
        let replicas = reconcile_replicas(replica_regions, writer, spec, owner, primary, policy, now).await?;
        report.outcome = report.outcome.with_replicas(&replicas.outcomes);
        report.changes.extend(replicas.changes);
        report.replicas = Some(replicas.statuses);
    }
    Ok(report)
}

/// The observe-plan-apply passes of one reconcile.
async fn passes(
    kms: &dyn KmsPort,
    writer: &dyn StatusWriter,
    target: Target<'_>,
    now: Timestamp,
) -> Result<Report, Error> {
    let mut report = Report::of(Outcome::not_converged());
    if let Err(message) = validate::validate(target.spec) {
        report.outcome = Outcome::Stalled { reason: "InvalidSpec", message };
        return Ok(report);
    }
    if let Some(rules) = target.guardrails {
        let violations = guardrails::check(target.spec, &target.owner.namespace, rules);
        if !violations.is_empty() {
            report.outcome =
                Outcome::Stalled { reason: "PolicyViolation", message: guardrails::message(&violations) };
            return Ok(report);
        }
    }
    if target.spec.adopt.is_some() && !target.recorded.adopted && !target.may_adopt {
        let message = "the operator's administrator does not let KmsKeys in this namespace adopt keys (--adopt-namespaces, chart adoption.namespaces); nothing was read or changed".to_owned();
        report.outcome = Outcome::Stalled { reason: "AdoptionNotAllowed", message };
        return Ok(report);
    }
    let observe_only = target.spec.management_policy == ManagementPolicy::ObserveOnly;
    let mut recorded = target.recorded;
    let mut previous: Vec<Action> = Vec::new();
    let mut confirmed_grants = std::collections::BTreeSet::new();
    let full =
        Basis::Full { no_grants: reads::grants_unread_are_none(target.spec, &recorded, target.standing) };
    let mut look = match reads::depth(target.spec, &recorded, target.standing, target.rotate_now) {
        Depth::Full => None,
        // Without the account's listing (throttled, say), this object is read in full.
        Depth::Quick => target.account_aliases.get(kms).await.ok().map(Look::Quick),
    };
    for _ in 0..MAX_PASSES {
        // A key made in this reconcile has not been used yet: its last use is read later.
        let usage_due = target.last_usage_due && report.last_usage.is_none() && report.created.is_none();
        let observe = |basis, usage_due| {
            observe::observe(kms, target.spec, target.owner, &recorded, target.rotate_now, usage_due, basis)
        };
        let current = look.take();
        let observed = match &current {
            Some(Look::Next(NextLook::Known(key))) => Ok(Observed::Owned(key.clone())),
            Some(Look::Next(NextLook::Confirm { before, reread })) => {
                observe(Basis::Confirm { before, reread: reread.clone() }, usage_due).await
            }
            Some(Look::Quick(listing)) => observe(Basis::Quick(listing), usage_due).await,
            Some(Look::Next(NextLook::Full)) | None => {
                report.full_read = true;
                observe(full.clone(), usage_due).await
            }
        };
        let observed = match observed {
            Ok(observed) => observed,
            Err(err) => {
                report.outcome = Outcome::of_kms_error(&err, &recorded, now);
                return Ok(report);
            }
        };
        let token = token::new_token();
        let ctx = plan::Context {
            owner: target.owner,
            recorded: &recorded,
            now,
            fresh_token: &token,
            previous: &previous,
            confirmed_grants: &confirmed_grants,
            rotate_now: target.rotate_now,
            alias_handover_held: target.alias_handover_held,
        };
        let mut plan = plan::plan(target.spec, &observed, &ctx);
        let mut observed = observed;
        if plan.read_in_full {
            report.full_read = true;
            // The quick look already read the last use, if it was due.
            let quick = observed;
            observed = match observe(full.clone(), false).await {
                Ok(observed) => observed,
                Err(err) => {
                    report.outcome = Outcome::of_kms_error(&err, &recorded, now);
                    return Ok(report);
                }
            };
            if let (Observed::Owned(quick), Observed::Owned(full)) = (&quick, &mut observed) {
                full.last_usage = quick.last_usage.clone();
                full.last_usage_unreadable = quick.last_usage_unreadable.clone();
            }
            plan = plan::plan(target.spec, &observed, &ctx);
        }
        // An observer shows the key it looks at, unless another object holds it.
        report.key = match (&observed, observe_only) {
            (Observed::Unowned { key, holder: Holder::Nobody }, true) => Some((**key).clone()),
            _ => observed.owned_key().cloned(),
        };
        if let Some(key) = observed.owned_key()
            && usage_due
        {
            report.last_usage =
                Some(key.last_usage.clone().ok_or_else(|| {
                    key.last_usage_unreadable.clone().unwrap_or_else(|| "no answer".to_owned())
                }));
        }
        if observe_only {
            let lines = plan::summary::plan_lines(&plan.actions, &plan.notices);
            report.outcome = Outcome::of_observed_plan(&plan);
            report.plan = Some(lines);
            return Ok(report);
        }
        if plan.actions.is_empty() {
            report.outcome = Outcome::of_settled_plan(&plan);
            return Ok(report);
        }
        let mut applied = apply::apply(kms, writer, observed.key_to_act_on(), &plan.actions).await;
        report.adopted |= applied.adopted;
        if applied.created.is_some() {
            report.created = applied.recorded.as_ref().map(|k| k.key_id.clone());
        }
        recorded.adopted |= applied.adopted;
        if let Some(key) = applied.recorded {
            recorded.key_id = Some(key.key_id);
            recorded.key_created_at = Some(key.at);
            recorded.intent = None;
        }
        report.changes.extend(applied.changes);
        if let Some((request, at)) = applied.rotated_on_demand {
            report.rotated_on_demand = Some(at);
            recorded.on_demand = Some(request);
        }
        confirmed_grants.extend(applied.confirmed_grants);
        match applied.failed {
            None => {}
            Some(Error::Kms(err)) => {
                report.outcome = Outcome::of_kms_error(&err, &recorded, now);
                return Ok(report);
            }
            Some(err) => return Err(err),
        }
        let created = applied.created.take();
        look = Some(Look::Next(reads::next_look(target.spec, &observed, &plan.actions, created)));
        previous = plan.actions;
    }
    Ok(report)
}

/// How the next pass is to learn the key.
enum Look {
    /// The first pass's quick look, with the account's aliases.
    Quick(std::sync::Arc<std::collections::BTreeMap<String, String>>),
    Next(NextLook),
}
