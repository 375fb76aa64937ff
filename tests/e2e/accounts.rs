//! AWS accounts per namespace: a cluster admin's KmsAccounts map one namespace by name (a role
//! with an external ID) and another by its labels (a role without); the operator assumes each
//! role through STS (the strict layer refuses a role that does not trust it or a wrong external
//! ID) and makes each namespace's key in its account, a third namespace's in its own. A
//! namespace two KmsAccounts map is refused; a key whose namespace is mapped elsewhere later is
//! never looked for (or made again) in the other account; deletion schedules each key where it
//! lives.

use std::time::Duration;

use serde_json::json;

use crate::env::{Operator, eventually};
use crate::moto::client_as_role;
use crate::scenarios::manifest;
use crate::strict::sts::TrustedRole;
use crate::world::{World, condition};

const ROLE_A: &str = "arn:aws:iam::111111111111:role/kms-operator-team-a";
const EXTERNAL_ID_A: &str = "team-a-7f3e";
const ROLE_B: &str = "arn:aws:iam::222222222222:role/kms-operator-team-b";

/// The roles whose trust policies let the e2e operator assume them.
pub fn trusted_roles() -> Vec<TrustedRole> {
    vec![
        TrustedRole { role_arn: ROLE_A.into(), external_id: Some(EXTERNAL_ID_A.into()) },
        TrustedRole { role_arn: ROLE_B.into(), external_id: None },
    ]
}

fn kms_account(
    name: &str,
    role: &str,
    external_id: Option<&str>,
    namespaces: &[&str],
    labels: Option<(&str, &str)>,
) -> String {
    let mut text = format!(
        "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsAccount\nmetadata:\n  name: {name}\nspec:\n  roleArn: {role}\n  sessionTags:\n    team: {name}\n"
    );
    if let Some(id) = external_id {
        text += &format!("  externalId: {id}\n");
    }
    text += &format!("  namespaces: [{}]\n", namespaces.join(", "));
    if let Some((key, value)) = labels {
        text += &format!("  namespaceSelector:\n    matchLabels:\n      {key}: \"{value}\"\n");
    }
    text
}

/// Applies a cluster-scoped KmsAccount.
fn apply_account(w: &World, manifest: &str) {
    let out = w.cp().kubectl(&["apply", "-f", "-"], Some(manifest));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

pub async fn namespaces_mapped_to_two_accounts_get_their_keys_there(w: &World) {
    let (ns_a, ns_b, ns_own) = ("e2e-account-a", "e2e-account-b", "e2e-account-own");
    for ns in [ns_a, ns_b, ns_own] {
        w.namespace(ns);
    }
    w.kubectl_ok(&["label", "namespace", ns_b, "e2e.example/account=b", "--overwrite"]);
    apply_account(w, &kms_account("team-a", ROLE_A, Some(EXTERNAL_ID_A), &[ns_a], None));
    apply_account(w, &kms_account("team-b", ROLE_B, None, &[], Some(("e2e.example/account", "b"))));
    w.pause_operator();
    let watched = format!("{ns_a},{ns_b},{ns_own}");
    let sts = w.kms_url();
    let args = ["--namespaces", watched.as_str(), "--sts-endpoint", sts.as_str()];
    let operator = Operator::start(w.cp(), &w.kms_url(), w.state_dir.join("accounts.log"), &args);

    for ns in [ns_a, ns_b, ns_own] {
        w.apply(ns, &manifest("orders", &format!("{ns}-orders"), ""));
    }
    let mut keys = Vec::new();
    for (ns, account) in [(ns_a, "111111111111"), (ns_b, "222222222222"), (ns_own, "123456789012")] {
        let obj = w.wait_ready(ns, "orders").await;
        assert_eq!(obj["status"]["accountId"], account, "{ns}: {}", obj["status"]);
        let arn = obj["status"]["keyArn"].as_str().unwrap().to_owned();
        assert!(arn.contains(&format!(":{account}:key/")), "{arn}");
        keys.push((obj["status"]["keyId"].as_str().unwrap().to_owned(), account));
    }
    // Each key is in its account only (moto keeps accounts apart by the caller's access key).
    let in_a = client_as_role(&w.moto().url, "us-east-1", ROLE_A, Some(EXTERNAL_ID_A)).await.unwrap();
    let in_b = client_as_role(&w.moto().url, "us-east-1", ROLE_B, None).await.unwrap();
    let own = w.moto().client();
    let listed = |keys: aws_sdk_kms::operation::list_keys::ListKeysOutput| -> Vec<String> {
        keys.keys().iter().filter_map(|k| k.key_id().map(str::to_owned)).collect()
    };
    assert!(listed(in_a.list_keys().send().await.unwrap()).contains(&keys[0].0));
    assert!(listed(in_b.list_keys().send().await.unwrap()).contains(&keys[1].0));
    let own_keys = listed(own.list_keys().limit(1000).send().await.unwrap());
    assert!(
        own_keys.contains(&keys[2].0) && !own_keys.contains(&keys[0].0) && !own_keys.contains(&keys[1].0)
    );
    let aliases = in_a.list_aliases().key_id(&keys[0].0).send().await.unwrap();
    let names: Vec<_> = aliases.aliases().iter().filter_map(|a| a.alias_name()).collect();
    assert_eq!(names, [format!("alias/{ns_a}-orders")], "the alias is made in the key's account");

    // A wrong external ID: STS refuses, and nothing is made anywhere.
    let refused = client_as_role(&w.kms_url(), "us-east-1", ROLE_A, Some("guess")).await.map(|_| ());
    assert!(refused.is_err_and(|answer| answer.contains("AccessDenied")));

    // Both KmsAccounts now map namespace b: refused, naming them.
    apply_account(w, &kms_account("team-a", ROLE_A, Some(EXTERNAL_ID_A), &[ns_a, ns_b], None));
    w.apply(ns_b, &manifest("second", &format!("{ns_b}-second"), ""));
    let stalled = w.wait_condition(ns_b, "second", "Stalled").await;
    let refused = condition(&stalled, "Stalled");
    assert_eq!(refused["reason"], "AccountMappingConflict", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("team-a, team-b"), "{refused}");

    // Namespace a moves to account b's role: its key stays in account a, and is never looked
    // for (or made again) in b.
    apply_account(w, &kms_account("team-a", ROLE_A, Some(EXTERNAL_ID_A), &["e2e-nobody"], None));
    w.kubectl_ok(&["label", "namespace", ns_a, "e2e.example/account=b", "--overwrite"]);
    w.patch(ns_a, "orders", &json!({"spec": {"keyDescription": "after the move"}}));
    let stalled = w.wait_condition(ns_a, "orders", "Stalled").await;
    let moved = condition(&stalled, "Stalled");
    assert_eq!(moved["reason"], "AccountChanged", "{moved}");
    let b_keys = listed(in_b.list_keys().send().await.unwrap());
    assert_eq!(b_keys.len(), 1, "no second key in account b: {b_keys:?}");
    w.kubectl_ok(&["label", "namespace", ns_a, "e2e.example/account-"]);
    apply_account(w, &kms_account("team-a", ROLE_A, Some(EXTERNAL_ID_A), &[ns_a], None));
    w.wait_ready(ns_a, "orders").await;

    // Deleting schedules each key's deletion in its own account.
    for ns in [ns_a, ns_b, ns_own] {
        w.kubectl_ok(&["delete", "kms", "--all", "-n", ns, "--timeout=60s"]);
    }
    for (client, key_id) in [(&in_a, &keys[0].0), (&in_b, &keys[1].0), (&own, &keys[2].0)] {
        let state = eventually("the key to be pending deletion", Duration::from_secs(30), || async {
            let meta = client.describe_key().key_id(key_id).send().await.ok()?.key_metadata?;
            let state = meta.key_state()?.as_str().to_owned();
            (state == "PendingDeletion").then_some(state)
        })
        .await;
        assert_eq!(state, "PendingDeletion");
    }
    w.kubectl_ok(&["delete", "kmsaccount", "team-a", "team-b"]);
    drop(operator);
    w.resume_operator();
}
