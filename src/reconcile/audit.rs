//! Audit facts: when the key's last use is worth asking KMS about (at most once per resync
//! interval), and whether it has gone unused for longer than `spec.unusedDays`.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::kms::LastUsage;

use super::outcome::Outcome;

/// Whether GetKeyLastUsage is due: never asked, or last asked at least 80% of `every` ago (so
/// a resync that comes a little early, with jitter, still asks).
pub fn last_usage_due(read_at: Option<Timestamp>, every: Duration, now: Timestamp) -> bool {
    read_at.is_none_or(|at| now.duration_since(at).as_secs_f64() >= every.as_secs_f64() * 0.8)
}

/// Whether a reconcile's read of the last use counts as the interval's read: it succeeded, or
/// failed while everything else went through (a lasting refusal, worth one warning per
/// interval). A read refused along with the rest, as while IAM catches up with a new key, is
/// tried again at the next reconcile.
pub fn usage_read_counts(read: Option<&Result<LastUsage, String>>, outcome: &Outcome) -> bool {
    match read {
        Some(Ok(_)) => true,
        Some(Err(_)) => matches!(outcome, Outcome::Ready { .. }),
        None => false,
    }
}

/// The warning for a key unused for at least `unused_days`: counted from its last use, or,
/// for a key never used, from when KMS began tracking it.
pub fn unused_warning(unused_days: Option<u32>, usage: &LastUsage, now: Timestamp) -> Option<String> {
    let limit = unused_days?;
    let since = usage.at.as_deref().or(usage.tracking_since.as_deref())?.parse::<Timestamp>().ok()?;
    let days = now.duration_since(since).as_secs() / 86_400;
    if days < i64::from(limit) {
        return None;
    }
    Some(match (&usage.operation, &usage.at) {
        (Some(operation), Some(at)) => {
            format!(
                "the key has not been used for {days} days (last: {operation} at {at}); spec.unusedDays is {limit}"
            )
        }
        _ => format!(
            "the key has never been used in the {days} days KMS has tracked it; spec.unusedDays is {limit}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64) -> String {
        (now() - Duration::from_secs(days_ago as u64 * 86_400)).to_string()
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[test]
    fn last_usage_is_read_at_most_once_per_resync_interval() {
        let every = Duration::from_secs(600);
        assert!(last_usage_due(None, every, now()), "never read");
        assert!(!last_usage_due(Some(now() - Duration::from_secs(300)), every, now()));
        assert!(
            last_usage_due(Some(now() - Duration::from_secs(480)), every, now()),
            "an early, jittered resync"
        );
    }

    #[test]
    fn a_read_counts_unless_it_failed_along_with_the_rest() {
        let ready = Outcome::Ready { message: String::new() };
        let waiting = Outcome::Stalled { reason: "AccessDenied", message: String::new() };
        let (ok, refused) = (Ok(LastUsage::default()), Err("AccessDenied".to_owned()));
        assert!(usage_read_counts(Some(&ok), &waiting));
        assert!(usage_read_counts(Some(&refused), &ready), "a lasting refusal: once per interval");
        assert!(!usage_read_counts(Some(&refused), &waiting), "IAM catching up: tried again");
        assert!(!usage_read_counts(None, &ready));
    }

    #[test]
    fn a_key_unused_for_unused_days_is_warned_about_counting_from_its_last_use_or_tracking() {
        let used =
            LastUsage { operation: Some("Decrypt".into()), at: Some(at(40)), tracking_since: Some(at(400)) };
        let warning = unused_warning(Some(30), &used, now()).unwrap();
        assert!(warning.starts_with("the key has not been used for 40 days (last: Decrypt"), "{warning}");
        assert_eq!(unused_warning(Some(41), &used, now()), None);
        assert_eq!(unused_warning(None, &used, now()), None, "no threshold, no warning");
        let never = LastUsage { operation: None, at: None, tracking_since: Some(at(90)) };
        assert!(unused_warning(Some(30), &never, now()).unwrap().contains("never been used in the 90 days"));
        assert_eq!(unused_warning(Some(30), &LastUsage::default(), now()), None, "nothing known");
    }
}
