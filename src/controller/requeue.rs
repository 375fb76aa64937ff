//! When to look at an object again: the resync interval with jitter after success, and an
//! exponential backoff with jitter, per object, after throttling or outages.

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

/// `base` moved by up to ±10%, so objects created together do not stay in step.
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
