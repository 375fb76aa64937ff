//! What one run measured, and the ratios the report derives from it.

use std::time::Duration;

use super::calls::PerKey;
use super::process::Usage;
use super::run::CREATE_KEY_PER_SECOND;
use super::settled::Settled;
use super::subject::Subject;

/// Calls over one steady window, per key and resync.
#[derive(Clone, Debug)]
pub struct Steady {
    pub label: String,
    pub resync: Duration,
    pub window: Duration,
    /// Reconciles in the window per object: how many resyncs each object had.
    pub passes: f64,
    pub per_key_per_resync: PerKey,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub operator: &'static str,
    pub short: &'static str,
    pub keys: usize,
    /// Keys whose objects all became ready.
    pub ready: usize,
    /// First create to last Ready; None unless every key became ready.
    pub all_ready: Option<Duration>,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    /// KMS calls of the bulk create, per key.
    pub create: PerKey,
    /// Calls the proxy throttled (the operator went over a quota).
    pub throttled: u64,
    /// Memory and CPU of the create phase, read ten seconds after the last Ready.
    pub create_usage: Usage,
    /// Process start to first finished reconcile, with every object present.
    pub startup: Option<Duration>,
    pub steady: Vec<Steady>,
    /// Apply→Ready of one description edit while every object resyncs.
    pub edit: Option<Duration>,
    /// Memory and CPU of the last steady phase's process when it ended.
    pub steady_usage: Usage,
    /// Memory with `queued_keys` objects queued and KMS unreachable.
    pub queued: Option<(usize, Usage)>,
    /// A start among `keys` Ready keys, with one edit during its startup pass.
    pub settled: Option<Settled>,
}

impl Outcome {
    pub fn new(subject: &Subject, keys: usize) -> Self {
        Outcome {
            operator: subject.name(),
            short: subject.short(),
            keys,
            ready: 0,
            all_ready: None,
            p50: None,
            p99: None,
            create: PerKey::default(),
            throttled: 0,
            create_usage: Usage::default(),
            startup: None,
            steady: Vec::new(),
            edit: None,
            steady_usage: Usage::default(),
            queued: None,
            settled: None,
        }
    }

    /// N / 5 s: CreateKey's quota makes every run at least this long.
    pub fn floor(&self) -> Duration {
        Duration::from_secs_f64(self.keys as f64 / CREATE_KEY_PER_SECOND)
    }

    /// Time to all Ready over the quota floor.
    pub fn floor_ratio(&self) -> Option<f64> {
        Some(self.all_ready?.as_secs_f64() / self.floor().as_secs_f64())
    }
}

/// The nearest-rank percentile `q` (0..1) of `values`.
pub fn percentile(values: &[Duration], q: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank() {
        use super::percentile;
        use std::time::Duration;
        let values: Vec<Duration> = (1..=100).map(Duration::from_secs).collect();
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_secs(50)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_secs(99)));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
