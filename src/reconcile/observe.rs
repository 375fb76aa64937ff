//! Reads what KMS holds for an object into an [`Observed`]. Reads only; a missing key is a
//! value, not an error.

use crate::api::KmsKeySpec;
use crate::kms::{ErrorKind, KmsError, KmsPort};

use super::ownership::Owner;
use super::plan::{Observed, ObservedKey};

/// Observes the key with ID `key_id` (or, without one, whether the wanted alias is free).
pub async fn observe(
    kms: &dyn KmsPort,
    spec: &KmsKeySpec,
    owner: &Owner,
    key_id: Option<&str>,
) -> Result<Observed, KmsError> {
    let wanted_alias = spec.full_alias_name();
    let Some(key_id) = key_id else {
        let alias_target = kms.alias_target(&wanted_alias).await?;
        return Ok(Observed::NoKey { alias_target });
    };
    let Some(key) = kms.describe_key(key_id).await? else {
        return Ok(Observed::Missing { key_id: key_id.to_owned() });
    };
    let tags = kms.list_tags(&key.key_id).await?;
    if !owner.owns(&tags) {
        return Ok(Observed::Foreign { key_id: key.key_id });
    }
    let rotation_enabled = readable_in_state(kms.rotation_enabled(&key.key_id).await)?;
    let policy = kms.key_policy(&key.key_id).await?;
    let aliases = kms.list_aliases(&key.key_id).await?;
    let alias_target = kms.alias_target(&wanted_alias).await?;
    let grants = kms.list_grants(&key.key_id).await?;
    let observed = ObservedKey { key, tags, rotation_enabled, policy, aliases, alias_target, grants };
    Ok(Observed::Owned(Box::new(observed)))
}

/// KMS refuses some reads in some key states (rotation status of a key pending deletion);
/// that makes the value unknown rather than the observation failed.
fn readable_in_state<T>(result: Result<T, KmsError>) -> Result<Option<T>, KmsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if matches!(err.kind, ErrorKind::InvalidState) => Ok(None),
        Err(err) if err.code.as_deref() == Some("UnsupportedOperationException") => Ok(None),
        Err(err) => Err(err),
    }
}
