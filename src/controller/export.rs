//! `spec.exportTo`: the key's outputs in a ConfigMap next to the object, for applications that
//! read configuration rather than KmsKeys. The ConfigMap is owned by the object (the garbage
//! collector deletes it with the object), written only when its data changes, and never taken
//! over: one of that name that the object does not own is a conflict for a person to resolve.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};

use crate::api::{KmsKey, KmsKeyStatus};

const FIELD_MANAGER: &str = "kms-operator";

/// Why the outputs were not published.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "spec.exportTo asks for ConfigMap {0}, but the operator's administrator has not enabled ConfigMap exports (--export-to-config-maps, chart exportToConfigMaps)"
    )]
    NotEnabled(String),
    #[error(
        "ConfigMap {0} exists and is not this object's, so it is left as it is; choose another spec.exportTo.configMapName, or delete that ConfigMap"
    )]
    Conflict(String),
    #[error("writing ConfigMap {name} failed: {source}")]
    Kube {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl ExportError {
    /// The condition reason of a problem a person must resolve; `None` for a failure worth
    /// retrying.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::NotEnabled(_) => Some("ExportNotEnabled"),
            Self::Conflict(_) => Some("ExportConflict"),
            Self::Kube { .. } => None,
        }
    }
}

/// The ConfigMap data for the outputs in `status`; `None` until the key is known.
pub fn outputs(status: &KmsKeyStatus) -> Option<BTreeMap<String, String>> {
    let mut data = BTreeMap::from([
        ("keyId".to_owned(), status.key_id.clone()?),
        ("keyArn".to_owned(), status.key_arn.clone()?),
    ]);
    if let Some(alias) = &status.alias_name {
        data.insert("aliasName".to_owned(), alias.clone());
    }
    if !status.additional_aliases.is_empty() {
        data.insert("additionalAliases".to_owned(), status.additional_aliases.join(","));
    }
    Some(data)
}

/// Whether the object with `uid` owns `config_map`.
fn owned_by(config_map: &ConfigMap, uid: &str) -> bool {
    config_map.owner_references().iter().any(|r| r.uid == uid)
}

/// Publishes the outputs in `status` where `obj.spec.exportTo` says, and deletes the ConfigMap
/// the object wrote earlier under another name (`status.exportedConfigMap`). The name of the
/// ConfigMap that holds them now, if any.
pub async fn export(
    client: &Client,
    obj: &KmsKey,
    status: &KmsKeyStatus,
    enabled: bool,
) -> Result<Option<String>, ExportError> {
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let uid = obj.uid().unwrap_or_default();
    let wanted = obj.spec.export_to.as_ref().map(|e| e.config_map_name.clone());
    let earlier = status.exported_config_map.as_ref().filter(|old| Some(*old) != wanted.as_ref());
    if let Some(old) = earlier.filter(|_| enabled) {
        delete_if_owned(&api, old, &uid).await?;
    }
    let Some(name) = wanted else { return Ok(None) };
    if !enabled {
        return Err(ExportError::NotEnabled(name));
    }
    let Some(data) = outputs(status) else { return Ok(None) };
    let failed = |source| ExportError::Kube { name: name.clone(), source };
    if let Some(existing) = api.get_opt(&name).await.map_err(failed)? {
        if !owned_by(&existing, &uid) {
            return Err(ExportError::Conflict(name));
        }
        if existing.data.as_ref() == Some(&data) {
            return Ok(Some(name));
        }
    }
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "kms-operator".to_owned(),
            )])),
            owner_references: obj.controller_owner_ref(&()).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(&config_map)).await.map_err(failed)?;
    Ok(Some(name))
}

/// Deletes the ConfigMap `name` if the object with `uid` owns it (it may be gone already).
async fn delete_if_owned(api: &Api<ConfigMap>, name: &str, uid: &str) -> Result<(), ExportError> {
    let failed = |source| ExportError::Kube { name: name.to_owned(), source };
    match api.get_opt(name).await.map_err(failed)? {
        Some(existing) if owned_by(&existing, uid) => {
            api.delete(name, &DeleteParams::default()).await.map_err(failed)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_wait_for_the_key_and_carry_aliases_only_when_there_are_some() {
        assert_eq!(outputs(&KmsKeyStatus::default()), None);
        let status = KmsKeyStatus {
            key_id: Some("k1".into()),
            key_arn: Some("arn:k1".into()),
            ..KmsKeyStatus::default()
        };
        let data = outputs(&status).unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["keyArn", "keyId"]);
        let status = KmsKeyStatus {
            alias_name: Some("alias/a".into()),
            additional_aliases: vec!["alias/b".into(), "alias/c".into()],
            ..status
        };
        let data = outputs(&status).unwrap();
        assert_eq!(data["aliasName"], "alias/a");
        assert_eq!(data["additionalAliases"], "alias/b,alias/c");
    }

    #[test]
    fn only_the_named_problems_are_for_a_person() {
        assert_eq!(ExportError::NotEnabled("c".into()).reason(), Some("ExportNotEnabled"));
        assert_eq!(ExportError::Conflict("c".into()).reason(), Some("ExportConflict"));
    }
}
