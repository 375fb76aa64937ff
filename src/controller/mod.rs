//! The kube-runtime shell around `reconcile`: watch KmsKeys, hold the finalizer, write status,
//! publish events and choose when to look again. No KMS decision is made here.
//!
//! Watch events are filtered to changes of generation, finalizers and deletion, so the
//! operator's own status writes never trigger another reconcile.

mod requeue;
mod status_writer;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action as Requeue, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{FINALIZER, KmsKey};
use crate::cli::RunArgs;
use crate::kms::{AwsKms, KmsPort};
use crate::reconcile::{self, Outcome, Owner, Released, Target};

pub use requeue::Backoff;
pub use status_writer::{KubeStatusWriter, recorded_from};

/// Errors that end `run`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot reach Kubernetes: {0}")]
    Kube(#[from] kube::Error),
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
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<ReconcileError>>),
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub kms: Arc<dyn KmsPort>,
    pub recorder: Recorder,
    pub cluster: String,
    pub resync: Duration,
    pub backoff: Backoff,
}

/// Runs the controller until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let client = Client::try_default().await?;
    let kms = Arc::new(AwsKms::new(crate::kms::aws_client(&args).await));
    let reporter = Reporter { controller: "kms-operator".into(), instance: std::env::var("POD_NAME").ok() };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        kms,
        cluster: args.cluster_name.clone(),
        resync: args.resync_interval,
        backoff: Backoff::default(),
    });
    let apis: Vec<Api<KmsKey>> = if args.namespaces.is_empty() {
        vec![Api::all(client)]
    } else {
        args.namespaces.iter().map(|ns| Api::namespaced(client.clone(), ns)).collect()
    };
    tracing::info!(namespaces = ?args.namespaces, cluster = %args.cluster_name, "starting kms-operator");
    let controllers = apis.into_iter().map(|api| controller(api, ctx.clone(), args.concurrency));
    futures::future::join_all(controllers).await;
    tracing::info!("kms-operator stopped");
    Ok(())
}

async fn controller(api: Api<KmsKey>, ctx: Arc<Context>, concurrency: u16) {
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());
    Controller::for_stream(stream, reader)
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile_object, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile did not complete");
            }
        })
        .await;
}

/// Changes that need a reconcile: the spec (generation), finalizers and deletion.
fn spec_or_lifecycle(obj: &KmsKey) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    predicates::generation(obj).hash(&mut hasher);
    predicates::finalizers(obj).hash(&mut hasher);
    obj.meta().deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

async fn reconcile_object(obj: Arc<KmsKey>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    let namespace = obj.namespace().ok_or(ReconcileError::MissingMetadata)?;
    let api: Api<KmsKey> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalizer::Apply(obj) => apply(&api, &obj, &ctx).await,
            Finalizer::Cleanup(obj) => release(&obj, &ctx).await,
        }
    })
    .await
    .map_err(|err| ReconcileError::Finalizer(Box::new(err)))
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
    let owner = owner_of(obj, &ctx.cluster)?;
    let writer = KubeStatusWriter::new(api.clone(), obj);
    let target = Target { spec: &obj.spec, owner: &owner, recorded: recorded_from(obj.status.as_ref()) };
    let report = reconcile::reconcile(ctx.kms.as_ref(), &writer, target, Timestamp::now()).await?;
    writer
        .finish(&report, &obj.spec.full_alias_name(), obj.meta().generation)
        .await
        .map_err(ReconcileError::Status)?;
    publish_report(ctx, obj, &report).await;
    let uid = owner.uid.as_str();
    Ok(match &report.outcome {
        Outcome::Ready { .. } => {
            ctx.backoff.reset(uid);
            Requeue::requeue(requeue::jittered(ctx.resync))
        }
        Outcome::Progressing { retry: reconcile::Retry::After(wait), .. } => Requeue::requeue(*wait),
        Outcome::Progressing { .. } => Requeue::requeue(ctx.backoff.next(uid)),
        Outcome::Stalled { .. } => Requeue::requeue(requeue::jittered(ctx.resync)),
    })
}

async fn release(obj: &KmsKey, ctx: &Context) -> Result<Requeue, ReconcileError> {
    let owner = owner_of(obj, &ctx.cluster)?;
    let recorded = recorded_from(obj.status.as_ref());
    let released = reconcile::cleanup(ctx.kms.as_ref(), &obj.spec, &owner, &recorded).await?;
    let (type_, reason, note) = match released {
        Released::Done { changes } if changes.is_empty() => (
            EventType::Normal,
            "Released",
            "no key to delete, or its deletion was already scheduled".to_owned(),
        ),
        Released::Done { changes } => (EventType::Normal, "Deleted", changes.join("; ")),
        Released::NotOwned { key_id } => (
            EventType::Warning,
            "NotOwned",
            format!("key {key_id} is tagged for another object or cluster and was left alone"),
        ),
    };
    publish(ctx, obj, type_, reason, "Delete", note).await;
    ctx.backoff.reset(&owner.uid);
    Ok(Requeue::await_change())
}

fn error_policy(obj: Arc<KmsKey>, err: &ReconcileError, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), error = %err, "reconcile failed; retrying");
    Requeue::requeue(ctx.backoff.next(&obj.uid().unwrap_or_default()))
}

async fn publish_report(ctx: &Context, obj: &KmsKey, report: &reconcile::Report) {
    if !report.changes.is_empty() {
        publish(ctx, obj, EventType::Normal, "Reconciled", "Update", report.changes.join("; ")).await;
    }
    match &report.outcome {
        Outcome::Stalled { reason, message } => {
            publish(ctx, obj, EventType::Warning, reason, "Reconcile", message.clone()).await;
        }
        Outcome::Progressing { reason, message, .. } if *reason != "CreateInFlight" => {
            publish(ctx, obj, EventType::Warning, reason, "Reconcile", message.clone()).await;
        }
        _ => {}
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
