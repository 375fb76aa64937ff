//! The narrow port through which the reconciler talks to KMS, the types that cross it, and the
//! classification of KMS errors. The aws-sdk adapter (`aws.rs`) is one implementation; tests can
//! wrap it to inject failures. Nothing here decides *what* to call: that is `reconcile::plan`.

mod aws;
mod calls;
mod client;
mod error;
mod network;
mod quota;

use std::collections::BTreeMap;

use async_trait::async_trait;

pub use aws::{AwsClients, AwsKms};
pub use calls::{CallObserver, outcome_label};
pub use client::ClientFactory;
pub use error::{ErrorKind, KmsError};
pub use network::NetworkError;
pub use quota::{AWS_QUOTAS, Quotas, parse_overrides};

/// A key as DescribeKey reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDescription {
    pub key_id: String,
    pub arn: String,
    /// KMS key state (Enabled, Disabled, PendingDeletion, ...).
    pub state: String,
    pub description: String,
    pub multi_region: bool,
    /// Whether this is a multi-Region replica (its primary lives in another Region).
    pub replica: bool,
    /// Regions holding a replica of this multi-Region key (every replica, whichever of the
    /// keys is described), in KMS's order.
    pub replica_regions: Vec<String>,
    /// KMS `KeySpec` (SYMMETRIC_DEFAULT, RSA_2048, ...).
    pub key_spec: String,
    /// KMS `KeyUsage` (ENCRYPT_DECRYPT, SIGN_VERIFY, ...).
    pub key_usage: String,
    /// When KMS made the key, if it says.
    pub created_at: Option<k8s_openapi::jiff::Timestamp>,
}

impl KeyDescription {
    /// Whether this key's rotation (automatic or on demand) is set on it: only symmetric
    /// encryption keys, and not replicas, whose material AWS rotates with their primary's. A
    /// KMS that does not report the spec is taken to hold a symmetric key.
    pub fn rotatable(&self) -> bool {
        matches!(self.key_spec.as_str(), "" | "SYMMETRIC_DEFAULT") && !self.replica
    }
}

/// Automatic rotation as GetKeyRotationStatus reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub enabled: bool,
    /// Days between rotations, while rotation is enabled.
    pub period_days: Option<i32>,
    /// When KMS will next rotate the key material (RFC 3339), while rotation is enabled.
    pub next_rotation: Option<String>,
    /// When an on-demand rotation still in progress started (RFC 3339).
    pub on_demand_started: Option<String>,
}

/// The key's last cryptographic use, as GetKeyLastUsage reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastUsage {
    /// The operation (Encrypt, Decrypt, Sign, ...); absent when unused since tracking began.
    pub operation: Option<String>,
    /// When (RFC 3339); absent when unused since tracking began.
    pub at: Option<String>,
    /// Since when KMS tracks the key's use (RFC 3339).
    pub tracking_since: Option<String>,
}

/// One past rotation of the key material, as ListKeyRotations reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastRotation {
    /// When the material was rotated (RFC 3339).
    pub date: String,
    /// `AUTOMATIC` or `ON_DEMAND`.
    pub kind: String,
}

/// What a grant allows, to whom, under which constraints, and who may retire it: what
/// CreateGrant is given and ListGrants reports, besides the grant's name and ID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantTerms {
    /// An IAM principal's ARN; or else `grantee_service_principal`.
    pub grantee_principal: Option<String>,
    /// An AWS service principal (`logs.amazonaws.com`, ...).
    pub grantee_service_principal: Option<String>,
    pub operations: Vec<String>,
    pub encryption_context_equals: BTreeMap<String, String>,
    pub encryption_context_subset: BTreeMap<String, String>,
    /// The `SourceArn` constraint: the one resource a service principal may act for.
    pub source_arn: Option<String>,
    pub retiring_principal: Option<String>,
    pub retiring_service_principal: Option<String>,
}

/// A grant as ListGrants reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantInfo {
    pub grant_id: String,
    pub name: Option<String>,
    pub terms: GrantTerms,
}

/// A key found by its tags, with all of its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedKey {
    pub key_id: String,
    pub tags: BTreeMap<String, String>,
}

/// Everything CreateKey is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKey {
    pub description: String,
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub multi_region: bool,
    /// KMS `KeySpec` and `KeyUsage`, by their wire names.
    pub key_spec: String,
    pub key_usage: String,
}

/// What ReplicateKey gives a new replica besides the primary's material and spec: AWS copies
/// none of the primary's description, policy or tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReplica {
    pub region: String,
    pub description: String,
    /// `None`: AWS's default key policy.
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Everything CreateGrant is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGrant {
    pub name: String,
    pub terms: GrantTerms,
}

/// The KMS calls the operator makes. Key arguments are bare key IDs, never ARNs.
#[async_trait]
pub trait KmsPort: Send + Sync {
    /// `None` when no such key exists.
    async fn describe_key(&self, key_id: &str) -> Result<Option<KeyDescription>, KmsError>;
    /// The key an alias points at (`alias/...`), `None` when the alias does not exist.
    async fn alias_target(&self, alias_name: &str) -> Result<Option<String>, KmsError>;
    async fn list_tags(&self, key_id: &str) -> Result<BTreeMap<String, String>, KmsError>;
    async fn rotation(&self, key_id: &str) -> Result<Rotation, KmsError>;
    /// The key's last cryptographic use.
    async fn last_usage(&self, key_id: &str) -> Result<LastUsage, KmsError>;
    /// The key's past rotations, oldest first.
    async fn past_rotations(&self, key_id: &str) -> Result<Vec<PastRotation>, KmsError>;
    async fn key_policy(&self, key_id: &str) -> Result<Option<String>, KmsError>;
    /// The ARN of some alias of the account and Region (AWS lists its predefined `alias/aws/*`
    /// ones in every account), which names the account and partition; `None` if none is listed.
    async fn any_alias_arn(&self) -> Result<Option<String>, KmsError>;
    /// Names of the aliases that point at the key.
    async fn list_aliases(&self, key_id: &str) -> Result<Vec<String>, KmsError>;
    /// Every alias of the account and Region that points at a key, with that key's ID: one
    /// call per 100 aliases, however many keys there are.
    async fn account_aliases(&self) -> Result<BTreeMap<String, String>, KmsError>;
    async fn list_grants(&self, key_id: &str) -> Result<Vec<GrantInfo>, KmsError>;
    /// IDs of every key in the account and Region.
    async fn list_key_ids(&self) -> Result<Vec<String>, KmsError>;
    /// Keys carrying the tag `key` = `value`, found with the Resource Groups Tagging API
    /// (`tag:GetResources`): a call per 100 keys found, not per key in the account. Eventually
    /// consistent: a key tagged moments ago may be missing.
    async fn find_tagged_keys(&self, key: &str, value: &str) -> Result<Vec<TaggedKey>, KmsError>;

    async fn create_key(&self, key: &NewKey) -> Result<KeyDescription, KmsError>;
    /// Waits for a turn of `operation`'s client-side quota without calling it: for a call
    /// made through another port that AWS also counts here (ReplicateKey spends CreateKey's
    /// quota in the replica Region). No limits, no wait, by default.
    async fn spend_quota(&self, _operation: &'static str) {}
    /// Makes a replica of the multi-Region primary key `key_id` (a key of this port's Region)
    /// in `replica.region`; returns the replica as ReplicateKey describes it.
    async fn replicate_key(&self, key_id: &str, replica: &NewReplica) -> Result<KeyDescription, KmsError>;
    async fn update_description(&self, key_id: &str, description: &str) -> Result<(), KmsError>;
    async fn put_policy(&self, key_id: &str, policy: &str) -> Result<(), KmsError>;
    async fn tag(&self, key_id: &str, tags: &BTreeMap<String, String>) -> Result<(), KmsError>;
    async fn untag(&self, key_id: &str, keys: &[String]) -> Result<(), KmsError>;
    async fn create_alias(&self, alias_name: &str, key_id: &str) -> Result<(), KmsError>;
    async fn delete_alias(&self, alias_name: &str) -> Result<(), KmsError>;
    /// Enables rotation every `period_days` (AWS's default when `None`), or disables it.
    async fn set_rotation(
        &self,
        key_id: &str,
        enabled: bool,
        period_days: Option<i32>,
    ) -> Result<(), KmsError>;
    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError>;
    /// Starts a rotation of the key material now (RotateKeyOnDemand).
    async fn rotate_on_demand(&self, key_id: &str) -> Result<(), KmsError>;
    /// Returns the new grant's ID.
    async fn create_grant(&self, key_id: &str, grant: &NewGrant) -> Result<String, KmsError>;
    async fn revoke_grant(&self, key_id: &str, grant_id: &str) -> Result<(), KmsError>;
    async fn schedule_deletion(&self, key_id: &str, window_days: i32) -> Result<(), KmsError>;
    async fn cancel_deletion(&self, key_id: &str) -> Result<(), KmsError>;
}
