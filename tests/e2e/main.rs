//! End-to-end: the real operator binary against a real etcd + kube-apiserver and moto's KMS,
//! driven with kubectl as a user would. One control plane serves every scenario (starting it
//! is the slow part); each scenario uses its own namespace and alias names.
//!
//! A custom harness (`harness = false`): it starts the parts once, runs the scenarios in
//! order, prints `N passed, N failed`, and stops every process it started, also on Ctrl-C.

mod accounts;
mod bad_input;
#[path = "../support/clock.rs"]
#[allow(dead_code)]
mod clock;
mod env;
#[path = "../support/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;
mod features;
mod guardrails;
mod helm;
mod holds;
mod iam_lag;
#[path = "../support/moto.rs"]
#[allow(dead_code)]
mod moto;
mod ownership;
mod regions;
mod reliability;
mod replicas;
mod scenarios;
mod shards;
#[path = "../support/strict/mod.rs"]
#[allow(dead_code)]
mod strict;
mod world;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

use futures::FutureExt;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let world = world::World::start().await;
    let state_dir = world.state_dir.clone();
    tokio::spawn(async move {
        wait_for_interrupt().await;
        eprintln!("interrupted: stopping the control plane");
        let script = format!("{}/hack/controlplane.sh", env::ROOT);
        let _ = std::process::Command::new("bash").arg(script).arg("stop").arg(state_dir.join("cp")).status();
        std::process::exit(130);
    });

    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in scenarios::all() {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        eprintln!("--- {name}");
        let started = std::time::Instant::now();
        match AssertUnwindSafe(scenario(&world)).catch_unwind().await {
            Ok(()) => {
                passed += 1;
                eprintln!("ok   {name} ({:.1}s)", started.elapsed().as_secs_f64());
            }
            Err(_) => {
                failed += 1;
                eprintln!("FAIL {name}; operator log: {}", world.operator_log().display());
            }
        }
    }
    let keep_log = failed > 0;
    world.stop(keep_log);
    println!("e2e: {passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn wait_for_interrupt() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).unwrap();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
