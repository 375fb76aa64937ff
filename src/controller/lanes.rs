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
//! steering annotations. At start that memory is recalled from one paginated list of the
//! objects' `status.observedGeneration`, read once the watch has synced and while the first
//! pass runs, so that the list never delays the first reconcile: until it is done, an object
//! not recalled yet is taken for a resync as long as it looks as it did when this process first
//! saw it (a change the watch brings meanwhile is an edit), and one the list then finds had
//! changed while the operator was down (or was never reconciled) is promoted to the edit lane
//! if its resync is still queued. A restart's first pass so runs in the resync lane, and what
//! changed meanwhile in the edit lane.
//!
//! The controller holds a bounded number of reconciles (`Lanes::admissions`); the lanes decide
//! which of them run. At most `--concurrency` reconciles wait for a turn in each lane at once: the rest are parked as
//! names in a queue per lane (`parked`) and handed back to the controller in order as their
//! lane frees up, edits before resyncs, so a pass over 10,000 objects (a start, 10,000 new
//! objects applied at once, an outage's retries) holds 10,000 names, not 10,000 waiting
//! reconciles. A parked resync whose object changes is withdrawn: the change comes in as an
//! edit. A reconcile waiting in a lane holds little memory: the work it will do is boxed only
//! once it runs.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use super::parked::{Parked, ParkedObject, Scope};

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

/// The two lanes, what they remember of each object's last look, and the reconciles waiting
/// in them or parked beyond them, by object UID.
#[derive(Debug)]
pub struct Lanes {
    concurrency: usize,
    edits: Semaphore,
    resyncs: Semaphore,
    edits_queued: AtomicUsize,
    waiting_resyncs: Mutex<HashMap<String, Arc<Notify>>>,
    last_looks: Mutex<HashMap<String, Seen>>,
    parked_edits: Mutex<Parked>,
    parked_resyncs: Mutex<Parked>,
    /// Parked objects handed back to the controller and not yet arrived: the lane they left the
    /// queue of, and when.
    released: Mutex<HashMap<String, (Lane, Instant)>>,
    /// Something that may let a parked object go: a turn ended, a waiter left, one was parked.
    room: Notify,
    /// Whether each namespace has its own watch (`--namespaces`), hence its own parked queue.
    watch_per_namespace: bool,
    /// Whether the looks before this process are still being recalled (see `recall`).
    recalling: AtomicBool,
    /// While recalling: how each object not recalled yet looked when this process first saw
    /// it. It stands in for its last look until the recall brings the real one, so that a
    /// change the watch brings meanwhile is an edit.
    first_sightings: Mutex<HashMap<String, Seen>>,
}

/// Where the parked queues stood before a snapshot of the watch was read (see `Lanes::retain`).
#[derive(Clone, Copy, Debug)]
pub struct RetainMark {
    edits: u64,
    resyncs: u64,
}

/// How a reconcile goes into its lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Waits for a turn in the lane.
    Wait(Lane),
    /// Parked: the lane is full, or others are parked before it; released in order.
    Parked,
}

/// A turn in a lane; the lane's slot is free again when it is dropped.
pub struct Turn<'a> {
    _permit: SemaphorePermit<'a>,
    lanes: &'a Lanes,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.lanes.room.notify_waiters();
    }
}

/// A released parked object older than this that never arrived (kube dropped the request: the
/// object went away) no longer holds a place in its lane.
const RELEASE_FORGOTTEN_AFTER: Duration = Duration::from_secs(60);

impl Lanes {
    /// Lanes that each run up to `concurrency` reconciles at once; `watch_per_namespace` when
    /// each namespace has its own controller.
    pub fn new(concurrency: usize, watch_per_namespace: bool) -> Self {
        Lanes {
            concurrency,
            edits: Semaphore::new(concurrency),
            resyncs: Semaphore::new(concurrency),
            edits_queued: AtomicUsize::new(0),
            waiting_resyncs: Mutex::new(HashMap::new()),
            last_looks: Mutex::new(HashMap::new()),
            parked_edits: Mutex::new(Parked::default()),
            parked_resyncs: Mutex::new(Parked::default()),
            released: Mutex::new(HashMap::new()),
            room: Notify::new(),
            watch_per_namespace,
            recalling: AtomicBool::new(false),
            first_sightings: Mutex::new(HashMap::new()),
        }
    }

    /// How the reconcile of the object `meta` goes in: its lane, or parked when the lane already
    /// holds `--concurrency` waiting (or others are parked before it), unless the lanes released
    /// it from the parked queue themselves.
    pub fn admit(&self, meta: &ObjectMeta) -> Admission {
        let uid = meta.uid.clone().unwrap_or_default();
        let released = lock(&self.released).remove(&uid).is_some();
        let last_look = lock(&self.last_looks).get(&uid).copied();
        let last_look = match last_look {
            None if self.recalling.load(Ordering::Relaxed) => {
                Some(*lock(&self.first_sightings).entry(uid.clone()).or_insert_with(|| Seen::of(meta)))
            }
            known => known,
        };
        let lane = Lane::of(meta, last_look);
        if released {
            return Admission::Wait(lane);
        }
        let scope = self.scope_of(meta);
        let mut parked = lock(self.parked(lane));
        if !self.full(lane) && !parked.any_in(&scope) {
            return Admission::Wait(lane);
        }
        let object = ParkedObject {
            uid,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        };
        parked.park(scope, object);
        drop(parked);
        self.room.notify_waiters();
        Admission::Parked
    }

    /// The next parked object of the watch of `namespace` (`None`: the whole cluster) to hand
    /// back to its controller, once its lane has room for it: edits first.
    pub async fn next_released(&self, namespace: Option<&str>) -> ParkedObject {
        let scope = namespace.map(str::to_owned);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            for lane in [Lane::Edit, Lane::Resync] {
                if self.full(lane) {
                    continue;
                }
                if let Some(object) = lock(self.parked(lane)).pop(&scope) {
                    lock(&self.released).insert(object.uid.clone(), (lane, Instant::now()));
                    return object;
                }
            }
            room.await;
        }
    }

    /// How many reconciles the controller may hold at once: every turn and every wait both
    /// lanes allow (three times `--concurrency` each: running, waiting, released), and as many
    /// again for reconciles on their way in, so that a new change is admitted (or parked) at once
    /// even while both lanes are busy. Beyond that, the controller's own queue holds the
    /// objects due, at a few dozen bytes each: a pass over 10,000 objects never becomes 10,000
    /// reconciles in memory at once.
    pub fn admissions(&self) -> u16 {
        u16::try_from(12 * self.concurrency).unwrap_or(u16::MAX)
    }

    fn parked(&self, lane: Lane) -> &Mutex<Parked> {
        match lane {
            Lane::Edit => &self.parked_edits,
            Lane::Resync => &self.parked_resyncs,
        }
    }

    /// Whether `--concurrency` reconciles wait for a turn in `lane` or are on their way to one.
    /// Each lock is taken alone (a parked queue's may be held), so no two are ever taken in
    /// another order.
    fn full(&self, lane: Lane) -> bool {
        let waiting = match lane {
            Lane::Edit => self.edits_queued.load(Ordering::Relaxed),
            Lane::Resync => lock(&self.waiting_resyncs).len(),
        };
        let released = lock(&self.released).values().filter(|(l, _)| *l == lane).count();
        waiting + released >= self.concurrency
    }

    fn scope_of(&self, meta: &ObjectMeta) -> Scope {
        self.watch_per_namespace.then(|| meta.namespace.clone().unwrap_or_default())
    }

    /// A reconcile looks at the object `meta` now.
    pub fn looked_at(&self, meta: &ObjectMeta) {
        if let Some(uid) = &meta.uid {
            lock(&self.last_looks).insert(uid.clone(), Seen::of(meta));
        }
    }

    /// From now until `recalled`, an object not recalled yet is taken for a resync when it
    /// looks as it did when this process first saw it.
    pub fn start_recall(&self) {
        self.recalling.store(true, Ordering::Relaxed);
    }

    /// Recalls a look before this process started: `status.observedGeneration` of the object
    /// `meta` (as listed), with its steering annotations (a look since the start wins). An
    /// object that had changed since that look when this process first saw it (or was never
    /// reconciled) and whose resync is queued becomes an edit: a parked resync is withdrawn, a
    /// waiting one gives way, and either is parked as an edit.
    pub fn recall(&self, meta: &ObjectMeta, observed_generation: Option<i64>) {
        let Some(uid) = &meta.uid else { return };
        let before =
            observed_generation.map(|generation| Seen { generation: Some(generation), ..Seen::of(meta) });
        let mut looks = lock(&self.last_looks);
        if looks.contains_key(uid) {
            return;
        }
        if let Some(before) = before {
            looks.insert(uid.clone(), before);
        }
        drop(looks);
        let first = lock(&self.first_sightings).remove(uid).unwrap_or_else(|| Seen::of(meta));
        if before == Some(first) {
            return;
        }
        let parked = lock(&self.parked_resyncs).withdraw(uid);
        let waiting = lock(&self.waiting_resyncs).get(uid).map(|waiting| waiting.notify_one()).is_some();
        if parked || waiting {
            let object = ParkedObject {
                uid: uid.clone(),
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().unwrap_or_default(),
            };
            lock(&self.parked_edits).park(self.scope_of(meta), object);
            self.room.notify_waiters();
        }
    }

    /// The recall is over (done, or given up): an object never looked at is an edit again.
    pub fn recalled(&self) {
        self.recalling.store(false, Ordering::Relaxed);
        lock(&self.first_sightings).clear();
    }

    /// Marks what is parked so far, before a snapshot of the watch is read for `retain`.
    pub fn mark(&self) -> RetainMark {
        RetainMark { edits: lock(&self.parked_edits).mark(), resyncs: lock(&self.parked_resyncs).mark() }
    }

    /// Forgets the objects not in `watched` (deleted, or no longer watched; a snapshot read
    /// after `mark`: what was parked since is kept, as its object may be newer than the
    /// snapshot), and releases that never arrived.
    pub fn retain(&self, watched: &HashSet<String>, mark: RetainMark) {
        lock(&self.last_looks).retain(|uid, _| watched.contains(uid));
        lock(&self.parked_edits).retain(watched, mark.edits);
        lock(&self.parked_resyncs).retain(watched, mark.resyncs);
        lock(&self.released)
            .retain(|uid, (_, at)| watched.contains(uid) && at.elapsed() < RELEASE_FORGOTTEN_AFTER);
        self.room.notify_waiters();
    }

    /// Waits for a turn in `lane` for the object `uid`; `None` when the object changed while its
    /// resync waited (the change is then reconciled in the edit lane instead).
    pub async fn enter(&self, lane: Lane, uid: &str) -> Option<Turn<'_>> {
        if lane == Lane::Edit {
            self.edits_queued.fetch_add(1, Ordering::Relaxed);
            let turn = self.edits.acquire().await.ok();
            self.edits_queued.fetch_sub(1, Ordering::Relaxed);
            self.room.notify_waiters();
            return turn.map(|permit| Turn { _permit: permit, lanes: self });
        }
        let changed = Arc::new(Notify::new());
        lock(&self.waiting_resyncs).insert(uid.to_owned(), changed.clone());
        let turn = tokio::select! {
            turn = self.resyncs.acquire() => turn.ok(),
            _ = changed.notified() => None,
        };
        lock(&self.waiting_resyncs).remove(uid);
        self.room.notify_waiters();
        turn.map(|permit| Turn { _permit: permit, lanes: self })
    }

    /// The watch saw a change of the object `uid`: a resync of it still waiting gives way, and
    /// a parked one is withdrawn.
    pub fn changed(&self, uid: &str) {
        if let Some(waiting) = lock(&self.waiting_resyncs).get(uid) {
            waiting.notify_one();
        }
        lock(&self.parked_resyncs).withdraw(uid);
    }

    /// Reconciles waiting for a turn in `lane`, parked ones included.
    pub fn queued(&self, lane: Lane) -> usize {
        let waiting = match lane {
            Lane::Edit => self.edits_queued.load(Ordering::Relaxed),
            Lane::Resync => lock(&self.waiting_resyncs).len(),
        };
        waiting + lock(self.parked(lane)).len()
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

    fn at(uid: &str, generation: i64) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            namespace: Some("n".into()),
            name: Some(uid.into()),
            ..meta(generation, &[])
        }
    }

    #[test]
    fn a_restart_resyncs_what_was_looked_at_and_edits_what_changed_meanwhile() {
        let lanes = Lanes::new(4, false);
        lanes.recall(&at("a", 2), Some(2));
        lanes.recall(&at("b", 3), Some(2));
        lanes.recall(&at("c", 1), None);
        assert_eq!(lanes.admit(&at("a", 2)), Admission::Wait(Lane::Resync));
        assert_eq!(
            lanes.admit(&at("b", 3)),
            Admission::Wait(Lane::Edit),
            "changed while the operator was down"
        );
        assert_eq!(lanes.admit(&at("c", 1)), Admission::Wait(Lane::Edit), "never reconciled");
        lanes.looked_at(&at("b", 3));
        lanes.recall(&at("b", 3), Some(2));
        assert_eq!(
            lanes.admit(&at("b", 3)),
            Admission::Wait(Lane::Resync),
            "a retry at a generation looked at"
        );
        lanes.retain(&HashSet::from(["b".to_owned()]), lanes.mark());
        assert_eq!(lanes.admit(&at("a", 2)), Admission::Wait(Lane::Edit), "forgotten once it left the watch");
    }

    #[tokio::test]
    async fn during_the_recall_unknown_objects_resync_and_those_found_changed_become_edits() {
        let lanes = Lanes::new(1, false);
        lanes.start_recall();
        // The first pass starts before the recall: nothing is known, everything resyncs.
        assert_eq!(lanes.admit(&at("a", 2)), Admission::Wait(Lane::Resync));
        let running = lanes.enter(Lane::Resync, "a").await.unwrap();
        assert_eq!(lanes.admit(&at("b", 5)), Admission::Wait(Lane::Resync));
        let waiting = lanes.enter(Lane::Resync, "b");
        tokio::pin!(waiting);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut waiting).await.is_err());
        for uid in ["c", "d", "e"] {
            assert_eq!(lanes.admit(&at(uid, 1)), Admission::Parked);
        }
        assert_eq!(lanes.admit(&at("f", 1)), Admission::Parked);
        // f is edited now, before the recall reaches it: an edit, whatever the recall says.
        lanes.changed("f");
        assert_eq!(lanes.admit(&at("f", 2)), Admission::Wait(Lane::Edit), "f's change is an edit");
        // The recall: a and c were settled; b (waiting) and d (parked) changed while the operator
        // was down; e was never reconciled; f is listed as it was before its edit.
        lanes.recall(&at("a", 2), Some(2));
        lanes.recall(&at("b", 5), Some(4));
        lanes.recall(&at("c", 1), Some(1));
        lanes.recall(&at("d", 1), Some(0));
        lanes.recall(&at("e", 1), None);
        lanes.recall(&at("f", 1), Some(1));
        assert!(waiting.await.is_none(), "b's resync gave way");
        assert_eq!(lanes.queued(Lane::Resync), 1, "c still resyncs");
        assert_eq!(lanes.queued(Lane::Edit), 3, "b, d and e are parked as edits");
        let released = lanes.next_released(None).await;
        assert_eq!(released.name, "b", "edits first, in the order found");
        assert_eq!(lanes.admit(&at("b", 5)), Admission::Wait(Lane::Edit));
        drop(running);
        lanes.recalled();
        assert_eq!(lanes.admit(&at("g", 1)), Admission::Parked, "behind d and e");
        assert_eq!(lanes.queued(Lane::Edit), 3, "a new object is an edit again");
        assert!(lanes.first_sightings.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn resyncs_beyond_a_full_lane_are_parked_and_released_in_order_as_it_frees() {
        let lanes = Lanes::new(1, false);
        for uid in ["a", "b", "c", "d", "e"] {
            lanes.looked_at(&at(uid, 1));
        }
        assert_eq!(lanes.admit(&at("a", 1)), Admission::Wait(Lane::Resync));
        let running = lanes.enter(Lane::Resync, "a").await.unwrap();
        assert_eq!(lanes.admit(&at("b", 1)), Admission::Wait(Lane::Resync), "one may wait");
        let waiting = lanes.enter(Lane::Resync, "b");
        tokio::pin!(waiting);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut waiting).await.is_err());
        assert_eq!(lanes.admit(&at("c", 1)), Admission::Parked);
        assert_eq!(lanes.admit(&at("d", 1)), Admission::Parked);
        assert_eq!(lanes.admit(&at("e", 2)), Admission::Wait(Lane::Edit), "edits have their own lane");
        assert_eq!(lanes.queued(Lane::Resync), 3);
        lanes.changed("d");
        assert_eq!(lanes.queued(Lane::Resync), 2, "a parked resync of a changed object is withdrawn");

        let release = lanes.next_released(None);
        tokio::pin!(release);
        let early = tokio::time::timeout(Duration::from_millis(20), &mut release).await;
        assert!(early.is_err(), "nothing is released while the lane is full");
        drop(running);
        let _b_turn = waiting.await.unwrap();
        let released = tokio::time::timeout(Duration::from_secs(1), release).await.unwrap();
        assert_eq!(released.name, "c");
        assert_eq!(lanes.admit(&at("a", 1)), Admission::Parked, "behind the released one");
        assert_eq!(lanes.admit(&at("c", 1)), Admission::Wait(Lane::Resync), "a released object goes in");
    }

    #[tokio::test]
    async fn parked_edits_are_released_before_parked_resyncs() {
        let lanes = Lanes::new(1, false);
        for uid in ["r1", "r2", "r3"] {
            lanes.looked_at(&at(uid, 1));
        }
        let edit = lanes.enter(Lane::Edit, "e0").await.unwrap();
        let resync = lanes.enter(Lane::Resync, "r1").await.unwrap();
        assert_eq!(lanes.admit(&at("r2", 1)), Admission::Wait(Lane::Resync));
        let r2 = lanes.enter(Lane::Resync, "r2");
        tokio::pin!(r2);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut r2).await.is_err());
        assert_eq!(lanes.admit(&at("e1", 1)), Admission::Wait(Lane::Edit));
        let e1 = lanes.enter(Lane::Edit, "e1");
        tokio::pin!(e1);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut e1).await.is_err());
        assert_eq!(lanes.admit(&at("r3", 1)), Admission::Parked);
        assert_eq!(lanes.admit(&at("e2", 1)), Admission::Parked, "new objects beyond a full edit lane");
        assert_eq!((lanes.queued(Lane::Edit), lanes.queued(Lane::Resync)), (2, 2));
        drop((edit, resync));
        let (_e1, _r2) = (e1.await.unwrap(), r2.await.unwrap());
        let first = tokio::time::timeout(Duration::from_secs(1), lanes.next_released(None)).await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(1), lanes.next_released(None)).await.unwrap();
        assert_eq!((first.uid.as_str(), second.uid.as_str()), ("e2", "r3"));
    }

    #[tokio::test]
    async fn each_namespace_watch_gets_back_only_its_own_objects() {
        let lanes = Lanes::new(1, true);
        let in_ns = |uid: &str, ns: &str| ObjectMeta { namespace: Some(ns.into()), ..at(uid, 1) };
        for (uid, ns) in [("a", "x"), ("b", "x"), ("c", "y")] {
            lanes.looked_at(&in_ns(uid, ns));
        }
        let _running = lanes.enter(Lane::Resync, "a").await.unwrap();
        lanes.released.lock().unwrap().insert("z".into(), (Lane::Resync, Instant::now()));
        assert_eq!(lanes.admit(&in_ns("b", "x")), Admission::Parked);
        assert_eq!(lanes.admit(&in_ns("c", "y")), Admission::Parked);
        lanes.retain(&HashSet::from(["a".to_owned(), "b".to_owned(), "c".to_owned()]), lanes.mark());
        let from_y = tokio::time::timeout(Duration::from_secs(1), lanes.next_released(Some("y"))).await;
        assert_eq!(from_y.unwrap().uid, "c", "a release that never arrived no longer holds the lane");
    }

    #[tokio::test]
    async fn an_edit_runs_while_every_resync_slot_is_taken() {
        let lanes = Lanes::new(1, false);
        let _busy = lanes.enter(Lane::Resync, "a").await.unwrap();
        let edit = tokio::time::timeout(Duration::from_secs(1), lanes.enter(Lane::Edit, "b")).await;
        assert!(matches!(edit, Ok(Some(_))), "the edit lane has its own slots");
    }

    #[tokio::test]
    async fn a_waiting_resync_gives_way_when_its_object_changes() {
        let lanes = Arc::new(Lanes::new(1, false));
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
