//! What a reconcile ended in, derived from the plan or the error that stopped it. The
//! controller turns an outcome into conditions, an event and the next requeue.

use std::time::Duration;

use crate::kms::{ErrorKind, KmsError};

use super::plan::{Blocker, Hold, Plan};

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
}

/// When to try again after a `Progressing` outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Exponential backoff with jitter (throttling, outages).
    Backoff,
    /// After a known time.
    After(Duration),
}

impl Outcome {
    /// The metric label of this kind of outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ready { .. } => "ready",
            Self::Progressing { .. } => "progressing",
            Self::Stalled { .. } => "stalled",
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
            None if plan.deferred.is_empty() => {
                Self::Ready { message: "the key matches the spec".to_owned() }
            }
            None => Self::Ready {
                message: format!("the key matches the spec, except: {}", plan.deferred.join("; ")),
            },
        }
    }

    /// The outcome of a KMS call that failed.
    pub fn of_kms_error(err: &KmsError) -> Self {
        let message = err.to_string();
        let progressing =
            |reason| Self::Progressing { reason, message: message.clone(), retry: Retry::Backoff };
        match err.kind {
            ErrorKind::Throttled => progressing("Throttled"),
            ErrorKind::Transient => progressing("AwsUnavailable"),
            ErrorKind::InvalidState => progressing("KeyStateConflict"),
            ErrorKind::NotFound => progressing("AwsNotFound"),
            ErrorKind::AlreadyExists => Self::Stalled { reason: "AliasConflict", message },
            ErrorKind::AccessDenied => Self::Stalled {
                reason: "AccessDenied",
                message: format!("{message}; check the IAM permissions of the operator's role"),
            },
            ErrorKind::Rejected => Self::Stalled { reason: "AwsRejected", message },
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
        Blocker::MultiRegionMismatch { key_is_multi_region } => (
            "MultiRegionImmutable",
            format!(
                "the key's multiRegion is {key_is_multi_region} and cannot change after creation; set spec.multiRegion back to {key_is_multi_region}"
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
    fn every_blocker_stalls_with_its_own_reason() {
        let table = [
            (Blocker::AliasConflict { alias: "alias/a".into(), holder: "k2".into() }, "AliasConflict", "k2"),
            (Blocker::KeyNotFound { key_id: "k1".into() }, "KeyNotFound", "not re-created"),
            (Blocker::NotOwned { key_id: "k1".into() }, "NotOwned", "another object"),
            (
                Blocker::MultiRegionMismatch { key_is_multi_region: true },
                "MultiRegionImmutable",
                "spec.multiRegion",
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
    fn holds_retry_after_a_known_time() {
        let plan = Plan { hold: Some(Hold::CreateSettling(Duration::from_secs(7))), ..Plan::default() };
        let Outcome::Progressing { retry, .. } = Outcome::of_settled_plan(&plan) else { panic!() };
        assert_eq!(retry, Retry::After(Duration::from_secs(7)));
    }

    #[test]
    fn kms_errors_become_progressing_or_stalled_by_kind() {
        let table = [
            (ErrorKind::Throttled, "Throttled", false),
            (ErrorKind::Transient, "AwsUnavailable", false),
            (ErrorKind::InvalidState, "KeyStateConflict", false),
            (ErrorKind::NotFound, "AwsNotFound", false),
            (ErrorKind::AlreadyExists, "AliasConflict", true),
            (ErrorKind::AccessDenied, "AccessDenied", true),
            (ErrorKind::Rejected, "AwsRejected", true),
        ];
        for (kind, want, stalled) in table {
            let err = KmsError::new("PutKeyPolicy", kind, "because");
            match Outcome::of_kms_error(&err) {
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
}
