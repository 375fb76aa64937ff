//! A shared test clock: real time plus an offset that a test can push forward. The strict KMS
//! layer reads time only through it, so a test jumps the KMS side past a lag (IAM tag
//! propagation, eventual consistency of lists) with `advance` instead of sleeping. Clones share
//! one offset.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

#[derive(Clone, Debug, Default)]
pub struct TestClock {
    offset: Arc<Mutex<Duration>>,
}

impl TestClock {
    /// A clock at real time (no offset yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// The monotonic now, moved by every `advance` so far.
    pub fn now_instant(&self) -> Instant {
        Instant::now() + self.offset()
    }

    /// The wall-clock now, moved by every `advance` so far.
    pub fn now_timestamp(&self) -> Timestamp {
        let offset = SignedDuration::try_from(self.offset()).expect("offset fits a SignedDuration");
        Timestamp::now().checked_add(offset).expect("advanced clock stays within jiff's range")
    }

    /// Moves this clock (and every clone) forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }

    /// How far the clock has been advanced in total.
    pub fn offset(&self) -> Duration {
        *self.offset.lock().unwrap()
    }
}
