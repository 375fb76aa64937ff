//! The cluster's `KmsKeyPolicy` (the object named `cluster`), watched, and the AWS account the
//! operator's keys live in, learned once from KMS. Fails closed: until the first list of
//! KmsKeyPolicies has completed, no KmsKey is reconciled, so a missing RBAC rule or a slow
//! apiserver can never let a spec through unchecked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::OnceCell;

use crate::api::{CLUSTER_POLICY_NAME, KmsKeyPolicy};
use crate::kms::KmsPort;
use crate::reconcile::guardrails::Rules;

/// The guardrails source of one operator.
pub struct ClusterPolicy {
    api: Api<KmsKeyPolicy>,
    /// `None` when the operator runs without guardrails (`--cluster-policy false`).
    store: Option<reflector::Store<KmsKeyPolicy>>,
    listed: Arc<AtomicBool>,
    /// A missing policy is an error, not an absence of guardrails.
    required: bool,
    own_account: OnceCell<String>,
}

impl ClusterPolicy {
    /// Starts watching the `cluster` KmsKeyPolicy, when `enabled`.
    pub fn watch(client: &Client, enabled: bool, required: bool) -> Self {
        let listed = Arc::new(AtomicBool::new(false));
        let api: Api<KmsKeyPolicy> = Api::all(client.clone());
        if !enabled {
            return ClusterPolicy { api, store: None, listed, required, own_account: OnceCell::new() };
        }
        let config = watcher::Config::default().fields(&format!("metadata.name={CLUSTER_POLICY_NAME}"));
        let (reader, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api.clone(), config)).default_backoff();
        let ready = reader.clone();
        let flag = listed.clone();
        tokio::spawn(async move {
            if ready.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Release);
            }
        });
        tokio::spawn(stream.for_each(|event| async move {
            if let Err(err) = event {
                tracing::warn!(error = %err, "cannot watch the cluster's KmsKeyPolicy; KmsKeys wait");
            }
        }));
        ClusterPolicy { api, store: Some(reader), listed, required, own_account: OnceCell::new() }
    }

    /// The operator's own AWS account, learned from KMS once (`None` while it cannot be).
    pub async fn own_account(&self, kms: &dyn KmsPort) -> Option<&str> {
        self.own_account.get_or_try_init(|| learn_account(kms)).await.ok().map(String::as_str)
    }

    /// The rules in force: `None` without a `cluster` KmsKeyPolicy (or without guardrails);
    /// an error, to be retried, while they cannot be known yet.
    pub async fn rules(&self, kms: &dyn KmsPort) -> Result<Option<Rules>, String> {
        let Some(store) = &self.store else { return Ok(None) };
        if !self.listed.load(Ordering::Acquire) {
            return Err("waiting to read the cluster's KmsKeyPolicy (the operator needs get, list and watch on kmskeypolicies)".to_owned());
        }
        let Some(policy) = store.get(&ObjectRef::new(CLUSTER_POLICY_NAME)) else {
            return match self.required {
                true => Err(format!(
                    "the KmsKeyPolicy named {CLUSTER_POLICY_NAME} is required (--require-cluster-policy) and does not exist"
                )),
                false => Ok(None),
            };
        };
        let own_account = self.own_account.get_or_try_init(|| learn_account(kms)).await?;
        if policy.status.as_ref().and_then(|s| s.own_account.as_ref()) != Some(own_account) {
            self.publish_account(own_account).await;
        }
        Ok(Some(Rules { policy: policy.spec.clone(), own_account: own_account.clone() }))
    }

    /// Writes the account into the policy's status, for the admission policy to read. A
    /// failure is only logged: the operator's own checks do not need it.
    async fn publish_account(&self, account: &str) {
        let patch = serde_json::json!({ "status": { "ownAccount": account } });
        let params = PatchParams { field_manager: Some("kms-operator".into()), ..PatchParams::default() };
        if let Err(err) = self.api.patch_status(CLUSTER_POLICY_NAME, &params, &Patch::Merge(&patch)).await {
            tracing::warn!(error = %err, "cannot write the account into the KmsKeyPolicy's status");
        }
    }
}

/// The account of the operator's keys: the one in the ARN of the account's first alias (every
/// account has AWS's own `alias/aws/*`).
async fn learn_account(kms: &dyn KmsPort) -> Result<String, String> {
    let arn =
        kms.any_alias_arn().await.map_err(|e| format!("cannot learn the operator's AWS account: {e}"))?;
    let account = arn.as_deref().and_then(|arn| arn.split(':').nth(4)).filter(|a| !a.is_empty());
    account
        .map(str::to_owned)
        .ok_or_else(|| "cannot learn the operator's AWS account: KMS lists no alias".to_owned())
}
