//! Runs planned actions through the KMS port, in order, stopping at the first failure.
//! CreateKey is wrapped in the crash-safe sequence: record the intent, create, record the ID.

use k8s_openapi::jiff::Timestamp;

use crate::api::CreateIntent;
use crate::kms::{ErrorKind, KeyDescription, KmsPort};

use super::plan::Action;
use super::{Error, StatusWriter};

/// What a successful run of actions did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The key that CreateKey made, if the actions created one.
    pub created: Option<KeyDescription>,
    /// One line per change, for events and logs.
    pub changes: Vec<String>,
}

/// Runs `actions` against the key `key_id` (absent only before the key exists).
pub async fn apply(
    kms: &dyn KmsPort,
    writer: &dyn StatusWriter,
    key_id: Option<&str>,
    actions: &[Action],
    now: Timestamp,
) -> Result<Applied, Error> {
    let mut applied = Applied::default();
    for action in actions {
        if let Action::CreateKey { key, token } = action {
            let intent = CreateIntent { token: token.clone(), started_at: now.to_string() };
            writer.record_intent(Some(&intent)).await?;
            let created = match kms.create_key(key).await {
                Ok(created) => created,
                Err(err) => {
                    // KMS answered with a refusal, so no key exists: forget the attempt. Without
                    // an answer the key may exist, and the intent stays for adoption.
                    if err.code.is_some() && err.kind != ErrorKind::Transient {
                        writer.record_intent(None).await?;
                    }
                    return Err(err.into());
                }
            };
            writer.record_key(&created).await?;
            applied.changes.push(format!("created key {}", created.key_id));
            applied.created = Some(created);
            continue;
        }
        let key_id = key_id.expect("the plan acts on an existing key only after CreateKey");
        let change = apply_one(kms, key_id, action).await?;
        applied.changes.push(change);
    }
    Ok(applied)
}

/// Runs one action on the existing key `key_id`; the change it made, for events and logs.
pub async fn apply_one(kms: &dyn KmsPort, key_id: &str, action: &Action) -> Result<String, Error> {
    let change = match action {
        Action::CreateKey { .. } => unreachable!("handled by apply"),
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
        Action::PutPolicy(policy) => {
            kms.put_policy(key_id, policy).await?;
            "updated the key policy".to_owned()
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
        Action::SetRotation(on) => {
            kms.set_rotation(key_id, *on).await?;
            format!("{} key rotation", if *on { "enabled" } else { "disabled" })
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
