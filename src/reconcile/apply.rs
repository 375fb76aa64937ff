//! Runs planned actions through the KMS port, in order, stopping at the first failure.
//! CreateKey is wrapped in the crash-safe sequence: record the intent, create, record the ID.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;

use crate::kms::{ErrorKind, KeyDescription, KmsPort};

use super::ownership::TAG_CREATE_TOKEN;
use super::plan::Action;
use super::plan::on_demand::RotationRequest;
use super::writer::{Error, StatusWriter};

/// A key whose ID this run wrote to status.
#[derive(Debug)]
pub struct RecordedKey {
    pub key_id: String,
    /// When the ID was written.
    pub at: Timestamp,
}

/// What a run of actions did, up to the first failure.
#[derive(Debug, Default)]
pub struct Applied {
    /// The failure that stopped the run; the fields above it say what was done before.
    pub failed: Option<Error>,
    /// The key this run recorded in status: one it created, or one an interrupted create left.
    pub recorded: Option<RecordedKey>,
    /// The key this run created, as CreateKey described it.
    pub created: Option<KeyDescription>,
    /// Whether this run tagged an adopted key as the object's.
    pub adopted: bool,
    /// Grant IDs CreateGrant answered with whose revoke was planned: KMS took the spec's grant
    /// for one it has (the revoke was skipped).
    pub confirmed_grants: Vec<String>,
    /// The on-demand rotation this run asked for and KMS took, with when it took it.
    pub rotated_on_demand: Option<(RotationRequest, Timestamp)>,
    /// One line per change, for events and logs.
    pub changes: Vec<String>,
}

/// Runs `actions` against the key `key_id` (absent only before the key exists), stopping at
/// the first failure.
pub async fn apply(
    kms: &dyn KmsPort,
    writer: &dyn StatusWriter,
    key_id: Option<&str>,
    actions: &[Action],
) -> Applied {
    let mut applied = Applied::default();
    if let Err(err) = apply_all(kms, writer, key_id, actions, &mut applied).await {
        applied.failed = Some(err);
    }
    applied
}

async fn apply_all(
    kms: &dyn KmsPort,
    writer: &dyn StatusWriter,
    key_id: Option<&str>,
    actions: &[Action],
    applied: &mut Applied,
) -> Result<(), Error> {
    // Grant IDs that CreateGrant answered in this run. AWS answers a CreateGrant that repeats
    // an existing grant's name and parameters with that grant's ID; revoking it afterwards, as
    // the replacement of a grant KMS reports in another form, would remove the grant itself.
    let mut granted: BTreeSet<String> = BTreeSet::new();
    for action in actions {
        match action {
            Action::CreateKey { key, token } => {
                let created = create_key(kms, writer, key, token).await?;
                applied.changes.push(format!("created key {}", created.key_id));
                applied.recorded = Some(record(writer, &created).await?);
                applied.created = Some(created);
            }
            Action::Adopt { tags, token } => {
                let key_id = key_id.expect("adoption is planned on an existing key");
                adopt_key(kms, writer, key_id, tags, token).await?;
                applied.adopted = true;
                applied.changes.push(format!("adopted key {key_id}: tagged it as this object's"));
            }
            Action::RecordKey(key) => {
                applied.recorded = Some(record(writer, key).await?);
                applied.changes.push(match applied.adopted {
                    true => format!("recorded key {}", key.key_id),
                    false => format!("adopted key {} left by an interrupted create", key.key_id),
                });
            }
            Action::CreateGrant(grant) => {
                let key_id = key_id.expect("grants are planned on an existing key");
                let id = kms.create_grant(key_id, grant).await?;
                applied.changes.push(format!("created grant {} ({id})", grant.name));
                granted.insert(id);
            }
            Action::RotateOnDemand { token, rotations_before } => {
                let key_id = key_id.expect("rotations are planned on an existing key");
                writer.record_rotation_request(token, *rotations_before).await?;
                // A rotation in progress or due within minutes is a ConflictException: retried
                // later (a restarted request already taken is found by counting, not by this).
                kms.rotate_on_demand(key_id).await?;
                let request = RotationRequest {
                    token: token.clone(),
                    rotations_before: *rotations_before,
                    rotated: true,
                };
                applied.rotated_on_demand = Some((request, Timestamp::now()));
                applied.changes.push(format!("rotated the key material on demand ({token})"));
            }
            Action::RevokeGrant { grant_id, .. } if granted.contains(grant_id) => {
                applied.confirmed_grants.push(grant_id.clone());
            }
            action => {
                let key_id = key_id.expect("the plan acts on an existing key only after CreateKey");
                applied.changes.push(apply_one(kms, key_id, action).await?);
            }
        }
    }
    Ok(())
}

/// CreateKey between an intent written before it and, when KMS refuses, forgotten after it.
async fn create_key(
    kms: &dyn KmsPort,
    writer: &dyn StatusWriter,
    key: &crate::kms::NewKey,
    token: &str,
) -> Result<KeyDescription, Error> {
    writer.record_intent(token, None).await?;
    match kms.create_key(key).await {
        Ok(created) => Ok(created),
        Err(err) => {
            // KMS answered with a refusal, so no key exists: forget the attempt. Without an
            // answer the key may exist, and the intent stays for adoption.
            if err.code.is_some() && err.kind != ErrorKind::Transient {
                writer.clear_intent().await?;
            }
            Err(err.into())
        }
    }
}

/// TagResource with the ownership tags and the attempt's token, between an intent written
/// before it and, when KMS refuses, forgotten after it.
async fn adopt_key(
    kms: &dyn KmsPort,
    writer: &dyn StatusWriter,
    key_id: &str,
    tags: &BTreeMap<String, String>,
    token: &str,
) -> Result<(), Error> {
    writer.record_intent(token, Some(key_id)).await?;
    let mut tags = tags.clone();
    tags.insert(TAG_CREATE_TOKEN.to_owned(), token.to_owned());
    match kms.tag(key_id, &tags).await {
        Ok(()) => Ok(()),
        Err(err) => {
            if err.code.is_some() && err.kind != ErrorKind::Transient {
                writer.clear_intent().await?;
            }
            Err(err.into())
        }
    }
}

async fn record(writer: &dyn StatusWriter, key: &KeyDescription) -> Result<RecordedKey, Error> {
    let at = writer.record_key(key).await?;
    Ok(RecordedKey { key_id: key.key_id.clone(), at })
}

/// Runs one action on the existing key `key_id`; the change it made, for events and logs.
pub async fn apply_one(kms: &dyn KmsPort, key_id: &str, action: &Action) -> Result<String, Error> {
    let change = match action {
        Action::CreateKey { .. }
        | Action::RecordKey(_)
        | Action::RotateOnDemand { .. }
        | Action::Adopt { .. } => {
            unreachable!("handled by apply")
        }
        Action::CancelDeletion => {
            kms.cancel_deletion(key_id).await?;
            "cancelled a deletion scheduled outside the operator".to_owned()
        }
        Action::SetEnabled(on) => {
            kms.set_enabled(key_id, *on).await?;
            format!("{} the key", if *on { "enabled" } else { "disabled" })
        }
        Action::UpdateDescription(text) => {
            kms.update_description(key_id, text).await?;
            "updated the description".to_owned()
        }
        Action::PutPolicy { policy, statements } => {
            kms.put_policy(key_id, policy).await?;
            match statements.is_empty() {
                true => "updated the key policy".to_owned(),
                false => format!("updated the key policy (statements differing: {})", statements.join(", ")),
            }
        }
        Action::Tag(tags) => {
            kms.tag(key_id, tags).await?;
            format!("set tags {}", tags.keys().cloned().collect::<Vec<_>>().join(", "))
        }
        Action::Untag(keys) => {
            kms.untag(key_id, keys).await?;
            format!("removed tags {}", keys.join(", "))
        }
        Action::CreateAlias(alias) => {
            match kms.create_alias(alias, key_id).await {
                Ok(()) => {}
                // A retried call that had succeeded, or a lagging read before it: not a conflict
                // when the alias points at this key.
                Err(err) if err.kind == ErrorKind::AlreadyExists => {
                    if kms.alias_target(alias).await?.as_deref() != Some(key_id) {
                        return Err(err.into());
                    }
                }
                Err(err) => return Err(err.into()),
            }
            format!("created alias {alias}")
        }
        Action::DeleteAlias(alias) => {
            ignore_not_found(kms.delete_alias(alias).await)?;
            format!("deleted alias {alias}")
        }
        Action::SetRotation { enabled: true, period_days } => {
            kms.set_rotation(key_id, true, *period_days).await?;
            match period_days {
                Some(days) => format!("enabled key rotation every {days} days"),
                None => "enabled key rotation".to_owned(),
            }
        }
        Action::SetRotation { enabled: false, .. } => {
            kms.set_rotation(key_id, false, None).await?;
            "disabled key rotation".to_owned()
        }
        Action::RevokeGrant { name, grant_id } => {
            ignore_not_found(kms.revoke_grant(key_id, grant_id).await)?;
            format!("revoked grant {name} ({grant_id})")
        }
        Action::CreateGrant(grant) => {
            let id = kms.create_grant(key_id, grant).await?;
            format!("created grant {} ({id})", grant.name)
        }
        Action::ScheduleDeletion(days) => {
            kms.schedule_deletion(key_id, *days).await?;
            format!("scheduled key deletion in {days} days")
        }
    };
    Ok(change)
}

/// Deleting what is already gone succeeded.
fn ignore_not_found(result: Result<(), crate::kms::KmsError>) -> Result<(), crate::kms::KmsError> {
    match result {
        Err(err) if err.kind == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
