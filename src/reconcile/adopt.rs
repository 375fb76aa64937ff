//! Finding a key whose creation was interrupted. CreateKey has no idempotency token, so when
//! the operator stops after CreateKey but before the key ID reaches status, the key exists
//! only in KMS. The next reconcile sees the recorded create intent and looks the key up by its
//! ownership tags before anything is created again.
//!
//! The lookup asks the Resource Groups Tagging API for keys tagged with this object's UID: one
//! or two calls. Where the operator may not use that API (or cannot reach it), it falls back to
//! ListKeys and ListResourceTags, one call per key in the account, skipping keys it may not
//! read. Both are eventually consistent, which is why an attempt is waited for
//! (`CREATE_SETTLE`) before it is repeated. A Tagging API that takes longer than that to show
//! a key which did reach KMS would lead to a second key; a scan of the whole account before
//! every repeat would close that window but costs one call per key in the account for every
//! create that never reached KMS (and blocks a worker meanwhile), so it is not done.

use std::collections::BTreeMap;

use crate::kms::{ErrorKind, KmsError, KmsPort, TaggedKey};

use super::ownership::{Owner, TAG_CREATE_TOKEN, TAG_UID};

/// The ID of the key carrying this object's ownership tags, preferring the one from attempt
/// `token`.
pub async fn find_owned_key(
    kms: &dyn KmsPort,
    owner: &Owner,
    token: &str,
) -> Result<Option<String>, KmsError> {
    let found = match kms.find_tagged_keys(TAG_UID, &owner.uid).await {
        Ok(found) => found,
        Err(err) if matches!(err.kind, ErrorKind::AccessDenied | ErrorKind::Transient) => {
            tracing::warn!(error = %err, "tag:GetResources failed; scanning every key instead");
            scan_every_key(kms).await?
        }
        Err(err) => return Err(err),
    };
    Ok(pick(owner, token, &found))
}

/// The owned key among `candidates`, the one from attempt `token` first.
fn pick(owner: &Owner, token: &str, candidates: &[TaggedKey]) -> Option<String> {
    let owned: Vec<&TaggedKey> = candidates.iter().filter(|k| owner.owns(&k.tags)).collect();
    let from_attempt = owned.iter().find(|k| k.tags.get(TAG_CREATE_TOKEN).map(String::as_str) == Some(token));
    from_attempt.or(owned.first()).map(|k| k.key_id.clone())
}

/// Every key in the account with its tags, skipping keys the operator may not read (normal in
/// an account shared with others) and keys deleted meanwhile.
async fn scan_every_key(kms: &dyn KmsPort) -> Result<Vec<TaggedKey>, KmsError> {
    let mut keys = Vec::new();
    for key_id in kms.list_key_ids().await? {
        let tags: BTreeMap<String, String> = match kms.list_tags(&key_id).await {
            Ok(tags) => tags,
            Err(err) if matches!(err.kind, ErrorKind::NotFound | ErrorKind::AccessDenied) => continue,
            Err(err) => return Err(err),
        };
        keys.push(TaggedKey { key_id, tags });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ownership::tests::mk_owner;

    fn tagged(id: &str, owner: &Owner, token: &str) -> TaggedKey {
        let mut tags = owner.tags();
        tags.insert(TAG_CREATE_TOKEN.into(), token.into());
        TaggedKey { key_id: id.into(), tags }
    }

    #[test]
    fn the_key_from_this_attempt_is_preferred() {
        let owner = mk_owner();
        let keys = [tagged("k1", &owner, "old"), tagged("k2", &owner, "t")];
        assert_eq!(pick(&owner, "t", &keys), Some("k2".into()));
    }

    #[test]
    fn a_key_of_another_cluster_with_the_same_uid_is_not_picked() {
        let other = Owner { cluster: "staging".into(), ..mk_owner() };
        assert_eq!(pick(&mk_owner(), "t", &[tagged("k1", &other, "t")]), None);
    }
}
