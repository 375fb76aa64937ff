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

use crate::api::{CreateIntent, KmsKey, KmsKeyStatus};
use crate::kms::KeyDescription;
use crate::reconcile::{self, Intent, Recorded, Report, StatusWriter, status_after};

const FIELD_MANAGER: &str = "kms-operator";

/// What an earlier reconcile recorded, as the planner reads it.
pub fn recorded_from(status: Option<&KmsKeyStatus>) -> Recorded {
    let Some(status) = status else { return Recorded::default() };
    let intent = status.create_intent.as_ref().map(|i| Intent {
        token: i.token.clone(),
        // An unreadable time is treated as long past, so a new attempt may go ahead.
        started_at: i.started_at.parse().unwrap_or(Timestamp::UNIX_EPOCH),
    });
    let key_created_at = status.key_created_at.as_ref().and_then(|t| t.parse().ok());
    Recorded { key_id: status.key_id.clone(), key_created_at, alias_name: status.alias_name.clone(), intent }
}

/// Writes one object's status during and after a reconcile.
pub struct KubeStatusWriter {
    api: Api<KmsKey>,
    name: String,
    view: Mutex<KmsKeyStatus>,
    resource_version: Mutex<Option<String>>,
}

impl KubeStatusWriter {
    pub fn new(api: Api<KmsKey>, obj: &KmsKey) -> Self {
        let view = Mutex::new(obj.status.clone().unwrap_or_default());
        let resource_version = Mutex::new(obj.resource_version());
        Self { api, name: obj.name_any(), view, resource_version }
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

    /// Writes the final status of a reconcile: what KMS showed, and the conditions.
    pub async fn finish(
        &self,
        report: &Report,
        wanted_alias: &str,
        generation: Option<i64>,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now().to_string();
        self.write(status_after(&self.view(), report, wanted_alias, generation, &now)).await
    }
}

#[async_trait::async_trait]
impl StatusWriter for KubeStatusWriter {
    async fn record_intent(&self, intent: Option<&CreateIntent>) -> Result<(), reconcile::Error> {
        let mut next = self.view();
        next.create_intent = intent.cloned();
        self.write(next).await.map_err(|e| reconcile::Error::StatusWrite(e.to_string()))
    }

    async fn record_key(&self, key: &KeyDescription) -> Result<(), reconcile::Error> {
        let mut next = self.view();
        next.key_id = Some(key.key_id.clone());
        next.key_arn = Some(key.arn.clone());
        next.key_state = Some(key.state.clone());
        next.key_created_at = Some(Timestamp::now().to_string());
        next.create_intent = None;
        self.write(next).await.map_err(|e| reconcile::Error::StatusWrite(e.to_string()))
    }
}

fn to_value(status: &KmsKeyStatus) -> Value {
    serde_json::to_value(status).unwrap_or_else(|_| Value::Object(Map::new()))
}

/// The JSON merge patch (RFC 7396) that turns `old` into `new`: changed values, and `null`
/// for every field `new` no longer has.
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(before) if before == value => {}
                    Some(before) => {
                        patch.insert(key.clone(), merge_patch(before, value));
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_patch_carries_changes_and_nulls_for_removed_fields() {
        let old = json!({"keyId": "k1", "createIntent": {"token": "t"}, "grantIds": {"a": "1", "b": "2"}});
        let new = json!({"keyId": "k1", "keyArn": "arn", "grantIds": {"a": "1"}});
        assert_eq!(
            merge_patch(&old, &new),
            json!({"keyArn": "arn", "createIntent": null, "grantIds": {"b": null}})
        );
    }

    #[test]
    fn lists_are_replaced_whole() {
        let old = json!({"conditions": [{"type": "Ready"}]});
        let new = json!({"conditions": [{"type": "Ready"}, {"type": "Stalled"}]});
        assert_eq!(merge_patch(&old, &new), new);
    }

    #[test]
    fn an_unchanged_status_gives_an_empty_patch() {
        let same = json!({"keyId": "k1"});
        assert_eq!(merge_patch(&same, &same), json!({}));
    }

    #[test]
    fn a_recorded_intent_reads_back_with_its_time() {
        let status = KmsKeyStatus {
            create_intent: Some(CreateIntent {
                token: "t".into(),
                started_at: "2026-01-02T03:04:05Z".into(),
            }),
            ..KmsKeyStatus::default()
        };
        let recorded = recorded_from(Some(&status));
        let intent = recorded.intent.unwrap();
        assert_eq!(intent.token, "t");
        assert_eq!(intent.started_at.to_string(), "2026-01-02T03:04:05Z");
    }
}
