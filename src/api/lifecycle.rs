//! Whose key it is and what happens to it: taking over an existing key (`adopt`), what a
//! deletion of the object does to the key (`deletionPolicy`), and whether the operator may
//! change the key at all (`managementPolicy`).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An existing key to take over instead of creating one, named by exactly one of `keyId` and
/// `aliasName`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.keyId) != has(self.aliasName)").message("adopt names exactly one of keyId and aliasName"),
)]
pub struct AdoptSpec {
    /// The key's ID or ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 2048),
        regex(
            pattern = r"^([0-9a-fA-F-]{36}|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+)$"
        )
    )]
    pub key_id: Option<String>,

    /// An alias that points at the key, without the `alias/` prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 250), regex(pattern = r"^[a-zA-Z0-9/_-]+$"))]
    #[x_kube(
        validation = Rule::new("!self.startsWith('alias/')").message("adopt.aliasName is given without the 'alias/' prefix"),
        validation = Rule::new("!self.startsWith('aws/')").message("adopt.aliasName must not start with 'aws/': AWS manages those keys"),
    )]
    pub alias_name: Option<String>,

    /// The cluster (its `clusterName`) whose ownership tags the key carries, when it is to be
    /// taken from there: without it, a key tagged for any cluster is refused (Stalled,
    /// NotOwned). A key of another object in this same cluster is never taken: delete that
    /// object with `deletionPolicy: Retain` first. The shipped IAM policy denies re-tagging
    /// another cluster's key, so the administrator must also name that cluster in its
    /// `NeverRetagAnotherClustersKey` statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub take_over_from_cluster: Option<String>,
}

impl AdoptSpec {
    /// How DescribeKey names the key: its ID or ARN, or `alias/<aliasName>`.
    pub fn key_reference(&self) -> String {
        match (&self.key_id, &self.alias_name) {
            (Some(id), _) => id.clone(),
            (None, Some(alias)) => format!("{}{alias}", super::ALIAS_PREFIX),
            (None, None) => String::new(),
        }
    }

    /// The field that names the key, with its value, for messages.
    pub fn describe(&self) -> String {
        match (&self.key_id, &self.alias_name) {
            (Some(id), _) => format!("adopt.keyId {id}"),
            (None, Some(alias)) => format!("adopt.aliasName {alias}"),
            (None, None) => "adopt".to_owned(),
        }
    }
}

/// What deleting the object does to the key.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the aliases this object made and schedule the key's deletion.
    Delete,
    /// Keep the key, its aliases and its policy; remove the operator's ownership tags.
    Retain,
}

/// Whether the operator changes the key.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ManagementPolicy {
    /// Make the key match the spec.
    #[default]
    Full,
    /// Only read the key and list in status `plan` what `Full` would change.
    ObserveOnly,
}
