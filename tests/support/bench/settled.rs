//! Startup and one edit with N keys made and Ready: the operator starts on a cluster whose
//! keys all exist, and one description edit is applied while its startup pass resyncs every
//! object. The keys are made first with AWS's quotas lifted (in the proxy and in the
//! operator's own limits), which only shortens the setup: everything measured runs at AWS's
//! quotas and the operator's defaults.

use std::time::{Duration, Instant};

use kms_operator::kms::AWS_QUOTAS;

use super::apply::create_all;
use super::process::{Measured, Usage};
use super::readiness::Readiness;
use super::run::{NAMESPACE, Settings, edit_latency, first_reconcile, wait_serving, wiring};
use super::scrape::counter_sum;
use super::stack::Stack;
use super::subject::{Cadence, Subject};

/// How much faster than AWS's quotas the keys are made.
pub const SETUP_QUOTA_FACTOR: f64 = 50.0;

#[derive(Clone, Copy, Debug, Default)]
pub struct Settled {
    /// How long making the N keys took (quotas lifted).
    pub made_in: Duration,
    /// Process start to first finished reconcile.
    pub startup: Option<Duration>,
    /// Apply→Ready of one description edit made one second after the first reconcile.
    pub edit: Option<Duration>,
    /// Objects the startup pass had reconciled when the edit was applied.
    pub reconciled_before_edit: f64,
    /// Process start to the startup pass having reconciled every object once.
    pub pass: Option<Duration>,
    /// Memory and CPU at the end of the pass.
    pub usage: Usage,
}

/// Makes `settings.keys` keys, then measures a start of `subject` among them. None when the
/// subject cannot make keys faster than AWS's quotas (the peer), or when not every key became
/// Ready.
pub async fn measure_settled(subject: &Subject, settings: &Settings) -> Option<Settled> {
    let n = settings.keys;
    let dir = settings.dir.join(format!("{}-{n}-settled", subject.short()));
    let log = dir.join("operator.log");
    let stack = Stack::start(&dir, settings.strict, &subject.crds()).await;

    let lifted: Vec<(&str, f64)> =
        AWS_QUOTAS.iter().map(|(op, rps)| (*op, rps * SETUP_QUOTA_FACTOR)).collect();
    stack.proxy.enforce_quotas(&lifted);
    let wired = wiring(&stack, &stack.proxy.url);
    let maker = Measured::spawn(subject.setup_command(&wired, SETUP_QUOTA_FACTOR)?, &log);
    wait_serving(&wired.metrics, subject).await;
    let readiness = Readiness::watch(&stack.kube, NAMESPACE, subject);
    let started = Instant::now();
    create_all(&stack.kube, NAMESPACE, subject, n, false).await;
    let limit = Duration::from_secs(3600);
    let mut reported = Instant::now();
    while readiness.keys_ready() < n && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if reported.elapsed() > Duration::from_secs(30) {
            eprintln!("    {} of {n} keys Ready after {:.0?}", readiness.keys_ready(), started.elapsed());
            reported = Instant::now();
        }
    }
    maker.stop();
    if readiness.keys_ready() < n {
        eprintln!(
            "{}: only {}/{n} keys Ready; see {}",
            subject.name(),
            readiness.keys_ready(),
            log.display()
        );
        return None;
    }
    let mut settled = Settled { made_in: started.elapsed(), ..Settled::default() };

    stack.proxy.enforce_quotas(&AWS_QUOTAS);
    let wired = wiring(&stack, &stack.proxy.url);
    let operator = Measured::spawn(subject.command(&wired, Cadence::default()), &log);
    settled.startup = first_reconcile(&operator, &wired.metrics, subject).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reconciles = || counter_sum(&wired.metrics, subject.reconcile_counter()).unwrap_or(0.0);
    settled.reconciled_before_edit = reconciles();
    settled.edit = edit_latency(&stack, subject, n / 2).await;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while reconciles() < n as f64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if reconciles() >= n as f64 {
        settled.pass = Some(operator.started.elapsed());
    }
    settled.usage = operator.usage();
    operator.stop();
    Some(settled)
}
