//! Resyncs parked while the resync lane is full: each kept as a name in a first-in, first-out
//! queue instead of a reconcile waiting in memory, so that 10,000 objects due at once (a start,
//! an outage's retries) cost a few hundred bytes each. The lanes release them in order as the
//! lane frees up (see `lanes`). One queue per watch scope (a namespace, or the whole cluster), so
//! that each object returns to the controller that watches it.

use std::collections::{HashMap, HashSet, VecDeque};

/// Which controller watches an object: `None` when one watch covers every namespace.
pub type Scope = Option<String>;

/// An object waiting for its resync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedObject {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

/// The parked resyncs, by scope, each object at most once.
#[derive(Debug, Default)]
pub struct Parked {
    queues: HashMap<Scope, VecDeque<(u64, ParkedObject)>>,
    /// The UIDs parked now, each with the number of its queue entry. An entry whose number is
    /// not here was withdrawn and is skipped.
    parked: HashMap<String, u64>,
    next_entry: u64,
}

impl Parked {
    /// Parks `object` at the back of `scope`'s queue, unless it is parked already.
    pub fn park(&mut self, scope: Scope, object: ParkedObject) {
        if !self.parked.contains_key(&object.uid) {
            let entry = self.next_entry;
            self.next_entry += 1;
            self.parked.insert(object.uid.clone(), entry);
            self.queues.entry(scope).or_default().push_back((entry, object));
        }
    }

    /// Withdraws the object `uid`: its object changed, and the change is reconciled now.
    /// Whether it was parked.
    pub fn withdraw(&mut self, uid: &str) -> bool {
        self.parked.remove(uid).is_some()
    }

    /// The first object parked in `scope`, no longer parked.
    pub fn pop(&mut self, scope: &Scope) -> Option<ParkedObject> {
        let queue = self.queues.get_mut(scope)?;
        while let Some((entry, object)) = queue.pop_front() {
            if self.parked.get(&object.uid) == Some(&entry) {
                self.parked.remove(&object.uid);
                return Some(object);
            }
        }
        None
    }

    /// Whether anything is parked in `scope`.
    pub fn any_in(&self, scope: &Scope) -> bool {
        self.queues.get(scope).is_some_and(|queue| queue.iter().any(|(entry, o)| self.is_live(*entry, o)))
    }

    fn is_live(&self, entry: u64, object: &ParkedObject) -> bool {
        self.parked.get(&object.uid) == Some(&entry)
    }

    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// What is parked from now on: entries at or after the mark.
    pub fn mark(&self) -> u64 {
        self.next_entry
    }

    /// Forgets every object parked before `mark` but those in `watched` (a snapshot of the
    /// watch taken after the mark, so an object parked since is never dropped for missing from
    /// it), and the withdrawn entries.
    pub fn retain(&mut self, watched: &HashSet<String>, mark: u64) {
        self.parked.retain(|uid, entry| *entry >= mark || watched.contains(uid));
        let parked = &self.parked;
        for queue in self.queues.values_mut() {
            queue.retain(|(entry, o)| parked.get(&o.uid) == Some(entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(uid: &str) -> ParkedObject {
        ParkedObject { uid: uid.into(), namespace: "n".into(), name: format!("key-{uid}") }
    }

    fn popped(parked: &mut Parked, scope: &Scope) -> Vec<String> {
        std::iter::from_fn(|| parked.pop(scope)).map(|o| o.uid).collect()
    }

    #[test]
    fn parked_objects_leave_in_the_order_they_came_each_once() {
        let mut parked = Parked::default();
        for uid in ["a", "b", "a", "c"] {
            parked.park(None, object(uid));
        }
        assert_eq!(parked.len(), 3);
        assert_eq!(popped(&mut parked, &None), ["a", "b", "c"]);
        assert_eq!(parked.len(), 0);
    }

    #[test]
    fn a_withdrawn_object_is_skipped_and_may_be_parked_again_at_the_back() {
        let mut parked = Parked::default();
        for uid in ["a", "b", "c"] {
            parked.park(None, object(uid));
        }
        parked.withdraw("a");
        parked.withdraw("b");
        parked.park(None, object("a"));
        assert!(parked.any_in(&None));
        assert_eq!(popped(&mut parked, &None), ["c", "a"]);
        assert!(!parked.any_in(&None));
    }

    #[test]
    fn each_scope_has_its_own_queue() {
        let mut parked = Parked::default();
        parked.park(Some("x".into()), object("a"));
        parked.park(Some("y".into()), object("b"));
        assert!(!parked.any_in(&None));
        assert_eq!(popped(&mut parked, &Some("y".into())), ["b"]);
        assert_eq!(popped(&mut parked, &Some("x".into())), ["a"]);
    }

    #[test]
    fn objects_that_left_the_watch_are_forgotten() {
        let mut parked = Parked::default();
        for uid in ["a", "b", "c"] {
            parked.park(None, object(uid));
        }
        parked.withdraw("c");
        let mark = parked.mark();
        parked.retain(&HashSet::from(["b".to_owned(), "c".to_owned()]), mark);
        assert_eq!(parked.len(), 1);
        assert_eq!(parked.queues[&None].len(), 1, "withdrawn entries go too");
        assert_eq!(popped(&mut parked, &None), ["b"]);
    }

    #[test]
    fn an_object_parked_after_the_snapshot_was_marked_is_kept() {
        let mut parked = Parked::default();
        parked.park(None, object("old"));
        let mark = parked.mark();
        // Made after the watch snapshot was read, and parked before the retain.
        parked.park(None, object("new"));
        parked.retain(&HashSet::new(), mark);
        assert_eq!(popped(&mut parked, &None), ["new"]);
    }
}
