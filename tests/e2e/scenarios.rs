//! The end-to-end scenarios, each a behaviour a user would notice.

use std::time::Duration;

use aws_sdk_kms::types::KeyState;
use futures::future::BoxFuture;
use serde_json::json;

use crate::bad_input;
use crate::env::{ROOT, eventually, http_get};
use crate::helm;
use crate::reliability;
use crate::world::World;

pub type Scenario = for<'a> fn(&'a World) -> BoxFuture<'a, ()>;

/// In order; the last one stops the shared operator.
pub fn all() -> Vec<(&'static str, Scenario)> {
    vec![
        ("the_examples_become_ready_with_their_outputs_in_status", |w| Box::pin(examples_become_ready(w))),
        ("a_signing_key_is_made_with_its_spec_usage_and_grant", |w| {
            Box::pin(crate::features::a_signing_key_is_made_with_its_spec_usage_and_grant(w))
        }),
        ("grants_for_services_and_context_subsets_reach_kms", |w| {
            Box::pin(crate::features::grants_for_services_and_context_subsets_reach_kms(w))
        }),
        ("each_rotate_now_value_rotates_the_key_once", |w| {
            Box::pin(crate::features::each_rotate_now_value_rotates_the_key_once(w))
        }),
        ("a_policy_built_from_principals_reaches_kms", |w| {
            Box::pin(crate::features::a_policy_built_from_principals_reaches_kms(w))
        }),
        ("additional_aliases_are_made_and_dropped", |w| {
            Box::pin(crate::features::additional_aliases_are_made_and_dropped(w))
        }),
        ("an_unused_key_is_warned_about", |w| Box::pin(crate::features::an_unused_key_is_warned_about(w))),
        ("the_seed_module_examples_become_ready", |w| {
            Box::pin(crate::features::the_seed_module_examples_become_ready(w))
        }),
        ("a_paused_object_makes_no_kms_call_until_unpaused", |w| {
            Box::pin(crate::holds::a_paused_object_makes_no_kms_call_until_unpaused(w))
        }),
        ("a_namespace_deletion_stops_at_a_protected_key_and_says_why", |w| {
            Box::pin(crate::holds::a_namespace_deletion_stops_at_a_protected_key_and_says_why(w))
        }),
        ("an_object_keeps_its_own_resync_interval", |w| {
            Box::pin(crate::holds::an_object_keeps_its_own_resync_interval(w))
        }),
        ("a_terraform_key_is_adopted_retained_and_adopted_in_another_namespace", |w| {
            Box::pin(crate::ownership::a_terraform_key_is_adopted_retained_and_adopted_in_another_namespace(
                w,
            ))
        }),
        ("a_pruned_retain_object_leaves_its_key_usable", |w| {
            Box::pin(crate::ownership::a_pruned_retain_object_leaves_its_key_usable(w))
        }),
        ("observe_only_lists_the_plan_and_full_runs_it", |w| {
            Box::pin(crate::ownership::observe_only_lists_the_plan_and_full_runs_it(w))
        }),
        ("two_shards_reconcile_every_object_exactly_once", |w| {
            Box::pin(crate::shards::two_shards_reconcile_every_object_exactly_once(w))
        }),
        ("a_key_in_another_region_is_made_edited_deleted_and_crash_safe_there", |w| {
            Box::pin(crate::regions::a_key_in_another_region_is_made_edited_deleted_and_crash_safe_there(w))
        }),
        ("a_key_with_two_replicas_converges_loses_a_region_survives_crashes_and_is_deleted", |w| {
            Box::pin(crate::replicas::a_key_with_two_replicas_converges_loses_a_region_survives_crashes_and_is_deleted(w))
        }),
        ("namespaces_mapped_to_two_accounts_get_their_keys_there", |w| {
            Box::pin(crate::accounts::namespaces_mapped_to_two_accounts_get_their_keys_there(w))
        }),
        ("a_key_moves_to_another_cluster_with_retain_and_adopt", |w| {
            Box::pin(crate::ownership::a_key_moves_to_another_cluster_with_retain_and_adopt(w))
        }),
        ("outputs_are_exported_to_an_owned_config_map", |w| {
            Box::pin(crate::ownership::outputs_are_exported_to_an_owned_config_map(w))
        }),
        ("a_team_cannot_escalate_through_its_kmskeys", |w| {
            Box::pin(crate::guardrails::a_team_cannot_escalate_through_its_kmskeys(w))
        }),
        ("the_operator_serves_health_readiness_and_metrics", |w| Box::pin(probes_and_metrics(w))),
        ("every_spec_change_applied_with_kubectl_reaches_aws", |w| Box::pin(spec_changes_reach_aws(w))),
        ("changes_made_outside_the_operator_are_put_back_on_resync", |w| Box::pin(drift_is_put_back(w))),
        ("kubectl_delete_schedules_deletion_and_releases_the_object", |w| {
            Box::pin(delete_schedules_deletion(w))
        }),
        ("a_deletion_kms_refuses_shows_on_the_object_and_is_retried", |w| {
            Box::pin(refused_deletion_is_visible(w))
        }),
        ("a_status_write_from_a_stale_copy_is_refused", |w| Box::pin(stale_status_write_is_refused(w))),
        ("an_alias_taken_in_another_namespace_stalls_the_second_object", |w| Box::pin(alias_conflict(w))),
        ("bad_manifests_are_refused_at_admission_naming_the_field", |w| {
            Box::pin(bad_input::refused_at_admission(w))
        }),
        ("a_policy_that_is_not_json_stalls_without_touching_kms", |w| {
            Box::pin(bad_input::policy_not_json(w))
        }),
        ("the_helm_chart_installs_and_its_rbac_is_enough", |w| {
            Box::pin(helm::chart_installs_and_its_rbac_is_enough(w))
        }),
        ("the_operator_rides_out_an_apiserver_restart", |w| {
            Box::pin(reliability::the_operator_rides_out_an_apiserver_restart(w))
        }),
        ("another_writers_status_survives_the_operators_writes", |w| {
            Box::pin(reliability::another_writers_status_survives(w))
        }),
        ("deleting_a_namespace_full_of_kmskeys_schedules_every_key", |w| {
            Box::pin(reliability::deleting_a_namespace_schedules_every_key(w))
        }),
        ("the_operator_converges_through_twenty_percent_kms_faults", |w| {
            Box::pin(reliability::the_operator_converges_through_twenty_percent_faults(w))
        }),
        ("sigkill_while_creating_leaves_exactly_one_key_per_object", |w| {
            Box::pin(reliability::sigkill_while_creating_leaves_one_key_per_object(w))
        }),
        ("only_the_leader_reconciles_and_a_standby_takes_over", |w| {
            Box::pin(reliability::only_the_leader_reconciles_and_a_standby_takes_over(w))
        }),
        ("a_leader_cut_off_by_a_frozen_apiserver_stops_before_its_lease_expires", |w| {
            Box::pin(reliability::a_leader_cut_off_by_a_frozen_apiserver_stops_before_its_lease_expires(w))
        }),
        ("new_keys_await_iam_tag_propagation_and_are_ready_soon_after_never_stalled", |w| {
            Box::pin(crate::iam_lag::new_keys_await_iam_and_are_ready_soon_after_the_lag_never_stalled(w))
        }),
        ("sigterm_stops_the_operator_cleanly", |w| Box::pin(sigterm_stops_cleanly(w))),
    ]
}

pub fn manifest(name: &str, alias: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: {name}\nspec:\n  aliasName: {alias}\n{extra_spec}"
    )
}

async fn examples_become_ready(w: &World) {
    let ns = "e2e-examples";
    w.namespace(ns);
    for file in ["basic.yaml", "advanced.yaml"] {
        w.kubectl_ok(&["apply", "-n", ns, "-f", &format!("{ROOT}/examples/{file}")]);
    }
    let basic = w.wait_ready(ns, "basic-key").await;
    let advanced = w.wait_ready(ns, "advanced-key").await;

    for obj in [&basic, &advanced] {
        let status = &obj["status"];
        let key_id = status["keyId"].as_str().unwrap();
        assert!(status["keyArn"].as_str().unwrap().ends_with(key_id));
        assert_eq!(status["observedGeneration"], obj["metadata"]["generation"]);
    }
    assert_eq!(basic["status"]["aliasName"], "alias/basic-key");
    assert_eq!(advanced["status"]["aliasName"], "alias/advanced-key");

    let table = w.kubectl_ok(&["get", "kms", "-n", ns]);
    let basic_id = basic["status"]["keyId"].as_str().unwrap();
    let advanced_id = advanced["status"]["keyId"].as_str().unwrap();
    let row = table.lines().find(|l| l.starts_with("basic-key")).expect("a row for basic-key");
    for column in ["alias/basic-key", basic_id, "Enabled", "True"] {
        assert!(row.contains(column), "`kubectl get kms` row lacks {column}: {row}");
    }
    assert!(table.lines().next().unwrap().contains("KEY ID"), "{table}");

    assert_eq!(w.alias_target("alias/basic-key").await.as_deref(), Some(basic_id));
    assert!(w.rotation(basic_id).await);
    assert_eq!(w.alias_target("alias/advanced-key").await.as_deref(), Some(advanced_id));
    assert_eq!(w.describe(advanced_id).await.multi_region(), Some(true));
    let grants = w.grants(advanced_id).await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].grantee_principal(), Some("arn:aws:iam::123456789012:role/app-server"));
    let context = grants[0].constraints().unwrap().encryption_context_equals().unwrap();
    assert_eq!(context.get("App").map(String::as_str), Some("Finance"));
    assert_eq!(advanced["status"]["grantIds"]["app-server"].as_str(), grants[0].grant_id());
}

async fn spec_changes_reach_aws(w: &World) {
    let ns = "e2e-updates";
    w.namespace(ns);
    w.apply(ns, &manifest("orders", "e2e-orders", "  tags:\n    Team: a\n"));
    let obj = w.wait_ready(ns, "orders").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();

    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/app"}, "Action": "kms:Decrypt", "Resource": "*"}
    ]});
    w.patch(ns, "orders", &json!({"spec": {
        "keyDescription": "orders, changed",
        "isEnabled": false,
        "enableKeyRotation": false,
        "tags": {"Team": "b", "CostCenter": "42"},
        "keyPolicy": policy.to_string(),
        "aliasName": "e2e-orders-renamed",
        "createGrants": true,
        "grants": [{"name": "reader", "granteePrincipal": "arn:aws:iam::123456789012:role/reader", "operations": ["Decrypt"]}]
    }}));
    let obj = w.wait_ready(ns, "orders").await;
    assert_eq!(obj["metadata"]["generation"], 2);
    assert_eq!(obj["status"]["observedGeneration"], 2);
    let meta = w.describe(&key_id).await;
    assert_eq!(meta.description(), Some("orders, changed"));
    assert_eq!(meta.key_state(), Some(&KeyState::Disabled));
    assert!(!w.rotation(&key_id).await);
    let tags = w.tags(&key_id).await;
    assert_eq!(
        (tags.get("Team").map(String::as_str), tags.get("CostCenter").map(String::as_str)),
        (Some("b"), Some("42"))
    );
    assert_eq!(w.policy(&key_id).await, policy);
    assert_eq!(w.alias_target("alias/e2e-orders-renamed").await.as_deref(), Some(key_id.as_str()));
    assert_eq!(w.alias_target("alias/e2e-orders").await, None);
    assert_eq!(obj["status"]["aliasName"], "alias/e2e-orders-renamed");
    assert_eq!(w.grants(&key_id).await.len(), 1);

    // Enable again and change the grant: revoked and created anew.
    let first_grant = obj["status"]["grantIds"]["reader"].as_str().unwrap().to_owned();
    w.patch(ns, "orders", &json!({"spec": {"isEnabled": true, "grants": [
        {"name": "reader", "granteePrincipal": "arn:aws:iam::123456789012:role/reader", "operations": ["Decrypt", "Encrypt"]}
    ]}}));
    let obj = w.wait_ready(ns, "orders").await;
    let grants = w.grants(&key_id).await;
    assert_eq!(grants.len(), 1);
    assert_ne!(grants[0].grant_id(), Some(first_grant.as_str()));
    assert_eq!(grants[0].operations().len(), 2);
    assert_eq!(obj["status"]["grantIds"]["reader"].as_str(), grants[0].grant_id());
    assert_eq!(w.describe(&key_id).await.key_state(), Some(&KeyState::Enabled));

    // Rotation back on, every 180 days: KMS reports the period and the next rotation date.
    w.patch(ns, "orders", &json!({"spec": {"enableKeyRotation": true, "rotationPeriodInDays": 180}}));
    let obj = w.wait_ready(ns, "orders").await;
    assert!(w.rotation(&key_id).await);
    assert_eq!(obj["status"]["rotationPeriodInDays"], 180, "{}", obj["status"]);
    let next: k8s_openapi::jiff::Timestamp =
        obj["status"]["nextRotationDate"].as_str().unwrap().parse().unwrap();
    let days = next.duration_since(k8s_openapi::jiff::Timestamp::now()).as_secs() / 86_400;
    assert!((178..=180).contains(&days), "next rotation in {days} days");

    // Remove the grant.
    w.patch(ns, "orders", &json!({"spec": {"grants": []}}));
    let obj = w.wait_ready(ns, "orders").await;
    assert!(w.grants(&key_id).await.is_empty());
    assert!(obj["status"].get("grantIds").is_none(), "{}", obj["status"]);
}

async fn drift_is_put_back(w: &World) {
    let ns = "e2e-drift";
    w.namespace(ns);
    w.apply(ns, &manifest("drift", "e2e-drift", "  keyDescription: kept by the operator\n"));
    w.wait_ready(ns, "drift").await;
    // The key's first last-use read (spread over `--last-usage-interval`) records what KMS
    // says once; only then is there nothing left to write.
    let obj = eventually("the first last-use read to be recorded", Duration::from_secs(40), || async {
        let obj = w.get(ns, "drift");
        obj["status"].get("lastUsage").is_some().then_some(obj)
    })
    .await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    // Resyncs that find nothing to change write nothing: the object stays still.
    let version = obj["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let after = w.get(ns, "drift");
    let churn = format!("no status churn on resync:\nbefore {}\nafter  {}", obj["status"], after["status"]);
    assert_eq!(after["metadata"]["resourceVersion"], version, "{churn}");
    let kms = &w.kms;
    kms.update_key_description().key_id(&key_id).description("edited by hand").send().await.unwrap();
    kms.disable_key_rotation().key_id(&key_id).send().await.unwrap();
    kms.disable_key().key_id(&key_id).send().await.unwrap();
    eventually("the resync to restore the key", Duration::from_secs(30), || async {
        let meta = w.describe(&key_id).await;
        let restored = meta.description() == Some("kept by the operator")
            && meta.key_state() == Some(&KeyState::Enabled)
            && w.rotation(&key_id).await;
        restored.then_some(())
    })
    .await;
}

async fn delete_schedules_deletion(w: &World) {
    let ns = "e2e-delete";
    w.namespace(ns);
    w.apply(ns, &manifest("doomed", "e2e-doomed", "  deletionWindowInDays: 9\n"));
    let obj = w.wait_ready(ns, "doomed").await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    w.kubectl_ok(&["delete", "kms", "doomed", "-n", ns, "--timeout=60s"]);
    let left = w.cp().kubectl(&["get", "kms", "doomed", "-n", ns], None);
    assert!(!left.status.success(), "the object is gone once its key is scheduled for deletion");
    let meta = w.describe(&key_id).await;
    assert_eq!(meta.key_state(), Some(&KeyState::PendingDeletion));
    let when = meta.deletion_date().unwrap().secs();
    let expected = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64
        + 9 * 86_400;
    assert!((when - expected).abs() < 300, "deletion at {when}, expected about {expected}");
    assert_eq!(w.alias_target("alias/e2e-doomed").await, None);
    let events = w.kubectl_ok(&["get", "events", "-n", ns, "-o", "json"]);
    assert!(events.contains("scheduled key deletion in 9 days"), "a Deleted event is recorded");
}

/// A deletion KMS refuses leaves the object Terminating with a Stalled condition and a Warning
/// Event that say why; the finalizer retries, and the object goes once KMS accepts.
async fn refused_deletion_is_visible(w: &World) {
    use crate::fault_proxy::Fault;
    let ns = "e2e-refused-delete";
    w.namespace(ns);
    w.apply(ns, &manifest("stuck", "e2e-stuck", ""));
    w.wait_ready(ns, "stuck").await;
    let refusal = Fault::Reject("ValidationException", "injected: deletion refused");
    w.proxy.as_ref().unwrap().script("ScheduleKeyDeletion", &[refusal; 3]);
    w.kubectl_ok(&["delete", "kms", "stuck", "-n", ns, "--wait=false"]);
    let stalled = w.wait_condition(ns, "stuck", "Stalled").await;
    let conditions = stalled["status"]["conditions"].as_array().unwrap();
    let condition = conditions.iter().find(|c| c["type"] == "Stalled").unwrap();
    assert!(condition["message"].as_str().unwrap().starts_with("releasing the key failed"), "{condition}");
    let events = w.kubectl_ok(&["get", "events", "-n", ns, "-o", "json"]);
    assert!(events.contains("CleanupFailed") && events.contains("injected: deletion refused"), "{events}");
    eventually("the retried deletion to release the object", Duration::from_secs(60), || async {
        (!w.cp().kubectl(&["get", "kms", "stuck", "-n", ns], None).status.success()).then_some(())
    })
    .await;
}

async fn alias_conflict(w: &World) {
    let (first_ns, second_ns) = ("e2e-team-a", "e2e-team-b");
    w.namespace(first_ns);
    w.namespace(second_ns);
    w.apply(first_ns, &manifest("shared", "e2e-shared", ""));
    let first = w.wait_ready(first_ns, "shared").await;
    let first_id = first["status"]["keyId"].as_str().unwrap().to_owned();
    w.apply(second_ns, &manifest("shared", "e2e-shared", ""));
    let second = w.wait_condition(second_ns, "shared", "Stalled").await;
    let stalled = crate::world::condition(&second, "Stalled");
    assert_eq!(stalled["reason"], "AliasConflict");
    assert!(stalled["message"].as_str().unwrap().contains(&first_id), "{stalled}");
    assert_eq!(w.alias_target("alias/e2e-shared").await, Some(first_id));
    assert!(w.keys_owned_by(second_ns, "shared").await.is_empty(), "no key is created for the second object");

    // The first lets go; the second does not take the name by itself (it might be squatting
    // on another team's alias) until it claims it.
    w.kubectl_ok(&["delete", "kms", "shared", "-n", first_ns, "--timeout=60s"]);
    eventually("the freed alias held back", Duration::from_secs(30), || async {
        let obj = w.get(second_ns, "shared");
        let conds = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conds.iter().any(|c| c["type"] == "Stalled" && c["reason"] == "AliasHandoverHeld").then_some(())
    })
    .await;
    assert_eq!(w.alias_target("alias/e2e-shared").await, None, "not taken by itself");
    let claim = "kms.boosterpack.io/claim-alias";
    w.kubectl_ok(&["annotate", "kms", "shared", "-n", second_ns, &format!("{claim}=true")]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(w.alias_target("alias/e2e-shared").await, None, "only the hold's token claims the alias");
    let token =
        w.kubectl_ok(&["get", "kms", "shared", "-n", second_ns, "-o", "jsonpath={.status.aliasHold.token}"]);
    assert!(!token.is_empty());
    w.kubectl_ok(&["annotate", "kms", "shared", "-n", second_ns, "--overwrite", &format!("{claim}={token}")]);
    let second = w.wait_ready(second_ns, "shared").await;
    let second_id = second["status"]["keyId"].as_str().unwrap();
    assert_eq!(w.alias_target("alias/e2e-shared").await.as_deref(), Some(second_id));
}

async fn probes_and_metrics(w: &World) {
    let addr = w.operator_http();
    assert_eq!(http_get(&addr, "/healthz").0, 200);
    eventually("/readyz to report the synced watch", Duration::from_secs(30), || async {
        (http_get(&addr, "/readyz").0 == 200).then_some(())
    })
    .await;
    let (code, metrics) = http_get(&addr, "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("kms_operator_reconciles_total{outcome=\"ready\"}"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "kms_operator_leader 1"), "{metrics}");
    assert!(!metrics.contains("basic-key"), "no object names in metric labels");
}

/// A reconcile that starts from a stale copy of the object must not record a create intent
/// (and so never reaches CreateKey): the write carries the copy's resourceVersion.
async fn stale_status_write_is_refused(w: &World) {
    use kms_operator::controller::KubeStatusWriter;
    use kms_operator::reconcile::StatusWriter;
    let ns = "e2e-stale";
    w.namespace(ns);
    w.apply(ns, &manifest("stale", "e2e-stale", ""));
    let fresh = w.wait_ready(ns, "stale").await;
    let stale: kms_operator::api::KmsKey = serde_json::from_value(fresh).unwrap();
    w.kubectl_ok(&["label", "kms", "stale", "-n", ns, "touched=yes"]);

    let api: kube::Api<kms_operator::api::KmsKey> = kube::Api::namespaced(w.kube_client().await, ns);
    let writer = KubeStatusWriter::new(api.clone(), &stale);
    let err = writer.record_intent("t", None).await.expect_err("a stale copy cannot write status");
    assert!(err.to_string().contains("409") || err.to_string().to_lowercase().contains("conflict"), "{err}");
    let now = api.get("stale").await.unwrap();
    assert!(now.status.unwrap().create_intent.is_none());

    // From the current copy the same write goes through.
    let current = api.get("stale").await.unwrap();
    let writer = KubeStatusWriter::new(api.clone(), &current);
    let before = k8s_openapi::jiff::Timestamp::now();
    let written = writer.record_intent("t", None).await.unwrap();
    let recorded = api.get("stale").await.unwrap().status.unwrap().create_intent.unwrap();
    assert_eq!(recorded.started_at, written.started_at.to_string(), "stamped when written");
    assert!(written.started_at >= before, "not when the reconcile began");

    writer.clear_intent().await.unwrap();

    // Someone writes the object between the intent and the key ID (a label, an edit): the key
    // exists by then, so its ID must still land. (The operator is paused: the object is this
    // scenario's alone.)
    w.pause_operator();
    w.apply(ns, &manifest("racing", "e2e-racing", ""));
    let racing = api.get("racing").await.unwrap();
    let writer = KubeStatusWriter::new(api.clone(), &racing);
    writer.record_intent("t2", None).await.unwrap();
    w.kubectl_ok(&["label", "kms", "racing", "-n", ns, "touched=yes"]);
    let key = kms_operator::kms::KeyDescription {
        key_id: "k-recorded".into(),
        arn: "arn:aws:kms:us-east-1:123456789012:key/k-recorded".into(),
        state: "Enabled".into(),
        description: String::new(),
        multi_region: false,
        replica: false,
        replica_regions: Vec::new(),
        key_spec: "SYMMETRIC_DEFAULT".into(),
        key_usage: "ENCRYPT_DECRYPT".into(),
        created_at: None,
    };
    writer.record_key(&key).await.expect("the key ID lands despite the newer object");
    let status = api.get("racing").await.unwrap().status.unwrap();
    assert_eq!((status.key_id.as_deref(), status.create_intent), (Some("k-recorded"), None));
    w.kubectl_ok(&["delete", "kms", "racing", "-n", ns, "--timeout=30s"]);
    w.resume_operator();
}

/// SIGTERM ends the watch, lets in-flight reconciles finish and exits 0, promptly.
async fn sigterm_stops_cleanly(w: &World) {
    let Some(mut op) = w.take_operator() else { panic!("the shared operator is not running") };
    eprintln!("     operator memory: {}", op.memory());
    assert!(op.is_running(), "the operator exited during the run; see {}", op.log.display());
    // A process still starting up has no signal handler yet; the drain is for a running one.
    eventually("the operator to be ready", Duration::from_secs(30), || async {
        (http_get(&op.http, "/readyz").0 == 200).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let exit = op.terminate(Duration::from_secs(15));
    assert!(exit.is_some_and(|s| s.success()), "SIGTERM must stop the operator with exit 0, got {exit:?}");
    eprintln!("     stopped in {:.1}s", started.elapsed().as_secs_f64());
}
