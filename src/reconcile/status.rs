//! The status a reconcile leaves behind: the key's facts as last observed, and kstatus
//! conditions (`Ready`, `Reconciling`, `Stalled`) that keep each `lastTransitionTime` while
//! the condition's status does not change. Pure: the caller writes the result.

use crate::api::{
    AliasHold, Condition, ConditionStatus, KeyUsageRecord, KmsKeySpec, KmsKeyStatus, ManagementPolicy,
    RotationRecord,
};
use crate::kms::PastRotation;

use super::outcome::{Outcome, PERMISSION_REASONS};
use super::plan::grants::managed_name;
use super::plan::on_demand::{self, RotationRequest};
use super::plan::{ObservedKey, READ_ALIASES, READ_GRANTS};
use super::run::Report;

/// The status after `report` for an object with `spec`, starting from `current` (which already
/// holds the intent and key ID written during the reconcile). `now` is RFC 3339.
pub fn status_after(
    current: &KmsKeyStatus,
    report: &Report,
    spec: &KmsKeySpec,
    generation: Option<i64>,
    now: &str,
) -> KmsKeyStatus {
    let mut next = current.clone();
    let wanted_alias = spec.full_alias_name();
    let wanted_additional = spec.full_additional_aliases();
    if let Some(observed) = &report.key {
        let key = &observed.key;
        next.key_id = Some(key.key_id.clone());
        next.key_arn = Some(key.arn.clone());
        next.region = super::region::arn_region(&key.arn).map(str::to_owned).or(next.region);
        next.account_id = super::account::arn_account(&key.arn).map(str::to_owned).or(next.account_id);
        next.key_state = Some(key.state.clone());
        next.multi_region = Some(key.multi_region);
        next.key_spec = Some(key.key_spec.clone()).filter(|s| !s.is_empty());
        next.key_usage = Some(key.key_usage.clone()).filter(|u| !u.is_empty());
        if let Some(rotation) = &observed.rotation {
            next.rotation_period_in_days = rotation.period_days.filter(|_| rotation.enabled);
            next.next_rotation_date = rotation.next_rotation.clone().filter(|_| rotation.enabled);
        }
        if let Some(past) = &observed.past_rotations {
            next.rotations = Some(latest_rotations(past));
            next.on_demand_rotations = Some(on_demand::on_demand_count(past) as u32);
        }
        confirm_on_demand_rotation(&mut next, observed, report);
        next.generated_policy = report.generated_policy.clone();
        if let Some(Ok(usage)) = &report.last_usage {
            let read = KeyUsageRecord {
                operation: usage.operation.clone(),
                at: usage.at.clone(),
                tracking_since: usage.tracking_since.clone(),
                read_at: now.to_owned(),
            };
            let same =
                |known: &KeyUsageRecord| KeyUsageRecord { read_at: now.to_owned(), ..known.clone() } == read;
            if !next.last_usage.as_ref().is_some_and(same) {
                next.last_usage = Some(read);
            }
        }
        let holds_wanted = observed.alias_target.as_deref() == Some(key.key_id.as_str());
        // What a refused read did not show is left as it was recorded.
        next.alias_name = match holds_wanted {
            true => Some(wanted_alias.clone()),
            false if !observed.known(READ_ALIASES) => next.alias_name.take(),
            false => next.alias_name.take().filter(|old| observed.aliases.contains(old)),
        };
        if observed.known(READ_ALIASES) {
            let mut ours = wanted_additional;
            ours.extend(next.additional_aliases.iter().cloned());
            next.additional_aliases = (observed.aliases.iter())
                .filter(|a| ours.contains(a) && **a != wanted_alias)
                .cloned()
                .collect();
        }
        if observed.known(READ_GRANTS) {
            next.grant_ids = (observed.grants.iter())
                .filter_map(|g| managed_name(g).map(|n| (n.to_owned(), g.grant_id.clone())))
                .collect();
        }
    }
    if let Some(replicas) = &report.replicas {
        next.replicas = replicas.clone();
    }
    if spec.adopt.is_some() && spec.management_policy == ManagementPolicy::Full && report.key.is_some() {
        next.adopted = Some(true);
    }
    // An observer's plan stays shown through a reconcile that could not make a new one.
    let observing = spec.management_policy == ManagementPolicy::ObserveOnly;
    next.plan = report.plan.clone().or_else(|| next.plan.take().filter(|_| observing));
    next.alias_hold = alias_hold(next.alias_hold.take(), &report.outcome, generation, now);
    next.access_denied_since = match &report.outcome {
        Outcome::Progressing { reason, .. } | Outcome::Stalled { reason, .. }
            if PERMISSION_REASONS.contains(reason) =>
        {
            next.access_denied_since.take().or_else(|| Some(now.to_owned()))
        }
        _ => None,
    };
    next.conditions = conditions(&next.conditions, &report.outcome, generation, now);
    next.observed_generation = generation;
    next
}

/// The alias hold after `outcome`: made when the object stalls on an alias (with a token only
/// then known), kept while it waits at the same generation, dropped once it is Ready or its
/// spec changed.
fn alias_hold(
    hold: Option<AliasHold>,
    outcome: &Outcome,
    generation: Option<i64>,
    now: &str,
) -> Option<AliasHold> {
    let current = hold.filter(|h| Some(h.generation) == generation);
    match outcome {
        Outcome::Ready { .. } => None,
        Outcome::Stalled { reason: "AliasConflict" | "AliasHandoverHeld", .. } => current.or_else(|| {
            let generation = generation?;
            let token = format!(
                "{:016x}",
                crate::reconcile::ownership::fnv1a(format!("{now}/{generation}").as_bytes())
            );
            Some(AliasHold { generation, token })
        }),
        _ => current,
    }
}

/// The last few rotations, newest first.
fn latest_rotations(past: &[PastRotation]) -> Vec<RotationRecord> {
    let latest = past.iter().rev().take(SHOWN_ROTATIONS);
    latest.map(|r| RotationRecord { date: r.date.clone(), type_: r.kind.clone() }).collect()
}

/// Rotations listed in status.
const SHOWN_ROTATIONS: usize = 5;

/// Marks the recorded on-demand rotation as taken: this reconcile's call succeeded, or (after a
/// restart between the call and this write) the key's rotation history shows it.
fn confirm_on_demand_rotation(next: &mut KmsKeyStatus, observed: &ObservedKey, report: &Report) {
    let Some(last) = next.last_on_demand_rotation.as_mut().filter(|r| r.rotated_at.is_none()) else { return };
    if let Some(at) = report.rotated_on_demand {
        last.rotated_at = Some(at.to_string());
    } else if let Some(past) = observed.past_rotations.as_deref() {
        let rotations_before = last.rotations_before as usize;
        let request = RotationRequest { token: last.token.clone(), rotations_before, rotated: false };
        last.rotated_at = on_demand::taken_at(&request, past, observed.rotation.as_ref());
    }
    if last.rotated_at.is_some() {
        let token = last.token.clone();
        on_demand::remember_value(&mut next.rotate_now_values, &token);
    }
}

/// The condition types the operator writes.
const OWN_TYPES: [&str; 3] = ["Ready", "Reconciling", "Stalled"];

/// The three conditions describing `outcome` for `generation`, at time `now` (RFC 3339),
/// followed by any condition another writer added, unchanged.
pub fn conditions(
    old: &[Condition],
    outcome: &Outcome,
    generation: Option<i64>,
    now: &str,
) -> Vec<Condition> {
    use ConditionStatus::{False, True};
    let (ready, reconciling, stalled) = match outcome {
        Outcome::Ready { message } => (
            (True, "Ready", message.clone()),
            (False, "Ready", String::new()),
            (False, "Ready", String::new()),
        ),
        Outcome::Progressing { reason, message, .. } => (
            (False, *reason, message.clone()),
            (True, *reason, message.clone()),
            (False, *reason, String::new()),
        ),
        Outcome::Stalled { reason, message } => (
            (False, *reason, message.clone()),
            (False, *reason, String::new()),
            (True, *reason, message.clone()),
        ),
        // Not Ready (KMS is not being kept to the spec), yet neither working nor stuck.
        Outcome::Held { reason, message } => (
            (False, *reason, message.clone()),
            (False, *reason, String::new()),
            (False, *reason, String::new()),
        ),
    };
    let ours = [("Ready", ready), ("Reconciling", reconciling), ("Stalled", stalled)];
    // Conditions other writers added (another controller, a policy engine) are kept as they are.
    let others = old.iter().filter(|c| !OWN_TYPES.contains(&c.type_.as_str())).cloned();
    ours.into_iter()
        .map(|(type_, (status, reason, message))| {
            let previous = old.iter().find(|c| c.type_ == type_);
            let last_transition_time = match previous {
                Some(p) if p.status == status => p.last_transition_time.clone(),
                _ => now.to_owned(),
            };
            Condition {
                type_: type_.to_owned(),
                status,
                reason: reason.to_owned(),
                message,
                last_transition_time,
                observed_generation: generation,
            }
        })
        .chain(others)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::LastUsage;
    use crate::reconcile::outcome::Retry;

    /// A spec whose alias is `alias/a`.
    fn spec_a() -> KmsKeySpec {
        KmsKeySpec { alias_name: "a".into(), ..crate::reconcile::plan::tests::mk_spec() }
    }

    fn status_of(conds: &[Condition], type_: &str) -> ConditionStatus {
        conds.iter().find(|c| c.type_ == type_).unwrap().status
    }

    #[test]
    fn each_outcome_sets_exactly_one_kstatus_state() {
        use ConditionStatus::{False, True};
        let table = [
            (Outcome::Ready { message: "ok".into() }, [True, False, False]),
            (
                Outcome::Progressing { reason: "Throttled", message: "slow".into(), retry: Retry::Backoff },
                [False, True, False],
            ),
            (Outcome::Stalled { reason: "AliasConflict", message: "taken".into() }, [False, False, True]),
        ];
        for (outcome, [ready, reconciling, stalled]) in table {
            let conds = conditions(&[], &outcome, Some(3), "t1");
            assert_eq!(status_of(&conds, "Ready"), ready, "{outcome:?}");
            assert_eq!(status_of(&conds, "Reconciling"), reconciling, "{outcome:?}");
            assert_eq!(status_of(&conds, "Stalled"), stalled, "{outcome:?}");
            assert!(conds.iter().all(|c| c.observed_generation == Some(3)));
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let ready = Outcome::Ready { message: "ok".into() };
        let first = conditions(&[], &ready, Some(1), "t1");
        let again = conditions(&first, &ready, Some(2), "t2");
        assert!(again.iter().all(|c| c.last_transition_time == "t1"));
        let stalled = Outcome::Stalled { reason: "AwsRejected", message: "no".into() };
        let after = conditions(&again, &stalled, Some(3), "t3");
        let time = |t: &str| after.iter().find(|c| c.type_ == t).unwrap().last_transition_time.clone();
        assert_eq!(time("Ready"), "t3");
        assert_eq!(time("Stalled"), "t3");
        assert_eq!(time("Reconciling"), "t1");
    }

    #[test]
    fn conditions_written_by_others_are_kept() {
        let foreign = Condition {
            type_: "PolicyCompliant".into(),
            status: ConditionStatus::False,
            reason: "MissingLabel".into(),
            message: "written by a policy engine".into(),
            last_transition_time: "t0".into(),
            observed_generation: None,
        };
        let conds = conditions(
            std::slice::from_ref(&foreign),
            &Outcome::Ready { message: "ok".into() },
            Some(1),
            "t1",
        );
        assert_eq!(conds.len(), 4);
        assert!(conds.contains(&foreign));
    }

    fn report(outcome: Outcome) -> Report {
        Report::of(outcome)
    }

    #[test]
    fn the_time_refusals_began_is_kept_while_they_last_and_cleared_after() {
        let denied = report(Outcome::Progressing {
            reason: "AwaitingPermissions",
            message: "no".into(),
            retry: Retry::Backoff,
        });
        let first = status_after(&KmsKeyStatus::default(), &denied, &spec_a(), None, "t1");
        assert_eq!(first.access_denied_since.as_deref(), Some("t1"));
        let stalled = report(Outcome::Stalled { reason: "AccessDenied", message: "no".into() });
        let later = status_after(&first, &stalled, &spec_a(), None, "t2");
        assert_eq!(later.access_denied_since.as_deref(), Some("t1"));
        let ready = report(Outcome::Ready { message: "ok".into() });
        assert_eq!(status_after(&later, &ready, &spec_a(), None, "t3").access_denied_since, None);
    }

    #[test]
    fn the_last_use_is_written_only_when_it_changes_and_a_failed_read_changes_nothing() {
        let known = KeyUsageRecord {
            operation: Some("Encrypt".into()),
            at: Some("t0".into()),
            tracking_since: None,
            read_at: "t0".into(),
        };
        let before = KmsKeyStatus { last_usage: Some(known.clone()), ..KmsKeyStatus::default() };
        let mut read = report(Outcome::Ready { message: String::new() });
        read.key = Some(crate::reconcile::plan::tests::mk_key());
        let usage = |at: &str| LastUsage {
            operation: Some("Encrypt".into()),
            at: Some(at.into()),
            tracking_since: None,
        };
        read.last_usage = Some(Ok(usage("t0")));
        assert_eq!(
            status_after(&before, &read, &spec_a(), None, "t1").last_usage,
            Some(known.clone()),
            "no churn"
        );
        read.last_usage = Some(Err("AccessDenied".into()));
        assert_eq!(status_after(&before, &read, &spec_a(), None, "t1").last_usage, Some(known.clone()));
        read.last_usage = Some(Ok(usage("t1")));
        let changed = status_after(&before, &read, &spec_a(), None, "t2").last_usage.unwrap();
        assert_eq!((changed.at.as_deref(), changed.read_at.as_str()), (Some("t1"), "t2"));
    }

    #[test]
    fn an_adopted_key_is_marked_once_it_is_the_objects_and_an_observer_shows_its_plan() {
        let adopt = crate::api::AdoptSpec {
            key_id: Some("k1".into()),
            alias_name: None,
            take_over_from_cluster: None,
        };
        let adopting = KmsKeySpec { adopt: Some(adopt), ..spec_a() };
        let mut seen = report(Outcome::Ready { message: String::new() });
        seen.key = Some(crate::reconcile::plan::tests::mk_key());
        let adopted = status_after(&KmsKeyStatus::default(), &seen, &adopting, None, "t1");
        assert_eq!((adopted.adopted, adopted.plan.as_ref()), (Some(true), None));
        let failed = status_after(&adopted, &report(Outcome::not_converged()), &adopting, None, "t2");
        assert_eq!(failed.adopted, Some(true), "kept while nothing is observed");

        let observing = KmsKeySpec { management_policy: ManagementPolicy::ObserveOnly, ..adopting };
        seen.plan = Some(vec!["update the description".into()]);
        let observed = status_after(&KmsKeyStatus::default(), &seen, &observing, None, "t1");
        assert_eq!(observed.adopted, None, "observing is not adopting");
        assert_eq!(observed.plan, Some(vec!["update the description".to_owned()]));
        assert_eq!(observed.key_id.as_deref(), Some("k1"), "the outputs are shown");
    }

    #[test]
    fn an_alias_hold_is_made_when_stalled_on_an_alias_and_lasts_until_ready_or_a_new_generation() {
        let conflict = report(Outcome::Stalled { reason: "AliasConflict", message: "taken".into() });
        let held = status_after(&KmsKeyStatus::default(), &conflict, &spec_a(), Some(2), "t1");
        let hold = held.alias_hold.clone().expect("a hold");
        assert_eq!(hold.generation, 2);
        let throttled = report(Outcome::Progressing {
            reason: "Throttled",
            message: "slow".into(),
            retry: Retry::Backoff,
        });
        assert_eq!(
            status_after(&held, &throttled, &spec_a(), Some(2), "t2").alias_hold,
            Some(hold.clone()),
            "a pause or a restart does not lift it"
        );
        let still = status_after(&held, &conflict, &spec_a(), Some(2), "t3").alias_hold;
        assert_eq!(still, Some(hold), "the token stays the same while it waits");
        assert_eq!(status_after(&held, &throttled, &spec_a(), Some(3), "t4").alias_hold, None, "a new spec");
        let ready = report(Outcome::Ready { message: "ok".into() });
        assert_eq!(status_after(&held, &ready, &spec_a(), Some(2), "t5").alias_hold, None);
    }

    #[test]
    fn what_a_refused_or_unread_part_did_not_show_stays_as_recorded() {
        use crate::kms::KeyDescription;
        use crate::reconcile::plan::{ObservedKey, READ_ALIASES, READ_GRANTS};
        let key = KeyDescription {
            key_id: "k1".into(),
            arn: "arn".into(),
            state: "Enabled".into(),
            description: String::new(),
            multi_region: false,
            replica: false,
            replica_regions: Vec::new(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            created_at: None,
        };
        let observed = ObservedKey {
            key,
            unrecorded: false,
            tags: Default::default(),
            rotation: None,
            past_rotations: None,
            policy: None,
            aliases: vec![],
            alias_target: None,
            additional_alias_holders: Default::default(),
            last_usage: None,
            last_usage_unreadable: None,
            grants: vec![],
            denied: vec![READ_GRANTS, READ_ALIASES],
            unread: vec![],
        };
        let quick =
            ObservedKey { denied: vec![], unread: vec![READ_GRANTS, READ_ALIASES], ..observed.clone() };
        let before = KmsKeyStatus {
            alias_name: Some("alias/a".into()),
            grant_ids: [("app".to_owned(), "g1".to_owned())].into(),
            next_rotation_date: Some("2027-01-01T00:00:00Z".into()),
            ..KmsKeyStatus::default()
        };
        for observed in [observed, quick] {
            let mut after = report(Outcome::Ready { message: "ok".into() });
            after.key = Some(observed);
            let next = status_after(&before, &after, &spec_a(), None, "t1");
            assert_eq!(next.alias_name.as_deref(), Some("alias/a"));
            assert_eq!(next.grant_ids, before.grant_ids);
            assert_eq!(next.next_rotation_date, before.next_rotation_date);
        }
    }

    #[test]
    fn the_stalled_message_tells_the_person_what_is_wrong() {
        let stalled = Outcome::Stalled { reason: "AliasConflict", message: "alias/a is taken".into() };
        let conds = conditions(&[], &stalled, None, "t");
        let c = conds.iter().find(|c| c.type_ == "Stalled").unwrap();
        assert_eq!((c.reason.as_str(), c.message.as_str()), ("AliasConflict", "alias/a is taken"));
    }
}
