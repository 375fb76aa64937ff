//! What each key state allows, per "Key states of AWS KMS keys"
//! (<https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html>); moto allows
//! everything in every state. The state is read from moto (a DescribeKey side call) for each call.
//! - PendingDeletion / PendingReplicaDeletion: management calls that change the key, and
//!   cryptographic calls → `KMSInvalidStateException`. DescribeKey, Get/PutKeyPolicy, List*,
//!   DeleteAlias, Retire/RevokeGrant and CancelKeyDeletion still work.
//! - Disabled: CreateGrant, Enable/DisableKeyRotation and cryptographic calls →
//!   `DisabledException`.
//! - CancelKeyDeletion of a key that is not pending deletion → `KMSInvalidStateException`; a
//!   cancelled deletion leaves the key Disabled (moto 5.2.5 does so; if moto ever leaves it
//!   Enabled, the layer disables it).

use serde_json::json;

use super::upstream::{Message, Upstream};
use super::{KeyInfo, Refusal};

const REFUSED_WHILE_PENDING_DELETION: [&str; 10] = [
    "CreateAlias",
    "CreateGrant",
    "EnableKey",
    "DisableKey",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "TagResource",
    "UntagResource",
    "UpdateKeyDescription",
    "ScheduleKeyDeletion",
];

const REFUSED_WHILE_DISABLED: [&str; 3] = ["CreateGrant", "EnableKeyRotation", "DisableKeyRotation"];

/// Cryptographic operations: refused both while Disabled and while pending deletion.
const CRYPTOGRAPHIC: [&str; 16] = [
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "Sign",
    "Verify",
    "GetPublicKey",
    "DeriveSharedSecret",
    "RotateKeyOnDemand",
    "ReplicateKey",
    "GetParametersForImport",
];

pub fn is_pending_deletion(state: &str) -> bool {
    matches!(state, "PendingDeletion" | "PendingReplicaDeletion")
}

/// Refuses `operation` on `key` if the key's state does not allow it.
pub fn check(operation: &str, key: &KeyInfo) -> Result<(), Refusal> {
    let crypto = CRYPTOGRAPHIC.contains(&operation);
    if is_pending_deletion(&key.state) && (crypto || REFUSED_WHILE_PENDING_DELETION.contains(&operation)) {
        return Err(Refusal::new("KMSInvalidStateException", format!("{} is pending deletion.", key.arn)));
    }
    if key.state == "Disabled" && (crypto || REFUSED_WHILE_DISABLED.contains(&operation)) {
        return Err(Refusal::new("DisabledException", format!("{} is disabled.", key.arn)));
    }
    if operation == "CancelKeyDeletion" && !is_pending_deletion(&key.state) {
        return Err(Refusal::new(
            "KMSInvalidStateException",
            format!("{} is not pending deletion.", key.arn),
        ));
    }
    Ok(())
}

/// After a successful CancelKeyDeletion AWS leaves the key Disabled; makes moto agree.
pub async fn settle_after_cancel(upstream: &Upstream, like: &Message, key_id: &str) -> Option<()> {
    let described = upstream.kms(like, "DescribeKey", json!({"KeyId": key_id})).await?;
    if described.json()["KeyMetadata"]["KeyState"] == "Enabled" {
        upstream.kms(like, "DisableKey", json!({"KeyId": key_id})).await?;
    }
    Some(())
}
