//! The kube-runtime shell around `reconcile`: watch KmsKeys, hold the finalizer, write status,
//! publish events and choose when to look again. No KMS decision is made here.
//!
//! The watch is of the objects' metadata only (`slim`); a reconcile GETs the whole object once
//! it has its turn in a lane (`lanes`). Watch events are filtered to changes of generation, the
//! steering annotations, finalizers and deletion, so the operator's own status writes never
//! trigger another reconcile.

mod accounts;
mod cluster_policy;
mod export;
mod holds;
mod lanes;
mod leader;
mod merge_patch;
mod parked;
mod read_schedule;
mod recorded;
mod regions;
mod requeue;
mod slim;
mod status_writer;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action as Requeue, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::annotations;
use crate::api::{DeletionPolicy, FINALIZER, KmsKey, ManagementPolicy};
use crate::cli::RunArgs;
use crate::health::{self, Health};
use crate::kms::{AwsKms, ClientFactory, Quotas};
use crate::metrics::Metrics;
use crate::reconcile::account::Identity;
use crate::reconcile::region::{key_region, release_region, wanted_region};
use crate::reconcile::{self, Outcome, Owner, Released, Standing, Target, release_replicas};
use accounts::Unmapped;
use lanes::Lane;

pub use recorded::{recorded_from, recorded_region, replica_regions, settled};
pub use requeue::Backoff;
pub use status_writer::KubeStatusWriter;

/// What the controller's cache holds of each KmsKey (see `slim`).
type Watched = PartialObjectMeta<KmsKey>;

/// Errors that end `run`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot reach Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot serve the HTTP endpoints on {addr}: {source}")]
    Http { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("leader election failed: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("lost the leader lease; exiting so that only the new leader reconciles")]
    LostLease,
    #[error(transparent)]
    Network(#[from] crate::kms::NetworkError),
    #[error("--selector {selector:?}: the apiserver refuses it: {source}")]
    Selector { selector: String, source: kube::Error },
    #[error("no AWS Region: give --region (or AWS_REGION, or a profile's region)")]
    NoRegion,
}

/// Errors of one reconcile that the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("object has no namespace or UID")]
    MissingMetadata,
    #[error(transparent)]
    Reconcile(#[from] reconcile::Error),
    #[error("releasing the key failed: {0}")]
    Release(#[from] crate::kms::KmsError),
    #[error("writing status failed: {0}")]
    Status(#[source] kube::Error),
    #[error("reading the object failed: {0}")]
    Read(#[source] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<ReconcileError>>),
    /// Not a failure: the key may exist without KMS showing it yet, so the finalizer stays.
    #[error("waiting {0:?} for a key created moments ago to show in KMS before releasing")]
    ReleaseWaiting(Duration),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    /// Not a failure: an annotation holds the release back until it changes.
    #[error("the release of the key is held by an annotation")]
    ReleaseHeld,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    /// KMS in each Region the keys live in, and where new keys may be made.
    pub regions: regions::Regions,
    pub recorder: Recorder,
    pub cluster: String,
    pub resync: Duration,
    /// The shortest resync an object may ask for with its annotation.
    pub min_resync: Duration,
    /// How often a key's last use is read: `--last-usage-interval`, at least `resync`.
    pub last_usage_every: Duration,
    pub backoff: Backoff,
    pub usage_checks: read_schedule::ReadSchedule,
    /// When each object was last reconciled (for the resync-lag metric).
    pub looked_at: read_schedule::ReadSchedule,
    /// When each object's key was last read in full; see `--deep-resync-interval`.
    pub full_reads: read_schedule::ReadSchedule,
    pub deep_resync: Duration,
    /// `--selector`: the KmsKeys this operator reconciles.
    pub selector: Option<String>,
    /// The edit and resync lanes, each `--concurrency` wide, and what they remember of each
    /// object's last look.
    pub lanes: lanes::Lanes,
    /// Objects without the deletion-protection annotation are protected.
    pub default_deletion_protection: bool,
    /// What a deletion does to the key of an object without `spec.deletionPolicy`.
    pub default_deletion_policy: DeletionPolicy,
    /// `--adopt-namespaces`.
    pub adopt_namespaces: Vec<String>,
    /// `--export-to-config-maps`: `spec.exportTo` is honoured.
    pub export_to_config_maps: bool,
    /// The cluster's guardrails.
    pub cluster_policy: cluster_policy::ClusterPolicy,
    /// Which AWS identity (KmsAccount role, or the operator's own) reaches each namespace's keys.
    pub accounts: accounts::Accounts,
    pub metrics: Arc<Metrics>,
}

/// Runs the controller until SIGINT or SIGTERM (or, with leader election, until the lease is
/// lost or can no longer be confirmed: see `leader`).
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
    let client = Client::try_from(config.clone())?;
    check_selector(&client, &args).await?;
    let (health, metrics) = (Arc::new(Health::default()), Arc::new(Metrics::default()));
    let listener = health::bind(args.http_addr)
        .await
        .map_err(|source| RunError::Http { addr: args.http_addr, source })?;
    tokio::spawn(health::serve(listener, health.clone(), metrics.clone()));

    let factory = ClientFactory::from_args(&args).await?;
    let home = factory.home_region().ok_or(RunError::NoRegion)?;
    let (fraction, overrides, observer) =
        (args.kms_quota_fraction, args.kms_rate_limits.clone(), metrics.clone());
    let make_port: regions::MakePort = Box::new(move |identity, region| {
        let quotas = Arc::new(Quotas::of_aws(fraction, &overrides));
        let clients = factory.clients_as(region, identity);
        Arc::new(AwsKms::with_quotas(clients, quotas).observed_by(observer.clone()))
    });
    let regions =
        regions::Regions::new(home, args.allowed_regions.clone(), make_port, args.resync_interval / 2);
    let reporter = Reporter { controller: "kms-operator".into(), instance: std::env::var("POD_NAME").ok() };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        regions,
        cluster: args.cluster_name.clone(),
        resync: args.resync_interval,
        min_resync: args.min_resync_interval,
        last_usage_every: args.last_usage_interval.max(args.resync_interval),
        backoff: Backoff::default(),
        usage_checks: read_schedule::ReadSchedule::spread(),
        looked_at: Default::default(),
        full_reads: read_schedule::ReadSchedule::spread(),
        deep_resync: args.deep_resync_interval,
        lanes: lanes::Lanes::new(usize::from(args.concurrency), !args.namespaces.is_empty()),
        selector: args.selector.clone(),
        default_deletion_protection: args.default_deletion_protection,
        default_deletion_policy: args.default_deletion_policy,
        adopt_namespaces: args.adopt_namespaces.clone(),
        export_to_config_maps: args.export_to_config_maps,
        cluster_policy: cluster_policy::ClusterPolicy::watch(
            &client,
            args.cluster_policy,
            args.require_cluster_policy,
        ),
        accounts: accounts::Accounts::watch(&client, args.account_mapping, args.require_account_mapping),
        metrics: metrics.clone(),
    });
    tracing::info!(namespaces = ?args.namespaces, cluster = %args.cluster_name, "starting kms-operator");
    if !args.leader_election {
        metrics.set_leader(true);
        run_controllers(&args, ctx, health).await;
        return Ok(());
    }

    // Lease calls go through a client whose every call times out well within the lease.
    let mut campaign = leader::campaign(leader::lease_client(config)?, &args).await?;
    health.set_ready(true); // a standby is ready: it is healthy and waiting
    tokio::select! {
        _ = leader::until(&mut campaign.is_leader, true) => {}
        _ = shutdown_signal() => return Ok(()),
    }
    tracing::info!(identity = %campaign.identity, "acquired the leader lease");
    // Nothing is reconciled before a read confirms the lease and arms the watchdog.
    let Some(watchdog) = leader::Watchdog::arm(&campaign).await else {
        leader::abandon(campaign);
        return Err(RunError::LostLease);
    };
    health.set_ready(false);
    metrics.set_leader(true);
    let mut watch_loss = campaign.is_leader.clone();
    // Losing drops the controllers, which aborts their in-flight reconciles (a KMS call stuck in
    // one cannot delay the exit), and `abandon` ends the process even if its shutdown hangs.
    tokio::select! {
        biased;
        _ = leader::until(&mut watch_loss, false) => {
            tracing::error!("the lease manager saw the leader lease pass to another replica");
        }
        _ = watchdog.fired() => {}
        _ = run_controllers(&args, ctx, health) => {
            drop(watch_loss);
            drop(campaign.is_leader);
            // The campaign releases the lease once no receiver is left.
            let _ = campaign.task.await;
            tracing::info!("released the leader lease");
            return Ok(());
        }
    }
    metrics.set_leader(false);
    leader::abandon(campaign);
    Err(RunError::LostLease)
}

async fn run_controllers(args: &RunArgs, ctx: Arc<Context>, health: Arc<Health>) {
    let scopes: Vec<Option<&str>> = match args.namespaces.is_empty() {
        true => vec![None],
        false => args.namespaces.iter().map(|ns| Some(ns.as_str())).collect(),
    };
    ctx.lanes.start_recall();
    let mut syncs = Vec::new();
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for namespace in scopes.iter().copied() {
        let (reader, writer) = reflector::store();
        let synced = reader.clone();
        stores.push(reader.clone());
        syncs.push(watch_synced(synced));
        controllers.push(controller(namespace, reader, writer, ctx.clone()));
    }
    let synced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let synced_flag = synced.clone();
    let (recall_ctx, recall_scopes) =
        (ctx.clone(), scopes.iter().map(|s| s.map(str::to_owned)).collect::<Vec<_>>());
    let recall = tokio::spawn(async move {
        if futures::future::join_all(syncs).await.into_iter().all(|ok| ok) {
            tracing::info!("KmsKey watch synced; ready");
            synced_flag.store(true, std::sync::atomic::Ordering::Relaxed);
            health.set_ready(true);
        }
        for namespace in &recall_scopes {
            recall_earlier_looks(&api_in(&recall_ctx.client, namespace.as_deref()), &recall_ctx).await;
        }
        recall_ctx.lanes.recalled();
    });
    let sampler = tokio::spawn(sample_metrics(ctx.clone(), stores, synced));
    futures::future::join_all(controllers).await;
    sampler.abort();
    recall.abort();
    tracing::info!("kms-operator stopped");
}

/// The API of `K` in `namespace`, or in every namespace.
fn api_in<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Whether the store's first list completed. The store's readiness signal wakes only its most
/// recent waiter, and the controller waits on it too, so it is polled every half second rather
/// than awaited once.
async fn watch_synced(store: reflector::Store<Watched>) -> bool {
    loop {
        let poll = tokio::time::timeout(Duration::from_millis(500), store.wait_until_ready());
        if let Ok(result) = poll.await {
            return result.is_ok();
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else { return std::future::pending().await };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Recalls the generation each object was last reconciled at, from its status, so that the
/// first pass after a start resyncs what is settled and edits what changed meanwhile (see
/// `lanes`). Read in small pages, each dropped once recalled, while the first pass runs (larger
/// pages of whole objects, interleaved with that pass's work, left the heap ~10 MB larger at
/// 10,000 objects); best effort: an object not recalled is reconciled in the edit lane once the
/// recall is over.
async fn recall_earlier_looks(api: &Api<KmsKey>, ctx: &Context) {
    let (started, mut read) = (std::time::Instant::now(), 0);
    let mut params = kube::api::ListParams::default().limit(20);
    if let Some(selector) = &ctx.selector {
        params = params.labels(selector);
    }
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "could not list KmsKeys' status at start; their first reconciles run in the edit lane");
                return;
            }
        };
        read += page.items.len();
        for obj in &page.items {
            let observed = obj.status.as_ref().and_then(|s| s.observed_generation);
            ctx.lanes.recall(&obj.metadata, observed);
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => {
                tracing::info!(
                    objects = read,
                    seconds = started.elapsed().as_secs_f64(),
                    "read the KmsKeys' last reconciled generations"
                );
                return;
            }
        }
    }
}

/// The controller of the KmsKeys in `namespace` (`None`: all).
async fn controller(
    namespace: Option<&str>,
    reader: reflector::Store<Watched>,
    writer: reflector::store::Writer<Watched>,
    ctx: Arc<Context>,
) {
    let lanes_ctx = ctx.clone();
    let released =
        futures::stream::unfold((ctx.clone(), namespace.map(str::to_owned)), |(ctx, namespace)| async move {
            let object = ctx.lanes.next_released(namespace.as_deref()).await;
            let obj_ref = reflector::ObjectRef::new(&object.name).within(&object.namespace);
            Some((obj_ref, (ctx, namespace)))
        });
    let stream = watcher(api_in(&ctx.client, namespace), watch_config(ctx.selector.as_deref()))
        .default_backoff()
        .modify(slim::slim)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default())
        .inspect_ok(move |obj| lanes_ctx.lanes.changed(obj.metadata.uid.as_deref().unwrap_or_default()));
    Controller::for_stream(stream, reader)
        .reconcile_on(released)
        .with_config(ControllerConfig::default().concurrency(ctx.lanes.admissions()))
        .shutdown_on_signal()
        .run(reconcile_object, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile did not complete");
            }
        })
        .await;
}

/// Lists one KmsKey with `--selector`, so that a selector the apiserver refuses stops the
/// operator at once with the apiserver's reason, instead of a watch that retries forever.
async fn check_selector(client: &Client, args: &RunArgs) -> Result<(), RunError> {
    let Some(selector) = &args.selector else { return Ok(()) };
    let api: Api<KmsKey> = api_in(client, args.namespaces.first().map(String::as_str));
    let params = kube::api::ListParams::default().labels(selector).limit(1);
    match api.list_metadata(&params).await {
        Ok(_) => Ok(()),
        Err(source) => Err(RunError::Selector { selector: selector.clone(), source }),
    }
}

/// The watch of KmsKeys: those `selector` matches, or all.
fn watch_config(selector: Option<&str>) -> watcher::Config {
    match selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    }
}

/// Changes that need a reconcile: the spec (generation), the annotations that steer the
/// operator (`lanes::STEERING_ANNOTATIONS`), finalizers and deletion.
fn spec_or_lifecycle(obj: &Watched) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    predicates::generation(obj).hash(&mut hasher);
    lanes::steering_fingerprint(obj.meta()).hash(&mut hasher);
    predicates::finalizers(obj).hash(&mut hasher);
    obj.meta().deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// Waits for a turn in the object's lane, then reconciles it; a resync that finds the resync
/// lane full is parked instead, and handed back to the controller when its turn nears.
async fn reconcile_object(obj: Arc<Watched>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    let uid = obj.uid().unwrap_or_default();
    let lane = match ctx.lanes.admit(obj.meta()) {
        lanes::Admission::Wait(lane) => lane,
        lanes::Admission::Parked => return Ok(Requeue::await_change()),
    };
    let Some(_turn) = ctx.lanes.enter(lane, &uid).await else {
        // The object changed while its resync waited: the watch has queued that change, which
        // runs in the edit lane as soon as this returns.
        return Ok(Requeue::await_change());
    };
    // Boxed, so that a reconcile waiting for its turn is small.
    Box::pin(reconcile_in_turn(obj, ctx.clone())).await
}

/// Reads the whole object and reconciles it: its finalizer, then the key or its release.
async fn reconcile_in_turn(watched: Arc<Watched>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    let namespace = watched.namespace().ok_or(ReconcileError::MissingMetadata)?;
    let api: Api<KmsKey> = Api::namespaced(ctx.client.clone(), &namespace);
    let obj = match api.get_opt(&watched.name_any()).await.map_err(ReconcileError::Read)? {
        Some(obj) if obj.uid() == watched.uid() => Arc::new(obj),
        // Gone, or gone and made again under the same name: the watch brings the new object.
        _ => return Ok(Requeue::await_change()),
    };
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalizer::Apply(obj) => {
                ctx.lanes.looked_at(obj.meta());
                apply(&api, &obj, &ctx).await
            }
            Finalizer::Cleanup(obj) => release(&api, &obj, &ctx).await,
        }
    })
    .await
    .map_err(|err| ReconcileError::Finalizer(Box::new(err)))
}

/// The account `identity` reaches: its role's, or the operator's own when known.
fn account_of<'a>(identity: &'a Identity, own_account: Option<&'a str>) -> Option<&'a str> {
    match identity {
        Identity::Own => own_account,
        Identity::Role(role) => Some(&role.account_id),
    }
}

fn owner_of(obj: &KmsKey, cluster: &str) -> Result<Owner, ReconcileError> {
    Ok(Owner {
        namespace: obj.namespace().ok_or(ReconcileError::MissingMetadata)?,
        name: obj.name_any(),
        uid: obj.uid().ok_or(ReconcileError::MissingMetadata)?,
        cluster: cluster.to_owned(),
    })
}

async fn apply(api: &Api<KmsKey>, obj: &KmsKey, ctx: &Context) -> Result<Requeue, ReconcileError> {
    let started = std::time::Instant::now();
    let owner = owner_of(obj, &ctx.cluster)?;
    let writer = KubeStatusWriter::new(api.clone(), obj);
    let resync = annotations::resync_interval(obj.annotations(), ctx.resync, ctx.min_resync);
    let adopt_key_id = obj.spec.adopt.as_ref().and_then(|a| a.key_id.as_deref());
    let recorded = recorded_region(obj.status.as_ref());
    let own_account = ctx.cluster_policy.own_account(ctx.regions.home().kms.as_ref()).await;
    let recorded_account = recorded::recorded_account(obj.status.as_ref());
    let identity = match ctx.accounts.identity(&owner.namespace, recorded_account.as_deref(), own_account) {
        Ok(identity) => Ok(identity),
        Err(Unmapped::Refused(outcome)) => Err(outcome),
        Err(Unmapped::Waiting(message)) => {
            let waiting = Outcome::Progressing {
                reason: "AwaitingAccounts",
                message,
                retry: reconcile::Retry::Backoff,
            };
            let report = reconcile::Report::of(waiting);
            writer.finish(&report, &obj.spec, obj.meta().generation).await.map_err(ReconcileError::Status)?;
            return Ok(Requeue::requeue(ctx.backoff.next(&owner.uid)));
        }
    };
    let region = identity.clone().and_then(|identity| {
        wanted_region(obj.spec.region.as_deref(), adopt_key_id)
            .and_then(|wanted| key_region(wanted, recorded, &ctx.regions.rules))
            .map(|region| (identity, region))
    });
    let region = region
        .and_then(|(identity, region)| match ctx.regions.get(&identity, &region, recorded.region().is_some()) {
            Some(regional) => Ok((identity, region, regional)),
            None => Err(Outcome::Stalled {
                reason: "TooManyRegions",
                message: format!(
                    "the operator already serves {} Regions; {region} is not one of them (a cluster admin can list the Regions with --allowed-regions)",
                    regions::MAX_REGIONS
                ),
            }),
        });
    // Before any KMS call: a garbled annotation, a hold (paused, ...), a Region refused.
    let stop = match (&resync, &region) {
        (Err(message), _) => Some(Outcome::Stalled { reason: "InvalidAnnotation", message: message.clone() }),
        (Ok(_), region) => holds::on_apply(obj).or_else(|| region.clone().err()),
    };
    if let Some(stop) = stop {
        let report = reconcile::Report::of(stop);
        writer.finish(&report, &obj.spec, obj.meta().generation).await.map_err(ReconcileError::Status)?;
        count_reconcile(ctx, &owner.uid, &report.outcome, started);
        if let Outcome::Stalled { reason, message } = &report.outcome {
            publish(ctx, obj, EventType::Warning, reason, "Reconcile", message.clone()).await;
        }
        // A refusal by the account mapping ends with a KmsAccount or namespace change, which
        // this object's watch does not see: it is looked at again at its resync.
        if identity.is_err() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let resync = resync.as_ref().map_or(ctx.resync, |r| *r);
            return Ok(Requeue::requeue(requeue::until_resync(&owner.uid, resync, now.as_secs_f64())));
        }
        return Ok(Requeue::await_change());
    }
    let (resync, Ok((identity, region, regional))) = (resync.unwrap_or(ctx.resync), region) else {
        return Ok(Requeue::await_change()); // refused above
    };
    let writer = writer.in_region(&region).in_account(account_of(&identity, own_account));
    let replica_regions = ctx.regions.as_identity(&identity);
    let rules = match ctx.cluster_policy.rules(ctx.regions.home().kms.as_ref()).await {
        Ok(rules) => rules,
        Err(message) => {
            let waiting = Outcome::Progressing {
                reason: "AwaitingClusterPolicy",
                message,
                retry: reconcile::Retry::Backoff,
            };
            let report = reconcile::Report::of(waiting);
            writer.finish(&report, &obj.spec, obj.meta().generation).await.map_err(ReconcileError::Status)?;
            return Ok(Requeue::requeue(ctx.backoff.next(&owner.uid)));
        }
    };
    let target = Target {
        spec: &obj.spec,
        owner: &owner,
        recorded: recorded_from(obj.status.as_ref()),
        rotate_now: annotations::rotate_now(obj.annotations()),
        last_usage_due: ctx.usage_checks.due(&owner.uid, ctx.last_usage_every, Timestamp::now()),
        may_adopt: crate::cli::may_adopt(&ctx.adopt_namespaces, &owner.namespace),
        guardrails: rules.as_ref(),
        alias_handover_held: reconcile::guardrails::alias_handover_held(
            rules.as_ref(),
            obj.status.as_ref().and_then(|s| s.alias_hold.as_ref()),
            obj.meta().generation,
            annotations::alias_claim(obj.annotations()),
        ),
        standing: Standing {
            settled: recorded::settled(obj.status.as_ref(), obj.meta().generation),
            full_read_due: ctx.full_reads.due(&owner.uid, ctx.deep_resync, Timestamp::now()),
        },
        account_aliases: &regional.account_aliases,
        replica_regions: &replica_regions,
        recorded_replica_regions: recorded::replica_regions(obj.status.as_ref()),
        deletion_policy: obj.spec.deletion_policy.unwrap_or(ctx.default_deletion_policy),
    };
    let mut report = reconcile::reconcile(regional.kms.as_ref(), &writer, target, Timestamp::now()).await?;
    let written =
        writer.finish(&report, &obj.spec, obj.meta().generation).await.map_err(ReconcileError::Status)?;
    match export::export(&ctx.client, obj, &written, ctx.export_to_config_maps).await {
        Ok(exported) if exported != written.exported_config_map => {
            writer.record_export(exported).await.map_err(ReconcileError::Status)?;
        }
        Ok(_) => {}
        Err(err) => {
            let Some(reason) = err.reason() else { return Err(ReconcileError::Export(err)) };
            report.outcome = Outcome::Stalled { reason, message: err.to_string() };
            writer.finish(&report, &obj.spec, obj.meta().generation).await.map_err(ReconcileError::Status)?;
        }
    }
    publish_report(ctx, obj, &report).await;
    if report.adopted {
        let spec_ref = obj.spec.adopt.as_ref().map(|a| a.describe()).unwrap_or_default();
        let key = report.key.as_ref().map(|k| k.key.key_id.as_str()).unwrap_or("?");
        let note = format!("took over key {key} ({spec_ref}): it now carries this object's ownership tags");
        publish(ctx, obj, EventType::Normal, "Adopted", "Adopt", note).await;
    }
    if report.full_read {
        ctx.full_reads.read(&owner.uid, Timestamp::now());
    }
    if reconcile::audit::usage_read_counts(report.last_usage.as_ref(), &report.outcome) {
        ctx.usage_checks.read(&owner.uid, Timestamp::now());
    }
    publish_audit(ctx, obj, &report).await;
    let before = obj.status.as_ref().and_then(|s| s.generated_policy.as_ref());
    if let Some(policy) = report.generated_policy.as_ref().filter(|p| Some(*p) != before) {
        let note = format!(
            "key policy built from spec.policy: {} bytes, hash {}, statements {}",
            policy.bytes,
            policy.hash,
            policy.statements.join(", ")
        );
        publish(ctx, obj, EventType::Normal, "PolicyGenerated", "Update", note).await;
    }
    count_reconcile(ctx, &owner.uid, &report.outcome, started);
    let uid = owner.uid.as_str();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let resync_wait = requeue::until_resync(uid, resync, now.as_secs_f64());
    Ok(match &report.outcome {
        Outcome::Ready { .. } => {
            ctx.backoff.reset(uid);
            Requeue::requeue(resync_wait)
        }
        Outcome::Progressing { retry: reconcile::Retry::After(wait), .. } => Requeue::requeue(*wait),
        Outcome::Progressing { retry: reconcile::Retry::Resync, .. } => {
            ctx.backoff.reset(uid);
            Requeue::requeue(resync_wait)
        }
        Outcome::Progressing { .. } => Requeue::requeue(ctx.backoff.next(uid)),
        Outcome::Stalled { .. } => Requeue::requeue(resync_wait),
        Outcome::Held { .. } => Requeue::await_change(),
    })
}

/// Counts a reconcile of the object `uid` that ended in `outcome`: its duration, the object's
/// state, and when it was last looked at (a held object is not looked at again until it changes,
/// so it is left out of the resync lag).
fn count_reconcile(ctx: &Context, uid: &str, outcome: &Outcome, started: std::time::Instant) {
    ctx.metrics.reconciled(outcome.label(), started.elapsed());
    ctx.metrics.object_state(uid, Some(outcome.label()));
    match outcome {
        Outcome::Held { .. } => ctx.looked_at.forget(uid),
        _ => ctx.looked_at.read(uid, Timestamp::now()),
    }
}

/// Every few seconds, the metrics read from the controller's state: queue depth by lane and the
/// resync lag. Once the watches have synced (`synced`: before, the caches are still filling),
/// objects that left the watch without a release (relabelled to another shard, a finalizer
/// removed by hand) are forgotten then.
async fn sample_metrics(
    ctx: Arc<Context>,
    stores: Vec<reflector::Store<Watched>>,
    synced: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticks.tick().await;
        if synced.load(std::sync::atomic::Ordering::Relaxed) {
            let mark = ctx.lanes.mark();
            let watched: std::collections::HashSet<String> =
                stores.iter().flat_map(|store| store.state()).filter_map(|obj| obj.uid()).collect();
            for schedule in [&ctx.looked_at, &ctx.full_reads, &ctx.usage_checks] {
                schedule.retain(&watched);
            }
            ctx.metrics.retain_objects(&watched);
            ctx.lanes.retain(&watched, mark);
        }
        for lane in [Lane::Edit, Lane::Resync] {
            ctx.metrics.set_queue_depth(lane.label(), ctx.lanes.queued(lane));
        }
        let now = Timestamp::now();
        let oldest = ctx.looked_at.oldest().unwrap_or(now);
        ctx.metrics.set_resync_lag(now.duration_since(oldest).unsigned_abs());
    }
}

async fn release(api: &Api<KmsKey>, obj: &KmsKey, ctx: &Context) -> Result<Requeue, ReconcileError> {
    let started = std::time::Instant::now();
    let owner = owner_of(obj, &ctx.cluster)?;
    if let Some(held) = holds::on_release(obj, ctx.default_deletion_protection) {
        let report = reconcile::Report::of(held);
        let writer = KubeStatusWriter::new(api.clone(), obj);
        writer.finish(&report, &obj.spec, obj.meta().generation).await.map_err(ReconcileError::Status)?;
        if let Outcome::Stalled { reason, message } | Outcome::Held { reason, message } = &report.outcome {
            publish(ctx, obj, EventType::Warning, reason, "Delete", message.clone()).await;
        }
        count_reconcile(ctx, &owner.uid, &report.outcome, started);
        return Err(ReconcileError::ReleaseHeld);
    }
    let recorded = recorded_from(obj.status.as_ref());
    let now = Timestamp::now();
    let policy = obj.spec.deletion_policy.unwrap_or(ctx.default_deletion_policy);
    let rules = match ctx.cluster_policy.rules(ctx.regions.home().kms.as_ref()).await {
        Ok(rules) => rules,
        Err(message) => {
            tracing::info!(%message, "the release waits for the cluster's KmsKeyPolicy");
            return Err(ReconcileError::ReleaseWaiting(Duration::from_secs(5)));
        }
    };
    let mut spec = obj.spec.clone();
    spec.deletion_window_in_days =
        reconcile::guardrails::deletion_window(&spec, &owner.namespace, rules.as_ref());
    let Some(identity) = release_identity(api, obj, ctx, &owner, &recorded).await? else {
        count_reconcile(ctx, &owner.uid, &Outcome::not_converged(), started);
        return Err(ReconcileError::ReleaseHeld);
    };
    let adopt_key_id = spec.adopt.as_ref().and_then(|a| a.key_id.as_deref());
    let wanted = wanted_region(spec.region.as_deref(), adopt_key_id).unwrap_or(spec.region.as_deref());
    let region = release_region(wanted, recorded_region(obj.status.as_ref()), &ctx.regions.rules);
    let holds_key = recorded_region(obj.status.as_ref()).region().is_some();
    let regional = (region.as_deref().and_then(|region| ctx.regions.get(&identity, region, holds_key)))
        .unwrap_or_else(|| ctx.regions.home()); // no Region or refused: nothing was made there
    let recorded_replicas = recorded::replica_regions(obj.status.as_ref());
    let kms = regional.kms.as_ref();
    let replica_regions = ctx.regions.as_identity(&identity);
    let released = match release_replicas(
        &replica_regions,
        kms,
        &spec,
        &owner,
        &recorded,
        &recorded_replicas,
        now,
        policy,
    )
    .await
    {
        Ok(Released::Wait(wait)) => Ok(Released::Wait(wait)),
        Ok(replicas) => reconcile::cleanup(kms, &spec, &owner, &recorded, now, policy)
            .await
            .map(|primary| primary.after_replicas(replicas)),
        Err(err) => Err(err),
    };
    let released = match released {
        Ok(released) => released,
        Err(err) => {
            // A refusal on a key created moments ago is IAM catching up: retried soon.
            return match report_failed_cleanup(api, obj, ctx, &err, &recorded, now).await {
                Outcome::Progressing { retry: reconcile::Retry::After(wait), .. } => {
                    Err(ReconcileError::ReleaseWaiting(wait))
                }
                _ => Err(ReconcileError::Release(err)),
            };
        }
    };
    let (type_, reason, note) = match released {
        Released::Done { changes } if changes.is_empty() => (
            EventType::Normal,
            "Released",
            "no key to delete, or its deletion was already scheduled".to_owned(),
        ),
        Released::Done { changes } => (EventType::Normal, "Deleted", changes.join("; ")),
        Released::Kept { changes } => {
            let what = match changes.is_empty() {
                true => "nothing changed".to_owned(),
                false => changes.join("; "),
            };
            let why = match obj.spec.management_policy {
                ManagementPolicy::ObserveOnly => "the object only observed it",
                ManagementPolicy::Full => "deletionPolicy Retain",
            };
            (EventType::Normal, "Retained", format!("the key stays in KMS ({why}): {what}"))
        }
        Released::NotOwned { key_id } => (
            EventType::Warning,
            "NotOwned",
            format!(
                "key {key_id} is not this object's (tagged for another object or cluster, or never taken over) and was left alone"
            ),
        ),
        Released::Wait(wait) => return Err(ReconcileError::ReleaseWaiting(wait)),
    };
    publish(ctx, obj, type_, reason, "Delete", note).await;
    ctx.metrics.reconciled("deleted", started.elapsed());
    ctx.backoff.reset(&owner.uid);
    ctx.usage_checks.forget(&owner.uid);
    ctx.looked_at.forget(&owner.uid);
    ctx.metrics.object_state(&owner.uid, None);
    ctx.full_reads.forget(&owner.uid);
    Ok(Requeue::await_change())
}

/// The identity a deleted object's key is released with; `None` when the account mapping
/// refuses it while status records a key or a create (the refusal is shown on the object and
/// the finalizer stays). An object that never had a key goes whatever the mapping says.
async fn release_identity(
    api: &Api<KmsKey>,
    obj: &KmsKey,
    ctx: &Context,
    owner: &Owner,
    recorded: &reconcile::Recorded,
) -> Result<Option<Identity>, ReconcileError> {
    let recorded_account = recorded::recorded_account(obj.status.as_ref());
    let own_account = ctx.cluster_policy.own_account(ctx.regions.home().kms.as_ref()).await;
    match ctx.accounts.identity(&owner.namespace, recorded_account.as_deref(), own_account) {
        Ok(identity) => Ok(Some(identity)),
        Err(_) if recorded.key_id.is_none() && recorded.intent.is_none() => Ok(Some(Identity::Own)),
        Err(Unmapped::Waiting(message)) => {
            tracing::info!(%message, "the release waits for the account mapping");
            Err(ReconcileError::ReleaseWaiting(Duration::from_secs(5)))
        }
        Err(Unmapped::Refused(outcome)) => {
            let report = reconcile::Report::of(outcome);
            let writer = KubeStatusWriter::new(api.clone(), obj);
            writer.finish(&report, &obj.spec, obj.meta().generation).await.map_err(ReconcileError::Status)?;
            if let Outcome::Stalled { reason, message } = &report.outcome {
                publish(ctx, obj, EventType::Warning, reason, "Delete", message.clone()).await;
            }
            Ok(None)
        }
    }
}

/// A cleanup that failed shows on the object (conditions) and, unless it is throttling or IAM
/// catching up, as a Warning Event, so a Terminating object says why it stays. Returns the
/// outcome it recorded.
async fn report_failed_cleanup(
    api: &Api<KmsKey>,
    obj: &KmsKey,
    ctx: &Context,
    err: &crate::kms::KmsError,
    recorded: &reconcile::Recorded,
    now: Timestamp,
) -> Outcome {
    let outcome = match Outcome::of_kms_error(err, recorded, now) {
        Outcome::Stalled { reason, message } => {
            Outcome::Stalled { reason, message: format!("releasing the key failed: {message}") }
        }
        Outcome::Progressing { reason, message, retry } => {
            Outcome::Progressing { reason, message: format!("releasing the key failed: {message}"), retry }
        }
        other @ (Outcome::Ready { .. } | Outcome::Held { .. }) => other,
    };
    let report = reconcile::Report::of(outcome);
    let writer = KubeStatusWriter::new(api.clone(), obj);
    if let Err(write) = writer.finish(&report, &obj.spec, obj.meta().generation).await {
        tracing::warn!(error = %write, "could not record the failed cleanup in status");
    }
    if report.outcome.warrants_warning() {
        let note = format!("releasing the key failed: {err}");
        publish(ctx, obj, EventType::Warning, "CleanupFailed", "Delete", note).await;
    }
    report.outcome
}

fn error_policy(obj: Arc<Watched>, err: &ReconcileError, ctx: Arc<Context>) -> Requeue {
    if let ReconcileError::Finalizer(inner) = err
        && let kube::runtime::finalizer::Error::CleanupFailed(ReconcileError::ReleaseWaiting(wait)) = &**inner
    {
        return Requeue::requeue(*wait);
    }
    if let ReconcileError::Finalizer(inner) = err
        && let kube::runtime::finalizer::Error::CleanupFailed(ReconcileError::ReleaseHeld) = &**inner
    {
        // The annotation's removal is a watch event; nothing to retry until then.
        return Requeue::await_change();
    }
    tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), error = %err, "reconcile failed; retrying");
    ctx.metrics.failed();
    Requeue::requeue(ctx.backoff.next(&obj.uid().unwrap_or_default()))
}

async fn publish_report(ctx: &Context, obj: &KmsKey, report: &reconcile::Report) {
    if !report.changes.is_empty() {
        publish(ctx, obj, EventType::Normal, "Reconciled", "Update", report.changes.join("; ")).await;
    }
    match &report.outcome {
        Outcome::Stalled { reason, message } | Outcome::Progressing { reason, message, .. }
            if report.outcome.warrants_warning() =>
        {
            publish(ctx, obj, EventType::Warning, reason, "Reconcile", message.clone()).await;
        }
        _ => {}
    }
}

/// The audit facts a reconcile read: a `KeyUnused` Warning when the key has gone unused for
/// `spec.unusedDays`, or why its last use could not be read when all else went through.
async fn publish_audit(ctx: &Context, obj: &KmsKey, report: &reconcile::Report) {
    match &report.last_usage {
        Some(Ok(usage)) => {
            if let Some(warning) =
                reconcile::audit::unused_warning(obj.spec.unused_days, usage, Timestamp::now())
            {
                ctx.metrics.unused_key_warned();
                publish(ctx, obj, EventType::Warning, "KeyUnused", "Audit", warning).await;
            }
        }
        Some(Err(why)) if matches!(report.outcome, Outcome::Ready { .. }) => {
            let note = format!("could not read the key's last use (GetKeyLastUsage): {why}");
            publish(ctx, obj, EventType::Warning, "LastUsageUnreadable", "Audit", note).await;
        }
        // Refused with everything else (IAM catching up with a new key): not worth a warning.
        Some(Err(_)) | None => {}
    }
}

async fn publish(ctx: &Context, obj: &KmsKey, type_: EventType, reason: &str, action: &str, note: String) {
    let mut note = note;
    if note.len() > 1000 {
        let cut = (0..=1000).rev().find(|i| note.is_char_boundary(*i)).unwrap_or(0);
        note.truncate(cut);
    }
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %err, "could not publish an event");
    }
}
