//! What a person steers with annotations on a KmsKey: pause (no KMS call at all), deletion
//! protection (a deletion, even a namespace's, waits and says why) and the object's own
//! resync interval.

use std::time::Duration;

use crate::world::{World, condition};

const PAUSED: &str = "kms.boosterpack.io/paused";
const PROTECTED: &str = "kms.boosterpack.io/deletion-protection";

/// A KmsKey `name` with alias `alias`, annotated `annotation: "true"`.
fn annotated(name: &str, annotation: &str, alias: &str) -> String {
    format!(
        "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: {name}\n  annotations:\n    {annotation}: \"true\"\nspec:\n  aliasName: {alias}\n"
    )
}

/// Waits until the object's Ready condition has `reason`.
async fn wait_reason(w: &World, ns: &str, name: &str, reason: &str) -> serde_json::Value {
    let what = format!("{ns}/{name} Ready reason {reason}");
    crate::env::eventually(&what, Duration::from_secs(60), || async {
        let obj = w.get(ns, name);
        (condition(&obj, "Ready")["reason"] == reason).then_some(obj)
    })
    .await
}

/// A paused object gets no key and no repair, and its deletion waits; unpausing resumes both.
pub async fn a_paused_object_makes_no_kms_call_until_unpaused(w: &World) {
    let ns = "e2e-paused";
    w.namespace(ns);
    w.apply(ns, &annotated("held", PAUSED, "e2e-held"));
    let obj = wait_reason(w, ns, "held", "Paused").await;
    assert!(condition(&obj, "Ready")["message"].as_str().unwrap().contains(PAUSED), "{obj}");
    assert_eq!(condition(&obj, "Reconciling")["status"], "False");
    assert_eq!(condition(&obj, "Stalled")["status"], "False");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(w.keys_owned_by(ns, "held").await.is_empty(), "no key while paused");

    w.kubectl_ok(&["annotate", "kms", "held", "-n", ns, &format!("{PAUSED}-")]);
    let obj = w.wait_ready(ns, "held").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();

    // Paused again: drift stays, and a deletion waits without touching the key.
    w.kubectl_ok(&["annotate", "kms", "held", "-n", ns, &format!("{PAUSED}=true")]);
    wait_reason(w, ns, "held", "Paused").await;
    w.kms.update_key_description().key_id(&key_id).description("edited by hand").send().await.unwrap();
    w.kubectl_ok(&["delete", "kms", "held", "-n", ns, "--wait=false"]);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let meta = w.describe(&key_id).await;
    assert_eq!(meta.description(), Some("edited by hand"), "no repair while paused");
    assert_eq!(meta.key_state().map(|s| s.as_str()), Some("Enabled"), "no deletion while paused");
    let obj = w.get(ns, "held");
    assert!(condition(&obj, "Ready")["message"].as_str().unwrap().starts_with("the deletion waits"), "{obj}");

    w.kubectl_ok(&["annotate", "kms", "held", "-n", ns, &format!("{PAUSED}-")]);
    w.kubectl_ok(&["wait", "--for=delete", "kms/held", "-n", ns, "--timeout=60s"]);
    assert_eq!(w.describe(&key_id).await.key_state().map(|s| s.as_str()), Some("PendingDeletion"));
}

/// Deleting a namespace holding a protected KmsKey stops at that object, which says why; the
/// key stays usable until the annotation is removed.
pub async fn a_namespace_deletion_stops_at_a_protected_key_and_says_why(w: &World) {
    let ns = "e2e-protected";
    w.namespace(ns);
    w.apply(ns, &annotated("precious", PROTECTED, "e2e-precious"));
    let obj = w.wait_ready(ns, "precious").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    w.kubectl_ok(&["delete", "namespace", ns, "--wait=false"]);
    let obj = wait_reason(w, ns, "precious", "DeletionProtected").await;
    assert_eq!(condition(&obj, "Stalled")["status"], "True", "{obj}");
    assert!(condition(&obj, "Stalled")["message"].as_str().unwrap().contains(PROTECTED));
    // (No Event: the apiserver creates nothing new in a namespace being deleted.)
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(w.describe(&key_id).await.key_state().map(|s| s.as_str()), Some("Enabled"), "key untouched");
    assert_eq!(w.alias_target("alias/e2e-precious").await.as_deref(), Some(key_id.as_str()));

    w.kubectl_ok(&["annotate", "kms", "precious", "-n", ns, &format!("{PROTECTED}-")]);
    w.kubectl_ok(&["wait", "--for=delete", &format!("namespace/{ns}"), "--timeout=90s"]);
    assert_eq!(w.describe(&key_id).await.key_state().map(|s| s.as_str()), Some("PendingDeletion"));
}

/// An object that asks for a long resync is left drifted while one on the operator's interval
/// is put back; a value that is not a duration stalls naming the annotation; removing the
/// annotation brings the object back to the operator's interval at once.
pub async fn an_object_keeps_its_own_resync_interval(w: &World) {
    const RESYNC: &str = "kms.boosterpack.io/resync-interval";
    let ns = "e2e-resync";
    w.namespace(ns);
    let manifest = |name: &str, interval: &str| {
        format!(
            "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: {name}\n  annotations:\n    {RESYNC}: \"{interval}\"\nspec:\n  aliasName: e2e-resync-{name}\n  keyDescription: kept\n"
        )
    };
    w.apply(ns, &manifest("garbled", "daily"));
    let obj = w.wait_condition(ns, "garbled", "Stalled").await;
    assert_eq!(condition(&obj, "Stalled")["reason"], "InvalidAnnotation", "{obj}");
    assert!(condition(&obj, "Stalled")["message"].as_str().unwrap().contains(RESYNC), "{obj}");
    assert!(obj["status"].get("keyId").is_none(), "nothing made");
    w.kubectl_ok(&["delete", "kms", "garbled", "-n", ns, "--timeout=60s"]);

    w.apply(ns, &manifest("rarely", "1h"));
    w.apply(ns, &annotated("often", "kms.boosterpack.io/unrelated", "e2e-resync-often"));
    w.patch(ns, "often", &serde_json::json!({"spec": {"keyDescription": "kept"}}));
    let rarely = w.wait_ready(ns, "rarely").await["status"]["keyId"].as_str().unwrap().to_owned();
    let often = w.wait_ready(ns, "often").await["status"]["keyId"].as_str().unwrap().to_owned();
    for key_id in [&rarely, &often] {
        w.kms.update_key_description().key_id(key_id).description("drifted").send().await.unwrap();
    }
    crate::env::eventually("the default-interval key put back", Duration::from_secs(30), || async {
        (w.describe(&often).await.description() == Some("kept")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(w.describe(&rarely).await.description(), Some("drifted"), "not looked at for an hour");

    w.kubectl_ok(&["annotate", "kms", "rarely", "-n", ns, &format!("{RESYNC}-")]);
    crate::env::eventually("the key put back once the annotation goes", Duration::from_secs(30), || async {
        (w.describe(&rarely).await.description() == Some("kept")).then_some(())
    })
    .await;
    w.kubectl_ok(&["delete", "kms", "--all", "-n", ns, "--timeout=60s"]);
}
