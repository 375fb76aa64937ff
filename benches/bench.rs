//! `make bench`: kms-operator side by side with the ACK kms-controller under AWS's KMS quotas,
//! at N keys each (issue 13). Writes BENCHMARKS.md and its plots.
//!
//! ```text
//! cargo bench --bench bench -- [--keys 100,1000,10000] [--peer ../shared/peers] [--out BENCHMARKS.md]
//!                              [--strict] [--resync SECONDS] [--window SECONDS] [--queued-from N]
//!                              [--settled]
//! ```
//! At N ≥ `--queued-from` (default 10000) the bulk create is not measured (it would take N / 5 s
//! of CreateKey quota): the memory is, with every object queued and KMS unreachable, as issue 13
//! measured it; and with `--settled`, a start among N Ready keys with one edit during its
//! startup pass (the keys made first with the quotas lifted; see `bench/settled.rs`).

#[path = "../tests/support/bench/mod.rs"]
#[allow(dead_code)]
mod bench;
#[path = "../tests/e2e/env.rs"]
#[allow(dead_code)]
mod env;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use bench::outcome::Outcome;
use bench::run::{Settings, measure, measure_queued};
use bench::settled::measure_settled;
use bench::subject::Subject;

struct Args {
    keys: Vec<usize>,
    peer: Option<PathBuf>,
    out: PathBuf,
    strict: bool,
    resync: Duration,
    window: Duration,
    queued_from: usize,
    settled: bool,
}

fn parse() -> Args {
    let mut args = Args {
        keys: vec![100],
        peer: None,
        out: PathBuf::from(env::ROOT).join("BENCHMARKS.md"),
        strict: false,
        resync: Duration::from_secs(30),
        window: Duration::from_secs(60),
        queued_from: 10_000,
        settled: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--keys" => {
                args.keys = value().split(',').map(|n| n.trim().parse().expect("--keys: numbers")).collect()
            }
            "--peer" => args.peer = Some(value()).filter(|p| !p.is_empty()).map(PathBuf::from),
            "--out" => args.out = PathBuf::from(value()),
            "--strict" => args.strict = true,
            "--resync" => args.resync = Duration::from_secs(value().parse().expect("--resync: seconds")),
            "--window" => args.window = Duration::from_secs(value().parse().expect("--window: seconds")),
            "--queued-from" => args.queued_from = value().parse().expect("--queued-from: a number"),
            "--settled" => args.settled = true,
            "--bench" => {} // cargo bench passes it
            other => panic!("unknown argument {other} (see benches/bench.rs)"),
        }
    }
    args
}

fn main() {
    // `cargo test --all-targets` runs this binary too, without `--bench`: the small version of
    // the benchmark is tests/bench.rs, so nothing is measured here then.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/bench.rs measures only under `cargo bench` (`make bench`)");
        return;
    }
    let args = parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let dir = std::env::temp_dir().join(format!("kms-operator-bench-{}", std::process::id()));
    stop_on_interrupt(dir.clone());
    let ours = Subject::Ours { binary: PathBuf::from(env!("CARGO_BIN_EXE_kms-operator")) };
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mut notes = vec![
        format!("kms-operator: `{}` ({profile} build)", env!("CARGO_BIN_EXE_kms-operator")),
        if args.strict {
            "KMS: moto behind the quota proxy (AWS's per-operation quotas) and the strict layer (AWS's checks and page sizes; no IAM, so no tag lag)".into()
        } else {
            "KMS: moto behind the quota proxy enforcing AWS's per-operation quotas (CreateKey 5/s, …); strict layer off".into()
        },
        format!(
            "steady windows: resync every {} s, calls counted over {} s after the startup pass; per resync = calls / reconciles counted by the operator's own metric",
            args.resync.as_secs(),
            args.window.as_secs()
        ),
    ];
    if ours.has_deep_resync() {
        notes.push("cheap resync: `--deep-resync-interval 1h`; deep resync: `--deep-resync-interval` equal to the resync interval".into());
    } else {
        notes.push(
            "this build has no `--deep-resync-interval`: every resync is the operator's only kind".into(),
        );
    }
    let peer = match bench::peer::locate(args.peer.as_deref()) {
        Ok(peer) => {
            notes.push("peer: the ACK kms-controller v1.4.1 (Key + Alias per key), its defaults but the resync of the steady windows".into());
            Some(peer)
        }
        Err(why) => {
            eprintln!("==> {why}");
            notes.push(why);
            None
        }
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for &keys in &args.keys {
        let settings = Settings {
            keys,
            strict: args.strict,
            resync: args.resync,
            window: args.window,
            dir: dir.clone(),
        };
        for subject in std::iter::once(&ours).chain(peer.iter()) {
            eprintln!("==> {} with N = {keys}", subject.name());
            let outcome = if keys >= args.queued_from {
                let mut outcome = Outcome::new(subject, keys);
                outcome.queued = Some((keys, measure_queued(subject, &settings).await));
                if args.settled {
                    outcome.settled = measure_settled(subject, &settings).await;
                }
                outcome
            } else {
                measure(subject, &settings).await
            };
            eprintln!("{outcome:#?}");
            outcomes.push(outcome);
        }
    }
    if args.keys.iter().any(|n| *n >= args.queued_from) {
        notes.push(format!(
            "N ≥ {}: memory only, each object with a six-statement key policy (~1 KB) and a label, KMS a closed port so every object stays queued, read 60 s after the last create",
            args.queued_from
        ));
        if args.settled {
            notes.push(format!(
                "N ≥ {} with `--settled`: N keys made with the quotas lifted {}× (proxy and the operator's own limits; setup only), then kms-operator started again at AWS's quotas and its defaults; one description edit applied one second after its first reconcile, while its startup pass resyncs every object (the peer is not run: it has no client-side limit to lift)",
                args.queued_from,
                bench::settled::SETUP_QUOTA_FACTOR
            ));
        }
    }
    let command =
        std::env::var("BENCH_COMMAND").unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" "));
    let context = bench::report::Context {
        machine: bench::machine::Machine::read(),
        date: bench::machine::now_utc(),
        command,
        notes,
    };
    bench::report::write(&args.out, &context, &outcomes).expect("BENCHMARKS.md is written");
    eprintln!("==> wrote {}", args.out.display());
    let _ = std::fs::remove_dir_all(&dir);
}

/// On Ctrl-C or SIGTERM, stops every control plane the run started before exiting.
fn stop_on_interrupt(dir: PathBuf) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("interrupted: stopping the control planes");
        let script = format!("{}/hack/controlplane.sh", env::ROOT);
        for run in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let _ = std::process::Command::new("bash")
                .arg(&script)
                .arg("stop")
                .arg(run.path().join("cp"))
                .status();
        }
        std::process::exit(130);
    });
}
