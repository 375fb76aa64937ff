//! When each object's key last had a periodic read: its last use (GetKeyLastUsage), or a full
//! read (see `reconcile::plan::reads`). Kept in memory, not in status, so a resync that learns
//! nothing new writes nothing. After a restart, a schedule made with [`ReadSchedule::spread`]
//! takes each object it has not seen as read at a point of the last interval that depends on
//! the object, so the reads of a whole cluster spread over the interval instead of all coming
//! at once; the others read each key once more. Entries go with their objects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::reconcile::audit::last_usage_due as due;
use crate::reconcile::fnv1a;

/// Last reads by object UID.
#[derive(Debug, Default)]
pub struct ReadSchedule {
    read_at: Mutex<HashMap<String, Timestamp>>,
    spread: bool,
}

impl ReadSchedule {
    /// A schedule that takes an object it has not seen as read within the last interval.
    pub fn spread() -> Self {
        ReadSchedule { spread: true, ..Self::default() }
    }

    /// Whether the key of `uid` is due a read every `every`.
    pub fn due(&self, uid: &str, every: Duration, now: Timestamp) -> bool {
        let mut read_at = self.read_at.lock().unwrap_or_else(|e| e.into_inner());
        let last = match (read_at.get(uid), self.spread) {
            (Some(at), _) => Some(*at),
            (None, false) => None,
            (None, true) => {
                // Due (at 80% of the interval, see `due`) at a point of the next 80%.
                let assumed = now - every.mul_f64(0.8 * spread_fraction(uid));
                read_at.insert(uid.to_owned(), assumed);
                Some(assumed)
            }
        };
        due(last, every, now)
    }

    /// The key of `uid` was read at `now`.
    pub fn read(&self, uid: &str, now: Timestamp) {
        self.read_at.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned(), now);
    }

    /// The earliest read on record.
    pub fn oldest(&self) -> Option<Timestamp> {
        self.read_at.lock().unwrap_or_else(|e| e.into_inner()).values().min().copied()
    }

    /// Forgets every object but those in `uids`.
    pub fn retain(&self, uids: &std::collections::HashSet<String>) {
        self.read_at.lock().unwrap_or_else(|e| e.into_inner()).retain(|uid, _| uids.contains(uid));
    }

    /// Forgets `uid`, whose object is gone.
    pub fn forget(&self, uid: &str) {
        self.read_at.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

/// A fraction in [0, 1) that depends only on `uid`.
fn spread_fraction(uid: &str) -> f64 {
    (fnv1a(uid.as_bytes()) % 10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_due_again_only_after_most_of_the_interval_and_forgotten_with_its_object() {
        let checks = ReadSchedule::default();
        let (every, t0) = (Duration::from_secs(600), Timestamp::from_second(1_800_000_000).unwrap());
        assert!(checks.due("a", every, t0));
        checks.read("a", t0);
        assert!(!checks.due("a", every, t0 + Duration::from_secs(60)));
        assert!(checks.due("a", every, t0 + Duration::from_secs(500)));
        assert!(checks.due("b", every, t0), "per object");
        checks.read("c", t0 + Duration::from_secs(10));
        assert_eq!(checks.oldest(), Some(t0));
        checks.retain(&["a".to_owned()].into());
        assert_eq!(checks.oldest(), Some(t0), "c left the watch");
        checks.forget("a");
        assert!(checks.read_at.lock().unwrap().is_empty());
        assert_eq!(checks.oldest(), None);
    }

    #[test]
    fn a_spread_schedule_makes_unseen_objects_due_at_different_points_of_the_interval() {
        let every = Duration::from_secs(3600);
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let schedule = ReadSchedule::spread();
        let uids: Vec<String> = (0..200).map(|i| format!("uid-{i}")).collect();
        let due_within = |minutes: i64| {
            let at = t0 + Duration::from_secs(minutes as u64 * 60);
            uids.iter().filter(|uid| schedule.due(uid, every, at)).count()
        };
        let at_start = due_within(0);
        assert!(at_start < 5, "{at_start} of 200 objects are due at once after a restart");
        assert_eq!(due_within(60), 200, "every object is due within one interval");
        schedule.read("uid-0", t0 + Duration::from_secs(3600));
        assert!(!schedule.due("uid-0", every, t0 + Duration::from_secs(3660)));
    }
}
