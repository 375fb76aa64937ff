//! BENCHMARKS.md: the machine, the date, the command, a table per N with both operators and
//! their ratios, the calls by operation, and the plots.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::calls::PerKey;
use super::machine::Machine;
use super::outcome::Outcome;
use super::plot::{self, Series};
use super::settled::Settled;

/// Everything the report says besides the outcomes.
pub struct Context {
    pub machine: Machine,
    pub date: String,
    pub command: String,
    /// How the run was set up: binary, strict layer, resync cadence, peer found or not.
    pub notes: Vec<String>,
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2} s", d.as_secs_f64())).unwrap_or_else(|| "—".into())
}

fn ratio(ours: Option<f64>, peer: Option<f64>) -> String {
    match (ours, peer) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

fn cell(value: Option<f64>, unit: &str) -> String {
    value.map(|v| format!("{v:.2}{unit}")).unwrap_or_else(|| "—".into())
}

/// One row: measure, ours, peer, ours/peer, target.
fn row(out: &mut String, measure: &str, ours: Option<f64>, peer: Option<f64>, unit: &str, target: &str) {
    let _ = writeln!(
        out,
        "| {measure} | {} | {} | {} | {target} |",
        cell(ours, unit),
        cell(peer, unit),
        ratio(ours, peer)
    );
}

fn steady_cost<'a>(o: &'a Outcome, label: &str) -> Option<&'a PerKey> {
    o.steady.iter().find(|s| s.label == label).map(|s| &s.per_key_per_resync)
}

/// Writes `path` (and the plots beside it) for `outcomes`: ours and, when it ran, the peer's,
/// at each N.
pub fn write(path: &Path, context: &Context, outcomes: &[Outcome]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = String::new();
    let m = &context.machine;
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `make bench` (the harness in `benches/bench.rs` and `tests/support/bench/`); issue 13 sets the targets.\n"
    );
    let _ = writeln!(out, "- date: {}", context.date);
    let _ = writeln!(out, "- machine: {} cores, {:.1} GiB memory, {}", m.cores, m.memory_gib, m.cpu_model);
    let _ = writeln!(out, "- command: `{}`", context.command);
    for note in &context.notes {
        let _ = writeln!(out, "- {note}");
    }
    let mut ns: Vec<usize> = outcomes.iter().map(|o| o.keys).collect();
    ns.sort();
    ns.dedup();
    for n in &ns {
        let ours = outcomes.iter().find(|o| o.keys == *n && o.short == "ours");
        let peer = outcomes.iter().find(|o| o.keys == *n && o.short == "ack");
        table(&mut out, *n, ours, peer);
    }
    plots(&mut out, dir, outcomes)?;
    std::fs::write(path, out)
}

fn table(out: &mut String, n: usize, ours: Option<&Outcome>, peer: Option<&Outcome>) {
    let _ = writeln!(out, "\n## N = {n}\n");
    let peer_name = peer.map(|p| p.operator).unwrap_or("peer (not run)");
    let _ = writeln!(out, "| measure | kms-operator | {peer_name} | ours / peer | target (ours) |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    let get = |o: Option<&Outcome>, f: &dyn Fn(&Outcome) -> Option<f64>| o.and_then(f);
    let both = |f: &dyn Fn(&Outcome) -> Option<f64>| (get(ours, f), get(peer, f));
    let full = |o: &Outcome| o.all_ready.is_some();
    let (a, b) = both(&|o| (o.all_ready.is_some() || o.ready > 0).then_some(o.ready as f64));
    row(out, "keys Ready", a, b, "", &format!("{n}"));
    let floor = n as f64 / super::run::CREATE_KEY_PER_SECOND;
    let (a, b) = both(&|o| o.all_ready.map(|d| d.as_secs_f64()));
    row(out, &format!("time to all Ready (quota floor {floor:.0} s)"), a, b, " s", "");
    let (a, b) = both(&|o| o.floor_ratio());
    row(out, "… over the quota floor", a, b, "×", "≤ 1.1× at N = 1000");
    let (a, b) = both(&|o| o.p50.map(|d| d.as_secs_f64()));
    row(out, "apply→Ready p50", a, b, " s", "");
    let (a, b) = both(&|o| o.p99.map(|d| d.as_secs_f64()));
    row(out, "apply→Ready p99", a, b, " s", "");
    let (a, b) = both(&|o| Some(o.throttled as f64));
    row(out, "calls throttled by KMS", a, b, "", "0");
    let (a, b) = both(&|o| full(o).then(|| o.create.total()));
    row(out, "KMS calls per new key", a, b, "", "≤ 10");
    let labels: Vec<String> =
        ours.iter().chain(peer.iter()).flat_map(|o| o.steady.iter().map(|s| s.label.clone())).collect();
    let mut seen = Vec::new();
    for label in labels {
        if seen.contains(&label) {
            continue;
        }
        seen.push(label.clone());
        let (a, b) = both(&|o| steady_cost(o, &label).map(PerKey::reads));
        row(
            out,
            &format!("{label}: reads per key per resync"),
            a,
            b,
            "",
            if label == "deep resync" { "" } else { "≤ 3" },
        );
        let (a, b) = both(&|o| steady_cost(o, &label).map(PerKey::writes));
        row(out, &format!("{label}: writes per key per resync"), a, b, "", "0");
        let (a, b) = both(&|o| o.steady.iter().find(|s| s.label == label).map(|s| s.passes));
        row(out, &format!("{label}: resyncs per object in the window"), a, b, "", "");
    }
    let (a, b) = both(&|o| o.startup.map(|d| d.as_secs_f64()));
    row(out, "startup to first reconcile", a, b, " s", "< 1 s");
    let (a, b) = both(&|o| o.edit.map(|d| d.as_secs_f64()));
    row(out, "one edit apply→Ready while all resync", a, b, " s", "≤ 5 s");
    let (a, b) = both(&|o| full(o).then_some(o.create_usage.peak_rss_mib));
    row(out, "peak RSS (create)", a, b, " MiB", "");
    let (a, b) = both(&|o| full(o).then_some(o.create_usage.rss_mib));
    row(out, "resting RSS after create", a, b, " MiB", "");
    let (a, b) = both(&|o| full(o).then_some(o.create_usage.cpu_seconds));
    row(out, "CPU time (create)", a, b, " s", "");
    let (a, b) = both(&|o| o.queued.map(|q| q.1.peak_rss_mib));
    row(out, "peak RSS, all objects queued (KMS unreachable)", a, b, " MiB", "≤ 64 MiB at N = 10000");
    if ours.is_some_and(|o| o.settled.is_some()) || peer.is_some_and(|o| o.settled.is_some()) {
        settled_rows(out, n, ours, peer);
    }
    let _ = writeln!(out);
    for o in ours.iter().chain(peer.iter()) {
        if full(o) {
            let _ = writeln!(out, "- {}, create, calls per key: {}", o.operator, o.create.describe());
        }
        for s in &o.steady {
            let _ = writeln!(
                out,
                "- {}, {} (every {} s, {} s window), calls per key per resync: {}",
                o.operator,
                s.label,
                s.resync.as_secs(),
                s.window.as_secs(),
                s.per_key_per_resync.describe()
            );
        }
    }
    let _ = writeln!(
        out,
        "\nTimes: {} (ours), {} (peer) to all Ready.",
        secs(ours.and_then(|o| o.all_ready)),
        secs(peer.and_then(|o| o.all_ready))
    );
}

/// The rows of a start among N Ready keys (`bench/settled.rs`).
fn settled_rows(out: &mut String, n: usize, ours: Option<&Outcome>, peer: Option<&Outcome>) {
    let get =
        |o: Option<&Outcome>, f: &dyn Fn(&Settled) -> Option<f64>| o.and_then(|o| f(o.settled.as_ref()?));
    let both = |f: &dyn Fn(&Settled) -> Option<f64>| (get(ours, f), get(peer, f));
    let (a, b) = both(&|s| Some(s.made_in.as_secs_f64()));
    row(out, &format!("settled: {n} keys made, quotas lifted (setup)"), a, b, " s", "");
    let (a, b) = both(&|s| s.startup.map(|d| d.as_secs_f64()));
    row(out, &format!("settled: startup to first reconcile among {n} Ready keys"), a, b, " s", "< 1 s");
    let (a, b) = both(&|s| s.edit.map(|d| d.as_secs_f64()));
    row(out, "settled: one edit apply→Ready during the startup pass", a, b, " s", "≤ 5 s");
    let (a, b) = both(&|s| Some(s.reconciled_before_edit));
    row(out, "settled: objects the pass had reconciled when the edit was applied", a, b, "", "");
    let (a, b) = both(&|s| s.pass.map(|d| d.as_secs_f64()));
    row(out, "settled: start to every object reconciled once", a, b, " s", "");
    let (a, b) = both(&|s| (s.usage.peak_rss_mib > 0.0).then_some(s.usage.peak_rss_mib));
    row(out, "settled: peak RSS over the startup pass", a, b, " MiB", "≤ 64 MiB at N = 10000");
    let (a, b) = both(&|s| (s.usage.cpu_seconds > 0.0).then_some(s.usage.cpu_seconds));
    row(out, "settled: CPU time of the startup pass", a, b, " s", "");
}

fn series(
    outcomes: &[Outcome],
    short: &str,
    label: &str,
    color: super::canvas::Rgb,
    value: &dyn Fn(&Outcome) -> Option<f64>,
) -> Series {
    let points = outcomes
        .iter()
        .filter(|o| o.short == short)
        .filter_map(|o| Some((o.keys as f64, value(o)?)))
        .collect();
    Series { label: label.to_owned(), color, points }
}

fn plots(out: &mut String, dir: &Path, outcomes: &[Outcome]) -> std::io::Result<()> {
    let time = |o: &Outcome| o.all_ready.map(|d| d.as_secs_f64());
    let mut lines = vec![
        series(outcomes, "ours", "KMS-OPERATOR", plot::OURS, &time),
        series(outcomes, "ack", "ACK", plot::PEER, &time),
    ];
    let floor_points = lines
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (p.0, p.0 / super::run::CREATE_KEY_PER_SECOND)))
        .collect();
    lines.push(Series { label: "QUOTA FLOOR N/5".into(), color: plot::REFERENCE, points: floor_points });
    lines.retain(|s| !s.points.is_empty());
    plot::chart("TIME TO ALL READY (S)", &lines, &dir.join("bench-time-to-ready.png"))?;
    let rss = |o: &Outcome| o.all_ready.map(|_| o.create_usage.peak_rss_mib);
    let queued = |o: &Outcome| o.queued.map(|q| q.1.peak_rss_mib);
    let mut lines = vec![
        series(outcomes, "ours", "KMS-OPERATOR", plot::OURS, &rss),
        series(outcomes, "ack", "ACK", plot::PEER, &rss),
        series(outcomes, "ours", "KMS-OPERATOR QUEUED", [23, 190, 207], &queued),
        series(outcomes, "ack", "ACK QUEUED", [255, 127, 14], &queued),
    ];
    lines.retain(|s| !s.points.is_empty());
    plot::chart("PEAK RSS (MIB)", &lines, &dir.join("bench-rss.png"))?;
    let _ = writeln!(out, "\n## Plots\n");
    let _ = writeln!(
        out,
        "Time to all Ready against N (grey: the quota floor, N / 5 s):\n\n![time to Ready](bench-time-to-ready.png)\n"
    );
    let _ = writeln!(
        out,
        "Peak RSS against N (create runs; \"queued\": every object queued with KMS unreachable):\n\n![RSS](bench-rss.png)"
    );
    Ok(())
}
