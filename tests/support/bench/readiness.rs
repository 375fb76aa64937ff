//! When each key became ready: watches every kind of an operator's objects and records the
//! first moment each object met its Ready rule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;

use super::subject::Subject;

type Seen = Arc<Mutex<HashMap<(usize, String), Instant>>>;

pub struct Readiness {
    kinds: usize,
    seen: Seen,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Readiness {
    /// Starts watching `subject`'s kinds in `namespace`.
    pub fn watch(kube: &kube::Client, namespace: &str, subject: &Subject) -> Readiness {
        let seen: Seen = Arc::default();
        let kinds = subject.kinds();
        let tasks = (kinds.iter().enumerate())
            .map(|(k, resource)| {
                let api: Api<DynamicObject> = Api::namespaced_with(kube.clone(), namespace, resource);
                let (seen, subject) = (seen.clone(), subject.clone());
                tokio::spawn(async move {
                    let mut events = watcher(api, watcher::Config::default()).boxed();
                    while let Some(event) = events.next().await {
                        let (watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) = (match event {
                            Ok(event) => event,
                            Err(_) => continue,
                        }) else {
                            continue;
                        };
                        let value = serde_json::to_value(&obj).unwrap_or_default();
                        let name = obj.metadata.name.clone().unwrap_or_default();
                        if subject.is_ready(&value) {
                            seen.lock().unwrap().entry((k, name)).or_insert_with(Instant::now);
                        }
                    }
                })
            })
            .collect();
        Readiness { kinds: kinds.len(), seen, tasks }
    }

    /// When every object of the key named `name` had become ready.
    pub fn ready_at(&self, name: &str) -> Option<Instant> {
        let seen = self.seen.lock().unwrap();
        (0..self.kinds)
            .map(|k| seen.get(&(k, name.to_owned())).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    /// How many keys have every object ready.
    pub fn keys_ready(&self) -> usize {
        let seen = self.seen.lock().unwrap();
        let mut per_name: HashMap<&str, usize> = HashMap::new();
        for (_, name) in seen.keys() {
            *per_name.entry(name).or_default() += 1;
        }
        per_name.values().filter(|n| **n == self.kinds).count()
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}
