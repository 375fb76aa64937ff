//! Sharding: several operators share one cluster, each reconciling the KmsKeys its
//! `--selector` matches. Every object is reconciled by exactly one of them, and a selector the
//! apiserver refuses stops an operator at once with the reason.

use std::time::Duration;

use serde_json::json;

use crate::env::{Operator, eventually};
use crate::world::World;

const SHARD: &str = "kms.boosterpack.io/shard";

/// The objects an operator counts in `kms_operator_objects`, whatever their state.
fn objects_counted(op: &Operator) -> u64 {
    op.metric_sum("kms_operator_objects{")
}

pub async fn two_shards_reconcile_every_object_exactly_once(w: &World) {
    let ns = "e2e-shards";
    w.namespace(ns);
    w.pause_operator();
    let shard = |name: &str, selector: &str| {
        let log = w.state_dir.join(format!("shard-{name}.log"));
        Operator::start(w.cp(), &w.kms_url(), log, &["--namespaces", ns, "--selector", selector])
    };
    let a = shard("a", &format!("{SHARD}=a"));
    let rest = shard("rest", &format!("{SHARD}!=a"));
    let labels = [Some("a"), Some("b"), None, Some("a"), None, Some("b")];
    for (i, label) in labels.iter().enumerate() {
        let labels = label.map(|l| json!({ SHARD: l })).unwrap_or(json!({}));
        let obj = json!({
            "apiVersion": "kms.boosterpack.io/v1alpha1", "kind": "KmsKey",
            "metadata": {"name": format!("s{i}"), "labels": labels},
            "spec": {"aliasName": format!("e2e-shard-{i}")},
        });
        w.apply(ns, &obj.to_string());
    }
    for i in 0..labels.len() {
        w.wait_ready(ns, &format!("s{i}")).await;
    }
    let in_a = labels.iter().filter(|l| **l == Some("a")).count() as u64;
    let counts = eventually("each shard to count its objects", Duration::from_secs(20), || async {
        let counts = (objects_counted(&a), objects_counted(&rest));
        (counts == (in_a, labels.len() as u64 - in_a)).then_some(counts)
    })
    .await;
    assert_eq!(counts.0 + counts.1, labels.len() as u64, "no object was reconciled by both");

    // A selector the apiserver refuses ends the operator with the reason, before any reconcile.
    let log = w.state_dir.join("shard-bad.log");
    let mut bad = Operator::start(w.cp(), &w.kms_url(), log.clone(), &["--selector", "a in (b"]);
    eventually("the operator with a bad selector to exit", Duration::from_secs(20), || {
        let running = bad.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("--selector") && text.contains("a in (b"), "{text}");

    // Each shard lets go of its own objects' keys.
    w.kubectl_ok(&["delete", "kms", "--all", "-n", ns, "--timeout=90s"]);
    drop((a, rest));
    w.resume_operator();
}
