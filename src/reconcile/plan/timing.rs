//! How long the operator waits for AWS to catch up before it calls something wrong. KMS and
//! IAM are eventually consistent: a new key can be missing from ListKeys and DescribeKey for
//! a while, and IAM applies a new key's tags (which the operator's own IAM policy is scoped
//! by) up to five minutes late.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::observed::Recorded;

/// How long after a create attempt a key may still be missing from KMS's listings. Until
/// then a pending attempt is waited for instead of repeated.
pub const CREATE_SETTLE: Duration = Duration::from_secs(30);

/// How long after its creation a key may still be unknown to DescribeKey. Until then a
/// missing key is waited for, not reported as gone.
pub const KEY_VISIBILITY_GRACE: Duration = Duration::from_secs(120);

/// How long a refusal for want of permission is taken for IAM catching up (AWS documents up
/// to five minutes for tags, and a new role propagates with a delay too), plus a minute.
pub const PERMISSION_GRACE: Duration = Duration::from_secs(360);

/// How often a call refused while IAM catches up is tried again.
pub const PERMISSION_RETRY: Duration = Duration::from_secs(10);

/// How much longer a missing key may be waited for, while it was recorded moments ago.
pub fn young_key(recorded: &Recorded, now: Timestamp) -> Option<Duration> {
    time_left(KEY_VISIBILITY_GRACE, recorded.key_created_at?, now)
}

/// How much longer a key DescribeKey does not know may be waited for: the recorded key, while
/// it was recorded moments ago; a key just found by the tags of an interrupted create (its
/// tags say it exists), while that attempt is recent.
pub fn missing_key_wait(key_id: &str, recorded: &Recorded, now: Timestamp) -> Option<Duration> {
    if recorded.key_id.as_deref() == Some(key_id) {
        return young_key(recorded, now);
    }
    time_left(KEY_VISIBILITY_GRACE, recorded.intent.as_ref()?.started_at, now)
}

/// How much longer an unfinished create attempt may still surface in KMS.
pub fn settling_intent(recorded: &Recorded, now: Timestamp) -> Option<Duration> {
    time_left(CREATE_SETTLE, recorded.intent.as_ref()?.started_at, now)
}

/// Whether IAM may not yet apply the tags of the recorded key, created less than
/// [`PERMISSION_GRACE`] ago: a refused read then says nothing about the key or the policy.
pub fn iam_may_lag(recorded: &Recorded, now: Timestamp) -> bool {
    recorded.key_created_at.is_some_and(|at| time_left(PERMISSION_GRACE, at, now).is_some())
}

/// How a refusal for want of permission is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Probably IAM catching up (a key created moments ago, or a refusal that began moments
    /// ago): try again after this long.
    Propagating(Duration),
    /// It has lasted longer than IAM takes: a real permission problem.
    Lasting,
}

/// Judges a refusal for want of permission met at `now`: waited out while the key is young
/// or the refusals began less than [`PERMISSION_GRACE`] ago.
pub fn judge_denial(recorded: &Recorded, now: Timestamp) -> Denial {
    let since_key = recorded.key_created_at.and_then(|at| time_left(PERMISSION_GRACE, at, now));
    let since_first = time_left(PERMISSION_GRACE, recorded.denied_since.unwrap_or(now), now);
    match since_key.max(since_first) {
        Some(left) => Denial::Propagating(left.min(PERMISSION_RETRY)),
        None => Denial::Lasting,
    }
}

/// What remains of `window` started at `since`, or `None` once it has passed. A `since` in
/// the future (clocks of two writers) counts as now.
fn time_left(window: Duration, since: Timestamp, now: Timestamp) -> Option<Duration> {
    let age = now.duration_since(since);
    let age = if age.is_negative() { Duration::ZERO } else { age.unsigned_abs() };
    window.checked_sub(age).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    #[test]
    fn a_denial_on_a_key_created_moments_ago_is_waited_out() {
        // IAM sees a new key's tags up to five minutes late; the operator's policy needs them.
        let recorded = Recorded { key_created_at: Some(at(0)), ..Recorded::default() };
        assert_eq!(judge_denial(&recorded, at(30)), Denial::Propagating(PERMISSION_RETRY));
        let almost = Recorded { denied_since: Some(at(0)), ..recorded.clone() };
        assert_eq!(judge_denial(&almost, at(355)), Denial::Propagating(Duration::from_secs(5)));
    }

    #[test]
    fn a_first_denial_on_an_old_key_is_given_the_same_grace() {
        // A role or policy changed moments ago propagates too.
        let recorded = Recorded { key_created_at: Some(at(0)), ..Recorded::default() };
        assert_eq!(judge_denial(&recorded, at(10_000)), Denial::Propagating(PERMISSION_RETRY));
    }

    #[test]
    fn a_denial_that_outlives_the_grace_is_a_permission_problem() {
        let recorded =
            Recorded { key_created_at: Some(at(0)), denied_since: Some(at(100)), ..Recorded::default() };
        assert_eq!(judge_denial(&recorded, at(461)), Denial::Lasting);
    }

    #[test]
    fn a_timestamp_in_the_future_counts_as_now() {
        let recorded = Recorded { key_created_at: Some(at(50)), ..Recorded::default() };
        assert_eq!(young_key(&recorded, at(0)), Some(KEY_VISIBILITY_GRACE));
    }
}
