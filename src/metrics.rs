//! Prometheus metrics. Labels come from small fixed sets (outcome), never object names.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    leader: Gauge,
    unused_key_warnings: Counter,
    encode_lock: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kms_operator");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by outcome: ready, progressing, stalled, deleted or error",
            reconciles.clone(),
        );
        let buckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let duration = Histogram::new(buckets);
        registry.register("reconcile_duration_seconds", "Time one reconcile took", duration.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process holds the leader lease (or runs alone)",
            leader.clone(),
        );
        let unused_key_warnings = Counter::default();
        registry.register(
            "unused_key_warnings",
            "KeyUnused warnings: a key unused for longer than its spec.unusedDays, found at a resync",
            unused_key_warnings.clone(),
        );
        Self { registry, reconciles, duration, leader, unused_key_warnings, encode_lock: Mutex::new(()) }
    }
}

impl Metrics {
    /// Counts one reconcile that ended in `outcome` after `took`.
    pub fn reconciled(&self, outcome: &'static str, took: Duration) {
        self.reconciles.get_or_create(&OutcomeLabels { outcome }).inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Counts one reconcile that failed before it had an outcome (a status write, say).
    pub fn failed(&self) {
        self.reconciles.get_or_create(&OutcomeLabels { outcome: "error" }).inc();
    }

    /// Counts one `KeyUnused` warning.
    pub fn unused_key_warned(&self) {
        self.unused_key_warnings.inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let _guard = self.encode_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_are_counted_by_outcome_without_object_names() {
        let metrics = Metrics::default();
        metrics.reconciled("ready", Duration::from_millis(20));
        metrics.reconciled("ready", Duration::from_millis(30));
        metrics.reconciled("stalled", Duration::from_millis(5));
        metrics.set_leader(true);
        let text = metrics.encode();
        assert!(text.contains("kms_operator_reconciles_total{outcome=\"ready\"} 2"), "{text}");
        assert!(text.contains("kms_operator_reconciles_total{outcome=\"stalled\"} 1"), "{text}");
        assert!(text.contains("kms_operator_reconcile_duration_seconds_count 3"), "{text}");
        assert!(text.lines().any(|l| l == "kms_operator_leader 1"), "{text}");
        metrics.set_leader(false);
        assert!(metrics.encode().lines().any(|l| l == "kms_operator_leader 0"));
    }
}
