//! When each object's key last had its last use read (GetKeyLastUsage): kept in memory, not in
//! status, so a resync that learns nothing new writes nothing. A restart reads each key once
//! more. Entries go with their objects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::reconcile::audit::last_usage_due;

/// Last reads by object UID.
#[derive(Debug, Default)]
pub struct UsageChecks {
    read_at: Mutex<HashMap<String, Timestamp>>,
}

impl UsageChecks {
    /// Whether the key of `uid` is due a read every `every`.
    pub fn due(&self, uid: &str, every: Duration, now: Timestamp) -> bool {
        let last = self.read_at.lock().unwrap_or_else(|e| e.into_inner()).get(uid).copied();
        last_usage_due(last, every, now)
    }

    /// The key of `uid` was read at `now`.
    pub fn read(&self, uid: &str, now: Timestamp) {
        self.read_at.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned(), now);
    }

    /// Forgets `uid`, whose object is gone.
    pub fn forget(&self, uid: &str) {
        self.read_at.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_due_again_only_after_most_of_the_interval_and_forgotten_with_its_object() {
        let checks = UsageChecks::default();
        let (every, t0) = (Duration::from_secs(600), Timestamp::from_second(1_800_000_000).unwrap());
        assert!(checks.due("a", every, t0));
        checks.read("a", t0);
        assert!(!checks.due("a", every, t0 + Duration::from_secs(60)));
        assert!(checks.due("a", every, t0 + Duration::from_secs(500)));
        assert!(checks.due("b", every, t0), "per object");
        checks.forget("a");
        assert!(checks.read_at.lock().unwrap().is_empty());
    }
}
