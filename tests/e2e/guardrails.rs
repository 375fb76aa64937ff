//! Multi-tenant guardrails on the real apiserver with RBAC: a ServiceAccount that may manage
//! KmsKeys in `team-a` only tries each escalation. With the chart's ValidatingAdmissionPolicy
//! installed, what CEL can check is refused at admission; without it (and for the key policy
//! always), the operator stalls the object with `PolicyViolation`. No attempt makes a key.

use std::time::Duration;

use serde_json::{Value, json};

use crate::env::eventually;
use crate::world::{World, condition};

const NS: &str = "team-a";
const AS_TEAM: &str = "--as=system:serviceaccount:team-a:deployer";
const OWN: &str = "123456789012";

fn kmskey(name: &str, spec: Value) -> String {
    json!({"apiVersion": "kms.boosterpack.io/v1alpha1", "kind": "KmsKey", "metadata": {"name": name}, "spec": spec})
        .to_string()
}

/// Applies `manifest` in team-a as the team's ServiceAccount: `Err(stderr)` when refused.
fn apply_as_team(w: &World, manifest: &str) -> Result<(), String> {
    team_kubectl(w, &["apply", AS_TEAM, "-n", NS, "-f", "-"], manifest)
}

/// Asks admission about `manifest` as the team, without keeping anything (server dry run).
fn admits(w: &World, manifest: &str) -> Result<(), String> {
    team_kubectl(w, &["apply", "--dry-run=server", AS_TEAM, "-n", NS, "-f", "-"], manifest)
}

fn team_kubectl(w: &World, args: &[&str], manifest: &str) -> Result<(), String> {
    let out = w.cp().kubectl(args, Some(manifest));
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// The escalations CEL can check, each with what the admission refusal and the operator's
/// condition must say.
fn checkable() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let grant = |principal: String, ops: Value| {
        json!({"aliasName": "team-a/granted", "createGrants": true,
               "grants": [{"name": "app", "granteePrincipal": principal, "operations": ops}]})
    };
    vec![
        (
            "squat",
            json!({"aliasName": "payments"}),
            "spec.aliasName must start with 'team-a/'",
            "spec.aliasName: must start with 'team-a/'",
        ),
        (
            "hasty",
            json!({"aliasName": "team-a/hasty", "deletionWindowInDays": 7}),
            "spec.deletionWindowInDays must be at least 14",
            "spec.deletionWindowInDays: 7 is below the cluster's minimum of 14",
        ),
        (
            "minting",
            grant(format!("arn:aws:iam::{OWN}:role/app"), json!(["Decrypt", "CreateGrant"])),
            "spec.grants must not give CreateGrant",
            "spec.grants[0] (app): operation CreateGrant is forbidden",
        ),
        (
            "outsider",
            grant("arn:aws:iam::999988887777:role/x".into(), json!(["Decrypt"])),
            "outside the allowed accounts",
            "spec.grants[0] (app): principal account 999988887777",
        ),
    ]
}

/// The escalations only the operator can see (inside the key policy JSON).
fn policy_escalations() -> Vec<(&'static str, Value, &'static str)> {
    let policy = |statement: Value| json!({"aliasName": "team-a/policy", "keyPolicy": json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()});
    vec![
        (
            "anyone",
            policy(
                json!({"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}),
            ),
            "spec.keyPolicy statement 'Open': Principal \"*\"",
        ),
        (
            "self-admin",
            policy(
                json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{OWN}:role/team-a")}, "Action": "kms:*", "Resource": "*"}),
            ),
            "spec.keyPolicy statement #1: gives kms:* (which includes kms:PutKeyPolicy)",
        ),
    ]
}

async fn stalls_on_policy(w: &World, name: &str, text: &str) {
    let obj = w.wait_condition(NS, name, "Stalled").await;
    let stalled = condition(&obj, "Stalled");
    assert_eq!(stalled["reason"], "PolicyViolation", "{name}: {obj}");
    assert!(stalled["message"].as_str().unwrap().contains(text), "{name}: {stalled}");
    assert!(w.keys_owned_by(NS, name).await.is_empty(), "{name}: no key was made");
}

/// Takes the cluster-wide policy and admission policy away when the scenario ends, even when it
/// fails: they would refuse the scenarios after it.
struct ClusterWide<'a>(&'a World);

impl Drop for ClusterWide<'_> {
    fn drop(&mut self) {
        for (kind, name) in [
            ("ValidatingAdmissionPolicyBinding", "kms-kms-operator-guardrails"),
            ("ValidatingAdmissionPolicy", "kms-kms-operator-guardrails"),
            ("kmspolicy", "cluster"),
        ] {
            let _ = self.0.cp().kubectl(&["delete", kind, name, "--ignore-not-found"], None);
        }
    }
}

pub async fn a_team_cannot_escalate_through_its_kmskeys(w: &World) {
    let _cleanup = ClusterWide(w);
    w.namespace(NS);
    let rbac = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: deployer, namespace: {NS}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: kmskeys, namespace: {NS}}}\nrules:\n- apiGroups: [kms.boosterpack.io]\n  resources: [kmskeys]\n  verbs: [get, list, watch, create, update, patch, delete]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: deployer, namespace: {NS}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: kmskeys}}\nsubjects:\n- {{kind: ServiceAccount, name: deployer, namespace: {NS}}}\n"
    );
    w.apply(NS, &rbac);
    let policy = "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKeyPolicy\nmetadata:\n  name: cluster\nspec:\n  aliasPrefix: '{namespace}/'\n  minDeletionWindowInDays: 14\n";
    w.apply(NS, policy);
    // The operator publishes its account (the admission policy's "own account") once it
    // reconciles anything under the policy.
    w.apply(NS, &kmskey("fine", json!({"aliasName": "team-a/fine"})));
    w.wait_ready(NS, "fine").await;
    eventually("the operator's account in the policy's status", Duration::from_secs(30), || async {
        let account = w.kubectl_ok(&["get", "kmspolicy", "cluster", "-o", "jsonpath={.status.ownAccount}"]);
        (account == OWN).then_some(())
    })
    .await;
    assert!(
        apply_as_team(w, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sneaky}\n").is_err(),
        "the SA has KmsKey rights only"
    );

    // With the ValidatingAdmissionPolicy: refused at admission, naming field and rule.
    let vap = crate::helm::helm(
        w,
        &["template", "kms", "charts/kms-operator", "--show-only", "templates/admission-policy.yaml"],
    );
    w.apply(NS, &vap);
    for (name, spec, text, _) in checkable() {
        // Dry runs: a request admitted while the new admission policy propagates keeps nothing.
        let manifest = kmskey(name, spec.clone());
        let refusal =
            eventually(&format!("{name} refused at admission"), Duration::from_secs(30), || async {
                admits(w, &manifest).err()
            })
            .await;
        assert!(refusal.contains(text), "{name}: {refusal}");
    }
    for (name, spec, text) in policy_escalations() {
        apply_as_team(w, &kmskey(name, spec)).expect("CEL cannot read a key policy: admitted");
        stalls_on_policy(w, name, text).await;
    }

    // Without it, the operator alone refuses each of them.
    for kind in ["ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy"] {
        w.kubectl_ok(&["delete", kind, "kms-kms-operator-guardrails"]);
    }
    for (name, spec, _, text) in checkable() {
        let manifest = kmskey(name, spec.clone());
        eventually(&format!("{name} admitted"), Duration::from_secs(30), || async {
            admits(w, &manifest).ok()
        })
        .await;
        apply_as_team(w, &manifest).expect("admitted without the admission policy");
        stalls_on_policy(w, name, text).await;
    }

    w.kubectl_ok(&["delete", "kmspolicy", "cluster"]);
    w.kubectl_ok(&["delete", "kms", "--all", "-n", NS, "--timeout=60s"]);
}
