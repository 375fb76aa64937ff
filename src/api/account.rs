//! `KmsAccount`: an AWS account some namespaces' keys live in, reached by assuming an IAM role.
//!
//! A cluster-scoped custom resource rather than a ConfigMap, for the reasons `KmsKeyPolicy` is
//! one (schema checks, `kubectl explain`, its own RBAC), and one object per account so that each
//! team's mapping is its own file in Git. Cluster-scoped means only a cluster administrator (or
//! whoever RBAC lets write KmsAccounts) maps namespaces to roles: a KmsKey has no field that
//! names a role or an account, so a namespace user can never pick one.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An AWS account that the KmsKeys of some namespaces live in: the operator assumes `roleArn`
/// (AWS STS) for every KMS call about their keys. A namespace no KmsAccount maps uses the
/// operator's own identity, unless the operator requires a mapping
/// (`--require-account-mapping`). A namespace two KmsAccounts map is refused (Stalled,
/// AccountMappingConflict).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kms.boosterpack.io",
    version = "v1alpha1",
    kind = "KmsAccount",
    shortname = "kmsaccount",
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.roleArn"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    category = "aws",
    doc = "An AWS account some namespaces' KmsKeys live in, reached by assuming an IAM role; set by the cluster administrator.",
    validation = Rule::new("size(self.spec.namespaces) > 0 || has(self.spec.namespaceSelector)").message("a KmsAccount maps namespaces: give namespaces, namespaceSelector or both")
)]
#[serde(rename_all = "camelCase")]
pub struct KmsAccountSpec {
    /// The IAM role the operator assumes (`arn:aws:iam::<account>:role/<name>`); its account
    /// is the account the keys live in. Its trust policy must let the operator's own role
    /// assume it (deploy/iam-role-target-account.json).
    #[schemars(
        length(max = 2048),
        regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
    )]
    pub role_arn: String,

    /// The external ID the role's trust policy requires, if any (2-1224 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), regex(pattern = r"^[A-Za-z0-9+=,.@:/_-]+$"))]
    pub external_id: Option<String>,

    /// Session tags passed to AssumeRole (at most 50), for attribute-based access control in
    /// the target account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 50))]
    #[x_kube(
        validation = Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128)").message("session tag keys must be 1-128 characters"),
        validation = Rule::new("self.all(k, size(self[k]) <= 256)").message("session tag values must be at most 256 characters")
    )]
    pub session_tags: BTreeMap<String, String>,

    /// Names of the namespaces mapped to this account.
    #[serde(default)]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 63)))]
    pub namespaces: Vec<String>,

    /// Namespaces mapped by their labels: every label given must be on the namespace. Whoever
    /// may label namespaces picks their account this way: use labels only namespace
    /// administrators may set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
}

/// Namespaces chosen by their labels.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels a namespace must carry, every one with this value (at least one).
    #[schemars(length(min = 1, max = 20))]
    pub match_labels: BTreeMap<String, String>,
}

impl KmsAccountSpec {
    /// Whether this account maps the namespace `name` with `labels`.
    pub fn maps(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        let by_labels = |selector: &NamespaceSelector| {
            !selector.match_labels.is_empty()
                && selector.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        };
        self.namespaces.iter().any(|n| n == name) || self.namespace_selector.as_ref().is_some_and(by_labels)
    }

    /// The account the role is in (its ARN's fifth field).
    pub fn account_id(&self) -> Option<&str> {
        self.role_arn.split(':').nth(4).filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
    }
}
