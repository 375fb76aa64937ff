//! Whose key it is, on the real apiserver: a key made outside the operator (plain SDK calls,
//! as Terraform would) adopted, converged, let go with `deletionPolicy: Retain` and adopted
//! again in another namespace; a prune that leaves a retained key usable; an observe-only
//! object that lists its plan and changes nothing until it is switched to Full.

use std::time::Duration;

use serde_json::{Value, json};

use crate::world::{World, condition};

/// Namespaces the shared operator lets adopt (`--adopt-namespaces`); any other is refused.
pub const ADOPT_NAMESPACES: &str = "e2e-adopt-a,e2e-adopt-b,e2e-observe";

const OWNERSHIP_PREFIX: &str = "kms.boosterpack.io/";

/// A key with a description, a tag and an alias, made directly on moto.
async fn outside_key(w: &World, alias: &str, description: &str) -> String {
    let tag = aws_sdk_kms::types::Tag::builder().tag_key("ManagedBy").tag_value("terraform").build().unwrap();
    let made = w.kms.create_key().description(description).tags(tag).send().await.unwrap();
    let key_id = made.key_metadata().unwrap().key_id().to_owned();
    w.kms.create_alias().alias_name(format!("alias/{alias}")).target_key_id(&key_id).send().await.unwrap();
    key_id
}

fn kmskey(name: &str, spec: Value) -> String {
    let obj = json!({"apiVersion": "kms.boosterpack.io/v1alpha1", "kind": "KmsKey", "metadata": {"name": name}, "spec": spec});
    obj.to_string()
}

async fn encrypts(w: &World, key_id: &str) -> bool {
    let plaintext = aws_sdk_kms::primitives::Blob::new("still usable");
    w.kms.encrypt().key_id(key_id).plaintext(plaintext).send().await.is_ok()
}

async fn ownership_tags(w: &World, key_id: &str) -> Vec<String> {
    w.tags(key_id).await.into_keys().filter(|k| k.starts_with(OWNERSHIP_PREFIX)).collect()
}

/// (1) A Terraform-style key adopted by alias and converged; deleted with Retain; adopted by
/// a second object in another namespace. A namespace the operator does not let adopt stalls.
pub async fn a_terraform_key_is_adopted_retained_and_adopted_in_another_namespace(w: &World) {
    let alias = "e2e-tf-payments";
    let key_id = outside_key(w, alias, "made by terraform").await;
    let spec = json!({
        "aliasName": alias,
        "keyDescription": "payments, now in Kubernetes",
        "adopt": {"aliasName": alias},
        "deletionPolicy": "Retain",
        "tags": {"team": "payments"},
    });

    w.namespace("e2e-adopt-denied");
    w.apply("e2e-adopt-denied", &kmskey("payments", spec.clone()));
    let obj = w.wait_condition("e2e-adopt-denied", "payments", "Stalled").await;
    assert_eq!(condition(&obj, "Stalled")["reason"], "AdoptionNotAllowed", "{obj}");
    w.kubectl_ok(&["delete", "kms", "payments", "-n", "e2e-adopt-denied", "--timeout=60s"]);
    assert!(ownership_tags(w, &key_id).await.is_empty(), "a refused adoption tags nothing");

    w.namespace("e2e-adopt-a");
    w.apply("e2e-adopt-a", &kmskey("payments", spec.clone()));
    let obj = w.wait_ready("e2e-adopt-a", "payments").await;
    assert_eq!(obj["status"]["keyId"], key_id.as_str());
    assert_eq!(obj["status"]["adopted"], true);
    assert_eq!(obj["status"]["aliasName"], format!("alias/{alias}"));
    assert_eq!(w.describe(&key_id).await.description(), Some("payments, now in Kubernetes"));
    let tags = w.tags(&key_id).await;
    assert_eq!(tags.get("kms.boosterpack.io/owner").map(String::as_str), Some("e2e-adopt-a/payments"));
    assert_eq!(tags.get("ManagedBy"), None, "the spec's tags are the whole truth");
    let events = w.kubectl_ok(&[
        "get",
        "events",
        "-n",
        "e2e-adopt-a",
        "--field-selector",
        "reason=Adopted",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "an Adopted event");
    let moved = json!({"spec": {"adopt": {"keyId": key_id}}}).to_string();
    let out = w
        .cp()
        .kubectl(&["patch", "kms", "payments", "-n", "e2e-adopt-a", "--type", "merge", "-p", &moved], None);
    assert!(!out.status.success(), "adopt is fixed once the key is recorded");
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.adopt cannot be added, changed or removed"));

    w.kubectl_ok(&["delete", "kms", "payments", "-n", "e2e-adopt-a", "--timeout=60s"]);
    assert!(ownership_tags(w, &key_id).await.is_empty(), "Retain takes the ownership tags off");
    assert_eq!(w.alias_target(&format!("alias/{alias}")).await.as_deref(), Some(key_id.as_str()));
    assert!(encrypts(w, &key_id).await, "the retained key is usable");

    w.namespace("e2e-adopt-b");
    w.apply("e2e-adopt-b", &kmskey("payments", spec));
    let obj = w.wait_ready("e2e-adopt-b", "payments").await;
    assert_eq!(obj["status"]["keyId"], key_id.as_str());
    let tags = w.tags(&key_id).await;
    assert_eq!(tags.get("kms.boosterpack.io/owner").map(String::as_str), Some("e2e-adopt-b/payments"));
    w.kubectl_ok(&["delete", "kms", "payments", "-n", "e2e-adopt-b", "--timeout=60s"]);
    assert_eq!(w.describe(&key_id).await.key_state().map(|s| s.as_str()), Some("Enabled"));
}

/// (2) An Argo CD prune is a delete: a key the operator made, with Retain, stays usable with
/// its alias and without ownership tags, and nothing is scheduled for deletion.
pub async fn a_pruned_retain_object_leaves_its_key_usable(w: &World) {
    let ns = "e2e-adopt-a";
    w.namespace(ns);
    let spec = json!({"aliasName": "e2e-retained", "deletionPolicy": "Retain"});
    w.apply(ns, &kmskey("retained", spec));
    let obj = w.wait_ready(ns, "retained").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    w.kubectl_ok(&["delete", "kms", "retained", "-n", ns, "--timeout=60s"]);
    let meta = w.describe(&key_id).await;
    assert_eq!(meta.key_state().map(|s| s.as_str()), Some("Enabled"));
    assert_eq!(meta.deletion_date(), None);
    assert!(ownership_tags(w, &key_id).await.is_empty());
    assert_eq!(w.alias_target("alias/e2e-retained").await.as_deref(), Some(key_id.as_str()));
    assert!(encrypts(w, &key_id).await);
}

/// (4) `examples/adopt-terraform-key.yaml`, observe-only on a drifted key: status lists the
/// plan, the key is left as it is over several resyncs; switching to Full runs the plan and
/// the object becomes Ready.
pub async fn observe_only_lists_the_plan_and_full_runs_it(w: &World) {
    let ns = "e2e-observe";
    w.namespace(ns);
    let key_id = outside_key(w, "payments", "drifted by hand").await;
    w.kubectl_ok(&[
        "apply",
        "-n",
        ns,
        "-f",
        &format!("{}/examples/adopt-terraform-key.yaml", crate::env::ROOT),
    ]);
    let obj = w.wait_condition(ns, "payments", "Reconciling").await;
    assert_eq!(condition(&obj, "Reconciling")["reason"], "DriftDetected", "{obj}");
    assert_eq!(obj["status"]["keyId"], key_id.as_str());
    let plan: Vec<&str> =
        obj["status"]["plan"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(
        plan,
        vec![
            "tag the key as this object's (adopt it)",
            "update the description",
            "remove tags ManagedBy",
            "set tags team",
            "enable key rotation every 365 days",
        ]
    );
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(w.describe(&key_id).await.description(), Some("drifted by hand"), "nothing changed");
    assert!(ownership_tags(w, &key_id).await.is_empty());
    assert!(!w.rotation(&key_id).await);

    w.patch(ns, "payments", &json!({"spec": {"managementPolicy": "Full"}}));
    let obj = w.wait_ready(ns, "payments").await;
    assert_eq!(obj["status"].get("plan"), None, "Full shows no plan");
    assert_eq!(obj["status"]["adopted"], true);
    assert_eq!(w.describe(&key_id).await.description(), Some("Payments key, formerly managed by Terraform"));
    assert!(w.rotation(&key_id).await);
    let tags = w.tags(&key_id).await;
    assert_eq!((tags.get("ManagedBy"), tags.get("team").map(String::as_str)), (None, Some("payments")));
    w.kubectl_ok(&["delete", "kms", "payments", "-n", ns, "--timeout=60s"]);
    assert!(encrypts(w, &key_id).await, "Retain kept the key");
}

/// `examples/export-outputs.yaml`: the outputs land in an owned ConfigMap; a ConfigMap of
/// another name that the object does not own is never overwritten; renaming and removing
/// `exportTo` delete the one the object wrote.
pub async fn outputs_are_exported_to_an_owned_config_map(w: &World) {
    let ns = "e2e-export";
    w.namespace(ns);
    w.kubectl_ok(&["create", "configmap", "someone-elses", "-n", ns, "--from-literal=owner=a-person"]);
    w.kubectl_ok(&["apply", "-n", ns, "-f", &format!("{}/examples/export-outputs.yaml", crate::env::ROOT)]);
    let obj = w.wait_ready(ns, "app-data-key").await;
    let config_map = |name: &str| -> Option<Value> {
        let out = w.cp().kubectl(&["get", "configmap", name, "-n", ns, "-o", "json"], None);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    };
    let exported = crate::env::eventually("the outputs ConfigMap", Duration::from_secs(30), || async {
        config_map("app-data-key-outputs")
    })
    .await;
    let data = &exported["data"];
    assert_eq!(data["keyId"], obj["status"]["keyId"]);
    assert_eq!(data["keyArn"], obj["status"]["keyArn"]);
    assert_eq!(data["aliasName"], "alias/app-data-key");
    assert_eq!(data["additionalAliases"], "alias/app-data-key-current");
    assert_eq!(exported["metadata"]["ownerReferences"][0]["uid"], obj["metadata"]["uid"]);
    assert_eq!(w.get(ns, "app-data-key")["status"]["exportedConfigMap"], "app-data-key-outputs");

    w.patch(ns, "app-data-key", &json!({"spec": {"exportTo": {"configMapName": "someone-elses"}}}));
    let obj = w.wait_condition(ns, "app-data-key", "Stalled").await;
    assert_eq!(condition(&obj, "Stalled")["reason"], "ExportConflict", "{obj}");
    assert_eq!(config_map("someone-elses").unwrap()["data"], json!({"owner": "a-person"}), "left as it is");
    assert!(config_map("app-data-key-outputs").is_none(), "the renamed-away ConfigMap is deleted");

    w.patch(ns, "app-data-key", &json!({"spec": {"exportTo": null}}));
    let obj = w.wait_ready(ns, "app-data-key").await;
    assert!(obj["status"].get("exportedConfigMap").is_none(), "{obj}");
    w.kubectl_ok(&["delete", "kms", "app-data-key", "-n", ns, "--timeout=60s"]);
}

/// Moving a key from one cluster to another, as the README says: the old cluster's object,
/// with `deletionPolicy: Retain`, is deleted; the new cluster's object adopts the key by
/// alias. Two operators with their own cluster names (and each its own KMS view, with the
/// shipped IAM policy for its cluster) stand in for the two clusters.
pub async fn a_key_moves_to_another_cluster_with_retain_and_adopt(w: &World) {
    use crate::env::Operator;
    use crate::fault_proxy::FaultProxy;
    use crate::world::{E2E_TAG_LAG, strict_config};
    let (old_ns, new_ns) = ("e2e-move-old", "e2e-move-new");
    w.namespace(old_ns);
    w.namespace(new_ns);
    w.pause_operator();
    let old =
        Operator::start(w.cp(), &w.kms_url(), w.state_dir.join("old-cluster.log"), &["--namespaces", old_ns]);
    let new_kms = FaultProxy::start_with(
        &w.moto().url,
        crate::strict::StrictConfig { cluster: "e2e-new".into(), ..strict_config(E2E_TAG_LAG) },
    )
    .await;
    let new_args = ["--namespaces", new_ns, "--cluster-name", "e2e-new", "--adopt-namespaces", new_ns];
    let new = Operator::start(w.cp(), &new_kms.url, w.state_dir.join("new-cluster.log"), &new_args);

    let spec = json!({"aliasName": "e2e-moving", "deletionPolicy": "Retain", "tags": {"app": "ledger"}});
    w.apply(old_ns, &kmskey("ledger", spec));
    let key_id = w.wait_ready(old_ns, "ledger").await["status"]["keyId"].as_str().unwrap().to_owned();
    w.kubectl_ok(&["delete", "kms", "ledger", "-n", old_ns, "--timeout=60s"]);
    assert!(ownership_tags(w, &key_id).await.is_empty(), "the old cluster let go");

    let spec =
        json!({"aliasName": "e2e-moving", "adopt": {"aliasName": "e2e-moving"}, "tags": {"app": "ledger"}});
    w.apply(new_ns, &kmskey("ledger", spec));
    let obj = w.wait_ready(new_ns, "ledger").await;
    assert_eq!(obj["status"]["keyId"], key_id.as_str());
    let tags = w.tags(&key_id).await;
    assert_eq!(tags.get("kms.boosterpack.io/cluster").map(String::as_str), Some("e2e-new"));
    assert!(encrypts(w, &key_id).await);
    w.kubectl_ok(&["delete", "kms", "ledger", "-n", new_ns, "--timeout=60s"]);
    drop((old, new, new_kms));
    w.resume_operator();
}
