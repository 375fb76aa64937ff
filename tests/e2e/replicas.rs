//! Replicas of a multi-Region key (`spec.replicaRegions`), applied with kubectl: a primary with
//! two replicas converges, each with its alias in its Region; a Region taken off the list has
//! its replica scheduled for deletion; operators SIGKILLed while replicating leave one replica
//! per Region; deleting the object schedules the replicas, then the primary (which AWS holds in
//! PendingReplicaDeletion).

use std::time::Duration;

use serde_json::json;

use crate::env::{Operator, eventually};
use crate::moto::client_in;
use crate::scenarios::manifest;
use crate::world::World;

const REPLICATED: &str = "  multiRegion: true\n  replicaRegions: [eu-west-1, ap-south-1]\n";

pub async fn a_key_with_two_replicas_converges_loses_a_region_survives_crashes_and_is_deleted(w: &World) {
    let ns = "e2e-replicas";
    w.namespace(ns);
    w.pause_operator();
    let operator =
        Operator::start(w.cp(), &w.kms_url(), w.state_dir.join("replicas.log"), &["--namespaces", ns]);

    w.apply(ns, &manifest("replicated", "e2e-replicated", REPLICATED));
    let obj = w.wait_ready(ns, "replicated").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    let replicas = obj["status"]["replicas"].as_array().cloned().unwrap_or_default();
    let listed: Vec<(&str, bool)> =
        replicas.iter().map(|r| (r["region"].as_str().unwrap(), r["ready"] == true)).collect();
    assert_eq!(listed, [("eu-west-1", true), ("ap-south-1", true)], "{}", obj["status"]);
    for (replica, region) in replicas.iter().zip(["eu-west-1", "ap-south-1"]) {
        let arn = format!("arn:aws:kms:{region}:123456789012:key/{key_id}");
        assert_eq!(replica["keyArn"], arn.as_str());
        let kms = client_in(&w.moto().url, region);
        let meta = kms.describe_key().key_id(&key_id).send().await.unwrap().key_metadata.unwrap();
        let kind = meta.multi_region_configuration().and_then(|c| c.multi_region_key_type());
        assert_eq!(kind.map(|k| k.as_str()), Some("REPLICA"), "{region}");
        let aliases = kms.list_aliases().key_id(&key_id).send().await.unwrap();
        let names: Vec<_> = aliases.aliases().iter().filter_map(|a| a.alias_name()).collect();
        assert_eq!(names, ["alias/e2e-replicated"], "the alias is made in {region} too");
    }

    // An edit reaches every Region.
    w.patch(ns, "replicated", &json!({"spec": {"keyDescription": "edited everywhere"}}));
    w.wait_ready(ns, "replicated").await;
    for region in ["us-east-1", "eu-west-1", "ap-south-1"] {
        let kms = client_in(&w.moto().url, region);
        let meta = kms.describe_key().key_id(&key_id).send().await.unwrap().key_metadata.unwrap();
        assert_eq!(meta.description(), Some("edited everywhere"), "{region}");
    }

    // ap-south-1 taken off the list: its replica is scheduled for deletion, eu-west-1's stays.
    w.patch(ns, "replicated", &json!({"spec": {"replicaRegions": ["eu-west-1"]}}));
    let obj = w.wait_ready(ns, "replicated").await;
    assert_eq!(state_in(w, "ap-south-1", &key_id).await, "PendingDeletion");
    assert_eq!(state_in(w, "eu-west-1", &key_id).await, "Enabled");
    let regions: Vec<_> =
        obj["status"]["replicas"].as_array().unwrap().iter().map(|r| r["region"].clone()).collect();
    assert_eq!(regions, [json!("eu-west-1")], "{}", obj["status"]);

    drop(operator);
    replica_made_but_never_recorded(w, ns).await;
    sigkill_while_replicating(w, ns).await;

    // Deleting the object: replicas first, then the primary.
    let operator =
        Operator::start(w.cp(), &w.kms_url(), w.state_dir.join("replicas-end.log"), &["--namespaces", ns]);
    w.kubectl_ok(&["delete", "kms", "replicated", "-n", ns, "--timeout=60s"]);
    let states =
        eventually("every copy of the key to be scheduled for deletion", Duration::from_secs(30), || async {
            let states = (
                state_in(w, "us-east-1", &key_id).await,
                state_in(w, "eu-west-1", &key_id).await,
                state_in(w, "ap-south-1", &key_id).await,
            );
            (states.0 != "Enabled" && states.1 != "Enabled").then_some(states)
        })
        .await;
    let expected =
        ("PendingReplicaDeletion".to_owned(), "PendingDeletion".to_owned(), "PendingDeletion".to_owned());
    assert_eq!(states, expected);
    drop(operator);
    w.resume_operator();
}

/// The key's state in `region`, as moto has it.
async fn state_in(w: &World, region: &str, key_id: &str) -> String {
    let kms = client_in(&w.moto().url, region);
    let meta = kms.describe_key().key_id(key_id).send().await.unwrap().key_metadata.unwrap();
    meta.key_state().unwrap().as_str().to_owned()
}

/// Operators SIGKILLed while making replicated keys (some between ReplicateKey and the status
/// write that records the replica): each object ends with one primary in us-east-1 and one
/// replica in eu-west-1, and Ready.
async fn sigkill_while_replicating(w: &World, ns: &str) {
    let count = 4;
    let spec = "  multiRegion: true\n  replicaRegions: [eu-west-1]\n";
    for i in 0..count {
        w.apply(ns, &manifest(&format!("crash-{i}"), &format!("e2e-replica-crash-{i}"), spec));
    }
    // Each operator lives longer than the last: the first ones die while making primaries,
    // later ones (past IAM's tag lag on the new primaries) while replicating them.
    for round in 0..6 {
        let log = w.state_dir.join(format!("replicas-crash-{round}.log"));
        let operator = Operator::start(w.cp(), &w.kms_url(), log, &["--namespaces", ns]);
        tokio::time::sleep(Duration::from_millis(1500 + 1500 * round)).await;
        drop(operator); // SIGKILL
    }
    let (home, eu) = (w.moto().client(), client_in(&w.moto().url, "eu-west-1"));
    let mut unrecorded = 0;
    for i in 0..count {
        let obj = w.get(ns, &format!("crash-{i}"));
        let Some(key_id) = obj["status"]["keyId"].as_str() else { continue };
        let recorded = obj["status"]["replicas"][0]["keyArn"].is_string();
        unrecorded += usize::from(!recorded && eu.describe_key().key_id(key_id).send().await.is_ok());
    }
    eprintln!(
        "     {unrecorded} of {count} replicas made but not recorded when the last operator was killed"
    );
    let log = w.state_dir.join("replicas-after-crash.log");
    let operator = Operator::start(w.cp(), &w.kms_url(), log, &["--namespaces", ns]);
    for i in 0..count {
        let name = format!("crash-{i}");
        let obj = w.wait_condition_within(ns, &name, "Ready", Duration::from_secs(120)).await;
        assert_eq!(obj["status"]["replicas"][0]["ready"], true, "{}", obj["status"]);
        let owner = format!("{ns}/{name}");
        let primaries = crate::regions::keys_owned_by(&home, &owner).await;
        let replicas = crate::regions::keys_owned_by(&eu, &owner).await;
        assert_eq!(primaries.len(), 1, "{owner}: one primary, found {primaries:?}");
        assert_eq!(replicas, primaries, "{owner}: one replica in eu-west-1, of that primary");
    }
    let names: Vec<String> = (0..count).map(|i| format!("crash-{i}")).collect();
    let mut delete = vec!["delete", "kms", "-n", ns, "--timeout=90s"];
    delete.extend(names.iter().map(String::as_str));
    w.kubectl_ok(&delete);
    drop(operator);
}

/// The state a crash between ReplicateKey and the status write leaves, made on purpose: an
/// object whose spec gained a Region while no operator ran, and the replica there already
/// made as the operator makes it (with the object's ownership tags) but not in status. The
/// next operator takes it as the object's, records it and makes no second one.
async fn replica_made_but_never_recorded(w: &World, ns: &str) {
    let log = w.state_dir.join("replicas-window.log");
    let operator = Operator::start(w.cp(), &w.kms_url(), log, &["--namespaces", ns]);
    w.apply(ns, &manifest("window", "e2e-replica-window", "  multiRegion: true\n"));
    let obj = w.wait_ready(ns, "window").await;
    drop(operator);
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    let uid = obj["metadata"]["uid"].as_str().unwrap();
    w.patch(ns, "window", &json!({"spec": {"replicaRegions": ["eu-west-1"]}}));
    let tag = |k: &str, v: &str| aws_sdk_kms::types::Tag::builder().tag_key(k).tag_value(v).build().unwrap();
    (w.moto().client().replicate_key())
        .key_id(&key_id)
        .replica_region("eu-west-1")
        .tags(tag("kms.boosterpack.io/owner", &format!("{ns}/window")))
        .tags(tag("kms.boosterpack.io/uid", uid))
        .tags(tag("kms.boosterpack.io/cluster", "e2e"))
        .send()
        .await
        .unwrap();
    let log = w.state_dir.join("replicas-window-after.log");
    let operator = Operator::start(w.cp(), &w.kms_url(), log, &["--namespaces", ns]);
    let obj = w.wait_ready(ns, "window").await;
    let replica = &obj["status"]["replicas"][0];
    assert_eq!(
        replica["keyArn"],
        format!("arn:aws:kms:eu-west-1:123456789012:key/{key_id}").as_str(),
        "{obj}"
    );
    assert_eq!(replica["ready"], true);
    let eu = client_in(&w.moto().url, "eu-west-1");
    let aliases = eu.list_aliases().key_id(&key_id).send().await.unwrap();
    assert_eq!(aliases.aliases().len(), 1, "the replica found is configured: its alias is made");
    w.kubectl_ok(&["delete", "kms", "window", "-n", ns, "--timeout=60s"]);
    drop(operator);
}
