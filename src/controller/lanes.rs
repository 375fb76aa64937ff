//! Two lanes of reconciles, so that a person's change never queues behind background resyncs:
//! the **edit** lane for objects whose spec changed since they were last Ready, that are not
//! Ready, or that are being deleted, and the **resync** lane for the periodic look at settled
//! objects. Each lane runs up to `--concurrency` reconciles at once. A resync waiting for its
//! turn gives way as soon as its object changes (the watch says so): it ends without a look,
//! and the change is reconciled at once in the edit lane.
//!
//! The controller itself runs reconciles without a limit; the lanes are the limit. A reconcile
//! waiting in a lane holds little memory: the work it will do is boxed only once it runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use crate::api::KmsKey;

/// Which lane an object's reconcile runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Edit,
    Resync,
}

impl Lane {
    /// The lane for `obj`: a resync only for an object Ready at its current generation and not
    /// being deleted.
    pub fn of(obj: &KmsKey) -> Lane {
        let settled = super::recorded::settled(obj.status.as_ref(), obj.metadata.generation);
        match settled && obj.metadata.deletion_timestamp.is_none() {
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

/// The two lanes, with the resyncs waiting in them by object UID.
#[derive(Debug)]
pub struct Lanes {
    edits: Semaphore,
    resyncs: Semaphore,
    edits_queued: AtomicUsize,
    waiting_resyncs: Mutex<HashMap<String, Arc<Notify>>>,
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
        }
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
        self.waiting().insert(uid.to_owned(), changed.clone());
        let turn = tokio::select! {
            turn = self.resyncs.acquire() => turn.ok(),
            _ = changed.notified() => None,
        };
        self.waiting().remove(uid);
        turn
    }

    /// The watch saw a change of the object `uid`: a resync of it still waiting gives way.
    pub fn changed(&self, uid: &str) {
        if let Some(waiting) = self.waiting().get(uid) {
            waiting.notify_one();
        }
    }

    /// Reconciles waiting for a turn in `lane`.
    pub fn queued(&self, lane: Lane) -> usize {
        match lane {
            Lane::Edit => self.edits_queued.load(Ordering::Relaxed),
            Lane::Resync => self.waiting().len(),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.waiting_resyncs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
