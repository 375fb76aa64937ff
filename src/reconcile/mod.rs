//! Observe → Plan → Apply, with no Kubernetes in sight. [`reconcile`] makes KMS match a spec
//! and says how it ended; [`cleanup`] lets go of the key when the object is deleted. Status
//! writes that must happen *during* a reconcile (the create intent and the new key ID) go
//! through [`StatusWriter`], so tests can fail them on purpose.
//!
//! One reconcile runs up to [`MAX_PASSES`] passes of observe, plan, apply: creating a key takes
//! one pass, configuring it the next, and a final observation checks that KMS shows the result.

mod adopt;
mod apply;
mod grants;
mod observe;
mod outcome;
mod ownership;
mod plan;
mod policy;
mod status;
mod validate;

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;

use crate::api::{CreateIntent, KmsKeySpec};
use crate::kms::{KeyDescription, KmsError, KmsPort};

pub use grants::{GRANT_PREFIX, managed_name};
pub use outcome::{Outcome, Retry};
pub use ownership::{Owner, TAG_CLUSTER, TAG_CREATE_TOKEN, TAG_OWNER, TAG_UID};
pub use plan::{Action, Intent, Observed, ObservedKey, Recorded};
pub use policy::policies_equal;
pub use status::{conditions, status_after};

/// Most observe-plan-apply passes in one reconcile.
pub const MAX_PASSES: usize = 3;

/// Status writes that must land before the reconcile goes on.
#[async_trait]
pub trait StatusWriter: Send + Sync {
    /// Records (or, with `None`, clears) a create attempt, before CreateKey is called.
    async fn record_intent(&self, intent: Option<&CreateIntent>) -> Result<(), Error>;
    /// Records the ID and ARN of a key just created or adopted, and clears the intent.
    async fn record_key(&self, key: &KeyDescription) -> Result<(), Error>;
}

/// Failures that stop a reconcile without an outcome to report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kms(#[from] KmsError),
    #[error("writing status failed: {0}")]
    StatusWrite(String),
}

/// What a reconcile ended in and the key it last saw.
#[derive(Debug)]
pub struct Report {
    pub outcome: Outcome,
    /// The object's key as last observed (absent when there is none, or it is not ours).
    pub key: Option<ObservedKey>,
    /// The changes made, one line each.
    pub changes: Vec<String>,
    /// The ID of the key this reconcile created, if it created one.
    pub created: Option<String>,
}

/// Everything a reconcile needs to know about the object.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub spec: &'a KmsKeySpec,
    pub owner: &'a Owner,
    pub recorded: Recorded,
}

/// Makes KMS match `target.spec`. KMS failures end in an outcome; only a failed status write
/// is an error, because the next step must not run without it.
pub async fn reconcile(
    kms: &dyn KmsPort,
    writer: &dyn StatusWriter,
    target: Target<'_>,
    now: Timestamp,
) -> Result<Report, Error> {
    let report = Report {
        outcome: Outcome::Ready { message: String::new() },
        key: None,
        changes: vec![],
        created: None,
    };
    let mut run = Run {
        kms,
        writer,
        spec: target.spec,
        owner: target.owner,
        now,
        recorded: target.recorded,
        report,
        last_actions: vec![],
    };
    if let Err(message) = validate::validate(run.spec) {
        run.report.outcome = Outcome::Stalled { reason: "InvalidSpec", message };
        return Ok(run.report);
    }
    for _ in 0..MAX_PASSES {
        match run.pass().await {
            Ok(Some(outcome)) => {
                run.report.outcome = outcome;
                return Ok(run.report);
            }
            Ok(None) => {}
            Err(Error::Kms(err)) => {
                run.report.outcome = Outcome::of_kms_error(&err);
                return Ok(run.report);
            }
            Err(err) => return Err(err),
        }
    }
    run.report.outcome = not_converged();
    Ok(run.report)
}

fn not_converged() -> Outcome {
    Outcome::Progressing {
        reason: "Converging",
        message: "KMS does not show every change yet; checking again shortly".to_owned(),
        retry: Retry::Backoff,
    }
}

/// One reconcile in progress.
struct Run<'a> {
    kms: &'a dyn KmsPort,
    writer: &'a dyn StatusWriter,
    spec: &'a KmsKeySpec,
    owner: &'a Owner,
    now: Timestamp,
    recorded: Recorded,
    report: Report,
    /// The actions of the previous pass: planning them again means KMS has not caught up.
    last_actions: Vec<Action>,
}

impl Run<'_> {
    /// One observe-plan-apply pass; `Some` when there is nothing more to do now.
    async fn pass(&mut self) -> Result<Option<Outcome>, Error> {
        self.adopt_interrupted_create().await?;
        let observed =
            observe::observe(self.kms, self.spec, self.owner, self.recorded.key_id.as_deref()).await?;
        self.report.key = match &observed {
            Observed::Owned(key) => Some((**key).clone()),
            _ => None,
        };
        let token = new_token();
        let ctx =
            plan::Context { owner: self.owner, recorded: &self.recorded, now: self.now, fresh_token: &token };
        let plan = plan::plan(self.spec, &observed, &ctx);
        if plan.actions.is_empty() {
            return Ok(Some(Outcome::of_settled_plan(&plan)));
        }
        if plan.actions == self.last_actions {
            // Applied a moment ago and still planned: KMS lags, or reports the change in a form
            // the plan does not recognise. Looking again later costs less than repeating it.
            return Ok(Some(not_converged()));
        }
        let key_id = self.report.key.as_ref().map(|k| k.key.key_id.clone());
        let applied = apply::apply(self.kms, self.writer, key_id.as_deref(), &plan.actions, self.now).await?;
        if let Some(created) = applied.created {
            self.report.created = Some(created.key_id.clone());
            self.recorded.key_id = Some(created.key_id);
            self.recorded.key_created_at = Some(self.now);
            self.recorded.intent = None;
        }
        self.report.changes.extend(applied.changes);
        self.last_actions = plan.actions;
        Ok(None)
    }

    /// After a crash between CreateKey and the status write, finds and records the key.
    async fn adopt_interrupted_create(&mut self) -> Result<(), Error> {
        let (None, Some(intent)) = (&self.recorded.key_id, &self.recorded.intent) else {
            return Ok(());
        };
        if let Some(key) = adopt::find_owned_key(self.kms, self.owner, &intent.token).await? {
            self.writer.record_key(&key).await?;
            let change = format!("adopted key {} left by an interrupted create", key.key_id);
            self.report.changes.push(change);
            self.recorded.key_id = Some(key.key_id);
            self.recorded.key_created_at = Some(self.now);
            self.recorded.intent = None;
        }
        Ok(())
    }
}

/// How the release of a deleted object's key went.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// The key is scheduled for deletion (now or earlier), or never existed.
    Done { changes: Vec<String> },
    /// The key exists but is not this object's: left alone, nothing to release.
    NotOwned { key_id: String },
    /// A key may exist that KMS does not list or describe yet (it was created moments ago):
    /// look again after this long before letting the object go.
    Wait(std::time::Duration),
}

/// Lets go of the object's key: drops its aliases and schedules deletion with the spec's
/// window. Safe to repeat; a key already pending deletion or gone counts as released.
pub async fn cleanup(
    kms: &dyn KmsPort,
    spec: &KmsKeySpec,
    owner: &Owner,
    recorded: &Recorded,
    now: Timestamp,
) -> Result<Released, KmsError> {
    let key_id = match (&recorded.key_id, &recorded.intent) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(intent)) => adopt::find_owned_key(kms, owner, &intent.token).await?.map(|k| k.key_id),
        (None, None) => None,
    };
    let observed = observe::observe(kms, spec, owner, key_id.as_deref()).await?;
    let actions = match plan::plan_cleanup(spec, &observed, recorded, now) {
        plan::Cleanup::Wait(wait) => return Ok(Released::Wait(wait)),
        plan::Cleanup::NotOwned { key_id } => return Ok(Released::NotOwned { key_id }),
        plan::Cleanup::Release(actions) => actions,
    };
    let mut changes = Vec::new();
    if let Observed::Owned(key) = &observed {
        for action in &actions {
            changes.extend(release_step(kms, &key.key.key_id, action).await?);
        }
    }
    Ok(Released::Done { changes })
}

/// One cleanup call; `None` when KMS refused it because someone scheduled the deletion
/// between observe and now (the key is released all the same).
async fn release_step(kms: &dyn KmsPort, key_id: &str, action: &Action) -> Result<Option<String>, KmsError> {
    match apply::apply_one(kms, key_id, action).await {
        Ok(change) => Ok(Some(change)),
        Err(Error::Kms(err)) if err.kind == crate::kms::ErrorKind::InvalidState => {
            let state = kms.describe_key(key_id).await?.map(|k| k.state);
            match state {
                Some(state) if !plan::is_pending_deletion(&state) => Err(err),
                _ => Ok(None),
            }
        }
        Err(Error::Kms(err)) => Err(err),
        Err(Error::StatusWrite(_)) => unreachable!("a single action on an existing key writes no status"),
    }
}

/// A token unique to one create attempt.
fn new_token() -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
