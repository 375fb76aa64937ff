//! The small version of `make bench` (issue 13), so the harness never rots: 20 KmsKeys with an
//! alias and rotation through the real operator binary, a fresh control plane, and moto behind
//! the proxy that enforces AWS's KMS quotas. It checks correctness, never time: every object
//! Ready, at most 10 KMS calls per new key, and per key and steady resync 0 writes and at most
//! 3 reads. It needs moto (`make moto`) and the control plane's binaries (`make controlplane`);
//! without them it fails and says so.

#[path = "support/bench/mod.rs"]
#[allow(dead_code)]
mod bench;
#[path = "e2e/env.rs"]
#[allow(dead_code)]
mod env;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use bench::run::{Settings, measure};
use bench::subject::Subject;

const KEYS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_keys_all_ready_within_the_call_targets() {
    let dir = std::env::temp_dir().join(format!("kms-operator-bench-test-{}", std::process::id()));
    let settings = Settings {
        keys: KEYS,
        strict: false,
        resync: Duration::from_secs(5),
        window: Duration::from_secs(12),
        dir: dir.clone(),
    };
    let ours = Subject::Ours { binary: PathBuf::from(env!("CARGO_BIN_EXE_kms-operator")) };
    let outcome = measure(&ours, &settings).await;
    eprintln!("{outcome:#?}");

    // The report and its plots are written from what was measured.
    let context = bench::report::Context {
        machine: bench::machine::Machine::read(),
        date: bench::machine::now_utc(),
        command: "cargo test --test bench".into(),
        notes: vec!["the small version in make test".into()],
    };
    let report = dir.join("BENCHMARKS.md");
    bench::report::write(&report, &context, std::slice::from_ref(&outcome)).unwrap();
    for plot in ["bench-time-to-ready.png", "bench-rss.png"] {
        assert!(dir.join(plot).metadata().is_ok_and(|m| m.len() > 0), "{plot} is drawn");
    }
    let logs = dir.join(format!("ours-{KEYS}/operator.log"));

    assert_eq!(outcome.ready, KEYS, "every KmsKey Ready; operator log: {}", logs.display());
    let create = &outcome.create;
    let mut failures = Vec::new();
    if create.total() > 10.0 {
        failures.push(format!(
            "create: {:.2} KMS calls per new key, target ≤ 10 ({})",
            create.total(),
            create.describe()
        ));
    }
    // The cheap resync when the operator has a deep one too; otherwise its only resync.
    let steady = outcome.steady.first().expect("a steady window was measured");
    let resync = &steady.per_key_per_resync;
    assert!(steady.passes > 0.0, "the objects resynced in the window: {steady:?}");
    if resync.writes() > 0.0 {
        failures.push(format!(
            "{}: {:.2} writes per key per resync, target 0 ({})",
            steady.label,
            resync.writes(),
            resync.describe()
        ));
    }
    if resync.reads() > 3.0 {
        failures.push(format!(
            "{}: {:.2} reads per key per resync, target ≤ 3 ({})",
            steady.label,
            resync.reads(),
            resync.describe()
        ));
    }
    assert!(failures.is_empty(), "issue 13's per-key call targets:\n{}", failures.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
