//! Prometheus metrics. Labels come from small fixed sets (outcome, KMS operation, lane), never
//! object names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    lane: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    leader: Gauge,
    unused_key_warnings: Counter,
    kms_calls: Family<CallLabels, Counter>,
    quota_waits: Family<OperationLabels, Counter>,
    quota_wait_seconds: Family<OperationLabels, Counter<f64, AtomicU64>>,
    queue_depth: Family<LaneLabels, Gauge>,
    objects: Family<StateLabels, Gauge>,
    /// Each object's last outcome, so that `objects` moves an object from one state to another.
    states: Mutex<HashMap<String, &'static str>>,
    resync_lag: Gauge<f64, AtomicU64>,
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
        let kms_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "kms_calls",
            "KMS requests by operation and outcome (ok, throttled, transient, not_found, invalid_state, already_exists, access_denied, rejected); one per page of a list, after the SDK's retries",
            kms_calls.clone(),
        );
        let quota_waits = Family::<OperationLabels, Counter>::default();
        registry.register(
            "kms_quota_waits",
            "KMS requests that waited for the client-side quota (--kms-quota-fraction, --kms-rate-limits) before being sent",
            quota_waits.clone(),
        );
        let quota_wait_seconds = Family::<OperationLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "kms_quota_wait_seconds",
            "Time KMS requests spent waiting for the client-side quota",
            quota_wait_seconds.clone(),
        );
        let queue_depth = Family::<LaneLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Reconciles waiting for a turn, by lane: edit (spec changes, objects not Ready, deletions) or resync",
            queue_depth.clone(),
        );
        let objects = Family::<StateLabels, Gauge>::default();
        registry.register(
            "objects",
            "KmsKeys by the outcome of their last reconcile: ready, progressing, stalled, held",
            objects.clone(),
        );
        let resync_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "resync_lag_seconds",
            "Time since the KmsKey looked at longest ago was last reconciled (held objects excluded); above the resync interval, the operator falls behind",
            resync_lag.clone(),
        );
        Self {
            registry,
            reconciles,
            duration,
            leader,
            unused_key_warnings,
            kms_calls,
            quota_waits,
            quota_wait_seconds,
            queue_depth,
            objects,
            states: Mutex::new(HashMap::new()),
            resync_lag,
            encode_lock: Mutex::new(()),
        }
    }
}

impl crate::kms::CallObserver for Metrics {
    fn waited(&self, operation: &'static str, wait: Duration) {
        if wait >= Duration::from_millis(1) {
            self.quota_waits.get_or_create(&OperationLabels { operation }).inc();
            self.quota_wait_seconds.get_or_create(&OperationLabels { operation }).inc_by(wait.as_secs_f64());
        }
    }

    fn answered(&self, operation: &'static str, outcome: &'static str) {
        self.kms_calls.get_or_create(&CallLabels { operation, outcome }).inc();
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

    /// Reconciles waiting for a turn in `lane`.
    pub fn set_queue_depth(&self, lane: &'static str, depth: usize) {
        self.queue_depth.get_or_create(&LaneLabels { lane }).set(depth as i64);
    }

    /// The object `uid` is now in `state` (its last outcome), or gone (`None`).
    pub fn object_state(&self, uid: &str, state: Option<&'static str>) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let before = match state {
            Some(state) => states.insert(uid.to_owned(), state),
            None => states.remove(uid),
        };
        if before == state {
            return;
        }
        if let Some(before) = before {
            self.objects.get_or_create(&StateLabels { state: before }).dec();
        }
        if let Some(state) = state {
            self.objects.get_or_create(&StateLabels { state }).inc();
        }
    }

    /// Forgets every object but those in `uids` (the others left the watch).
    pub fn retain_objects(&self, uids: &std::collections::HashSet<String>) {
        let gone: Vec<String> = {
            let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
            states.keys().filter(|uid| !uids.contains(*uid)).cloned().collect()
        };
        for uid in gone {
            self.object_state(&uid, None);
        }
    }

    pub fn set_resync_lag(&self, lag: Duration) {
        self.resync_lag.set(lag.as_secs_f64());
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

    #[test]
    fn kms_requests_queue_depth_states_and_lag_are_exported_with_fixed_labels() {
        use crate::kms::CallObserver;
        let metrics = Metrics::default();
        metrics.answered("DescribeKey", "ok");
        metrics.answered("DescribeKey", "ok");
        metrics.answered("CreateKey", "throttled");
        metrics.waited("CreateKey", Duration::from_millis(500));
        metrics.waited("DescribeKey", Duration::ZERO);
        metrics.set_queue_depth("edit", 3);
        metrics.object_state("a", Some("ready"));
        metrics.object_state("b", Some("ready"));
        metrics.object_state("b", Some("stalled"));
        metrics.object_state("a", None);
        metrics.object_state("c", Some("stalled"));
        metrics.retain_objects(&["b".to_owned()].into());
        metrics.set_resync_lag(Duration::from_secs(90));
        let text = metrics.encode();
        for line in [
            "kms_operator_kms_calls_total{operation=\"DescribeKey\",outcome=\"ok\"} 2",
            "kms_operator_kms_calls_total{operation=\"CreateKey\",outcome=\"throttled\"} 1",
            "kms_operator_kms_quota_waits_total{operation=\"CreateKey\"} 1",
            "kms_operator_kms_quota_wait_seconds_total{operation=\"CreateKey\"} 0.5",
            "kms_operator_queue_depth{lane=\"edit\"} 3",
            "kms_operator_objects{state=\"ready\"} 0",
            "kms_operator_objects{state=\"stalled\"} 1",
            "kms_operator_resync_lag_seconds 90.0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("kms_quota_waits_total{operation=\"DescribeKey\"}"),
            "a request sent at once did not wait"
        );
    }

    /// Metrics with a sample in every family (an empty family is not exported at all).
    fn with_every_metric() -> Metrics {
        use crate::kms::CallObserver;
        let metrics = Metrics::default();
        metrics.reconciled("ready", Duration::from_millis(1));
        metrics.unused_key_warned();
        metrics.set_leader(true);
        metrics.answered("DescribeKey", "ok");
        metrics.waited("CreateKey", Duration::from_secs(1));
        metrics.set_queue_depth("edit", 0);
        metrics.object_state("a", Some("ready"));
        metrics.set_resync_lag(Duration::ZERO);
        metrics
    }

    /// Every name a Prometheus query can use for the metrics `text` exposes: each family, with
    /// the `_total`, `_bucket`, `_sum` and `_count` series of counters and histograms.
    fn exported_series(text: &str) -> Vec<String> {
        let families = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next());
        let suffixes = ["", "_total", "_bucket", "_sum", "_count"];
        families.flat_map(|f| suffixes.iter().map(move |s| format!("{f}{s}"))).collect()
    }

    #[test]
    fn every_dashboard_panel_queries_metrics_the_operator_exports() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../charts/kms-operator/files/dashboard.json")).unwrap();
        let exported = exported_series(&with_every_metric().encode());
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(panels.len() >= 8, "{panels:?}");
        for panel in panels {
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{} has no query", panel["title"]);
            for target in targets {
                let expr = target["expr"].as_str().unwrap();
                let names: Vec<&str> = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|word| word.starts_with("kms_operator_"))
                    .collect();
                assert!(!names.is_empty(), "{}: {expr} names no operator metric", panel["title"]);
                for name in names {
                    assert!(exported.iter().any(|e| e == name), "{}: {name} is not exported", panel["title"]);
                }
            }
        }
    }
}
