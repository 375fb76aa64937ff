//! A KMS port that delegates to moto but lags the way real KMS may (it is eventually
//! consistent): it can hide a new key from DescribeKey, hide an alias, or keep reporting an
//! old key policy after PutKeyPolicy, or report grants in a form the operator does not expect.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use kms_operator::kms::{
    AwsKms, GrantInfo, KeyDescription, KmsError, KmsPort, LastUsage, NewGrant, NewKey, NewReplica,
    PastRotation, Rotation, TaggedKey,
};

pub struct Lagging {
    pub inner: AwsKms,
    /// How many DescribeKey calls by key ID still answer "not found".
    pub hidden_describes: AtomicU32,
    /// How many alias lookups still answer "no such alias".
    pub hidden_aliases: AtomicU32,
    /// A policy GetKeyPolicy keeps answering with, whatever was put.
    pub stale_policy: Mutex<Option<String>>,
    /// PutKeyPolicy calls made.
    pub policy_puts: AtomicU32,
    /// An operation ListGrants adds to every grant it reports.
    pub misreported_grant_operation: Mutex<Option<String>>,
}

impl Lagging {
    pub fn new(inner: AwsKms) -> Self {
        Self {
            inner,
            hidden_describes: AtomicU32::new(0),
            hidden_aliases: AtomicU32::new(0),
            stale_policy: Mutex::new(None),
            policy_puts: AtomicU32::new(0),
            misreported_grant_operation: Mutex::new(None),
        }
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

#[async_trait]
impl KmsPort for Lagging {
    async fn describe_key(&self, key_id: &str) -> Result<Option<KeyDescription>, KmsError> {
        let hide =
            self.hidden_describes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if hide.is_ok() && !key_id.starts_with("alias/") {
            return Ok(None);
        }
        self.inner.describe_key(key_id).await
    }
    async fn alias_target(&self, alias_name: &str) -> Result<Option<String>, KmsError> {
        if take_one(&self.hidden_aliases) {
            return Ok(None);
        }
        self.inner.alias_target(alias_name).await
    }
    async fn list_tags(&self, key_id: &str) -> Result<BTreeMap<String, String>, KmsError> {
        self.inner.list_tags(key_id).await
    }
    async fn rotation(&self, key_id: &str) -> Result<Rotation, KmsError> {
        self.inner.rotation(key_id).await
    }
    async fn last_usage(&self, key_id: &str) -> Result<LastUsage, KmsError> {
        self.inner.last_usage(key_id).await
    }
    async fn past_rotations(&self, key_id: &str) -> Result<Vec<PastRotation>, KmsError> {
        self.inner.past_rotations(key_id).await
    }
    async fn rotate_on_demand(&self, key_id: &str) -> Result<(), KmsError> {
        self.inner.rotate_on_demand(key_id).await
    }
    async fn key_policy(&self, key_id: &str) -> Result<Option<String>, KmsError> {
        if let Some(stale) = self.stale_policy.lock().unwrap().clone() {
            return Ok(Some(stale));
        }
        self.inner.key_policy(key_id).await
    }
    async fn any_alias_arn(&self) -> Result<Option<String>, KmsError> {
        self.inner.any_alias_arn().await
    }
    async fn account_aliases(&self) -> Result<BTreeMap<String, String>, KmsError> {
        self.inner.account_aliases().await
    }
    async fn list_aliases(&self, key_id: &str) -> Result<Vec<String>, KmsError> {
        self.inner.list_aliases(key_id).await
    }
    async fn list_grants(&self, key_id: &str) -> Result<Vec<GrantInfo>, KmsError> {
        let mut grants = self.inner.list_grants(key_id).await?;
        if let Some(extra) = self.misreported_grant_operation.lock().unwrap().clone() {
            grants.iter_mut().for_each(|g| g.terms.operations.push(extra.clone()));
        }
        Ok(grants)
    }
    async fn list_key_ids(&self) -> Result<Vec<String>, KmsError> {
        self.inner.list_key_ids().await
    }
    async fn find_tagged_keys(&self, key: &str, value: &str) -> Result<Vec<TaggedKey>, KmsError> {
        self.inner.find_tagged_keys(key, value).await
    }
    async fn create_key(&self, key: &NewKey) -> Result<KeyDescription, KmsError> {
        self.inner.create_key(key).await
    }
    async fn spend_quota(&self, operation: &'static str) {
        self.inner.spend_quota(operation).await
    }
    async fn replicate_key(&self, key_id: &str, replica: &NewReplica) -> Result<KeyDescription, KmsError> {
        self.inner.replicate_key(key_id, replica).await
    }
    async fn update_description(&self, key_id: &str, description: &str) -> Result<(), KmsError> {
        self.inner.update_description(key_id, description).await
    }
    async fn put_policy(&self, key_id: &str, policy: &str) -> Result<(), KmsError> {
        self.policy_puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_policy(key_id, policy).await
    }
    async fn tag(&self, key_id: &str, tags: &BTreeMap<String, String>) -> Result<(), KmsError> {
        self.inner.tag(key_id, tags).await
    }
    async fn untag(&self, key_id: &str, keys: &[String]) -> Result<(), KmsError> {
        self.inner.untag(key_id, keys).await
    }
    async fn create_alias(&self, alias_name: &str, key_id: &str) -> Result<(), KmsError> {
        self.inner.create_alias(alias_name, key_id).await
    }
    async fn delete_alias(&self, alias_name: &str) -> Result<(), KmsError> {
        self.inner.delete_alias(alias_name).await
    }
    async fn set_rotation(
        &self,
        key_id: &str,
        enabled: bool,
        period_days: Option<i32>,
    ) -> Result<(), KmsError> {
        self.inner.set_rotation(key_id, enabled, period_days).await
    }
    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        self.inner.set_enabled(key_id, enabled).await
    }
    async fn create_grant(&self, key_id: &str, grant: &NewGrant) -> Result<String, KmsError> {
        self.inner.create_grant(key_id, grant).await
    }
    async fn revoke_grant(&self, key_id: &str, grant_id: &str) -> Result<(), KmsError> {
        self.inner.revoke_grant(key_id, grant_id).await
    }
    async fn schedule_deletion(&self, key_id: &str, window_days: i32) -> Result<(), KmsError> {
        self.inner.schedule_deletion(key_id, window_days).await
    }
    async fn cancel_deletion(&self, key_id: &str) -> Result<(), KmsError> {
        self.inner.cancel_deletion(key_id).await
    }
}
