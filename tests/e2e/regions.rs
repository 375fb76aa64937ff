//! Keys in other Regions: `spec.region` makes the key there (moto keeps each Region's keys
//! apart, by the request's SigV4 scope) and status names the Region; edits reach the key there;
//! a Region outside `--allowed-regions` is refused before anything is made; the Region cannot
//! change; deleting the object schedules the key's deletion where it lives; and operators
//! killed while creating keys there leave exactly one key per object, in that Region.

use std::time::Duration;

use serde_json::json;

use crate::env::{Operator, eventually};
use crate::moto::client_in;
use crate::scenarios::manifest;
use crate::world::{World, condition};

pub async fn a_key_in_another_region_is_made_edited_deleted_and_crash_safe_there(w: &World) {
    let ns = "e2e-regions";
    w.namespace(ns);
    w.pause_operator();
    let log = w.state_dir.join("regions.log");
    let allowed = ["--namespaces", ns, "--allowed-regions", "us-east-1,eu-west-1"];
    let operator = Operator::start(w.cp(), &w.kms_url(), log, &allowed);
    let (home, eu) = (w.moto().client(), client_in(&w.moto().url, "eu-west-1"));

    w.apply(ns, &manifest("eu-key", "e2e-eu-key", "  region: eu-west-1\n"));
    let obj = w.wait_ready(ns, "eu-key").await;
    assert_eq!(obj["status"]["region"], "eu-west-1", "{}", obj["status"]);
    let arn = obj["status"]["keyArn"].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:kms:eu-west-1:"), "{arn}");
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    let aliases = eu.list_aliases().key_id(&key_id).send().await.unwrap();
    let names: Vec<_> = aliases.aliases().iter().filter_map(|a| a.alias_name()).collect();
    assert_eq!(names, ["alias/e2e-eu-key"], "the alias is made in the key's Region");
    assert!(home.describe_key().key_id(&key_id).send().await.is_err(), "no such key in us-east-1");
    assert!(
        home.list_aliases()
            .send()
            .await
            .unwrap()
            .aliases()
            .iter()
            .all(|a| a.alias_name() != Some("alias/e2e-eu-key"))
    );

    // An edit reaches the key in its Region.
    w.patch(ns, "eu-key", &json!({"spec": {"keyDescription": "edited in eu-west-1"}}));
    w.wait_ready(ns, "eu-key").await;
    let described = eu.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(described.key_metadata().unwrap().description(), Some("edited in eu-west-1"));

    // The Region cannot change: the apiserver says so, naming the field's rule.
    let patch = r#"{"spec":{"region":"us-west-2"}}"#;
    let out = w.cp().kubectl(&["patch", "kms", "eu-key", "-n", ns, "--type", "merge", "-p", patch], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("region is immutable"), "{stderr}");

    // A Region outside --allowed-regions: Stalled, and nothing is made there.
    w.apply(ns, &manifest("ap-key", "e2e-ap-key", "  region: ap-south-1\n"));
    let stalled = w.wait_condition(ns, "ap-key", "Stalled").await;
    let refused = condition(&stalled, "Stalled");
    assert_eq!(refused["reason"], "RegionNotAllowed", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("ap-south-1"), "{refused}");
    let ap = client_in(&w.moto().url, "ap-south-1");
    assert!(ap.list_keys().send().await.unwrap().keys().is_empty(), "no key in ap-south-1");

    // Deleting schedules the key's deletion in eu-west-1; the refused object just goes.
    w.kubectl_ok(&["delete", "kms", "eu-key", "ap-key", "-n", ns, "--timeout=60s"]);
    let state = eventually("the eu-west-1 key to be pending deletion", Duration::from_secs(30), || async {
        let described = eu.describe_key().key_id(&key_id).send().await.ok()?;
        let state = described.key_metadata()?.key_state()?.as_str().to_owned();
        (state == "PendingDeletion").then_some(state)
    })
    .await;
    assert_eq!(state, "PendingDeletion");
    drop(operator);
    sigkill_while_creating_in_eu_west_1(w, ns).await;
    w.resume_operator();
}

/// Operators SIGKILLed while making keys in eu-west-1: the next one finds what an interrupted
/// create left there (status.createIntent.region) instead of making a second key.
async fn sigkill_while_creating_in_eu_west_1(w: &World, ns: &str) {
    let count = 4;
    for i in 0..count {
        w.apply(ns, &manifest(&format!("crash-{i}"), &format!("e2e-eu-crash-{i}"), "  region: eu-west-1\n"));
    }
    for round in 0..4 {
        let log = w.state_dir.join(format!("regions-crash-{round}.log"));
        let operator = Operator::start(w.cp(), &w.kms_url(), log, &["--namespaces", ns]);
        tokio::time::sleep(Duration::from_millis(300 + 250 * round)).await;
        drop(operator); // SIGKILL
    }
    let log = w.state_dir.join("regions-after-crash.log");
    let operator = Operator::start(w.cp(), &w.kms_url(), log, &["--namespaces", ns]);
    for i in 0..count {
        w.wait_condition_within(ns, &format!("crash-{i}"), "Ready", Duration::from_secs(120)).await;
    }
    let (home, eu) = (w.moto().client(), client_in(&w.moto().url, "eu-west-1"));
    for i in 0..count {
        let owner = format!("{ns}/crash-{i}");
        let in_eu = keys_owned_by(&eu, &owner).await;
        assert_eq!(in_eu.len(), 1, "{owner}: one key in eu-west-1, found {in_eu:?}");
        assert!(keys_owned_by(&home, &owner).await.is_empty(), "{owner}: no key in us-east-1");
    }
    w.kubectl_ok(&["delete", "kms", "--all", "-n", ns, "--timeout=90s"]);
    drop(operator);
}

/// The keys in the client's Region tagged as `owner`'s (`namespace/name`).
pub async fn keys_owned_by(kms: &aws_sdk_kms::Client, owner: &str) -> Vec<String> {
    let mut found = Vec::new();
    for key in kms.list_keys().limit(1000).send().await.unwrap().keys() {
        let id = key.key_id().unwrap();
        let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
        if tags.tags().iter().any(|t| t.tag_key() == "kms.boosterpack.io/owner" && t.tag_value() == owner) {
            found.push(id.to_owned());
        }
    }
    found
}
