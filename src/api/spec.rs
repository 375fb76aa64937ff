use std::collections::BTreeMap;

use kube::core::{Message, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::export::ExportTo;
use super::key_spec::{self, KeySpec, KeyUsage};
use super::lifecycle::{AdoptSpec, DeletionPolicy, ManagementPolicy};
use super::status::KmsKeyStatus;

/// Days between rotations when the spec leaves `rotationPeriodInDays` out (AWS's default).
pub const DEFAULT_ROTATION_PERIOD_DAYS: i32 = 365;

/// Description given to keys whose spec leaves `keyDescription` out.
pub const DEFAULT_DESCRIPTION: &str = "Managed by kms-operator";

/// An AWS KMS key (symmetric unless `keySpec` says otherwise), its alias, rotation, enabled
/// state, key policy, tags and grants.
///
/// The operator creates the key when this object is created, keeps AWS matching the spec, and
/// schedules the key for deletion (after `deletionWindowInDays`) when this object is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kms.boosterpack.io",
    version = "v1alpha1",
    kind = "KmsKey",
    namespaced,
    status = "KmsKeyStatus",
    shortname = "kms",
    category = "aws",
    doc = "An AWS KMS key managed by kms-operator: the key, its aliases, rotation, enabled state, policy, tags and grants. Annotations: kms.boosterpack.io/rotate-now=<a new value> rotates the material now, once per value; kms.boosterpack.io/paused=true stops every KMS call; kms.boosterpack.io/deletion-protection=true holds a deletion; kms.boosterpack.io/resync-interval=<30m, 6h, ...> sets how often the key is checked; kms.boosterpack.io/claim-alias=<status.aliasHold.token> takes an alias this object was stalled on once it is free.",
    printcolumn = r#"{"name":"Alias","type":"string","jsonPath":".status.aliasName"}"#,
    printcolumn = r#"{"name":"Key ID","type":"string","jsonPath":".status.keyId"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.keyState"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Key ARN","type":"string","priority":1,"jsonPath":".status.keyArn"}"#,
    printcolumn = r#"{"name":"Spec","type":"string","priority":1,"jsonPath":".status.keySpec"}"#,
    validation = Rule::new("!has(self.status) || !has(self.status.keyId) || (has(self.spec.adopt) ? (has(oldSelf.spec.adopt) && (self.spec.adopt == oldSelf.spec.adopt || (oldSelf.spec.managementPolicy == 'ObserveOnly' && !(has(self.status.adopted) && self.status.adopted)))) : !has(oldSelf.spec.adopt))").message("spec.adopt cannot be added, changed or removed once status records a key (an ObserveOnly object that has not adopted may change it)"),
    validation = Rule::new("self.spec.managementPolicy != 'ObserveOnly' || has(self.spec.adopt) || (has(self.status) && has(self.status.keyId))").message("managementPolicy ObserveOnly needs spec.adopt or a key already recorded in status: there is nothing to observe otherwise")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.rotationPeriodInDays) || self.enableKeyRotation").message("rotationPeriodInDays needs enableKeyRotation: true"),
    validation = Rule::new("!has(self.additionalAliases) || !(self.aliasName in self.additionalAliases)").message("additionalAliases must not repeat aliasName"),
    validation = key_usage_rule(),
    validation = rotation_rule(),
    validation = grant_operations_rule(),
    validation = grant_context_rule(),
    validation = Rule::new("!has(self.replicaRegions) || size(self.replicaRegions) == 0 || (has(self.multiRegion) && self.multiRegion)").message("replicaRegions needs multiRegion: true: only a multi-Region key can have replicas"),
    validation = Rule::new("!has(self.replicaRegions) || !has(self.region) || !(self.region in self.replicaRegions)").message("replicaRegions must not name the key's own region"),
)]
pub struct KmsKeySpec {
    /// Name of the key's alias, without the `alias/` prefix (KMS's `alias/<aliasName>`).
    /// 1-250 characters of letters, digits, `/`, `_` and `-`. Names starting with `aws/` are
    /// reserved by AWS, and a leading `alias/` is refused rather than stripped, so that the
    /// name in the manifest is exactly the name shown in status without its prefix. Renaming
    /// creates the new alias, then deletes the old one. An alias already used by a key this
    /// object does not own is never moved: the object becomes Stalled (AliasConflict).
    #[schemars(length(min = 1, max = 250), regex(pattern = r"^[a-zA-Z0-9/_-]+$"))]
    #[x_kube(
        validation = Rule::new("!self.startsWith('aws/')").message("aliasName must not start with 'aws/': that prefix is reserved by AWS"),
        validation = Rule::new("!self.startsWith('alias/')").message("aliasName is given without the 'alias/' prefix"),
    )]
    pub alias_name: String,

    /// More aliases for the key, without the `alias/` prefix, with the rules of `aliasName`
    /// (at most 49: AWS allows 50 aliases per key). Each is created, and deleted when it leaves
    /// this list, like `aliasName`; one already used by a key this object does not own is never
    /// moved (Stalled, AliasConflict). Other aliases on the key are left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 49), inner(length(min = 1, max = 250), regex(pattern = r"^[a-zA-Z0-9/_-]+$")))]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(a, !a.startsWith('aws/'))").message("additionalAliases must not start with 'aws/': that prefix is reserved by AWS"),
        validation = Rule::new("self.all(a, !a.startsWith('alias/'))").message("additionalAliases are given without the 'alias/' prefix"),
    )]
    pub additional_aliases: Vec<String>,

    /// Description of the key (at most 8192 characters).
    #[serde(default = "default_description")]
    #[schemars(length(max = 8192))]
    pub key_description: String,

    /// Days (7-30) that AWS waits, after this object is deleted, before it deletes the key
    /// material. During the window the key can be recovered with CancelKeyDeletion.
    #[serde(default = "default_deletion_window")]
    #[schemars(range(min = 7, max = 30))]
    pub deletion_window_in_days: i32,

    /// The kind of key material: `SYMMETRIC_DEFAULT` (AES-256, the default), `RSA_2048/3072/4096`,
    /// `ECC_NIST_P256/P384/P521`, `ECC_SECG_P256K1`, `ECC_NIST_EDWARDS25519`,
    /// `HMAC_224/256/384/512`, `ML_DSA_44/65/87`, `ML_KEM_512/768/1024` or `SM2` (China Regions
    /// only). Fixed when the key is created. Only `SYMMETRIC_DEFAULT` keys rotate, so any other
    /// spec needs `enableKeyRotation: false`.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("keySpec is immutable after creation: KMS cannot change a key's material"))]
    pub key_spec: KeySpec,

    /// What the key is for: `ENCRYPT_DECRYPT` (the default, as in AWS), `SIGN_VERIFY`,
    /// `GENERATE_VERIFY_MAC` (HMAC keys), `KEY_AGREEMENT` (ECDH) or `ENCAPSULATE_DECAPSULATE`
    /// (ML-KEM). It must suit `keySpec`: symmetric keys encrypt; RSA keys encrypt or sign; NIST
    /// ECC keys sign or agree keys; ECC_SECG_P256K1, Ed25519 and ML-DSA keys sign; HMAC keys make
    /// MACs; ML-KEM keys encapsulate; SM2 keys do all three of encrypt, sign and agree. Fixed
    /// when the key is created.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("keyUsage is immutable after creation: KMS cannot change what a key is for"))]
    pub key_usage: KeyUsage,

    /// Whether AWS rotates the key material automatically (every `rotationPeriodInDays`,
    /// yearly by default). AWS rotates only `SYMMETRIC_DEFAULT` keys: any other `keySpec`
    /// needs `false` here.
    #[serde(default = "default_true")]
    pub enable_key_rotation: bool,

    /// Days between automatic rotations of the key material, 90-2560. Only with
    /// `enableKeyRotation: true`; when absent, AWS's default of 365 days. A period changed
    /// outside the operator is put back. Status shows the period and the next rotation date as
    /// KMS reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 90, max = 2560))]
    pub rotation_period_in_days: Option<i32>,

    /// Days without cryptographic use after which the operator warns (a `KeyUnused` Warning
    /// Event and the `kms_operator_unused_key_warnings_total` metric), checked whenever the
    /// key's last use is read (hourly by default; the operator's `--last-usage-interval`). A key never used counts from when KMS began
    /// tracking it. 1-3650; when absent, no warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub unused_days: Option<u32>,

    /// Whether the key is enabled. A disabled key cannot be used for cryptography or receive
    /// new grants; rotation changes wait until it is enabled again.
    #[serde(default = "default_true")]
    pub is_enabled: bool,

    /// AWS Region of the key (`eu-west-1`, ...); by default the operator's own Region, or for
    /// a key adopted by ARN (`adopt.keyId`), the ARN's Region (naming another is InvalidSpec). Fixed
    /// once set, as a key cannot move between Regions: a change is refused, and a Region added
    /// later that is not the one the key lives in (`status.region`) makes the object Stalled
    /// (RegionChanged). The operator may be limited to some Regions (`--allowed-regions`); a
    /// new key in any other is refused (RegionNotAllowed) before anything is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("region is immutable: a KMS key cannot move between Regions"))]
    pub region: Option<String>,

    /// Whether the key is a multi-Region primary key. Fixed when the key is created: it cannot
    /// be changed afterwards.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("multiRegion is immutable after creation"))]
    pub multi_region: bool,

    /// Regions to keep a replica of this multi-Region key in (at most 20, each once, never the
    /// key's own Region; needs `multiRegion: true`). Each replica is made with ReplicateKey,
    /// given the spec's description, policy and tags (AWS copies none of them), then gets the
    /// aliases, enabled state and grants in its Region; drift there is put back as on the
    /// primary. Rotation is the primary's: AWS rotates the shared material. The object is Ready
    /// when every replica is (`status.replicas`). A Region taken off the list has its replica
    /// released as a deleted object's key is: scheduled for deletion after
    /// `deletionWindowInDays`, or with `deletionPolicy: Retain` left with its ownership tags
    /// off. Deleting the object lets go of the replicas first, then the primary. Only
    /// `managementPolicy: Full` objects manage replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 20),
        inner(length(min = 1, max = 32), regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub replica_regions: Vec<String>,

    /// The key policy, as a JSON document (at most 32768 bytes). When absent, the key gets the
    /// AWS default policy, which lets IAM policies of the key's account grant access. Policies
    /// are compared as parsed JSON, so AWS's reformatting never causes an update. A policy that
    /// is not a JSON object is reported as Stalled (InvalidSpec) and nothing is sent to AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32768))]
    pub key_policy: Option<String>,

    /// Key policy statements built by the operator from lists of principals, merged with
    /// `keyPolicy`'s statements by `Sid` (a `keyPolicy` statement with the same `Sid` wins).
    /// When absent, the policy is `keyPolicy`, or AWS's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyBuilder>,

    /// Tags for the key: at most 46, because AWS allows 50 tags per key and the operator
    /// keeps 4 of its own (`kms.boosterpack.io/owner`, `uid`, `cluster` and `create-token`).
    /// Keys are 1-128 characters and must not start with `aws:` or `kms.boosterpack.io/`;
    /// values are at most 256 characters. These tags plus the operator's are the whole truth:
    /// any other tag found on the key is removed, except one under `kms.boosterpack.io/` that
    /// the operator did not write, which is reported in the Ready condition and left alone.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 46, "additionalProperties" = {"type": "string", "maxLength": 256}))]
    #[x_kube(
        validation = Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128)").message("tag keys must be 1-128 characters"),
        validation = Rule::new("self.all(k, !k.startsWith('aws:'))").message("tag keys must not start with 'aws:': that prefix is reserved by AWS"),
        validation = Rule::new("self.all(k, !k.startsWith('kms.boosterpack.io/'))").message("tag keys must not start with 'kms.boosterpack.io/': the operator uses that prefix for ownership tags"),
    )]
    pub tags: BTreeMap<String, String>,

    /// Whether the operator manages grants on the key. When false, `grants` is ignored and any
    /// grant the operator created earlier is revoked (grants made by others are never touched).
    #[serde(default)]
    pub create_grants: bool,

    /// Grants to keep on the key when `createGrants` is true, keyed by `name`. A grant whose
    /// fields change is replaced: the new grant is created first, then the old one revoked.
    #[serde(default)]
    #[schemars(length(max = 50))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub grants: Vec<GrantSpec>,

    /// Take over an existing key (made by Terraform, the console, or another cluster) instead
    /// of creating one. The key is tagged as this object's, then made to match the spec like
    /// any other: tags not in the spec are removed, a disabled key is enabled unless
    /// `isEnabled: false`, and deleting the object then schedules the key's deletion unless
    /// `deletionPolicy: Retain`. A key tagged for another object or cluster, or pending
    /// deletion, is refused (Stalled) and left untouched. The operator adopts only in
    /// namespaces its administrator allows (`--adopt-namespaces`, chart `adoption.namespaces`).
    /// Cannot be added, changed or removed once status records a key (an `ObserveOnly` object
    /// that has not adopted may still point it elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<AdoptSpec>,

    /// What deleting this object does to the key: `Delete` deletes the aliases this object
    /// made and schedules the key's deletion after `deletionWindowInDays`; `Retain` keeps the
    /// key, its aliases and its policy, and only removes the operator's ownership tags, so
    /// another object (in this or another cluster) can adopt it. When absent, the operator's
    /// default (`--default-deletion-policy`, chart `defaultDeletionPolicy`: `Delete` unless
    /// the administrator says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// With `deletionPolicy: Retain`, whether the grants the operator made stay on the key
    /// (default true). With false they are revoked before the key is let go.
    #[serde(default = "default_true")]
    pub retain_grants: bool,

    /// `Full` (the default) makes the key match the spec. `ObserveOnly` never changes the key:
    /// it reads it (named by `adopt`, or the key status records), fills status, and lists in
    /// status `plan` what `Full` would change; Ready when that list is empty, Reconciling
    /// (DriftDetected) otherwise. Deleting an `ObserveOnly` object never touches the key.
    /// Switching to `Full` makes exactly the listed changes.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// Publish the key's outputs (`keyId`, `keyArn`, `aliasName`, `additionalAliases`) in a
    /// ConfigMap next to this object, for applications that read configuration rather than
    /// KmsKeys. Only when the operator's administrator enables it (`--export-to-config-maps`,
    /// chart `exportToConfigMaps`, which also grants the ConfigMap rights); otherwise the object
    /// is Stalled (ExportNotEnabled). Removing it, or renaming the ConfigMap, deletes the one
    /// this object wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_to: Option<ExportTo>,
}

/// Principals the operator writes key policy statements for. Each list holds IAM principal
/// ARNs (accounts, users, roles), at most 50, no repeats.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyBuilder {
    /// Whether the policy keeps AWS's default statement (Sid `Enable IAM User Permissions`: the
    /// key's account root may use `kms:*`, so IAM policies of the account grant access).
    /// Default true. With false, only the listed principals have access: one of them must be
    /// allowed to put the policy (an administrator), or AWS refuses it as a lockout; list the
    /// operator's own role among `keyAdministrators`.
    #[serde(default = "default_true")]
    pub enable_default_policy: bool,

    /// Principals that manage the key (Sid `KeyAdministration`: create, describe, enable, list,
    /// put, update, revoke, disable, get, delete, tag, untag, schedule and cancel deletion,
    /// rotate). They get no cryptographic operation, but `kms:Create*` includes CreateGrant and
    /// `kms:Put*` PutKeyPolicy, so an administrator can give itself use, as with AWS's own
    /// key-administrator statement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(regex(pattern = r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$")))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub key_administrators: Vec<String>,

    /// Principals that use the key for cryptography (Sid `KeyUsage`): the operations its
    /// `keyUsage` allows (for a symmetric key: Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*),
    /// and DescribeKey.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(regex(pattern = r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$")))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub key_users: Vec<String>,

    /// Principals that may give AWS services (EBS, RDS, ...) grants on the key for resources
    /// they manage (Sid `KeyServiceUsage`: CreateGrant, ListGrants and RevokeGrant when
    /// `kms:GrantIsForAWSResource` is true).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(regex(pattern = r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$")))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub key_service_users: Vec<String>,
}

/// One grant on the key: to an IAM principal (`granteePrincipal`), or to an AWS service
/// (`granteeServicePrincipal`, which AWS requires to be limited to one `sourceArn` and to name
/// who may retire the grant).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.granteePrincipal) != has(self.granteeServicePrincipal)").message("a grant names exactly one of granteePrincipal and granteeServicePrincipal"),
    validation = Rule::new("!has(self.granteeServicePrincipal) || has(self.sourceArn)").message("granteeServicePrincipal needs sourceArn: AWS limits a grant for a service to one resource"),
    validation = Rule::new("!has(self.granteeServicePrincipal) || has(self.retiringPrincipal) || has(self.retiringServicePrincipal)").message("granteeServicePrincipal needs retiringPrincipal or retiringServicePrincipal: AWS requires someone who can retire the grant"),
    validation = Rule::new("!has(self.sourceArn) || has(self.granteeServicePrincipal)").message("sourceArn is only for grants to a granteeServicePrincipal"),
    validation = Rule::new("!has(self.retiringPrincipal) || !has(self.retiringServicePrincipal)").message("a grant names at most one of retiringPrincipal and retiringServicePrincipal"),
    validation = Rule::new("!has(self.encryptionContextEquals) || !has(self.encryptionContextSubset)").message("a grant has at most one of encryptionContextEquals and encryptionContextSubset"),
)]
pub struct GrantSpec {
    /// Name of the grant, unique within this key: 1-243 characters of letters, digits, `:`,
    /// `/`, `_` and `-`. In AWS the grant is named `kms-operator/<name>`, which is how the
    /// operator tells its grants from those created by others.
    #[schemars(length(min = 1, max = 243), regex(pattern = r"^[a-zA-Z0-9:/_-]+$"))]
    pub name: String,

    /// The IAM principal (an ARN: account, user, role, federated or assumed-role user) given
    /// the operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub grantee_principal: Option<String>,

    /// The AWS service principal given the operations (for example `logs.amazonaws.com`),
    /// instead of `granteePrincipal`. Needs `sourceArn`, and `retiringPrincipal` or
    /// `retiringServicePrincipal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$"))]
    pub grantee_service_principal: Option<String>,

    /// KMS operations the grant allows (at least one, no repeats). They must suit the key:
    /// DescribeKey, CreateGrant and RetireGrant on any key; Encrypt, Decrypt, ReEncryptFrom/To
    /// and the GenerateDataKey family on symmetric keys; Encrypt, Decrypt, ReEncryptFrom/To and
    /// GetPublicKey on RSA/SM2 encryption keys; Sign, Verify and GetPublicKey on signing keys;
    /// GenerateMac and VerifyMac on HMAC keys; DeriveSharedSecret and GetPublicKey on key
    /// agreement keys; Encapsulate, Decapsulate and GetPublicKey on ML-KEM keys.
    #[schemars(length(min = 1, max = 19))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub operations: Vec<GrantOperation>,

    /// The grant allows the operations only when the request's encryption context equals this
    /// map exactly (at most 8 pairs, values at most 384 characters). Only on `SYMMETRIC_DEFAULT`
    /// keys: no other key takes an encryption context.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 8, "additionalProperties" = {"type": "string", "maxLength": 384}))]
    pub encryption_context_equals: BTreeMap<String, String>,

    /// The grant allows the operations only when the request's encryption context includes
    /// these pairs (it may have more). At most 8 pairs; not with `encryptionContextEquals`;
    /// only on `SYMMETRIC_DEFAULT` keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 8, "additionalProperties" = {"type": "string", "maxLength": 384}))]
    pub encryption_context_subset: BTreeMap<String, String>,

    /// The one resource (an ARN) on whose behalf `granteeServicePrincipal` may use the grant
    /// (the `SourceArn` grant constraint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^arn:aws[a-z-]*:"))]
    pub source_arn: Option<String>,

    /// The IAM principal (an ARN) that may retire the grant, besides the grantee's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$"))]
    pub retiring_principal: Option<String>,

    /// The AWS service principal that may retire the grant (for example
    /// `logs.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$"))]
    pub retiring_service_principal: Option<String>,
}

/// A KMS operation that a grant can allow.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantOperation {
    Decrypt,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    ReEncryptFrom,
    ReEncryptTo,
    Sign,
    Verify,
    GetPublicKey,
    CreateGrant,
    RetireGrant,
    DescribeKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateMac,
    VerifyMac,
    DeriveSharedSecret,
    Encapsulate,
    Decapsulate,
}

impl GrantOperation {
    /// The operation's name on the KMS wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decrypt => "Decrypt",
            Self::Encrypt => "Encrypt",
            Self::GenerateDataKey => "GenerateDataKey",
            Self::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Self::ReEncryptFrom => "ReEncryptFrom",
            Self::ReEncryptTo => "ReEncryptTo",
            Self::Sign => "Sign",
            Self::Verify => "Verify",
            Self::GetPublicKey => "GetPublicKey",
            Self::CreateGrant => "CreateGrant",
            Self::RetireGrant => "RetireGrant",
            Self::DescribeKey => "DescribeKey",
            Self::GenerateDataKeyPair => "GenerateDataKeyPair",
            Self::GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
            Self::GenerateMac => "GenerateMac",
            Self::VerifyMac => "VerifyMac",
            Self::DeriveSharedSecret => "DeriveSharedSecret",
            Self::Encapsulate => "Encapsulate",
            Self::Decapsulate => "Decapsulate",
        }
    }
}

/// The spec's `keyUsage` is one its `keySpec` allows.
fn key_usage_rule() -> Rule {
    let allowed = key_spec::cel_usages_of_spec();
    Rule::new(format!("self.keyUsage in {allowed}")).field_path(".keyUsage").message(Message::Expression(
        "'keyUsage ' + self.keyUsage + ' does not suit keySpec ' + self.keySpec".to_owned(),
    ))
}

/// Automatic rotation only where AWS rotates.
fn rotation_rule() -> Rule {
    Rule::new("!self.enableKeyRotation || self.keySpec == 'SYMMETRIC_DEFAULT'")
        .field_path(".enableKeyRotation")
        .message(Message::Expression(
            "'enableKeyRotation must be false for keySpec ' + self.keySpec + ': AWS rotates only SYMMETRIC_DEFAULT keys'"
                .to_owned(),
        ))
}

/// Grant operations the key can do (checked only once the usage suits the spec, so that a
/// wrong usage gets its own message).
fn grant_operations_rule() -> Rule {
    let usage_fits = format!("self.keyUsage in {}", key_spec::cel_usages_of_spec());
    let allowed = key_spec::cel_grant_operations();
    Rule::new(format!("!({usage_fits}) || self.grants.all(g, g.operations.all(o, o in {allowed}))"))
        .field_path(".grants")
        .message(Message::Expression(format!(
            "'a grant allows an operation that a ' + self.keySpec + ' ' + self.keyUsage + ' key cannot do; it allows ' + {}",
            key_spec::cel_grant_operations_text()
        )))
}

/// Encryption-context constraints only on keys that take an encryption context.
fn grant_context_rule() -> Rule {
    Rule::new(
        "self.keySpec == 'SYMMETRIC_DEFAULT' || self.grants.all(g, (!has(g.encryptionContextEquals) || size(g.encryptionContextEquals) == 0) && (!has(g.encryptionContextSubset) || size(g.encryptionContextSubset) == 0))",
    )
    .field_path(".grants")
    .message(Message::Expression(
        "'grants on a ' + self.keySpec + ' key cannot have an encryption context constraint: only SYMMETRIC_DEFAULT keys take an encryption context'"
            .to_owned(),
    ))
}

fn default_description() -> String {
    DEFAULT_DESCRIPTION.to_owned()
}

fn default_deletion_window() -> i32 {
    30
}

fn default_true() -> bool {
    true
}
