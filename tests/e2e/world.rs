//! Everything a scenario reaches: kubectl, the operator, and independent SDK checks of KMS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::env::{ControlPlane, Operator, ROOT, eventually};
use crate::fault_proxy::FaultProxy;
use crate::moto::Moto;
use crate::strict::StrictConfig;

/// IAM's tag lag in the e2e run: AWS's is up to five minutes; seconds here keep the run short
/// while every new key still meets it (one scenario runs with a full minute).
pub const E2E_TAG_LAG: Duration = Duration::from_secs(3);

/// The strict KMS layer as the e2e operator meets it: the shipped IAM policy for cluster `e2e`,
/// and two roles in other accounts that trust the operator (`crate::accounts`).
pub fn strict_config(tag_lag: Duration) -> StrictConfig {
    let roles = crate::accounts::trusted_roles();
    StrictConfig { cluster: "e2e".into(), tag_lag, roles, ..StrictConfig::default() }
}

/// The object's condition of `type_` (`Null` when it has none).
pub fn condition(obj: &Value, type_: &str) -> Value {
    let conds = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conds.into_iter().find(|c| c["type"] == type_).unwrap_or_default()
}

/// Flags of the operator most scenarios share.
const SHARED_OPERATOR_ARGS: &[&str] =
    &["--adopt-namespaces", crate::ownership::ADOPT_NAMESPACES, "--export-to-config-maps", "true"];

pub struct World {
    pub state_dir: PathBuf,
    pub cp: Option<ControlPlane>,
    pub moto: Option<Moto>,
    /// The operator's KMS: moto behind the strict layer.
    pub proxy: Option<FaultProxy>,
    pub operator: Mutex<Option<Operator>>,
    pub kms: aws_sdk_kms::Client,
}

impl World {
    pub async fn start() -> Self {
        let state_dir = std::env::temp_dir().join(format!("kms-operator-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&state_dir).unwrap();
        let cp = ControlPlane::start(state_dir.join("cp"));
        let moto = Moto::start();
        let crd = format!("{ROOT}/crds/kmskey.yaml");
        cp.kubectl_ok(&["apply", "--server-side", "-f", &crd]);
        cp.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/kmskeys.kms.boosterpack.io",
            "crd/kmskeypolicies.kms.boosterpack.io",
            "crd/kmsaccounts.kms.boosterpack.io",
            "--timeout=60s",
        ]);
        let proxy = FaultProxy::start_with(&moto.url, strict_config(E2E_TAG_LAG)).await;
        let operator = Operator::start(&cp, &proxy.url, state_dir.join("operator.log"), SHARED_OPERATOR_ARGS);
        let kms = moto.client();
        let operator = Mutex::new(Some(operator));
        World { state_dir, cp: Some(cp), moto: Some(moto), proxy: Some(proxy), operator, kms }
    }

    pub fn cp(&self) -> &ControlPlane {
        self.cp.as_ref().unwrap()
    }

    pub fn moto(&self) -> &Moto {
        self.moto.as_ref().unwrap()
    }

    /// The KMS endpoint operators use: moto behind the strict layer.
    pub fn kms_url(&self) -> String {
        self.proxy.as_ref().unwrap().url.clone()
    }

    /// A kube client with the admin kubeconfig, for checks that need the API directly.
    pub async fn kube_client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.cp().kubeconfig).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// Stops the shared operator (a scenario that runs its own must not race it).
    pub fn pause_operator(&self) {
        self.operator.lock().unwrap().take();
    }

    pub fn operator_running(&self) -> bool {
        self.operator.lock().unwrap().as_mut().is_some_and(Operator::is_running)
    }

    /// Takes the shared operator out of the run, for a scenario that ends it.
    pub fn take_operator(&self) -> Option<Operator> {
        self.operator.lock().unwrap().take()
    }

    pub fn resume_operator(&self) {
        let op = Operator::start(self.cp(), &self.kms_url(), self.operator_log(), SHARED_OPERATOR_ARGS);
        *self.operator.lock().unwrap() = Some(op);
    }

    pub fn operator_http(&self) -> String {
        self.operator.lock().unwrap().as_ref().unwrap().http.clone()
    }

    pub fn operator_log(&self) -> PathBuf {
        self.state_dir.join("operator.log")
    }

    /// Stops the operator, moto and the control plane; keeps the operator log on failure.
    pub fn stop(mut self, keep_log: bool) {
        if let Some(mut op) = self.operator.lock().unwrap().take() {
            assert!(op.is_running(), "the operator exited during the run; see {}", op.log.display());
            eprintln!("operator memory: {}", op.memory());
        }
        self.proxy.take();
        self.moto.take();
        self.cp.take();
        if !keep_log {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        self.cp().kubectl_ok(args)
    }

    /// Applies a manifest given as text in `namespace`.
    pub fn apply(&self, namespace: &str, manifest: &str) {
        let out = self.cp().kubectl(&["apply", "-n", namespace, "-f", "-"], Some(manifest));
        assert!(out.status.success(), "kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn namespace(&self, name: &str) {
        let out = self.cp().kubectl(&["create", "namespace", name], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || err.contains("AlreadyExists"), "{err}");
    }

    pub fn get(&self, namespace: &str, name: &str) -> Value {
        let text = self.kubectl_ok(&["get", "kms", name, "-n", namespace, "-o", "json"]);
        serde_json::from_str(&text).unwrap()
    }

    pub fn patch(&self, namespace: &str, name: &str, patch: &Value) {
        let patch = patch.to_string();
        self.kubectl_ok(&["patch", "kms", name, "-n", namespace, "--type", "merge", "-p", &patch]);
    }

    /// Waits until condition `type_` is True and describes the object's current generation.
    pub async fn wait_condition(&self, namespace: &str, name: &str, type_: &str) -> Value {
        self.wait_condition_within(namespace, name, type_, Duration::from_secs(90)).await
    }

    /// `wait_condition` with its own time limit.
    pub async fn wait_condition_within(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        limit: Duration,
    ) -> Value {
        let what = format!("{namespace}/{name} to be {type_}");
        eventually(&what, limit, || async {
            let obj = self.get(namespace, name);
            let generation = obj["metadata"]["generation"].as_i64();
            let current = obj["status"]["observedGeneration"].as_i64() == generation;
            let conds = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let hit = conds.iter().any(|c| c["type"] == type_ && c["status"] == "True");
            (current && hit).then_some(obj)
        })
        .await
    }

    pub async fn wait_ready(&self, namespace: &str, name: &str) -> Value {
        self.wait_condition(namespace, name, "Ready").await
    }

    /// On-demand rotations of the key, as moto lists them.
    pub async fn on_demand_rotations(&self, key_id: &str) -> usize {
        let listed = self.kms.list_key_rotations().key_id(key_id).send().await.unwrap();
        listed
            .rotations()
            .iter()
            .filter(|r| r.rotation_type().is_some_and(|t| t.as_str() == "ON_DEMAND"))
            .count()
    }

    pub async fn describe(&self, key_id: &str) -> aws_sdk_kms::types::KeyMetadata {
        let out = self.kms.describe_key().key_id(key_id).send().await.unwrap();
        out.key_metadata().unwrap().clone()
    }

    pub async fn tags(&self, key_id: &str) -> BTreeMap<String, String> {
        let out = self.kms.list_resource_tags().key_id(key_id).send().await.unwrap();
        out.tags().iter().map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned())).collect()
    }

    pub async fn alias_target(&self, alias: &str) -> Option<String> {
        let out = self.kms.list_aliases().send().await.unwrap();
        out.aliases()
            .iter()
            .find(|a| a.alias_name() == Some(alias))
            .and_then(|a| a.target_key_id().map(str::to_owned))
    }

    pub async fn rotation(&self, key_id: &str) -> bool {
        let out = self.kms.get_key_rotation_status().key_id(key_id).send().await.unwrap();
        out.key_rotation_enabled()
    }

    pub async fn grants(&self, key_id: &str) -> Vec<aws_sdk_kms::types::GrantListEntry> {
        self.kms.list_grants().key_id(key_id).send().await.unwrap().grants().to_vec()
    }

    pub async fn policy(&self, key_id: &str) -> Value {
        let out = self.kms.get_key_policy().key_id(key_id).policy_name("default").send().await.unwrap();
        serde_json::from_str(out.policy().unwrap()).unwrap()
    }

    /// Keys tagged as belonging to `namespace/name`.
    pub async fn keys_owned_by(&self, namespace: &str, name: &str) -> Vec<String> {
        let owner = format!("{namespace}/{name}");
        let out = self.kms.list_keys().send().await.unwrap();
        let mut found = Vec::new();
        for key in out.keys() {
            let id = key.key_id().unwrap();
            if self.tags(id).await.get("kms.boosterpack.io/owner") == Some(&owner) {
                found.push(id.to_owned());
            }
        }
        found
    }
}
