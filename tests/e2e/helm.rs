//! The Helm chart on the real apiserver: install it, then run the operator binary as the
//! chart's ServiceAccount (a TokenRequest token; no kubelet runs pods here) to prove its RBAC
//! is enough — and no more than enough — then upgrade and uninstall.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_kms::types::KeyState;

use crate::env::{Operator, ROOT};
use crate::world::World;

const NS: &str = "kms-system";
const RELEASE: &str = "kms-operator";
const SA: &str = "kms-operator";

pub fn helm(w: &World, args: &[&str]) -> String {
    let out = Command::new("bash")
        .args(["-c", "source \"$1/hack/lib.sh\" && kms_cp_binary_path helm", "_", ROOT])
        .output()
        .unwrap();
    let helm = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(helm.exists(), "helm not found at {}: run `make test` (it builds helm)", helm.display());
    let out = Command::new(helm)
        .args(args)
        .env("KUBECONFIG", &w.cp().kubeconfig)
        .current_dir(ROOT)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helm {args:?} failed: {text}");
    text
}

/// A kubeconfig that authenticates as the chart's ServiceAccount with a TokenRequest token.
fn service_account_kubeconfig(w: &World, dir: &Path) -> PathBuf {
    let token = w.kubectl_ok(&["create", "token", SA, "-n", NS, "--duration=1h"]);
    let server = w.kubectl_ok(&["config", "view", "--raw", "-o", "jsonpath={.clusters[0].cluster.server}"]);
    let ca = w.kubectl_ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority-data}",
    ]);
    let path = dir.join("sa-kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cp\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: sa\n  context:\n    cluster: cp\n    user: sa\n    namespace: {NS}\ncurrent-context: sa\n",
        token.trim()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn can_i(w: &World, kubeconfig: &Path, verb: &str, resource: &str, namespace: &str) -> bool {
    let kc = kubeconfig.to_str().unwrap();
    let out = w.cp().kubectl(&["--kubeconfig", kc, "auth", "can-i", verb, resource, "-n", namespace], None);
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

fn manifest(name: &str, alias: &str) -> String {
    format!(
        "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: {name}\nspec:\n  aliasName: {alias}\n  deletionWindowInDays: 7\n"
    )
}

/// Applies a KmsKey, waits for Ready with the given operator running, deletes it, and checks
/// the key ends pending deletion.
async fn key_lifecycle(w: &World, namespace: &str, name: &str, alias: &str) {
    w.apply(namespace, &manifest(name, alias));
    let obj = w.wait_ready(namespace, name).await;
    let key_id = obj["status"]["keyId"].as_str().unwrap().to_owned();
    w.kubectl_ok(&["delete", "kms", name, "-n", namespace, "--timeout=60s"]);
    assert_eq!(w.describe(&key_id).await.key_state(), Some(&KeyState::PendingDeletion));
}

pub async fn chart_installs_and_its_rbac_is_enough(w: &World) {
    w.namespace(NS);
    w.namespace("e2e-helm");
    // The run installed the CRDs with kubectl; hand them to the release as Helm's adoption asks.
    let crd = "crd/kmskeys.kms.boosterpack.io";
    for crd in [crd, "crd/kmskeypolicies.kms.boosterpack.io", "crd/kmsaccounts.kms.boosterpack.io"] {
        w.kubectl_ok(&[
            "annotate",
            crd,
            "meta.helm.sh/release-name=kms-operator",
            "meta.helm.sh/release-namespace=kms-system",
            "--overwrite",
        ]);
        w.kubectl_ok(&["label", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite"]);
    }
    helm(
        w,
        &[
            "install",
            RELEASE,
            "charts/kms-operator",
            "-n",
            NS,
            "--set",
            "clusterName=e2e",
            "--set",
            "aws.region=us-east-1",
        ],
    );

    let dir = std::env::temp_dir().join(format!("kms-e2e-helm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sa = service_account_kubeconfig(w, &dir);

    // Least privilege: what the operator needs, and nothing else.
    for (verb, resource) in [
        ("watch", "kmskeys"),
        // A status write that meets a newer object re-reads it (KubeStatusWriter::record_key).
        ("get", "kmskeys"),
        ("patch", "kmskeys"),
        ("patch", "kmskeys/status"),
        ("create", "events.events.k8s.io"),
    ] {
        assert!(can_i(w, &sa, verb, resource, "e2e-helm"), "the ServiceAccount may not {verb} {resource}");
    }
    for (verb, resource) in [
        ("get", "secrets"),
        ("list", "configmaps"),
        ("create", "pods"),
        ("delete", "kmskeys"),
        ("create", "kmskeys"),
        ("patch", "leases"),
    ] {
        assert!(!can_i(w, &sa, verb, resource, "e2e-helm"), "the ServiceAccount may {verb} {resource}");
    }

    // The operator, as the ServiceAccount, does the whole job.
    w.pause_operator();
    let url = w.kms_url();
    let log = dir.join("operator-sa.log");
    let op = Operator::start_as(&sa, &url, log, &[]);
    key_lifecycle(w, "e2e-helm", "via-chart", "e2e-helm-cluster-wide").await;
    drop(op);

    // Upgrade: watch one namespace with two replicas (so leader election).
    let watch = "watchNamespaces={e2e-helm}";
    helm(
        w,
        &[
            "upgrade",
            RELEASE,
            "charts/kms-operator",
            "-n",
            NS,
            "--reuse-values",
            "--set",
            watch,
            "--set",
            "replicaCount=2",
        ],
    );
    assert!(can_i(w, &sa, "watch", "kmskeys", "e2e-helm"));
    assert!(!can_i(w, &sa, "watch", "kmskeys", "default"), "namespaced mode reaches no other namespace");
    assert!(!can_i(w, &sa, "list", "kmskeys", "kube-system"));
    assert!(can_i(w, &sa, "patch", "leases", NS), "leader election needs its lease");
    assert!(!can_i(w, &sa, "patch", "leases", "default"), "only in its own namespace");
    let args = ["--namespaces", "e2e-helm", "--leader-election", "--lease-namespace", NS];
    let op = Operator::start_as(&sa, &url, dir.join("operator-sa-ns.log"), &args);
    key_lifecycle(w, "e2e-helm", "via-chart-namespaced", "e2e-helm-namespaced").await;
    drop(op);
    w.resume_operator();

    // Uninstall keeps the CRD, hence every KmsKey and every key.
    let before = w.kubectl_ok(&["get", "kms", "-A", "-o", "name"]);
    helm(w, &["uninstall", RELEASE, "-n", NS]);
    w.kubectl_ok(&["get", crd]);
    assert_eq!(w.kubectl_ok(&["get", "kms", "-A", "-o", "name"]), before);
    let _ = std::fs::remove_dir_all(&dir);
}
