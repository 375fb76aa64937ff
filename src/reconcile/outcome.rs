//! What a reconcile ended in, derived from the plan or the error that stopped it. The
//! controller turns an outcome into conditions, an event and the next requeue.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::kms::{ErrorKind, KmsError};

use super::plan::on_demand::MAX_ON_DEMAND_ROTATIONS;
use super::plan::summary::summary;
use super::plan::{Blocker, Denial, Hold, Plan, Recorded, judge_denial};
use crate::api::{CLAIM_ALIAS_ANNOTATION, ROTATE_NOW_ANNOTATION};

/// Reasons under which AWS refuses the operator for want of permission: while one of them
/// stands, `status.accessDeniedSince` keeps the time the refusals began.
pub const PERMISSION_REASONS: [&str; 3] = ["AwaitingPermissions", "AccessDenied", "InvalidPrincipal"];

/// The end state of one reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// KMS matches the spec (as far as the key's state allows; `message` says what waits).
    Ready { message: String },
    /// Work remains that needs no person: retry after `retry`.
    Progressing { reason: &'static str, message: String, retry: Retry },
    /// A person (or another object) must act; nothing more is tried until the spec changes or
    /// the next resync.
    Stalled { reason: &'static str, message: String },
    /// A person asked the operator to hold off (`kms.boosterpack.io/paused`): nothing is tried,
    /// nothing is wrong; `reason` says what is held.
    Held { reason: &'static str, message: String },
}

/// When to try again after a `Progressing` outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Exponential backoff with jitter (throttling, outages).
    Backoff,
    /// After a known time.
    After(Duration),
    /// At the next resync, as after success.
    Resync,
}

impl Outcome {
    /// The reason its conditions carry (`Ready` for a Ready outcome).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Ready { .. } => "Ready",
            Self::Progressing { reason, .. } | Self::Stalled { reason, .. } | Self::Held { reason, .. } => {
                reason
            }
        }
    }

    /// The metric label of this kind of outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ready { .. } => "ready",
            Self::Progressing { .. } => "progressing",
            Self::Stalled { .. } => "stalled",
            Self::Held { .. } => "held",
        }
    }

    /// Whether the outcome deserves a Warning Event: a person should act, or something unusual
    /// holds the key up. Throttling and AWS being unreachable are retried by themselves and
    /// show in status and in `kms_operator_kms_calls_total`; an Event for each would, in an
    /// outage, be one per object per retry (and kube's recorder keeps each for a while).
    /// Waiting for an earlier create, for IAM to catch up, or an observer's drift, is expected.
    pub fn warrants_warning(&self) -> bool {
        match self {
            Self::Stalled { .. } => true,
            Self::Progressing { reason, .. } => !matches!(
                *reason,
                "Throttled" | "AwsUnavailable" | "CreateInFlight" | "AwaitingPermissions" | "DriftDetected"
            ),
            Self::Ready { .. } | Self::Held { .. } => false,
        }
    }

    /// KMS has not shown every change yet: look again with backoff.
    pub fn not_converged() -> Self {
        Self::Progressing {
            reason: "Converging",
            message: "KMS does not show every change yet; checking again shortly".to_owned(),
            retry: Retry::Backoff,
        }
    }

    /// The outcome of a plan with no actions left to run.
    pub fn of_settled_plan(plan: &Plan) -> Self {
        if let Some(blocker) = plan.blockers.first() {
            let (reason, message) = describe_blocker(blocker);
            return Self::Stalled { reason, message };
        }
        match &plan.hold {
            Some(Hold::KeyState(state)) => Self::Progressing {
                reason: "KeyTransitioning",
                message: format!("waiting for the key to leave the {state} state"),
                retry: Retry::After(Duration::from_secs(15)),
            },
            Some(Hold::CreateSettling(left)) => Self::Progressing {
                reason: "CreateInFlight",
                message: "an earlier create attempt may still appear in KMS; waiting before trying again"
                    .to_owned(),
                retry: Retry::After(*left),
            },
            Some(Hold::KeyNotVisibleYet(left)) => Self::Progressing {
                reason: "Converging",
                message: "KMS does not describe the new key yet; checking again shortly".to_owned(),
                retry: Retry::After((*left).min(Duration::from_secs(10))),
            },
            Some(Hold::AwaitingPermissions { permissions, retry }) => Self::Progressing {
                reason: "AwaitingPermissions",
                message: format!(
                    "AWS refuses {} to the operator; IAM applies a new key's tags up to five minutes late, so this is retried before it is reported",
                    permissions.join(", ")
                ),
                retry: Retry::After(*retry),
            },
            Some(Hold::NotConverged { policy_statements }) if !policy_statements.is_empty() => {
                Self::Progressing {
                    reason: "Converging",
                    message: format!(
                        "KMS does not show the key policy as the spec asks yet; statements differing: {}",
                        policy_statements.join(", ")
                    ),
                    retry: Retry::Backoff,
                }
            }
            Some(Hold::NotConverged { .. }) => Self::not_converged(),
            None => {
                let mut message = "the key matches the spec".to_owned();
                if !plan.deferred.is_empty() {
                    message += &format!(", except: {}", plan.deferred.join("; "));
                }
                if !plan.notices.is_empty() {
                    message += &format!(". Note: {}", plan.notices.join("; "));
                }
                Self::Ready { message }
            }
        }
    }

    /// The object's outcome given its primary's (`self`) and each replica's, by Region: the
    /// primary's unless it is Ready; else the first replica that is Stalled, then the first
    /// that is not Ready, named by its Region; else Ready.
    pub fn with_replicas(self, replicas: &[(String, Outcome)]) -> Self {
        if !matches!(self, Self::Ready { .. }) {
            return self;
        }
        let stalled = replicas.iter().find(|(_, o)| matches!(o, Self::Stalled { .. }));
        let waiting = stalled.or_else(|| replicas.iter().find(|(_, o)| !matches!(o, Self::Ready { .. })));
        let Some((region, outcome)) = waiting else { return self };
        let in_region = |message: &str| format!("replica in {region}: {message}");
        match outcome {
            Self::Progressing { reason, message, retry } => {
                Self::Progressing { reason, message: in_region(message), retry: *retry }
            }
            Self::Stalled { reason, message } => Self::Stalled { reason, message: in_region(message) },
            Self::Held { reason, message } => Self::Held { reason, message: in_region(message) },
            Self::Ready { .. } => unreachable!("a Ready replica is not waited for"),
        }
    }

    /// The outcome of a plan that an `ObserveOnly` object does not run: what `Full` would
    /// change is drift to report (or, with no change, the settled outcome).
    pub fn of_observed_plan(plan: &Plan) -> Self {
        let changes: Vec<String> = plan.actions.iter().filter_map(summary).collect();
        if !plan.blockers.is_empty() || changes.is_empty() {
            return Self::of_settled_plan(plan);
        }
        let shown = changes.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        let more = match changes.len() {
            n if n > 3 => format!(" and {} more (status.plan)", n - 3),
            _ => String::new(),
        };
        Self::Progressing {
            reason: "DriftDetected",
            message: format!(
                "managementPolicy is ObserveOnly, so nothing is changed; Full would {shown}{more}"
            ),
            retry: Retry::Resync,
        }
    }

    /// The outcome of a KMS call that failed at `now`. A refusal for want of permission is
    /// waited out while IAM may still be catching up (see `judge_denial`).
    pub fn of_kms_error(err: &KmsError, recorded: &Recorded, now: Timestamp) -> Self {
        let message = err.to_string();
        let progressing =
            |reason| Self::Progressing { reason, message: message.clone(), retry: Retry::Backoff };
        match err.kind {
            ErrorKind::Throttled => progressing("Throttled"),
            ErrorKind::Transient => progressing("AwsUnavailable"),
            ErrorKind::InvalidState => progressing("KeyStateConflict"),
            ErrorKind::NotFound => progressing("AwsNotFound"),
            ErrorKind::AlreadyExists => Self::Stalled { reason: "AliasConflict", message },
            ErrorKind::AccessDenied => Self::of_refusal(message, "AccessDenied", recorded, now),
            ErrorKind::Rejected if err.is_permission_refusal() => {
                Self::of_refusal(message, "InvalidPrincipal", recorded, now)
            }
            ErrorKind::Rejected => Self::Stalled { reason: "AwsRejected", message },
        }
    }

    /// A refusal for want of permission (or naming a principal AWS does not know yet): waited
    /// out while IAM may still be catching up, then `Stalled` with `lasting_reason`.
    fn of_refusal(
        message: String,
        lasting_reason: &'static str,
        recorded: &Recorded,
        now: Timestamp,
    ) -> Self {
        match judge_denial(recorded, now) {
            Denial::Propagating(retry) => Self::Progressing {
                reason: "AwaitingPermissions",
                message: format!("{message}; IAM may still be catching up, retrying"),
                retry: Retry::After(retry),
            },
            Denial::Lasting if lasting_reason == "AccessDenied" => Self::Stalled {
                reason: lasting_reason,
                message: format!(
                    "{message}; check the IAM permissions of the operator's role and the key policy"
                ),
            },
            Denial::Lasting => Self::Stalled { reason: lasting_reason, message },
        }
    }
}

fn describe_blocker(blocker: &Blocker) -> (&'static str, String) {
    match blocker {
        Blocker::AliasConflict { alias, holder } => (
            "AliasConflict",
            format!(
                "{alias} already points at key {holder}, which this object does not own; choose another aliasName or remove that alias"
            ),
        ),
        Blocker::KeyNotFound { key_id } => (
            "KeyNotFound",
            format!(
                "key {key_id} recorded in status no longer exists in KMS; it is not re-created automatically. Delete and re-create this object to get a new key"
            ),
        ),
        Blocker::NotOwned { key_id } => (
            "NotOwned",
            format!("key {key_id} is tagged for another object or cluster; the operator will not modify it"),
        ),
        Blocker::AliasHandoverHeld { alias } => (
            "AliasHandoverHeld",
            format!(
                "{alias} is free now, but this object was stalled waiting for it and the cluster does not let a stalled object take an alias by itself (KmsKeyPolicy aliasHandover: Manual): another team may depend on the name. To take it, change the spec or annotate {CLAIM_ALIAS_ANNOTATION}=<status.aliasHold.token>"
            ),
        ),
        Blocker::HeldElsewhere { key_id, owner, same_cluster: true, .. } => (
            "NotOwned",
            format!(
                "key {key_id} belongs to {owner} in this cluster and is never taken from another object; delete that object with deletionPolicy: Retain, then this one adopts the key"
            ),
        ),
        Blocker::HeldElsewhere { key_id, cluster, owner, same_cluster: false } => (
            "NotOwned",
            format!(
                "key {key_id} belongs to {owner} in cluster {cluster}; nothing was changed. To take it over, set spec.adopt.takeOverFromCluster: {cluster} (the operator's IAM policy must also allow re-tagging that cluster's keys)"
            ),
        ),
        Blocker::AdoptTargetMissing { reference } => (
            "AdoptTargetNotFound",
            format!(
                "no key in KMS matches {reference}; nothing was created. Correct spec.adopt, or remove it to create a new key"
            ),
        ),
        Blocker::AdoptPendingDeletion { key_id } => (
            "AdoptPendingDeletion",
            format!(
                "key {key_id} is pending deletion: AWS refuses to tag it, and the operator may cancel deletions only of keys tagged for its cluster. Cancel it (aws kms cancel-key-deletion --key-id {key_id}); the operator then adopts the key and enables it if the spec says so"
            ),
        ),
        Blocker::ReadDenied { key_id, permissions } => (
            "AccessDenied",
            format!(
                "the operator may not call {} on key {key_id}; allow it in the operator's IAM policy and in the key policy",
                permissions.join(", ")
            ),
        ),
        Blocker::CannotRotate { key_spec } => (
            "CannotRotate",
            format!(
                "the {ROTATE_NOW_ANNOTATION} annotation asks to rotate a {key_spec} key; AWS rotates only SYMMETRIC_DEFAULT keys. Remove the annotation"
            ),
        ),
        Blocker::OnDemandRotationLimit => (
            "OnDemandRotationLimit",
            format!(
                "the key has had the {MAX_ON_DEMAND_ROTATIONS} on-demand rotations AWS allows; the {ROTATE_NOW_ANNOTATION} annotation cannot be honoured. Automatic rotation (enableKeyRotation) has no such limit"
            ),
        ),
        Blocker::WrongKind { field, wanted, actual } => (
            "KeyKindMismatch",
            format!(
                "the key's {field} is {actual}, not {wanted} as the spec says; KMS cannot change it. Set spec.{field} to {actual}, or delete and re-create this object to get a new key"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_with_nothing_left_is_ready() {
        assert!(matches!(Outcome::of_settled_plan(&Plan::default()), Outcome::Ready { .. }));
    }

    #[test]
    fn deferred_changes_are_named_in_the_ready_message() {
        let plan = Plan { deferred: vec!["x waits".into()], ..Plan::default() };
        let Outcome::Ready { message } = Outcome::of_settled_plan(&plan) else { panic!() };
        assert!(message.ends_with("except: x waits"));
    }

    #[test]
    fn the_object_is_ready_only_when_its_primary_and_every_replica_are() {
        let ready = || Outcome::Ready { message: "ok".into() };
        let waiting = Outcome::Progressing {
            reason: "KeyTransitioning",
            message: "waiting".into(),
            retry: Retry::After(Duration::from_secs(15)),
        };
        let stalled = Outcome::Stalled { reason: "AliasConflict", message: "taken".into() };
        let replicas = vec![
            ("eu-west-1".to_owned(), ready()),
            ("ap-south-1".to_owned(), waiting.clone()),
            ("us-west-2".to_owned(), stalled.clone()),
        ];
        let Outcome::Stalled { reason, message } = ready().with_replicas(&replicas) else { panic!() };
        assert_eq!((reason, message.as_str()), ("AliasConflict", "replica in us-west-2: taken"));
        let Outcome::Progressing { message, retry, .. } = ready().with_replicas(&replicas[..2]) else {
            panic!()
        };
        assert_eq!(
            (message.as_str(), retry),
            ("replica in ap-south-1: waiting", Retry::After(Duration::from_secs(15)))
        );
        assert_eq!(ready().with_replicas(&replicas[..1]), ready());
        assert_eq!(waiting.clone().with_replicas(&replicas), waiting, "the primary's own wait comes first");
    }

    fn held(cluster: &str, same_cluster: bool) -> Blocker {
        let (key_id, owner) = ("k1".into(), "team-b/orders".into());
        Blocker::HeldElsewhere { key_id, cluster: cluster.into(), owner, same_cluster }
    }

    #[test]
    fn drift_seen_by_an_observe_only_object_is_reconciling_until_the_next_resync() {
        use crate::reconcile::plan::Action;
        let actions: Vec<Action> = (1..=5).map(|i| Action::CreateAlias(format!("alias/a{i}"))).collect();
        let drift = Plan { actions: actions.clone(), ..Plan::default() };
        let Outcome::Progressing { reason, message, retry } = Outcome::of_observed_plan(&drift) else {
            panic!()
        };
        assert_eq!((reason, retry), ("DriftDetected", Retry::Resync));
        let shown =
            "create alias alias/a1; create alias alias/a2; create alias alias/a3 and 2 more (status.plan)";
        assert!(message.ends_with(&format!("Full would {shown}")), "{message}");
        let noted = Plan { notices: vec!["a read was refused".into()], ..Plan::default() };
        assert!(
            matches!(Outcome::of_observed_plan(&noted), Outcome::Ready { .. }),
            "notes alone are no drift"
        );
        let blocked = Plan { actions, blockers: vec![held("prod", true)], ..Plan::default() };
        assert!(matches!(Outcome::of_observed_plan(&blocked), Outcome::Stalled { reason: "NotOwned", .. }));
    }

    #[test]
    fn every_blocker_stalls_with_its_own_reason() {
        let table = [
            (Blocker::AliasConflict { alias: "alias/a".into(), holder: "k2".into() }, "AliasConflict", "k2"),
            (Blocker::KeyNotFound { key_id: "k1".into() }, "KeyNotFound", "not re-created"),
            (Blocker::NotOwned { key_id: "k1".into() }, "NotOwned", "another object"),
            (
                Blocker::ReadDenied { key_id: "k1".into(), permissions: vec!["kms:ListGrants"] },
                "AccessDenied",
                "may not call kms:ListGrants on key k1",
            ),
            (Blocker::CannotRotate { key_spec: "HMAC_256".into() }, "CannotRotate", "rotate a HMAC_256 key"),
            (Blocker::OnDemandRotationLimit, "OnDemandRotationLimit", "the 25 on-demand rotations"),
            (
                held("prod", true),
                "NotOwned",
                "never taken from another object; delete that object with deletionPolicy: Retain",
            ),
            (held("staging", false), "NotOwned", "set spec.adopt.takeOverFromCluster: staging"),
            (
                Blocker::AdoptTargetMissing { reference: "adopt.aliasName orders".into() },
                "AdoptTargetNotFound",
                "no key in KMS matches adopt.aliasName orders",
            ),
            (
                Blocker::AdoptPendingDeletion { key_id: "k1".into() },
                "AdoptPendingDeletion",
                "aws kms cancel-key-deletion --key-id k1",
            ),
            (
                Blocker::WrongKind {
                    field: "keySpec",
                    wanted: "RSA_2048".into(),
                    actual: "SYMMETRIC_DEFAULT".into(),
                },
                "KeyKindMismatch",
                "keySpec is SYMMETRIC_DEFAULT, not RSA_2048",
            ),
        ];
        for (blocker, want_reason, want_text) in table {
            let plan = Plan { blockers: vec![blocker], ..Plan::default() };
            let Outcome::Stalled { reason, message } = Outcome::of_settled_plan(&plan) else { panic!() };
            assert_eq!(reason, want_reason);
            assert!(message.contains(want_text), "{message}");
        }
    }

    #[test]
    fn access_denied_on_a_new_key_awaits_permissions_then_stalls_once_it_lasts() {
        // IAM applies a new key's tags up to five minutes late: Stalled at once would show
        // Failed in Flux and Argo CD for every new key.
        let err = KmsError::from_response("GetKeyPolicy", Some("AccessDeniedException"), 400, Some("no"));
        let young = Recorded { key_created_at: Some(at(0)), ..Recorded::default() };
        let Outcome::Progressing { reason, retry, .. } = Outcome::of_kms_error(&err, &young, at(5)) else {
            panic!()
        };
        assert_eq!((reason, retry), ("AwaitingPermissions", Retry::After(Duration::from_secs(10))));
        let lasting = Recorded { denied_since: Some(at(0)), ..young };
        let Outcome::Stalled { reason, .. } = Outcome::of_kms_error(&err, &lasting, at(400)) else {
            panic!()
        };
        assert_eq!(reason, "AccessDenied");
    }

    #[test]
    fn an_unknown_principal_that_stays_unknown_stalls_as_invalid_principal() {
        let err = KmsError::from_response(
            "CreateKey",
            Some("MalformedPolicyDocumentException"),
            400,
            Some("Policy contains a statement with one or more invalid principals."),
        );
        let first = Outcome::of_kms_error(&err, &Recorded::default(), at(0));
        assert!(matches!(first, Outcome::Progressing { reason: "AwaitingPermissions", .. }));
        let lasting = Recorded { denied_since: Some(at(0)), ..Recorded::default() };
        let Outcome::Stalled { reason, .. } = Outcome::of_kms_error(&err, &lasting, at(400)) else {
            panic!()
        };
        assert_eq!(reason, "InvalidPrincipal");
    }

    #[test]
    fn notices_are_named_in_the_ready_message() {
        let plan = Plan { notices: vec!["tag x is stray".into()], ..Plan::default() };
        let Outcome::Ready { message } = Outcome::of_settled_plan(&plan) else { panic!() };
        assert!(message.ends_with("Note: tag x is stray"), "{message}");
    }

    #[test]
    fn holds_retry_after_a_known_time() {
        let plan = Plan { hold: Some(Hold::CreateSettling(Duration::from_secs(7))), ..Plan::default() };
        let Outcome::Progressing { retry, .. } = Outcome::of_settled_plan(&plan) else { panic!() };
        assert_eq!(retry, Retry::After(Duration::from_secs(7)));
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    #[test]
    fn kms_errors_become_progressing_or_stalled_by_kind() {
        let table = [
            (ErrorKind::Throttled, "Throttled", false),
            (ErrorKind::Transient, "AwsUnavailable", false),
            (ErrorKind::InvalidState, "KeyStateConflict", false),
            (ErrorKind::NotFound, "AwsNotFound", false),
            (ErrorKind::AlreadyExists, "AliasConflict", true),
            (ErrorKind::Rejected, "AwsRejected", true),
        ];
        for (kind, want, stalled) in table {
            let err = KmsError::new("PutKeyPolicy", kind, "because");
            match Outcome::of_kms_error(&err, &Recorded::default(), at(0)) {
                Outcome::Stalled { reason, message } if stalled => {
                    assert_eq!(reason, want);
                    assert!(message.contains("because"));
                }
                Outcome::Progressing { reason, retry, .. } if !stalled => {
                    assert_eq!((reason, retry), (want, Retry::Backoff));
                }
                other => panic!("{kind:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn only_what_a_person_should_see_becomes_a_warning() {
        let progressing =
            |reason| Outcome::Progressing { reason, message: String::new(), retry: Retry::Backoff };
        for quiet in ["Throttled", "AwsUnavailable", "CreateInFlight", "AwaitingPermissions", "DriftDetected"]
        {
            assert!(!progressing(quiet).warrants_warning(), "{quiet}");
        }
        for loud in ["KeyStateConflict", "AwsNotFound", "Converging"] {
            assert!(progressing(loud).warrants_warning(), "{loud}");
        }
        assert!(Outcome::Stalled { reason: "AliasConflict", message: String::new() }.warrants_warning());
        assert!(!Outcome::Ready { message: String::new() }.warrants_warning());
    }
}
