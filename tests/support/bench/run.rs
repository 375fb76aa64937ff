//! One measured run of one operator at one N: bulk create under quotas, then steady resync
//! windows, startup, and one edit while everything resyncs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};

use super::apply::create_all;
use super::calls::{PerKey, between};
use super::outcome::{Outcome, Steady, percentile};
use super::process::Measured;
use super::readiness::Readiness;
use super::scrape::counter_sum;
use super::stack::Stack;
use super::subject::{Cadence, Subject, Wiring};
use super::workload;

/// The namespace every benchmark object lives in.
pub const NAMESPACE: &str = "default";

/// What one run does.
#[derive(Clone, Debug)]
pub struct Settings {
    pub keys: usize,
    /// The strict KMS layer on (see `stack::strict_config`).
    pub strict: bool,
    /// The resync interval of the steady windows.
    pub resync: Duration,
    /// How long each steady window counts calls.
    pub window: Duration,
    /// Where logs and the control plane's state go.
    pub dir: PathBuf,
}

/// CreateKey's quota: the floor of a bulk create is N / 5 seconds.
pub const CREATE_KEY_PER_SECOND: f64 = 5.0;

pub(super) fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

/// The operator's addresses for one start of it.
pub(super) fn wiring(stack: &Stack, kms: &str) -> Wiring {
    Wiring {
        kubeconfig: stack.cp.kubeconfig.clone(),
        kms: kms.to_owned(),
        moto: stack.moto.url.clone(),
        metrics: free_addr(),
        health: free_addr(),
    }
}

/// Runs `subject` through every phase at `settings.keys` keys.
pub async fn measure(subject: &Subject, settings: &Settings) -> Outcome {
    let n = settings.keys;
    let dir = settings.dir.join(format!("{}-{n}", subject.short()));
    let log = dir.join("operator.log");
    let stack = Stack::start(&dir, settings.strict, &subject.crds()).await;
    let mut outcome = Outcome::new(subject, n);

    // Bulk create, at the operator's default resync.
    let wired = wiring(&stack, &stack.proxy.url);
    let operator = Measured::spawn(subject.command(&wired, Cadence::default()), &log);
    wait_serving(&wired.metrics, subject).await;
    let readiness = Readiness::watch(&stack.kube, NAMESPACE, subject);
    let before = stack.proxy.calls();
    let started = Instant::now();
    let applied = create_all(&stack.kube, NAMESPACE, subject, n, false).await;
    let floor = n as f64 / CREATE_KEY_PER_SECOND;
    let limit = Duration::from_secs_f64(floor * 4.0 + 180.0);
    while readiness.keys_ready() < n && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    outcome.ready = readiness.keys_ready();
    let latencies: Vec<Duration> = (applied.iter())
        .filter_map(|(name, at)| Some(readiness.ready_at(name)?.saturating_duration_since(*at)))
        .collect();
    let last = (applied.keys()).filter_map(|name| readiness.ready_at(name)).max();
    outcome.all_ready = (outcome.ready == n).then(|| last.map(|l| l - started)).flatten();
    outcome.p50 = percentile(&latencies, 0.50);
    outcome.p99 = percentile(&latencies, 0.99);
    outcome.create = PerKey::of(&between(&before, &stack.proxy.calls()), n as f64);
    outcome.throttled = stack.proxy.throttled_by_quota();
    tokio::time::sleep(Duration::from_secs(10)).await;
    outcome.create_usage = operator.usage();
    operator.stop();
    if outcome.ready < n {
        eprintln!(
            "{}: only {}/{n} keys ready after {limit:?}; see {}",
            subject.name(),
            outcome.ready,
            log.display()
        );
        return outcome;
    }

    // Steady state: a short resync; the cheap and the deep resync when the operator has both.
    let cadences: Vec<(&str, Cadence)> = if subject.has_deep_resync() {
        vec![
            (
                "cheap resync",
                Cadence { resync: Some(settings.resync), deep: Some(Duration::from_secs(3600)) },
            ),
            ("deep resync", Cadence { resync: Some(settings.resync), deep: Some(settings.resync) }),
        ]
    } else {
        vec![("resync", Cadence { resync: Some(settings.resync), deep: None })]
    };
    for (round, (label, cadence)) in cadences.into_iter().enumerate() {
        let wired = wiring(&stack, &stack.proxy.url);
        let operator = Measured::spawn(subject.command(&wired, cadence), &log);
        let first = first_reconcile(&operator, &wired.metrics, subject).await;
        if round == 0 {
            outcome.startup = first;
        }
        let steady = steady_window(&stack, subject, settings, &wired.metrics, label).await;
        outcome.steady.push(steady);
        if round == 0 {
            outcome.edit = edit_latency(&stack, subject, n / 2).await;
        }
        outcome.steady_usage = operator.usage();
        operator.stop();
    }
    outcome
}

/// Waits until the operator answers on its metrics address.
pub(super) async fn wait_serving(metrics: &str, subject: &Subject) {
    for _ in 0..600 {
        if counter_sum(metrics, subject.reconcile_counter()).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} did not serve /metrics on {metrics} within 30 s", subject.name());
}

/// Time from the process's start to its first finished reconcile (polled every 10 ms).
pub(super) async fn first_reconcile(
    operator: &Measured,
    metrics: &str,
    subject: &Subject,
) -> Option<Duration> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if counter_sum(metrics, subject.reconcile_counter()).unwrap_or(0.0) > 0.0 {
            return Some(operator.started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Lets the startup pass finish, then counts calls and reconciles over one window.
async fn steady_window(
    stack: &Stack,
    subject: &Subject,
    settings: &Settings,
    metrics: &str,
    label: &str,
) -> Steady {
    let objects = (settings.keys * subject.kinds().len()) as f64;
    let reconciles = || counter_sum(metrics, subject.reconcile_counter()).unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(600);
    while reconciles() < objects && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The tail of the startup pass: a few seconds without counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (calls_before, reconciles_before) = (stack.proxy.calls(), reconciles());
    tokio::time::sleep(settings.window).await;
    let calls = between(&calls_before, &stack.proxy.calls());
    let passes = (reconciles() - reconciles_before) / objects;
    Steady {
        label: label.to_owned(),
        resync: settings.resync,
        window: settings.window,
        passes,
        per_key_per_resync: PerKey::of(&calls, passes * settings.keys as f64),
    }
}

/// Edits key `i`'s description and waits until KMS has it (and, for ours, until the object is
/// Ready for the edit's generation): apply→Ready of one edit while every object resyncs.
pub(super) async fn edit_latency(stack: &Stack, subject: &Subject, i: usize) -> Option<Duration> {
    let api: Api<DynamicObject> = Api::namespaced_with(stack.kube.clone(), NAMESPACE, &subject.kinds()[0]);
    let name = workload::name(i);
    let obj = serde_json::to_value(api.get(&name).await.ok()?).ok()?;
    let key_id = subject.key_id(&obj)?;
    let description = format!("edited by the benchmark at {:?}", std::time::SystemTime::now());
    let kms = stack.moto.client();
    let started = Instant::now();
    api.patch(&name, &PatchParams::default(), &Patch::Merge(subject.description_patch(&description)))
        .await
        .ok()?;
    while started.elapsed() < Duration::from_secs(120) {
        let described = kms.describe_key().key_id(&key_id).send().await.ok();
        let in_kms = described.and_then(|d| d.key_metadata()?.description().map(str::to_owned))
            == Some(description.clone());
        let obj = api.get(&name).await.ok().and_then(|o| serde_json::to_value(o).ok());
        if in_kms && obj.is_some_and(|o| subject.is_ready(&o)) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The memory of `subject` holding `settings.keys` keys' objects (each with a six-statement
/// policy and a label) that it cannot reconcile: KMS is a closed port, so every object stays
/// queued, retried with backoff. Peak and current RSS a minute after the last create.
pub async fn measure_queued(subject: &Subject, settings: &Settings) -> super::process::Usage {
    let n = settings.keys;
    let dir = settings.dir.join(format!("{}-{n}-queued", subject.short()));
    let stack = Stack::start(&dir, settings.strict, &subject.crds()).await;
    let closed = format!("http://{}", free_addr());
    let wired = wiring(&stack, &closed);
    let operator = Measured::spawn(subject.command(&wired, Cadence::default()), &dir.join("operator.log"));
    wait_serving(&wired.metrics, subject).await;
    create_all(&stack.kube, NAMESPACE, subject, n, true).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let usage = operator.usage();
    operator.stop();
    usage
}
