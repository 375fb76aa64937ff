//! Crashes and failover with the real binary: SIGKILL at random moments while keys are being
//! created, a leader killed while a standby waits for its lease, and a leader cut off by a
//! frozen apiserver.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::env::{ControlPlane, Operator, ROOT, eventually, http_get};
use crate::world::World;

fn manifests(namespace_prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: key-{i}\nspec:\n  aliasName: {namespace_prefix}-{i}\n  createGrants: true\n  grants:\n    - name: app\n      granteePrincipal: arn:aws:iam::123456789012:role/app\n      operations: [Encrypt, Decrypt]\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Kills the operator with SIGKILL at random moments while it creates `count` keys, restarts
/// it each time, and checks that every object ends Ready with exactly one key, one alias and
/// one grant.
pub async fn sigkill_while_creating_leaves_one_key_per_object(w: &World) {
    let setting =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (ns, count, kills) =
        ("e2e-crash", setting("KMS_E2E_CRASH_KEYS", 20), setting("KMS_E2E_CRASH_KILLS", 8));
    let started = Instant::now();
    w.namespace(ns);
    w.pause_operator();
    w.apply(ns, &manifests("e2e-crash", count));
    let url = w.kms_url();
    let pauses: Vec<u64> = (0..kills).map(|_| rand::rng().random_range(200..1500)).collect();
    for (round, pause) in pauses.into_iter().enumerate() {
        let log = w.state_dir.join(format!("operator-crash-{round}.log"));
        let op = Operator::start(w.cp(), &url, log, &["--concurrency", "4"]);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        drop(op); // SIGKILL
    }
    w.resume_operator();
    // Recovery takes the 30 s create settle time for attempts that left no key, IAM's tag lag
    // and the operator's own backoff after the kills, for 20 objects on 4 workers while the
    // earlier scenarios' objects resync: a liveness bound, not a speed target.
    for i in 0..count {
        w.wait_condition_within(ns, &format!("key-{i}"), "Ready", Duration::from_secs(240)).await;
    }
    let mut leaked = Vec::new();
    for i in 0..count {
        let name = format!("key-{i}");
        let keys = w.keys_owned_by(ns, &name).await;
        if keys.len() != 1 {
            leaked.push(format!("{name}: {keys:?}"));
            continue;
        }
        let grants = w.grants(&keys[0]).await;
        if grants.len() != 1 {
            leaked.push(format!("{name}: {} grants", grants.len()));
        }
        if w.alias_target(&format!("alias/e2e-crash-{i}")).await.as_deref() != Some(keys[0].as_str()) {
            leaked.push(format!("{name}: alias not on its key"));
        }
    }
    eprintln!(
        "     {count} keys, {kills} SIGKILLs, {:.0}s, leaks: {}",
        started.elapsed().as_secs_f64(),
        leaked.len()
    );
    assert!(leaked.is_empty(), "after crashes: {leaked:?}");
    w.kubectl_ok(&["delete", "kms", "--all", "-n", ns, "--timeout=90s"]);
}

fn leader_of(ops: &[&Operator]) -> Vec<usize> {
    (ops.iter().enumerate())
        .filter(|(_, op)| http_get(&op.http, "/metrics").1.lines().any(|l| l == "kms_operator_leader 1"))
        .map(|(i, _)| i)
        .collect()
}

fn reconciles(op: &Operator) -> u64 {
    op.metric_sum("kms_operator_reconciles_total")
}

/// Two replicas with leader election: only the lease holder reconciles; when it is killed,
/// the standby takes over within the lease duration.
pub async fn only_the_leader_reconciles_and_a_standby_takes_over(w: &World) {
    let ns = "e2e-leader";
    w.namespace(ns);
    w.pause_operator();
    let url = w.kms_url();
    let args = ["--leader-election", "--lease-namespace", ns, "--lease-name", "e2e-leader"];
    let a = Operator::start(w.cp(), &url, w.state_dir.join("operator-a.log"), &args);
    let b = Operator::start(w.cp(), &url, w.state_dir.join("operator-b.log"), &args);
    let leader = eventually("one replica to hold the lease", Duration::from_secs(30), || async {
        let leaders = leader_of(&[&a, &b]);
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await;
    let (mut active, standby) = if leader == 0 { (a, b) } else { (b, a) };

    w.apply(ns, "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: led\nspec:\n  aliasName: e2e-led\n");
    w.wait_ready(ns, "led").await;
    assert!(reconciles(&active) > 0, "the leader did the work");
    assert_eq!(reconciles(&standby), 0, "the standby reconciled nothing");
    assert!(http_get(&standby.http, "/readyz").0 == 200, "a standby is ready");

    let killed = Instant::now();
    active.kill();
    eventually("the standby to take the lease", Duration::from_secs(30), || async {
        leader_of(&[&standby]).first().map(|_| ())
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!("     takeover after SIGKILL of the leader: {:.1}s", takeover.as_secs_f64());
    assert!(
        takeover <= Duration::from_secs(15 + 5),
        "within the 15 s lease (plus a retry), took {takeover:?}"
    );

    w.patch(ns, "led", &serde_json::json!({"spec": {"keyDescription": "after failover"}}));
    let obj = w.wait_ready(ns, "led").await;
    let key = obj["status"]["keyId"].as_str().unwrap().to_owned();
    assert_eq!(w.describe(&key).await.description(), Some("after failover"));
    assert!(reconciles(&standby) > 0, "the new leader did the work");
    w.kubectl_ok(&["delete", "kms", "led", "-n", ns, "--timeout=60s"]);
    drop(standby);
    w.resume_operator();
}

/// kube-apiserver frozen with SIGSTOP (hack/controlplane.sh pause-apiserver) until dropped,
/// which sends SIGCONT, also when the scenario panics: a frozen apiserver would hang every later
/// scenario.
struct FrozenApiserver {
    dir: std::path::PathBuf,
}

fn controlplane(command: &str, dir: &std::path::Path) -> std::process::ExitStatus {
    let script = format!("{ROOT}/hack/controlplane.sh");
    std::process::Command::new("bash").arg(script).arg(command).arg(dir).status().expect("bash runs")
}

impl FrozenApiserver {
    fn freeze(cp: &ControlPlane) -> Self {
        // The guard exists before the signal, so that even a half-done pause is undone.
        let frozen = FrozenApiserver { dir: cp.dir.clone() };
        assert!(controlplane("pause-apiserver", &frozen.dir).success(), "kube-apiserver freezes");
        frozen
    }
}

impl Drop for FrozenApiserver {
    fn drop(&mut self) {
        if !controlplane("resume-apiserver", &self.dir).success() {
            eprintln!("     could not resume kube-apiserver in {}", self.dir.display());
        }
    }
}

/// When the Lease was last renewed, as it reads now.
fn last_renewal(w: &World, ns: &str, lease: &str) -> k8s_openapi::jiff::Timestamp {
    let renewed = w.kubectl_ok(&["get", "lease", lease, "-n", ns, "-o", "jsonpath={.spec.renewTime}"]);
    renewed.trim().parse().unwrap_or_else(|err| panic!("renewTime {renewed:?}: {err}"))
}

/// kube-apiserver freezes (SIGSTOP: its port accepts requests and never answers) under a leader
/// for longer than the lease. The leader cannot renew, and must stop reconciling before its
/// lease can pass to the standby — not hang in a call that never returns while the standby
/// takes over once the apiserver answers again. After the apiserver resumes, a replica takes
/// the lease and reconciles a KmsKey created after the resume.
pub async fn a_leader_cut_off_by_a_frozen_apiserver_stops_before_its_lease_expires(w: &World) {
    const LEASE: Duration = Duration::from_secs(15);
    // Longer than the lease, so that even a renewal the frozen apiserver buffered just after the
    // pause (the holder renews every 4 s) has expired when it answers again.
    const FROZEN: Duration = Duration::from_secs(20);
    let (ns, lease) = ("e2e-frozen", "e2e-frozen");
    w.namespace(ns);
    w.pause_operator();
    let url = w.kms_url();
    let args = ["--leader-election", "--lease-namespace", ns, "--lease-name", lease];
    let a = Operator::start(w.cp(), &url, w.state_dir.join("operator-frozen-a.log"), &args);
    let b = Operator::start(w.cp(), &url, w.state_dir.join("operator-frozen-b.log"), &args);
    let leader = eventually("one replica to hold the lease", Duration::from_secs(30), || async {
        let leaders = leader_of(&[&a, &b]);
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await;
    let elected = Instant::now();
    let (mut active, mut standby) = if leader == 0 { (a, b) } else { (b, a) };

    // With a healthy apiserver the leader works, and keeps the lease past its watchdog's 10 s
    // deadline: the watchdog follows the renewals.
    w.apply(ns, "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: before\nspec:\n  aliasName: e2e-frozen-before\n");
    w.wait_ready(ns, "before").await;
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(elected.elapsed())).await;
    assert!(
        active.is_running(),
        "the leader of a healthy apiserver keeps running; see {}",
        active.log.display()
    );
    assert_eq!(leader_of(&[&active, &standby]), vec![0], "the leader keeps the lease");

    let renewed = last_renewal(w, ns, lease);
    let frozen = FrozenApiserver::freeze(w.cp());
    let paused = Instant::now();
    while active.is_running() && paused.elapsed() < FROZEN {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (stopped, stopped_at) = (paused.elapsed(), k8s_openapi::jiff::Timestamp::now());
    assert!(
        !active.is_running(),
        "the cut-off leader still runs after {FROZEN:?}; see {}",
        active.log.display()
    );
    let since_renewal = Duration::try_from(stopped_at.duration_since(renewed)).unwrap();
    eprintln!(
        "     leader exited {:.1}s after the freeze, {:.1}s after its last renewal (lease {LEASE:?})",
        stopped.as_secs_f64(),
        since_renewal.as_secs_f64()
    );
    assert!(stopped < LEASE, "the leader stopped {stopped:?} after the freeze");
    assert!(since_renewal < LEASE, "the leader stopped {since_renewal:?} after its last renewal");
    assert!(standby.is_running(), "the standby waits out the freeze; see {}", standby.log.display());

    tokio::time::sleep(FROZEN.saturating_sub(paused.elapsed())).await;
    drop(frozen);
    let resumed = Instant::now();
    // Kubernetes would restart the exited leader; it comes back as a replica like any other.
    let restarted = Operator::start(w.cp(), &url, w.state_dir.join("operator-frozen-c.log"), &args);
    w.apply(ns, "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: after\nspec:\n  aliasName: e2e-frozen-after\n");
    let leader = eventually("a replica to take the lease", Duration::from_secs(30), || async {
        let leaders = leader_of(&[&standby, &restarted]);
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await;
    let takeover = resumed.elapsed();
    let new_leader = [&standby, &restarted][leader];
    eprintln!(
        "     {} took the lease {:.1}s after the apiserver resumed",
        if leader == 0 { "the standby" } else { "the restarted replica" },
        takeover.as_secs_f64()
    );
    let obj = w.wait_ready(ns, "after").await;
    assert!(obj["status"]["keyId"].as_str().is_some(), "{obj}");
    assert!(reconciles(new_leader) > 0, "the new leader did the work");
    assert_eq!(leader_of(&[&standby, &restarted]).len(), 1, "one leader");
    assert!(takeover < LEASE, "took over {takeover:?} after the apiserver resumed");
    w.kubectl_ok(&["delete", "kms", "--all", "-n", ns, "--timeout=60s"]);
    drop((standby, restarted));
    w.resume_operator();
}

/// kube-apiserver goes away and comes back under the running operator: its watch reconnects,
/// and what changed meanwhile (in AWS, and in the spec right after) is reconciled.
pub async fn the_operator_rides_out_an_apiserver_restart(w: &World) {
    let ns = "e2e-outage";
    w.namespace(ns);
    w.apply(ns, "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: outage\nspec:\n  aliasName: e2e-outage\n");
    let obj = w.wait_ready(ns, "outage").await;
    let key = obj["status"]["keyId"].as_str().unwrap().to_owned();

    w.kms.disable_key().key_id(&key).send().await.unwrap();
    let script = format!("{}/hack/controlplane.sh", crate::env::ROOT);
    let dir = w.cp().dir.clone();
    let restarted = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash").arg(script).arg("restart-apiserver").arg(dir).status().unwrap()
    });
    assert!(restarted.await.unwrap().success(), "kube-apiserver restarts");

    w.patch(ns, "outage", &serde_json::json!({"spec": {"keyDescription": "after the outage"}}));
    let obj = w.wait_ready(ns, "outage").await;
    assert_eq!(obj["metadata"]["generation"], obj["status"]["observedGeneration"]);
    let meta = w.describe(&key).await;
    assert_eq!(meta.description(), Some("after the outage"));
    assert_eq!(
        meta.key_state().map(|s| s.as_str()),
        Some("Enabled"),
        "the drift made during the outage is undone"
    );
    assert!(w.operator_running(), "the operator kept running through the outage");
}

/// Deleting a namespace full of KmsKeys: every object goes away through its finalizer, every
/// key ends scheduled for deletion, and the namespace itself finishes deleting.
pub async fn deleting_a_namespace_schedules_every_key(w: &World) {
    let ns = "e2e-doomed-namespace";
    w.namespace(ns);
    let count = 5;
    w.apply(ns, &manifests("e2e-doomed-ns", count));
    let mut keys = Vec::new();
    for i in 0..count {
        let obj = w.wait_ready(ns, &format!("key-{i}")).await;
        keys.push(obj["status"]["keyId"].as_str().unwrap().to_owned());
    }
    w.kubectl_ok(&["delete", "namespace", ns, "--timeout=120s"]);
    let gone = w.cp().kubectl(&["get", "namespace", ns], None);
    assert!(!gone.status.success(), "the namespace finished deleting");
    for key in keys {
        assert_eq!(w.describe(&key).await.key_state().map(|s| s.as_str()), Some("PendingDeletion"), "{key}");
    }
}

/// Another writer's status data (its own condition) survives the operator's status writes:
/// they carry the resourceVersion (a stale write is refused with 409 and retried from a fresh
/// copy) and leave conditions the operator does not own alone.
pub async fn another_writers_status_survives(w: &World) {
    let ns = "e2e-writers";
    w.namespace(ns);
    w.apply(ns, "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: shared-status\nspec:\n  aliasName: e2e-shared-status\n");
    w.wait_ready(ns, "shared-status").await;
    let foreign = r#"[{"op":"add","path":"/status/conditions/-","value":{"type":"PolicyCompliant","status":"False","reason":"MissingLabel","message":"written by a policy engine","lastTransitionTime":"2026-01-01T00:00:00Z"}}]"#;
    w.kubectl_ok(&[
        "patch",
        "kms",
        "shared-status",
        "-n",
        ns,
        "--subresource=status",
        "--type=json",
        "-p",
        foreign,
    ]);
    w.patch(
        ns,
        "shared-status",
        &serde_json::json!({"spec": {"keyDescription": "changed after the other write"}}),
    );
    let obj = w.wait_ready(ns, "shared-status").await;
    assert_eq!(obj["status"]["observedGeneration"], 2);
    let conditions = obj["status"]["conditions"].as_array().unwrap();
    let kept = conditions
        .iter()
        .find(|c| c["type"] == "PolicyCompliant")
        .expect("the other writer's condition survives");
    assert_eq!(kept["message"], "written by a policy engine");
}

/// The real operator, through the fault-injecting proxy: with 20 % of its KMS calls faulted at
/// random, every KmsKey still ends Ready with exactly one key, alias and grant.
pub async fn the_operator_converges_through_twenty_percent_faults(w: &World) {
    use crate::fault_proxy::{ALL_FAULTS, FaultProxy};
    use crate::world::{E2E_TAG_LAG, strict_config};
    let (ns, count) = ("e2e-faults", 20);
    w.namespace(ns);
    w.pause_operator();
    let proxy = FaultProxy::start_with(&w.moto().url, strict_config(E2E_TAG_LAG)).await;
    proxy.fault_at_random(0.2, &ALL_FAULTS);
    let op =
        Operator::start(w.cp(), &proxy.url, w.state_dir.join("operator-faults.log"), &["--concurrency", "8"]);
    w.apply(ns, &manifests("e2e-faults", count));
    for i in 0..count {
        w.wait_ready(ns, &format!("key-{i}")).await;
    }
    proxy.fault_at_random(0.0, &[]);
    drop(op);
    w.resume_operator();
    let mut problems = Vec::new();
    for i in 0..count {
        let keys = w.keys_owned_by(ns, &format!("key-{i}")).await;
        if keys.len() != 1 {
            problems.push(format!("key-{i}: {} keys", keys.len()));
        } else if w.grants(&keys[0]).await.len() != 1 {
            problems.push(format!("key-{i}: grants duplicated"));
        }
    }
    // Reads grow with time (every object is resynced every 3 s here); changes are what a retry
    // storm would multiply.
    let calls = proxy.calls();
    let reads = ["Describe", "Get", "List"];
    let changes: u64 =
        (calls.iter()).filter(|(op, _)| !reads.iter().any(|r| op.starts_with(r))).map(|(_, n)| n).sum();
    let total: u64 = calls.values().sum();
    eprintln!(
        "     {count} KmsKeys through 20 % faults: {total} calls, {changes} of them changes, {:?}",
        proxy.injected()
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert!(changes < count as u64 * 30, "a retry storm: {changes} changing calls for {count} keys");
}
