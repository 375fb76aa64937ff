//! Finding a key whose creation was interrupted. CreateKey has no idempotency token, so when
//! the operator stops after CreateKey but before the key ID reaches status, the key exists
//! only in KMS. The next reconcile sees the recorded create intent and looks the key up by its
//! ownership tags (ListKeys + ListResourceTags: strongly consistent, one call per key in the
//! account, and only ever run on this rare path) before anything is created again.

use crate::kms::{ErrorKind, KeyDescription, KmsError, KmsPort};

use super::ownership::{Owner, TAG_CREATE_TOKEN};

/// The key carrying this object's ownership tags, preferring the one from attempt `token`.
pub async fn find_owned_key(
    kms: &dyn KmsPort,
    owner: &Owner,
    token: &str,
) -> Result<Option<KeyDescription>, KmsError> {
    let mut found: Option<String> = None;
    for key_id in kms.list_key_ids().await? {
        let tags = match kms.list_tags(&key_id).await {
            Ok(tags) => tags,
            // Deleted meanwhile: not ours. A key the operator may not read is an error, not
            // "not ours": it could be the key being looked for, and skipping it would lead to a
            // second CreateKey.
            Err(err) if err.kind == ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if !owner.owns(&tags) {
            continue;
        }
        let from_this_attempt = tags.get(TAG_CREATE_TOKEN).map(String::as_str) == Some(token);
        if from_this_attempt || found.is_none() {
            found = Some(key_id);
        }
        if from_this_attempt {
            break;
        }
    }
    match found {
        Some(key_id) => kms.describe_key(&key_id).await,
        None => Ok(None),
    }
}
