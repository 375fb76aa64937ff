//! The key's own features beyond the Terraform module, each from its example in `examples/`,
//! applied with kubectl and checked in KMS.

use crate::env::ROOT;
use crate::world::World;

/// `examples/signing-key.yaml`: an ECDSA signing key with a Sign grant; `kubectl get -o wide`
/// shows its spec.
pub async fn a_signing_key_is_made_with_its_spec_usage_and_grant(w: &World) {
    let ns = "e2e-signing";
    w.namespace(ns);
    w.kubectl_ok(&["apply", "-n", ns, "-f", &format!("{ROOT}/examples/signing-key.yaml")]);
    let obj = w.wait_ready(ns, "signing-key").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap();
    assert_eq!(obj["status"]["keySpec"], "ECC_NIST_P256");
    assert_eq!(obj["status"]["keyUsage"], "SIGN_VERIFY");
    let meta = w.describe(key_id).await;
    assert_eq!(meta.key_spec().map(|s| s.as_str()), Some("ECC_NIST_P256"));
    assert_eq!(meta.key_usage().map(|u| u.as_str()), Some("SIGN_VERIFY"));
    let grants = w.grants(key_id).await;
    let mut ops: Vec<&str> = grants[0].operations().iter().map(|o| o.as_str()).collect();
    ops.sort();
    assert_eq!((grants.len(), ops), (1, vec!["GetPublicKey", "Sign"]), "{grants:?}");
    let wide = w.kubectl_ok(&["get", "kms", "signing-key", "-n", ns, "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("SPEC") && wide.contains("ECC_NIST_P256"), "{wide}");

    // The key's kind cannot change: the apiserver says so, naming the field.
    let patch = r#"{"spec":{"keySpec":"ECC_NIST_P384"}}"#;
    let out =
        w.cp().kubectl(&["patch", "kms", "signing-key", "-n", ns, "--type", "merge", "-p", patch], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("keySpec is immutable"), "{stderr}");
    w.kubectl_ok(&["delete", "kms", "signing-key", "-n", ns, "--timeout=60s"]);
}

/// `examples/grants-for-services.yaml`: a grant to an AWS service limited to one log group, and
/// one with an encryption-context subset and a retiring principal. Read back through the strict
/// layer, which remembers the service principals moto forgets.
pub async fn grants_for_services_and_context_subsets_reach_kms(w: &World) {
    let ns = "e2e-grant-terms";
    w.namespace(ns);
    w.kubectl_ok(&["apply", "-n", ns, "-f", &format!("{ROOT}/examples/grants-for-services.yaml")]);
    let obj = w.wait_ready(ns, "payments-key").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap();
    let through_strict_layer = crate::moto::client_for(&w.kms_url());
    let listed = through_strict_layer.list_grants().key_id(key_id).send().await.unwrap();
    let grants = listed.grants();
    let logs = grants.iter().find(|g| g.grantee_service_principal() == Some("logs.amazonaws.com"));
    let logs = logs.unwrap_or_else(|| panic!("no grant for logs.amazonaws.com: {grants:?}"));
    let source = logs.constraints().and_then(|c| c.source_arn());
    assert_eq!(source, Some("arn:aws:logs:us-east-1:123456789012:log-group:payments"));
    let app = grants.iter().find(|g| g.retiring_principal().is_some()).unwrap();
    let subset = app.constraints().and_then(|c| c.encryption_context_subset()).unwrap();
    assert_eq!(subset.get("App").map(String::as_str), Some("Payments"));
    let ids = obj["status"]["grantIds"].as_object().unwrap();
    assert_eq!(ids.len(), 2, "{ids:?}");
    w.kubectl_ok(&["delete", "kms", "payments-key", "-n", ns, "--timeout=60s"]);
}

/// `examples/rotate-on-demand.yaml`: the rotate-now annotation rotates the key once per value;
/// a new value set with `kubectl annotate` (which does not change the generation) rotates again.
pub async fn each_rotate_now_value_rotates_the_key_once(w: &World) {
    let ns = "e2e-rotate-now";
    w.namespace(ns);
    w.kubectl_ok(&["apply", "-n", ns, "-f", &format!("{ROOT}/examples/rotate-on-demand.yaml")]);
    let obj = w.wait_ready(ns, "orders-key").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    let last = &obj["status"]["lastOnDemandRotation"];
    assert_eq!(last["token"], "2026-11-29-incident-4711", "{obj}");
    assert!(last["rotatedAt"].is_string(), "{obj}");
    assert_eq!(obj["status"]["rotationPeriodInDays"], 90);
    assert_eq!(obj["status"]["rotations"][0]["type"], "ON_DEMAND", "{obj}");
    assert_eq!(obj["status"]["onDemandRotations"], 1);
    assert_eq!(obj["status"]["rotateNowValues"], serde_json::json!(["2026-11-29-incident-4711"]));
    assert_eq!(w.on_demand_rotations(&key_id).await, 1);

    let rotate_now =
        ["annotate", "kms", "orders-key", "-n", ns, "--overwrite", "kms.boosterpack.io/rotate-now=second"];
    w.kubectl_ok(&rotate_now);
    let what = "the second rotate-now value to be rotated";
    crate::env::eventually(what, std::time::Duration::from_secs(60), || async {
        let obj = w.get(ns, "orders-key");
        let last = &obj["status"]["lastOnDemandRotation"];
        (last["token"] == "second" && last["rotatedAt"].is_string()).then_some(())
    })
    .await;
    assert_eq!(w.on_demand_rotations(&key_id).await, 2);
    // The same value again is no new request.
    w.kubectl_ok(&rotate_now);
    w.kubectl_ok(&["label", "kms", "orders-key", "-n", ns, "touched=yes"]);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(w.on_demand_rotations(&key_id).await, 2);
    w.kubectl_ok(&["delete", "kms", "orders-key", "-n", ns, "--timeout=60s"]);
}

/// `examples/policy-builder.yaml`: the policy built from lists of principals reaches KMS,
/// merged with `keyPolicy`'s statement; status and an Event show what was built.
pub async fn a_policy_built_from_principals_reaches_kms(w: &World) {
    let ns = "e2e-policy-builder";
    w.namespace(ns);
    w.kubectl_ok(&["apply", "-n", ns, "-f", &format!("{ROOT}/examples/policy-builder.yaml")]);
    let obj = w.wait_ready(ns, "shared-data-key").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap();
    let policy = w.policy(key_id).await;
    let sids: Vec<&str> =
        policy["Statement"].as_array().unwrap().iter().filter_map(|s| s["Sid"].as_str()).collect();
    let shown: Vec<&str> = (obj["status"]["generatedPolicy"]["statements"].as_array().unwrap().iter())
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(sids, shown, "status shows the statements KMS has");
    assert!(sids.contains(&"KeyUsage") && sids.ends_with(&["DenyDecryptOutsideTheVpc"]), "{sids:?}");
    let events = w.kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        "reason=PolicyGenerated",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "a PolicyGenerated event");
    w.kubectl_ok(&["delete", "kms", "shared-data-key", "-n", ns, "--timeout=60s"]);
}

/// `examples/additional-aliases.yaml`: every alias points at the key; one dropped from the
/// list with kubectl is deleted.
pub async fn additional_aliases_are_made_and_dropped(w: &World) {
    let ns = "e2e-more-aliases";
    w.namespace(ns);
    w.kubectl_ok(&["apply", "-n", ns, "-f", &format!("{ROOT}/examples/additional-aliases.yaml")]);
    let obj = w.wait_ready(ns, "billing-key").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    for alias in ["alias/billing", "alias/billing-legacy", "alias/finance/billing"] {
        assert_eq!(w.alias_target(alias).await.as_deref(), Some(key_id.as_str()), "{alias}");
    }
    assert_eq!(
        obj["status"]["additionalAliases"],
        serde_json::json!(["alias/billing-legacy", "alias/finance/billing"])
    );
    w.patch(ns, "billing-key", &serde_json::json!({"spec": {"additionalAliases": ["finance/billing"]}}));
    let obj = w.wait_ready(ns, "billing-key").await;
    assert_eq!(w.alias_target("alias/billing-legacy").await, None);
    assert_eq!(obj["status"]["additionalAliases"], serde_json::json!(["alias/finance/billing"]));
    w.kubectl_ok(&["delete", "kms", "billing-key", "-n", ns, "--timeout=60s"]);
    assert_eq!(w.alias_target("alias/finance/billing").await, None, "deleted with the object");
}

/// `spec.unusedDays`: the operator records the key's last use in status, and a key unused for
/// longer (KMS's tracking backdated in the strict layer) gets a `KeyUnused` Warning Event.
pub async fn an_unused_key_is_warned_about(w: &World) {
    let ns = "e2e-unused";
    w.namespace(ns);
    w.apply(ns, &crate::scenarios::manifest("idle", "e2e-idle", "  unusedDays: 30\n"));
    let obj = w.wait_ready(ns, "idle").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    let checked = crate::env::eventually("status.lastUsage", std::time::Duration::from_secs(30), || async {
        let obj = w.get(ns, "idle");
        obj["status"]["lastUsage"]["readAt"].as_str().map(str::to_owned)
    })
    .await;
    assert!(!checked.is_empty());
    w.proxy.as_ref().unwrap().backdate_usage_tracking(&key_id, std::time::Duration::from_secs(40 * 86_400));
    let events = crate::env::eventually("a KeyUnused event", std::time::Duration::from_secs(60), || async {
        let out =
            w.kubectl_ok(&["get", "events", "-n", ns, "--field-selector", "reason=KeyUnused", "-o", "json"]);
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await;
    let note = events[0]["note"].as_str().or(events[0]["message"].as_str()).unwrap_or_default();
    assert!(note.contains("never been used in the 40 days"), "{events:?}");
    let (_, metrics) = crate::env::http_get(&w.operator_http(), "/metrics");
    assert!(metrics.contains("kms_operator_unused_key_warnings_total"), "{metrics}");
    w.kubectl_ok(&["delete", "kms", "idle", "-n", ns, "--timeout=60s"]);
}

/// `examples/seed-basic.yaml` and `seed-advanced.yaml`: the module's two examples with its
/// inputs only. They use the same aliases as basic.yaml and advanced.yaml, so those are
/// deleted first (their aliases go with them).
pub async fn the_seed_module_examples_become_ready(w: &World) {
    w.kubectl_ok(&["delete", "kms", "--all", "-n", "e2e-examples", "--ignore-not-found", "--timeout=60s"]);
    let ns = "e2e-seed";
    w.namespace(ns);
    for file in ["seed-basic.yaml", "seed-advanced.yaml"] {
        w.kubectl_ok(&["apply", "-n", ns, "-f", &format!("{ROOT}/examples/{file}")]);
    }
    let basic = w.wait_ready(ns, "seed-basic").await;
    let advanced = w.wait_ready(ns, "seed-advanced").await;
    let basic_id = basic["status"]["keyId"].as_str().unwrap();
    let advanced_id = advanced["status"]["keyId"].as_str().unwrap();
    assert_eq!(w.alias_target("alias/basic-key").await.as_deref(), Some(basic_id));
    assert!(w.rotation(basic_id).await, "rotation on");
    assert_eq!(basic["spec"]["keyDescription"], "Managed by kms-operator", "the module's default");
    assert_eq!(w.alias_target("alias/advanced-key").await.as_deref(), Some(advanced_id));
    assert_eq!(w.describe(advanced_id).await.multi_region(), Some(true));
    let grants = w.grants(advanced_id).await;
    let context = grants[0].constraints().and_then(|c| c.encryption_context_equals()).unwrap();
    assert_eq!((grants.len(), context.get("App").map(String::as_str)), (1, Some("Finance")));
    w.kubectl_ok(&["delete", "kms", "--all", "-n", ns, "--timeout=60s"]);
    assert_eq!(w.alias_target("alias/advanced-key").await, None);
}
