//! Two lanes of reconciles, so that a person's change never queues behind background work: the
//! **edit** lane for the first look at a change (an object never looked at by this process, a
//! spec or steering annotation changed since the last look, a deletion), and the **resync** lane
//! for everything else: the periodic look at settled objects and the retries of objects that
//! are not Ready at a generation already looked at. Each lane runs up to `--concurrency`
//! reconciles at once. A resync waiting for its turn gives way as soon as its object changes
//! (the watch says so): it ends without a look, and the change is reconciled at once in the edit
//! lane.
//!
//! The lane is chosen from the object's metadata alone (the controller's cache holds no more;
//! see `slim`), against what the lanes remember of each object's last look: its generation and
//! steering annotations. At start that memory is filled from one paginated list of the objects'
//! `status.observedGeneration`, so a restart's first pass runs in the resync lane and an object
//! changed while the operator was down runs in the edit lane; an object the list has not reached
//! yet waits for it before its lane is chosen.
//!
//! The controller itself runs reconciles without a limit; the lanes are the limit. A reconcile
//! waiting in a lane holds little memory: the work it will do is boxed only once it runs.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::{Notify, Semaphore, SemaphorePermit, watch};

use crate::api::{
    CLAIM_ALIAS_ANNOTATION, DELETION_PROTECTION_ANNOTATION, PAUSED_ANNOTATION, RESYNC_INTERVAL_ANNOTATION,
    ROTATE_NOW_ANNOTATION,
};

/// The annotations that steer the operator: a change of any of them is an edit.
pub const STEERING_ANNOTATIONS: [&str; 5] = [
    ROTATE_NOW_ANNOTATION,
    PAUSED_ANNOTATION,
    DELETION_PROTECTION_ANNOTATION,
    RESYNC_INTERVAL_ANNOTATION,
    CLAIM_ALIAS_ANNOTATION,
];

/// Which lane an object's reconcile runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Edit,
    Resync,
}

/// What a look at an object saw of the parts a person changes: the generation (the spec) and
/// the steering annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    generation: Option<i64>,
    steering: u64,
}

impl Seen {
    pub fn of(meta: &ObjectMeta) -> Seen {
        Seen { generation: meta.generation, steering: steering_fingerprint(meta) }
    }
}

/// A fingerprint of the steering annotations' values.
pub fn steering_fingerprint(meta: &ObjectMeta) -> u64 {
    let mut hasher = DefaultHasher::new();
    for annotation in STEERING_ANNOTATIONS {
        meta.annotations.as_ref().and_then(|a| a.get(annotation)).hash(&mut hasher);
    }
    hasher.finish()
}

impl Lane {
    /// The lane for the object `meta`, given what its last look saw (`None`: never looked at
    /// by this process): a resync unless it is being deleted or changed since that look.
    pub fn of(meta: &ObjectMeta, last_look: Option<Seen>) -> Lane {
        let unchanged = last_look == Some(Seen::of(meta));
        match unchanged && meta.deletion_timestamp.is_none() {
            true => Lane::Resync,
            false => Lane::Edit,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Lane::Edit => "edit",
            Lane::Resync => "resync",
        }
    }
}

/// The two lanes, what they remember of each object's last look, and the resyncs waiting in
/// them, by object UID.
#[derive(Debug)]
pub struct Lanes {
    edits: Semaphore,
    resyncs: Semaphore,
    edits_queued: AtomicUsize,
    waiting_resyncs: Mutex<HashMap<String, Arc<Notify>>>,
    last_looks: Mutex<HashMap<String, Seen>>,
    /// Whether the looks before this process started are all remembered.
    earlier_looks_known: watch::Sender<bool>,
}

/// A turn in a lane; the lane's slot is free again when it is dropped.
pub type Turn<'a> = SemaphorePermit<'a>;

impl Lanes {
    /// Lanes that each run up to `concurrency` reconciles at once.
    pub fn new(concurrency: usize) -> Self {
        Lanes {
            edits: Semaphore::new(concurrency),
            resyncs: Semaphore::new(concurrency),
            edits_queued: AtomicUsize::new(0),
            waiting_resyncs: Mutex::new(HashMap::new()),
            last_looks: Mutex::new(HashMap::new()),
            earlier_looks_known: watch::Sender::new(false),
        }
    }

    /// The lane for the object `meta`; for an object not remembered, once the looks before
    /// this process started are.
    pub async fn lane_of(&self, meta: &ObjectMeta) -> Lane {
        if self.last_look(meta).is_none() {
            let _ = self.earlier_looks_known.subscribe().wait_for(|known| *known).await;
        }
        Lane::of(meta, self.last_look(meta))
    }

    fn last_look(&self, meta: &ObjectMeta) -> Option<Seen> {
        meta.uid.as_ref().and_then(|uid| lock(&self.last_looks).get(uid).copied())
    }

    /// A reconcile looks at the object `meta` now.
    pub fn looked_at(&self, meta: &ObjectMeta) {
        if let Some(uid) = &meta.uid {
            lock(&self.last_looks).insert(uid.clone(), Seen::of(meta));
        }
    }

    /// Remembers a look before this process started: `status.observedGeneration` of the object
    /// `meta`, with its steering annotations as they are now. A look since the start wins.
    pub fn looked_at_before(&self, meta: &ObjectMeta, observed_generation: Option<i64>) {
        if let (Some(uid), Some(generation)) = (&meta.uid, observed_generation) {
            let seen = Seen { generation: Some(generation), ..Seen::of(meta) };
            lock(&self.last_looks).entry(uid.clone()).or_insert(seen);
        }
    }

    /// Every look before this process started that could be read is remembered.
    pub fn earlier_looks_known(&self) {
        self.earlier_looks_known.send_replace(true);
    }

    /// Forgets the objects not in `watched` (deleted, or no longer watched).
    pub fn retain(&self, watched: &HashSet<String>) {
        lock(&self.last_looks).retain(|uid, _| watched.contains(uid));
    }

    /// Waits for a turn in `lane` for the object `uid`; `None` when the object changed while its
    /// resync waited (the change is then reconciled in the edit lane instead).
    pub async fn enter(&self, lane: Lane, uid: &str) -> Option<Turn<'_>> {
        if lane == Lane::Edit {
            self.edits_queued.fetch_add(1, Ordering::Relaxed);
            let turn = self.edits.acquire().await.ok();
            self.edits_queued.fetch_sub(1, Ordering::Relaxed);
            return turn;
        }
        let changed = Arc::new(Notify::new());
        lock(&self.waiting_resyncs).insert(uid.to_owned(), changed.clone());
        let turn = tokio::select! {
            turn = self.resyncs.acquire() => turn.ok(),
            _ = changed.notified() => None,
        };
        lock(&self.waiting_resyncs).remove(uid);
        turn
    }

    /// The watch saw a change of the object `uid`: a resync of it still waiting gives way.
    pub fn changed(&self, uid: &str) {
        if let Some(waiting) = lock(&self.waiting_resyncs).get(uid) {
            waiting.notify_one();
        }
    }

    /// Reconciles waiting for a turn in `lane`.
    pub fn queued(&self, lane: Lane) -> usize {
        match lane {
            Lane::Edit => self.edits_queued.load(Ordering::Relaxed),
            Lane::Resync => lock(&self.waiting_resyncs).len(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::time::Duration;

    fn meta(generation: i64, annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            uid: Some("u".into()),
            generation: Some(generation),
            annotations: Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn only_an_object_unchanged_since_its_last_look_resyncs() {
        let settled = meta(3, &[(PAUSED_ANNOTATION, "false"), ("team", "a")]);
        let last = Some(Seen::of(&settled));
        let deleting = ObjectMeta {
            deletion_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..settled.clone()
        };
        let cases = [
            ("never looked at", settled.clone(), None, Lane::Edit),
            ("unchanged", settled.clone(), last, Lane::Resync),
            ("another label or annotation", meta(3, &[(PAUSED_ANNOTATION, "false")]), last, Lane::Resync),
            ("spec changed", meta(4, &[(PAUSED_ANNOTATION, "false"), ("team", "a")]), last, Lane::Edit),
            (
                "rotate-now added",
                meta(3, &[(PAUSED_ANNOTATION, "false"), (ROTATE_NOW_ANNOTATION, "1")]),
                last,
                Lane::Edit,
            ),
            ("paused changed", meta(3, &[(PAUSED_ANNOTATION, "true")]), last, Lane::Edit),
            ("being deleted", deleting, last, Lane::Edit),
        ];
        for (case, meta, last, lane) in cases {
            assert_eq!(Lane::of(&meta, last), lane, "{case}");
        }
    }

    #[tokio::test]
    async fn a_restart_resyncs_what_was_looked_at_and_edits_what_changed_meanwhile() {
        let lanes = Lanes::new(1);
        let at = |uid: &str, generation| ObjectMeta { uid: Some(uid.into()), ..meta(generation, &[]) };
        lanes.looked_at_before(&at("a", 2), Some(2));
        lanes.looked_at_before(&at("b", 3), Some(2));
        lanes.looked_at_before(&at("c", 1), None);
        assert_eq!(lanes.lane_of(&at("a", 2)).await, Lane::Resync);
        assert_eq!(lanes.lane_of(&at("b", 3)).await, Lane::Edit, "changed while the operator was down");
        let c = at("c", 1);
        let unknown = lanes.lane_of(&c);
        tokio::pin!(unknown);
        let early = tokio::time::timeout(Duration::from_millis(50), &mut unknown).await;
        assert!(early.is_err(), "an object not yet remembered waits for the earlier looks");
        lanes.earlier_looks_known();
        assert_eq!(unknown.await, Lane::Edit, "never reconciled");
        lanes.looked_at(&at("b", 3));
        lanes.looked_at_before(&at("b", 3), Some(2));
        assert_eq!(lanes.lane_of(&at("b", 3)).await, Lane::Resync, "a retry at a generation looked at");
        lanes.retain(&HashSet::from(["b".to_owned()]));
        assert_eq!(lanes.lane_of(&at("a", 2)).await, Lane::Edit, "forgotten once it left the watch");
    }

    #[tokio::test]
    async fn an_edit_runs_while_every_resync_slot_is_taken() {
        let lanes = Lanes::new(1);
        let _busy = lanes.enter(Lane::Resync, "a").await.unwrap();
        let edit = tokio::time::timeout(Duration::from_secs(1), lanes.enter(Lane::Edit, "b")).await;
        assert!(matches!(edit, Ok(Some(_))), "the edit lane has its own slots");
    }

    #[tokio::test]
    async fn a_waiting_resync_gives_way_when_its_object_changes() {
        let lanes = Arc::new(Lanes::new(1));
        let busy = lanes.enter(Lane::Resync, "a").await.unwrap();
        let waiting = {
            let lanes = lanes.clone();
            tokio::spawn(async move { lanes.enter(Lane::Resync, "b").await.is_some() })
        };
        while lanes.queued(Lane::Resync) == 0 {
            tokio::task::yield_now().await;
        }
        lanes.changed("c");
        assert_eq!(lanes.queued(Lane::Resync), 1, "another object's change wakes nothing");
        lanes.changed("b");
        assert!(!waiting.await.unwrap(), "the resync of b ended without a turn");
        assert_eq!(lanes.queued(Lane::Resync), 0);
        drop(busy);
        assert!(lanes.enter(Lane::Resync, "b").await.is_some());
    }
}
