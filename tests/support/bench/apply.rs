//! Creates the objects of N keys through the API, several at a time, and records when each
//! key's objects were all accepted.

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, PostParams};

use super::subject::Subject;
use super::workload;

/// How many creates are in flight at once.
const IN_FLIGHT: usize = 16;

/// Creates keys `0..count` of `subject` in `namespace`; the moment each key's objects were
/// accepted, by key name.
pub async fn create_all(
    kube: &kube::Client,
    namespace: &str,
    subject: &Subject,
    count: usize,
    policy: bool,
) -> HashMap<String, Instant> {
    let apis: Vec<Api<DynamicObject>> =
        subject.kinds().iter().map(|r| Api::namespaced_with(kube.clone(), namespace, r)).collect();
    let apis = &apis;
    futures::stream::iter(0..count)
        .map(|i| async move {
            for (api, value) in apis.iter().zip(subject.objects(i, policy)) {
                let obj: DynamicObject = serde_json::from_value(value).unwrap();
                create_retrying(api, &obj).await;
            }
            (workload::name(i), Instant::now())
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

/// Creates `obj`, retrying what the apiserver refuses for a moment (it may be busy).
async fn create_retrying(api: &Api<DynamicObject>, obj: &DynamicObject) {
    for attempt in 1.. {
        match api.create(&PostParams::default(), obj).await {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 409 => return,
            Err(e) if attempt < 10 => {
                eprintln!("create {:?} failed ({e}); retrying", obj.metadata.name);
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => panic!("cannot create {:?}: {e}", obj.metadata.name),
        }
    }
}
