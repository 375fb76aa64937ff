//! Status writes, as JSON merge patches of `status` only (they never bump the generation, so
//! they never trigger a reconcile). The writer keeps its own view of the status it wrote, so
//! the final patch carries only what changed.
//!
//! Every patch carries the `resourceVersion` the reconcile started from (then the one each
//! write returned). A reconcile that started from a stale copy of the object — the watch had
//! not yet delivered the previous reconcile's status — fails with a conflict before it records
//! an intent or calls CreateKey, instead of creating a second key.

use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::api::{CreateIntent, KmsKey, KmsKeySpec, KmsKeyStatus, OnDemandRotation};
use crate::kms::KeyDescription;
use crate::reconcile::account::arn_account;
use crate::reconcile::region::arn_region;
use crate::reconcile::{self, Intent, Report, StatusWriter, status_after};

use super::merge_patch::merge_patch;

const FIELD_MANAGER: &str = "kms-operator";

/// Writes one object's status during and after a reconcile.
pub struct KubeStatusWriter {
    api: Api<KmsKey>,
    name: String,
    view: Mutex<KmsKeyStatus>,
    resource_version: Mutex<Option<String>>,
    /// The Region this reconcile works in, recorded with a create intent.
    region: Option<String>,
    /// The AWS account this reconcile works in, when known, recorded with a create intent.
    account_id: Option<String>,
}

impl KubeStatusWriter {
    pub fn new(api: Api<KmsKey>, obj: &KmsKey) -> Self {
        let view = Mutex::new(obj.status.clone().unwrap_or_default());
        let resource_version = Mutex::new(obj.resource_version());
        Self { api, name: obj.name_any(), view, resource_version, region: None, account_id: None }
    }

    /// The same, recording `region` with a create intent, so that a key an interrupted create
    /// left behind is looked for there.
    pub fn in_region(self, region: &str) -> Self {
        Self { region: Some(region.to_owned()), ..self }
    }

    /// The same, recording `account_id` (if known) with a create intent.
    pub fn in_account(self, account_id: Option<&str>) -> Self {
        Self { account_id: account_id.map(str::to_owned), ..self }
    }

    fn view(&self) -> KmsKeyStatus {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn write(&self, next: KmsKeyStatus) -> Result<(), kube::Error> {
        let before = self.view();
        let diff = merge_patch(&to_value(&before), &to_value(&next));
        if diff.as_object().is_some_and(Map::is_empty) {
            return Ok(());
        }
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        let version = self.resource_version.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let patch = json!({ "metadata": { "resourceVersion": version }, "status": diff });
        let written = self.api.patch_status(&self.name, &params, &Patch::Merge(&patch)).await?;
        *self.resource_version.lock().unwrap_or_else(|e| e.into_inner()) = written.resource_version();
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// Takes the object's current status and version as the base of the next write, when it
    /// still records this writer's create intent and no key; a conflict otherwise.
    async fn refresh_if_still_creating(&self) -> Result<(), kube::Error> {
        // The object itself, not its /status subresource: the chart grants `get` on KmsKeys but
        // only `patch` on their status.
        let current = self.api.get(&self.name).await?;
        let status = current.status.clone().unwrap_or_default();
        let ours = self.view().create_intent;
        if status.key_id.is_some() || ours.is_none() || status.create_intent != ours {
            let reason = "the object no longer records this create attempt".to_owned();
            let conflict = kube::core::Status::failure(&reason, "Conflict").with_code(409);
            return Err(kube::Error::Api(Box::new(conflict)));
        }
        *self.resource_version.lock().unwrap_or_else(|e| e.into_inner()) = current.resource_version();
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = status;
        Ok(())
    }

    /// Writes the final status of a reconcile: what KMS showed, and the conditions. The status
    /// as written.
    pub async fn finish(
        &self,
        report: &Report,
        spec: &KmsKeySpec,
        generation: Option<i64>,
    ) -> Result<KmsKeyStatus, kube::Error> {
        let now = Timestamp::now().to_string();
        let next = status_after(&self.view(), report, spec, generation, &now);
        self.write(next.clone()).await?;
        Ok(next)
    }

    /// Records the ConfigMap that holds the key's outputs.
    pub async fn record_export(&self, config_map: Option<String>) -> Result<(), kube::Error> {
        let mut next = self.view();
        next.exported_config_map = config_map;
        self.write(next).await
    }
}

#[async_trait::async_trait]
impl StatusWriter for KubeStatusWriter {
    async fn record_intent(&self, token: &str, adopting: Option<&str>) -> Result<Intent, reconcile::Error> {
        let started_at = Timestamp::now();
        let mut next = self.view();
        next.create_intent = Some(CreateIntent {
            token: token.to_owned(),
            started_at: started_at.to_string(),
            adopting: adopting.map(str::to_owned),
            region: self.region.clone(),
            account_id: self.account_id.clone(),
        });
        if next.key_id.is_none() {
            next.region = self.region.clone();
            next.account_id = self.account_id.clone();
        }
        self.write(next).await.map_err(status_write_failed)?;
        Ok(Intent { token: token.to_owned(), started_at, adopting: adopting.map(str::to_owned) })
    }

    async fn clear_intent(&self) -> Result<(), reconcile::Error> {
        let mut next = self.view();
        next.create_intent = None;
        if next.key_id.is_none() {
            next.region = None;
            next.account_id = None;
        }
        self.write(next).await.map_err(status_write_failed)
    }

    async fn record_rotation_request(
        &self,
        token: &str,
        rotations_before: usize,
    ) -> Result<(), reconcile::Error> {
        let mut next = self.view();
        next.last_on_demand_rotation = Some(OnDemandRotation {
            token: token.to_owned(),
            requested_at: Timestamp::now().to_string(),
            rotations_before: rotations_before as u32,
            rotated_at: None,
        });
        self.write(next).await.map_err(status_write_failed)
    }

    async fn record_key(&self, key: &KeyDescription) -> Result<Timestamp, reconcile::Error> {
        let at = Timestamp::now();
        let with_key = |mut next: KmsKeyStatus| {
            next.key_id = Some(key.key_id.clone());
            next.key_arn = Some(key.arn.clone());
            next.region = arn_region(&key.arn).map(str::to_owned).or(next.region);
            next.account_id = arn_account(&key.arn).map(str::to_owned).or(next.account_id);
            next.key_state = Some(key.state.clone());
            next.key_created_at = Some(at.to_string());
            next.create_intent = None;
            next
        };
        match self.write(with_key(self.view())).await {
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                // Someone wrote the object since the intent (a label, a spec edit). The key
                // exists now, so its ID must land: if the object still holds this attempt's
                // intent and no key, write it again over the current version.
                self.refresh_if_still_creating().await.map_err(status_write_failed)?;
                self.write(with_key(self.view())).await.map_err(status_write_failed)?;
            }
            other => other.map_err(status_write_failed)?,
        }
        Ok(at)
    }
}

fn status_write_failed(err: kube::Error) -> reconcile::Error {
    reconcile::Error::StatusWrite(err.to_string())
}

fn to_value(status: &KmsKeyStatus) -> Value {
    serde_json::to_value(status).unwrap_or_else(|_| Value::Object(Map::new()))
}
