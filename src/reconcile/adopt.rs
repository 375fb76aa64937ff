//! Finding a key whose creation (or adoption) was interrupted. CreateKey has no idempotency
//! token, so when the operator stops after CreateKey but before the key ID reaches status, the
//! key exists only in KMS. The next reconcile sees the recorded intent and looks the key up by
//! its ownership tags before anything is created again.
//!
//! Tags can be forged by anyone who may tag keys in the account, and status (with the token)
//! is readable by anyone who may read the object. So a key is taken only when it carries this
//! object's UID and cluster *and* the intent's own token, and, for a creation, when KMS made it
//! after the intent was written (less [`CLOCK_SKEW`]); for an adoption, only the very key the
//! intent names. A key an earlier, superseded attempt made is not taken either.
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

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::kms::{ErrorKind, KmsError, KmsPort, TaggedKey};

use super::ownership::{Owner, TAG_CREATE_TOKEN, TAG_UID};
use super::plan::Intent;

/// How far the operator's clock and KMS's may disagree.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// The ID of the key attempt `intent` made or adopted: by its tags, then, for a creation, by
/// its creation date (checked for every candidate, so an old key carrying forged tags cannot
/// hide the real one).
pub async fn find_owned_key(
    kms: &dyn KmsPort,
    owner: &Owner,
    intent: &Intent,
) -> Result<Option<String>, KmsError> {
    for candidate in tagged_for_attempt(kms, owner, intent).await? {
        let created_at = kms.describe_key(&candidate).await?.and_then(|k| k.created_at);
        if made_by_attempt(created_at, intent) {
            return Ok(Some(candidate));
        }
        tracing::warn!(key = %candidate, "a key carries this object's tags and token but is older than the attempt; not taking it");
    }
    Ok(None)
}

/// The keys carrying this object's ownership tags and the attempt's token.
async fn tagged_for_attempt(
    kms: &dyn KmsPort,
    owner: &Owner,
    intent: &Intent,
) -> Result<Vec<String>, KmsError> {
    let found = match kms.find_tagged_keys(TAG_UID, &owner.uid).await {
        Ok(found) => found,
        Err(err) if matches!(err.kind, ErrorKind::AccessDenied | ErrorKind::Transient) => {
            tracing::warn!(error = %err, "tag:GetResources failed; scanning every key instead");
            scan_every_key(kms).await?
        }
        Err(err) => return Err(err),
    };
    Ok(pick(owner, intent, &found))
}

/// The keys among `candidates` with this object's ownership tags and the intent's token (and,
/// for an adoption, the ID it names).
fn pick(owner: &Owner, intent: &Intent, candidates: &[TaggedKey]) -> Vec<String> {
    let named = |k: &&TaggedKey| intent.adopting.as_ref().is_none_or(|id| *id == k.key_id);
    let from_attempt = |k: &&TaggedKey| k.tags.get(TAG_CREATE_TOKEN) == Some(&intent.token);
    let found = candidates.iter().filter(|k| owner.owns(&k.tags)).filter(named).filter(from_attempt);
    found.map(|k| k.key_id.clone()).collect()
}

/// Whether a key made at `created_at` (as KMS says) can be the one a create attempt begun at
/// `intent.started_at` made. Adoptions take keys of any age; a KMS that gives no date is taken
/// at its word.
pub fn made_by_attempt(created_at: Option<Timestamp>, intent: &Intent) -> bool {
    match (created_at, &intent.adopting) {
        (Some(created), None) => created >= intent.started_at - CLOCK_SKEW,
        _ => true,
    }
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

    fn intent(token: &str, adopting: Option<&str>) -> Intent {
        let started_at = Timestamp::from_second(1_800_000_000).unwrap();
        Intent { token: token.into(), started_at, adopting: adopting.map(str::to_owned) }
    }

    #[test]
    fn only_the_key_with_this_attempts_token_is_taken() {
        let owner = mk_owner();
        let keys = [tagged("k1", &owner, "old"), tagged("k2", &owner, "t")];
        assert_eq!(pick(&owner, &intent("t", None), &keys), vec!["k2".to_owned()]);
        assert!(
            pick(&owner, &intent("t", None), &keys[..1]).is_empty(),
            "a superseded attempt's key is not taken"
        );
        let mut untokened = tagged("k3", &owner, "t");
        untokened.tags.remove(TAG_CREATE_TOKEN);
        assert!(
            pick(&owner, &intent("t", None), &[untokened]).is_empty(),
            "forged ownership tags alone are not enough"
        );
    }

    #[test]
    fn an_adoption_takes_only_the_key_it_names() {
        let owner = mk_owner();
        let keys = [tagged("k1", &owner, "t"), tagged("k2", &owner, "t")];
        assert_eq!(pick(&owner, &intent("t", Some("k2")), &keys), vec!["k2".to_owned()]);
        assert!(pick(&owner, &intent("t", Some("k9")), &keys).is_empty());
    }

    #[test]
    fn a_key_of_another_cluster_with_the_same_uid_is_not_picked() {
        let other = Owner { cluster: "staging".into(), ..mk_owner() };
        assert!(pick(&mk_owner(), &intent("t", None), &[tagged("k1", &other, "t")]).is_empty());
    }

    #[test]
    fn a_key_made_before_the_attempt_is_not_its_key() {
        let attempt = intent("t", None);
        assert!(made_by_attempt(Some(attempt.started_at + Duration::from_secs(2)), &attempt));
        assert!(made_by_attempt(Some(attempt.started_at - Duration::from_secs(60)), &attempt), "clock skew");
        assert!(!made_by_attempt(Some(attempt.started_at - Duration::from_secs(3600)), &attempt));
        assert!(made_by_attempt(None, &attempt));
        assert!(made_by_attempt(
            Some(attempt.started_at - Duration::from_secs(3600)),
            &intent("t", Some("k1"))
        ));
    }
}
