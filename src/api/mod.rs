//! The `KmsKey` custom resource (`kms.boosterpack.io/v1alpha1`): its spec, its status and the
//! generated CRD. Field doc comments here become `kubectl explain` text, so they are written for
//! users. Rules that the apiserver can check (lengths, patterns, ranges, immutability) live in the
//! schema; rules it cannot (the policy must be a JSON object) live in `reconcile::validate`.

mod account;
pub mod annotations;
pub mod cluster_policy;
mod crd;
mod export;
mod key_spec;
mod lifecycle;
mod spec;
mod status;

pub use account::{KmsAccount, KmsAccountSpec, NamespaceSelector};
pub use annotations::{
    CLAIM_ALIAS_ANNOTATION, DELETION_PROTECTION_ANNOTATION, PAUSED_ANNOTATION, RESYNC_INTERVAL_ANNOTATION,
    ROTATE_NOW_ANNOTATION,
};
pub use cluster_policy::{
    AliasHandover, CLUSTER_POLICY_NAME, KeyPolicyRule, KmsKeyPolicy, KmsKeyPolicySpec, KmsKeyPolicyStatus,
    NamespaceAliasPrefixes,
};
pub use crd::crd_yaml;
pub use export::ExportTo;
pub use key_spec::{KeySpec, KeyUsage};
pub use lifecycle::{AdoptSpec, DeletionPolicy, ManagementPolicy};
pub use spec::{
    DEFAULT_DESCRIPTION, DEFAULT_ROTATION_PERIOD_DAYS, GrantOperation, GrantSpec, KmsKey, KmsKeySpec,
    PolicyBuilder,
};
pub use status::{
    AliasHold, Condition, ConditionStatus, CreateIntent, GeneratedPolicy, KeyUsageRecord, KmsKeyStatus,
    OnDemandRotation, ReplicaStatus, RotationRecord,
};

/// Prefix that turns a spec alias name into the KMS alias name.
pub const ALIAS_PREFIX: &str = "alias/";

/// The finalizer that holds a `KmsKey` until its key is scheduled for deletion.
pub const FINALIZER: &str = "kms.boosterpack.io/key-deletion";

impl KmsKeySpec {
    /// The alias as KMS names it, `alias/<aliasName>`.
    pub fn full_alias_name(&self) -> String {
        format!("{ALIAS_PREFIX}{}", self.alias_name)
    }

    /// The additional aliases as KMS names them.
    pub fn full_additional_aliases(&self) -> Vec<String> {
        self.additional_aliases.iter().map(|a| format!("{ALIAS_PREFIX}{a}")).collect()
    }
}
