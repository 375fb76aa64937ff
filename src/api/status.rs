use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator last saw and did. `keyId`, `keyArn` and `aliasName` are the outputs a
/// Terraform user knows from the `sec_kms` module.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KmsKeyStatus {
    /// ID of the KMS key managed for this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,

    /// ARN of the KMS key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,

    /// AWS Region the key lives in (from its ARN), or for a create in flight, the Region it is
    /// being made in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// The AWS account the key lives in (from its ARN), or for a create in flight, the
    /// account it is being made in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,

    /// When the operator created or adopted the key (RFC 3339). For a short while after it,
    /// KMS may not describe the key yet, and that is waited for rather than reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_created_at: Option<String>,

    /// Full alias name, `alias/<spec.aliasName>`, once the alias points at the key. During a
    /// rename that cannot happen yet (the new alias is taken), the old alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_name: Option<String>,

    /// The `spec.additionalAliases` that point at the key (full names, `alias/...`), and
    /// those this object made that are still to be deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_aliases: Vec<String>,

    /// True when the key was not created for this object but taken over (`spec.adopt`): the
    /// operator tagged it as this object's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<bool>,

    /// With `managementPolicy: ObserveOnly`: what `Full` would change, one short line per call
    /// (at most 20; policies and tag values are named, never copied). Empty when the key
    /// matches the spec; absent under `Full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub plan: Option<Vec<String>>,

    /// The ConfigMap (in this namespace) that holds the key's outputs (`spec.exportTo`), once
    /// written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_config_map: Option<String>,

    /// Set while the object is stalled on an alias another key holds, for the generation it
    /// was stalled at: once the alias is free, the object does not take it by itself (see
    /// `KmsKeyPolicy` `aliasHandover`) until its spec changes or it is annotated
    /// `kms.boosterpack.io/claim-alias` with this `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_hold: Option<AliasHold>,

    /// The key's state in KMS: Enabled, Disabled, PendingDeletion, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_state: Option<String>,

    /// The key's spec (SYMMETRIC_DEFAULT, RSA_2048, ...) as KMS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_spec: Option<String>,

    /// The key's usage (ENCRYPT_DECRYPT, SIGN_VERIFY, ...) as KMS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_usage: Option<String>,

    /// Days between automatic rotations, as KMS reports them (absent while rotation is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period_in_days: Option<i32>,

    /// When KMS will next rotate the key material (RFC 3339), as KMS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<String>,

    /// The last on-demand rotation asked for with the `kms.boosterpack.io/rotate-now`
    /// annotation: its value, when the operator asked KMS, and when KMS took it. Each value
    /// rotates once, whatever restarts and resyncs follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_on_demand_rotation: Option<OnDemandRotation>,

    /// The `rotate-now` values already acted on, oldest first (at most 25, as many on-demand
    /// rotations as AWS allows a key): a value set again, by a GitOps revert say, does not
    /// rotate again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotate_now_values: Vec<String>,

    /// How many on-demand rotations the key has had; AWS allows 25 per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_rotations: Option<u32>,

    /// The key's latest rotations (at most 5, newest first), as ListKeyRotations reports them.
    /// Read when a rotation is due or asked for, not at every resync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotations: Option<Vec<RotationRecord>>,

    /// The key policy the operator builds from `spec.policy` (absent without it): a hash of the
    /// document, its size, and its statements. An Event says when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_policy: Option<GeneratedPolicy>,

    /// The key's last cryptographic use, as KMS records it (GetKeyLastUsage), read at most
    /// once per `--last-usage-interval` (1h by default) and written only when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_usage: Option<KeyUsageRecord>,

    /// Whether the key in KMS is a multi-Region key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_region: Option<bool>,

    /// The key's replicas (`spec.replicaRegions`), one per Region, and those of Regions taken
    /// off the list until their release is done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["region".into()]))]
    pub replicas: Vec<ReplicaStatus>,

    /// IDs of the grants the operator manages, by grant name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grant_ids: BTreeMap<String, String>,

    /// A key creation or adoption that was started but whose key ID was not yet recorded. If
    /// the operator stops inside that window, the next reconcile finds the key by its tags
    /// instead of creating a second one (or leaving a tagged key behind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_intent: Option<CreateIntent>,

    /// When AWS began refusing the operator's calls for want of permission (RFC 3339); absent
    /// while it does not. A refusal is retried for six minutes from here (or from the key's
    /// creation) before the object is Stalled: IAM applies a new key's tags up to five minutes
    /// late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_denied_since: Option<String>,

    /// The `metadata.generation` that the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Reconciling` and `Stalled`, in the kstatus convention read by Flux, Argo CD
    /// and `kubectl wait`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One replica of the key.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// The replica's AWS Region.
    pub region: String,
    /// ARN of the replica (absent until it is made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
    /// The replica's KMS key state (Creating, Enabled, PendingDeletion, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// True when the replica matches the spec (for a Region taken off the list: when it is
    /// released).
    pub ready: bool,
    /// Why it is not ready, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An alias the object waited for, and what claims it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AliasHold {
    /// The `metadata.generation` the object was stalled at.
    pub generation: i64,
    /// The value `kms.boosterpack.io/claim-alias` must have to take the alias once it is free:
    /// written only when the object stalls, so a claim cannot be made in advance.
    pub token: String,
}

/// A key creation or adoption in flight: recorded before CreateKey (or the TagResource that
/// adopts a key) is called.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreateIntent {
    /// Unique token of this attempt, also written as a tag on the key it creates.
    pub token: String,
    /// When the attempt started (RFC 3339).
    pub started_at: String,
    /// For an adoption: the ID of the key being adopted (absent for a creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopting: Option<String>,
    /// The Region the attempt runs in, where a key it left behind is looked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The AWS account the attempt runs in (a KmsAccount's, or the operator's own when
    /// known): a mapping changed before the key is recorded stalls the object instead of
    /// making a second key in the other account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// An on-demand rotation asked for with the `kms.boosterpack.io/rotate-now` annotation.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OnDemandRotation {
    /// The annotation's value.
    pub token: String,
    /// When the operator asked KMS to rotate (RFC 3339), written just before the call.
    pub requested_at: String,
    /// How many on-demand rotations the key had before: a restart that finds the request
    /// unconfirmed takes it as done when the key has more.
    #[serde(default)]
    pub rotations_before: u32,
    /// When KMS took the rotation (RFC 3339); absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<String>,
}

/// The key policy built from `spec.policy`, as put on the key.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedPolicy {
    /// FNV-1a (64 bits, hex) of the document as the operator sends it: it changes when the
    /// document does (AWS reformats what it stores, so it is not a hash of GetKeyPolicy's text).
    pub hash: String,
    /// The document's size in bytes (KMS allows 32768).
    pub bytes: u32,
    /// The `Sid`s of its statements, in order.
    pub statements: Vec<String>,
}

/// The key's last cryptographic use.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyUsageRecord {
    /// The operation (Encrypt, Decrypt, Sign, ...); absent when unused since tracking began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// When it was used (RFC 3339); absent when unused since tracking began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Since when KMS tracks the key's use (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_since: Option<String>,
    /// When the operator read what the fields above say (RFC 3339). Reads that find the same
    /// are not written, so a quiet key causes no status writes; a failed read is a
    /// `LastUsageUnreadable` Warning Event and changes nothing here.
    pub read_at: String,
}

/// One past rotation of the key material.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RotationRecord {
    /// When the material was rotated (RFC 3339).
    pub date: String,
    /// `AUTOMATIC` or `ON_DEMAND`.
    #[serde(rename = "type")]
    pub type_: String,
}

/// One status condition.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// Why the condition has this status, in CamelCase (for example AliasConflict).
    pub reason: String,
    /// What happened and, when something is wrong, what to do about it.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition's status.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}
