//! One KmsKey object as the controller would handle it, minus Kubernetes: its spec, identity
//! and a status kept in memory, written through the same `StatusWriter` port and
//! `status_after` function the kube shell uses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;
use kms_operator::api::{
    Condition, ConditionStatus, CreateIntent, DeletionPolicy, KmsKey, KmsKeySpec, KmsKeyStatus,
    OnDemandRotation,
};
use kms_operator::kms::{KeyDescription, KmsPort};
use kms_operator::reconcile::guardrails::Rules;
use kms_operator::reconcile::{
    self, AccountAliases, Error, Intent, Outcome, Owner, Regional, ReplicaRegions, Report, Retry, Standing,
    StatusWriter, Target, audit,
};

use super::clock::TestClock;

pub fn example(file: &str) -> KmsKey {
    let path = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not a valid KmsKey: {e}"))
}

pub struct Object {
    pub spec: KmsKeySpec,
    pub owner: Owner,
    pub status: Mutex<KmsKeyStatus>,
    pub generation: i64,
    /// When set, `record_key` fails: the operator "crashes" right after CreateKey.
    pub fail_key_write: Mutex<bool>,
    /// The value of the `kms.boosterpack.io/rotate-now` annotation.
    pub rotate_now: Mutex<Option<String>>,
    /// How often the key's last use is read (the controller passes its resync interval), and
    /// when it last was (the controller keeps that in memory).
    pub last_usage_every: Option<Duration>,
    last_usage_read: Mutex<Option<Timestamp>>,
    /// The (virtual) time of the reconcile in progress: status writes are stamped with it.
    clock: Mutex<Option<Timestamp>>,
    /// Whether the operator lets this object's namespace adopt (`--adopt-namespaces`).
    pub may_adopt: bool,
    /// The cluster's guardrails, if it has a KmsKeyPolicy.
    pub guardrails: Option<Rules>,
    /// `--deep-resync-interval`; `None` reads the key in full at every reconcile.
    pub deep_resync: Option<Duration>,
    full_read: Mutex<Option<Timestamp>>,
    /// The account's alias listing for quick resyncs (the controller shares one).
    pub account_aliases: Arc<AccountAliases>,
    /// KMS in the Regions replicas live in (none by default).
    pub regions: Arc<dyn ReplicaRegions>,
    /// The deletion policy a replica of a Region taken off the list is released with.
    pub deletion_policy: DeletionPolicy,
}

/// No Region besides the primary's: a replica is refused.
pub struct OneRegion;

impl ReplicaRegions for OneRegion {
    fn regional(&self, region: &str, _holds_key: bool) -> Result<Arc<Regional>, String> {
        Err(format!("this test reaches no Region besides the primary's, not {region}"))
    }
}

impl Object {
    pub fn new(name: &str, spec: KmsKeySpec) -> Self {
        Self::with_uid(name, &format!("uid-{name}"), spec)
    }

    pub fn with_uid(name: &str, uid: &str, spec: KmsKeySpec) -> Self {
        let owner =
            Owner { namespace: "default".into(), name: name.into(), uid: uid.into(), cluster: "test".into() };
        Self {
            spec,
            owner,
            status: Mutex::new(KmsKeyStatus::default()),
            generation: 1,
            fail_key_write: Mutex::new(false),
            rotate_now: Mutex::new(None),
            last_usage_every: None,
            last_usage_read: Mutex::new(None),
            clock: Mutex::new(None),
            may_adopt: true,
            guardrails: None,
            deep_resync: None,
            full_read: Mutex::new(None),
            account_aliases: Arc::new(AccountAliases::new(Duration::from_secs(300))),
            regions: Arc::new(OneRegion),
            deletion_policy: DeletionPolicy::Delete,
        }
    }

    pub fn status(&self) -> KmsKeyStatus {
        self.status.lock().unwrap().clone()
    }

    pub fn key_id(&self) -> String {
        self.status().key_id.expect("status has a keyId")
    }

    /// One reconcile as the controller runs it, at `now`.
    pub async fn reconcile_at(&self, kms: &dyn KmsPort, now: Timestamp) -> Result<Report, Error> {
        *self.clock.lock().unwrap() = Some(now);
        let recorded = kms_operator::controller::recorded_from(Some(&self.status()));
        let rotate_now = self.rotate_now.lock().unwrap().clone();
        let target = Target {
            spec: &self.spec,
            owner: &self.owner,
            recorded,
            rotate_now: rotate_now.as_deref(),
            last_usage_due: (self.last_usage_every).is_some_and(|every| {
                audit::last_usage_due(*self.last_usage_read.lock().unwrap(), every, now)
            }),
            may_adopt: self.may_adopt,
            guardrails: self.guardrails.as_ref(),
            alias_handover_held: false,
            standing: Standing {
                settled: kms_operator::controller::settled(Some(&self.status()), Some(self.generation)),
                full_read_due: self
                    .deep_resync
                    .is_none_or(|every| audit::last_usage_due(*self.full_read.lock().unwrap(), every, now)),
            },
            account_aliases: &self.account_aliases,
            replica_regions: self.regions.as_ref(),
            recorded_replica_regions: kms_operator::controller::replica_regions(Some(&self.status())),
            deletion_policy: self.deletion_policy,
        };
        let report = reconcile::reconcile(kms, self, target, now).await?;
        if report.full_read {
            *self.full_read.lock().unwrap() = Some(now);
        }
        if audit::usage_read_counts(report.last_usage.as_ref(), &report.outcome) {
            *self.last_usage_read.lock().unwrap() = Some(now);
        }
        let next = reconcile::status_after(
            &self.status(),
            &report,
            &self.spec,
            Some(self.generation),
            &now.to_string(),
        );
        *self.status.lock().unwrap() = next;
        Ok(report)
    }

    pub async fn reconcile(&self, kms: &dyn KmsPort) -> Report {
        self.reconcile_at(kms, Timestamp::now()).await.expect("status writes succeed")
    }

    /// Reconciles as the controller would until the object is Ready or Stalled: after each
    /// `Progressing` outcome the shared clock (the strict KMS layer's too) moves on by the
    /// requeue the outcome asks for (2 s for a backoff), as time would pass between requeues.
    /// Returns every report, in order; panics if the object never settles.
    pub async fn converge(&self, kms: &dyn KmsPort, clock: &TestClock) -> Vec<Report> {
        let mut reports = Vec::new();
        for _ in 0..100 {
            let report = self.reconcile_at(kms, clock.now_timestamp()).await.expect("status writes succeed");
            let wait = match &report.outcome {
                Outcome::Progressing { retry: Retry::After(wait), .. } => *wait,
                Outcome::Progressing { retry: Retry::Backoff, .. } => Duration::from_secs(2),
                Outcome::Ready { .. }
                | Outcome::Progressing { retry: Retry::Resync, .. }
                | Outcome::Stalled { .. }
                | Outcome::Held { .. } => {
                    reports.push(report);
                    return reports;
                }
            };
            reports.push(report);
            clock.advance(wait);
        }
        panic!("{} did not settle in 100 reconciles: {:?}", self.owner.name, self.status());
    }

    /// The time a status write is stamped with: the reconcile's, as the operator's writer
    /// stamps the moment it writes.
    fn write_time(&self) -> Timestamp {
        self.clock.lock().unwrap().unwrap_or_else(Timestamp::now)
    }

    pub fn condition(&self, type_: &str) -> Condition {
        let status = self.status();
        status.conditions.into_iter().find(|c| c.type_ == type_).expect("condition present")
    }

    /// One release of the object's key, as the finalizer runs it, at `now` with `policy`.
    pub async fn release_at(
        &self,
        kms: &dyn KmsPort,
        now: Timestamp,
        policy: kms_operator::api::DeletionPolicy,
    ) -> Result<reconcile::Released, kms_operator::kms::KmsError> {
        let status = self.status();
        let recorded = kms_operator::controller::recorded_from(Some(&status));
        let regions = kms_operator::controller::replica_regions(Some(&status));
        let (spec, owner, elsewhere) = (&self.spec, &self.owner, self.regions.as_ref());
        let replicas =
            reconcile::release_replicas(elsewhere, kms, spec, owner, &recorded, &regions, now, policy);
        match replicas.await? {
            reconcile::Released::Wait(wait) => Ok(reconcile::Released::Wait(wait)),
            replicas => Ok(reconcile::cleanup(kms, spec, owner, &recorded, now, policy)
                .await?
                .after_replicas(replicas)),
        }
    }

    /// The same object (UID, namespace, status) with another spec, as after an edit.
    pub fn edited(&self, spec: KmsKeySpec) -> Self {
        let mut next = Self::with_uid(&self.owner.name, &self.owner.uid, spec);
        next.owner = self.owner.clone();
        next.generation = self.generation + 1;
        next.regions = self.regions.clone();
        next.deletion_policy = self.deletion_policy;
        *next.status.lock().unwrap() = self.status();
        next
    }

    pub fn is_ready(&self) -> bool {
        self.condition("Ready").status == ConditionStatus::True
    }

    pub fn stalled_reason(&self) -> Option<String> {
        let c = self.condition("Stalled");
        (c.status == ConditionStatus::True).then_some(c.reason)
    }
}

#[async_trait]
impl StatusWriter for Object {
    async fn record_intent(&self, token: &str, adopting: Option<&str>) -> Result<Intent, Error> {
        let started_at = self.write_time();
        let intent = CreateIntent {
            token: token.to_owned(),
            started_at: started_at.to_string(),
            adopting: adopting.map(str::to_owned),
            region: None,
            account_id: None,
        };
        self.status.lock().unwrap().create_intent = Some(intent);
        Ok(Intent { token: token.to_owned(), started_at, adopting: adopting.map(str::to_owned) })
    }

    async fn clear_intent(&self) -> Result<(), Error> {
        self.status.lock().unwrap().create_intent = None;
        Ok(())
    }

    async fn record_rotation_request(&self, token: &str, rotations_before: usize) -> Result<(), Error> {
        self.status.lock().unwrap().last_on_demand_rotation = Some(OnDemandRotation {
            token: token.to_owned(),
            requested_at: self.write_time().to_string(),
            rotations_before: rotations_before as u32,
            rotated_at: None,
        });
        Ok(())
    }

    async fn record_key(&self, key: &KeyDescription) -> Result<Timestamp, Error> {
        if *self.fail_key_write.lock().unwrap() {
            return Err(Error::StatusWrite("injected: the operator died after CreateKey".into()));
        }
        let at = self.write_time();
        let mut status = self.status.lock().unwrap();
        status.key_id = Some(key.key_id.clone());
        status.key_arn = Some(key.arn.clone());
        status.key_created_at = Some(at.to_string());
        status.create_intent = None;
        Ok(at)
    }
}
