//! `KmsKeyPolicy`: the guardrails a cluster administrator sets for every namespace's KmsKeys.
//!
//! A cluster-scoped custom resource rather than a ConfigMap: the apiserver checks it against
//! its schema (a misspelt rule is refused, not silently ignored), `kubectl explain` documents
//! it, its RBAC is separate from ConfigMaps (which the operator may not even read), and the
//! chart's ValidatingAdmissionPolicy reads the very same object as its parameters, so the
//! admission checks and the operator's can never disagree. Only the object named `cluster`
//! counts; the operator watches it and applies a change at each object's next reconcile.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::spec::GrantOperation;

/// Name of the one `KmsKeyPolicy` the operator and the admission policy read.
pub const CLUSTER_POLICY_NAME: &str = "cluster";

/// What namespaces may ask of KMS through their KmsKeys. Namespaces in `adminNamespaces` are
/// exempt. Enforced by the operator before any KMS call (Stalled, PolicyViolation) and, where
/// CEL can say it, at admission by the chart's ValidatingAdmissionPolicy.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kms.boosterpack.io",
    version = "v1alpha1",
    kind = "KmsKeyPolicy",
    shortname = "kmspolicy",
    status = "KmsKeyPolicyStatus",
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".status.ownAccount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    category = "aws",
    doc = "Guardrails for every namespace's KmsKeys, set by the cluster administrator; only the object named 'cluster' is read.",
    validation = Rule::new("self.metadata.name == 'cluster'").message("the operator reads only the KmsKeyPolicy named 'cluster'")
)]
#[serde(rename_all = "camelCase")]
pub struct KmsKeyPolicySpec {
    /// Namespaces whose KmsKeys these rules do not bind (the platform team's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 63)))]
    pub admin_namespaces: Vec<String>,

    /// What every `aliasName` and additional alias must start with; `{namespace}` stands for
    /// the object's namespace (`{namespace}/` gives team-a `team-a/...`). Absent: no rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    #[x_kube(validation = Rule::new("!self.contains('{namespace}') || self.matches('[{]namespace[}][/_]')").message("aliasPrefix must follow {namespace} with '/' or '_' (characters no namespace name has): with '{namespace}' or '{namespace}-', namespace team could take team-a's aliases"))]
    pub alias_prefix: Option<String>,

    /// Alias prefixes for the namespaces listed, instead of `aliasPrefix`: their aliases must
    /// start with one of `prefixes` (a team that owns a product name across namespaces, say).
    /// The first entry naming a namespace counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub namespace_alias_prefixes: Vec<NamespaceAliasPrefixes>,

    /// AWS account IDs whose principals may appear in `keyPolicy`, `policy` and grants,
    /// besides the operator's own account (always allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = r"^[0-9]{12}$")))]
    pub allowed_accounts: Vec<String>,

    /// Whether an Allow statement in `keyPolicy` may name any principal (`"*"`) without a
    /// `kms:CallerAccount` or `aws:PrincipalAccount` condition that narrows it to allowed
    /// accounts. Default false.
    #[serde(default)]
    pub allow_any_principal: bool,

    /// AWS service principals (`logs.amazonaws.com`) that grants and `keyPolicy` may name.
    /// Absent: any; empty: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub allowed_service_principals: Option<Vec<String>>,

    /// Grant operations namespaces may not give. Default `CreateGrant` and `RetireGrant`: a
    /// grantee with CreateGrant can mint grants that outlive the spec.
    #[serde(default = "default_forbidden_grant_operations")]
    #[schemars(length(max = 19))]
    pub forbidden_grant_operations: Vec<GrantOperation>,

    /// The smallest `deletionWindowInDays` a namespace may choose (7-30, default 7). A
    /// deletion outside `adminNamespaces` waits at least this long even for an object admitted
    /// before the rule, while the policy exists.
    #[serde(default = "default_min_window")]
    #[schemars(range(min = 7, max = 30))]
    pub min_deletion_window_in_days: i32,

    /// Whether namespaces may write `keyPolicy`: `Allowed` (default, checked statement by
    /// statement) or `Forbidden` (only the policy builder, `policy`, within allowed accounts).
    #[serde(default)]
    pub key_policy: KeyPolicyRule,

    /// Actions an Allow statement may give only to the operator's account root or to
    /// `adminPrincipals` (wildcards in statements count: `kms:*` gives all of them; a wildcard
    /// here must match the statement's action as written). Default: `kms:PutKeyPolicy`,
    /// `kms:TagResource`, `kms:UntagResource`, `kms:CreateGrant`, `kms:ScheduleKeyDeletion`,
    /// `kms:DisableKey`, `kms:ReplicateKey`, `kms:UpdatePrimaryRegion`, `kms:CreateAlias`,
    /// `kms:UpdateAlias`, `kms:DeleteAlias`: what lets a principal change who may use the key
    /// (a replica gets its own policy), forge ownership tags, point aliases outside the
    /// prefix rules, or destroy the key outside the operator.
    #[serde(default = "default_restricted_actions")]
    #[schemars(length(max = 50))]
    pub restricted_actions: Vec<String>,

    /// Principals (ARNs) that may be given restricted actions and be `keyAdministrators`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub admin_principals: Vec<String>,

    /// What a KmsKey stalled on `AliasConflict` does when the alias becomes free: `Manual`
    /// (default) waits until its spec changes or it is annotated
    /// `kms.boosterpack.io/claim-alias` with the token in its `status.aliasHold`; `Automatic`
    /// takes it at its next reconcile.
    #[serde(default)]
    pub alias_handover: AliasHandover,
}

/// Alias prefixes for some namespaces.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceAliasPrefixes {
    /// The namespaces (names).
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 63)))]
    pub namespaces: Vec<String>,
    /// The prefixes their aliases may start with, each ending in `/` or `_` (so that
    /// `payments/` can never also cover `payments-legacy/`).
    #[schemars(length(min = 1, max = 20), inner(length(min = 1, max = 200)))]
    #[x_kube(validation = Rule::new("self.all(p, p.endsWith('/') || p.endsWith('_'))").message("namespaceAliasPrefixes prefixes must end in '/' or '_'"))]
    pub prefixes: Vec<String>,
}

/// What the operator found out for the policy's users.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KmsKeyPolicyStatus {
    /// The AWS account the operator's keys live in: always an allowed account. Written by
    /// the operator; the chart's ValidatingAdmissionPolicy reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_account: Option<String>,
}

/// Whether namespaces may write `keyPolicy`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyPolicyRule {
    #[default]
    Allowed,
    Forbidden,
}

/// What a KmsKey stalled on `AliasConflict` does when the alias is freed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AliasHandover {
    #[default]
    Manual,
    Automatic,
}

impl Default for KmsKeyPolicySpec {
    fn default() -> Self {
        KmsKeyPolicySpec {
            admin_namespaces: Vec::new(),
            alias_prefix: None,
            namespace_alias_prefixes: Vec::new(),
            allowed_accounts: Vec::new(),
            allow_any_principal: false,
            allowed_service_principals: None,
            forbidden_grant_operations: default_forbidden_grant_operations(),
            min_deletion_window_in_days: default_min_window(),
            key_policy: KeyPolicyRule::Allowed,
            restricted_actions: default_restricted_actions(),
            admin_principals: Vec::new(),
            alias_handover: AliasHandover::Manual,
        }
    }
}

fn default_forbidden_grant_operations() -> Vec<GrantOperation> {
    vec![GrantOperation::CreateGrant, GrantOperation::RetireGrant]
}

fn default_min_window() -> i32 {
    7
}

fn default_restricted_actions() -> Vec<String> {
    [
        "kms:PutKeyPolicy",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:CreateGrant",
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
        "kms:ReplicateKey",
        "kms:UpdatePrimaryRegion",
        "kms:CreateAlias",
        "kms:UpdateAlias",
        "kms:DeleteAlias",
    ]
    .map(str::to_owned)
    .to_vec()
}
