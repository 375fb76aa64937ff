//! When to look at an object again: at the object's own slot of the resync interval after
//! success, and after an exponential backoff with jitter, per object, after throttling or
//! outages. Each object's slot is a fixed point of the interval that depends only on its UID,
//! so 10,000 objects resync evenly across the interval, whenever they were created and however
//! often the operator restarted, instead of in the bursts of their creation or of a startup.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

const FIRST_RETRY: Duration = Duration::from_secs(2);
const LONGEST_RETRY: Duration = Duration::from_secs(300);

/// Consecutive failures by object UID.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// The wait before the next try of `uid`, which has just failed once more.
    pub fn next(&self, uid: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(uid.to_owned()).or_default();
        *count = count.saturating_add(1);
        jittered(backoff_delay(*count))
    }

    /// Forgets the failures of `uid` after a success.
    pub fn reset(&self, uid: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

/// The un-jittered wait after `failures` consecutive failures: 2 s, 4 s, 8 s, ... up to 5 min.
pub fn backoff_delay(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    FIRST_RETRY.saturating_mul(factor).min(LONGEST_RETRY)
}

/// The wait, at `now` (seconds since the epoch), until the resync of the object `uid` every
/// `interval`: its next slot at least half an interval away (a slot sooner than that, after
/// a reconcile the object's change caused, is skipped). Between slots: exactly `interval`.
pub fn until_resync(uid: &str, interval: Duration, now: f64) -> Duration {
    let period = interval.as_secs_f64().max(1.0);
    let phase = (crate::reconcile::fnv1a(uid.as_bytes()) % 1_000_000) as f64 / 1_000_000.0 * period;
    let mut wait = period - (now - phase).rem_euclid(period);
    if wait < period / 2.0 {
        wait += period;
    }
    Duration::from_secs_f64(wait)
}

/// `base` moved by up to ±10%, so objects that failed together do not retry in step.
pub fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.9..=1.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_five_minutes() {
        let delays: Vec<u64> = (1..=10).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(delays, vec![2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff_delay(u32::MAX), LONGEST_RETRY);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..200 {
            let d = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn resyncs_keep_each_object_at_its_slot_and_spread_objects_over_the_interval() {
        let interval = Duration::from_secs(600);
        let t0 = 1_800_000_000.0;
        let first = until_resync("a", interval, t0).as_secs_f64();
        assert!((300.0..900.0).contains(&first), "{first}");
        let again = until_resync("a", interval, t0 + first).as_secs_f64();
        assert!((again - 600.0).abs() < 1e-6, "a resync at its slot waits exactly one interval: {again}");
        let late = until_resync("a", interval, t0 + first + 100.0).as_secs_f64();
        assert!((late - 500.0).abs() < 1e-6, "a reconcile between slots keeps the slot: {late}");

        // 10,000 objects reconciled at the same moment (a restart) spread over the interval.
        let mut per_minute = [0u32; 15];
        for i in 0..10_000 {
            let wait = until_resync(&format!("uid-{i}"), interval, t0).as_secs_f64();
            per_minute[(wait / 60.0) as usize] += 1;
        }
        let busiest = per_minute.iter().max().unwrap();
        assert!(*busiest < 1_300, "{per_minute:?}: about 1,000 a minute, never a burst");
    }

    #[test]
    fn a_success_resets_the_backoff_of_that_object_only() {
        let backoff = Backoff::default();
        backoff.next("a");
        backoff.next("a");
        backoff.next("b");
        assert!(backoff.next("a") >= Duration::from_secs_f64(7.2));
        backoff.reset("a");
        assert!(backoff.next("a") <= Duration::from_secs_f64(2.2));
        assert!(backoff.next("b") >= Duration::from_secs_f64(3.6));
    }
}
