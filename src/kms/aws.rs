//! The KMS port implemented with aws-sdk-kms. Works against AWS and against moto's server.
//! moto needs the bare key ID for Enable/Disable/Schedule/CancelKeyDeletion, an explicit
//! `PolicyName("default")`, and explicit `KeyUsage`/`MultiRegion` on CreateKey; all are sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::types::{GrantConstraints, GrantOperation, KeyMetadata, KeySpec, KeyUsageType, Tag};

use super::{ErrorKind, GrantInfo, KeyDescription, KmsError, KmsPort, NewGrant, NewKey, Quotas};

const POLICY_NAME: &str = "default";

/// KMS through the AWS SDK.
#[derive(Clone, Debug)]
pub struct AwsKms {
    client: Client,
    quotas: Arc<Quotas>,
}

impl AwsKms {
    /// KMS through `client`, without client-side rate limits (tests, tools).
    pub fn new(client: Client) -> Self {
        Self::with_quotas(client, Arc::new(Quotas::unlimited()))
    }

    /// KMS through `client`, each call first waiting for its operation's `quotas`.
    pub fn with_quotas(client: Client, quotas: Arc<Quotas>) -> Self {
        Self { client, quotas }
    }
}

fn sdk_error<E>(operation: &'static str, err: SdkError<E>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => KmsError::from_response(
            operation,
            service.err().code(),
            service.raw().status().as_u16(),
            service.err().message(),
        ),
        _ => KmsError::new(operation, ErrorKind::Transient, DisplayErrorContext(&err).to_string()),
    }
}

fn describe(meta: &KeyMetadata) -> KeyDescription {
    KeyDescription {
        key_id: meta.key_id().to_owned(),
        arn: meta.arn().unwrap_or_default().to_owned(),
        state: meta.key_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        description: meta.description().unwrap_or_default().to_owned(),
        multi_region: meta.multi_region().unwrap_or(false),
    }
}

fn aws_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build().expect("key and value set"))
        .collect()
}

fn not_found_is_none<T>(result: Result<T, KmsError>) -> Result<Option<T>, KmsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

#[async_trait]
impl KmsPort for AwsKms {
    async fn describe_key(&self, key_id: &str) -> Result<Option<KeyDescription>, KmsError> {
        self.quotas.acquire("DescribeKey").await;
        let out = self.client.describe_key().key_id(key_id).send().await;
        let out = not_found_is_none(out.map_err(|e| sdk_error("DescribeKey", e)))?;
        Ok(out.and_then(|o| o.key_metadata().map(describe)))
    }

    async fn alias_target(&self, alias_name: &str) -> Result<Option<String>, KmsError> {
        Ok(self.describe_key(alias_name).await?.map(|key| key.key_id))
    }

    async fn list_tags(&self, key_id: &str) -> Result<BTreeMap<String, String>, KmsError> {
        let mut tags = BTreeMap::new();
        let mut marker = None;
        loop {
            self.quotas.acquire("ListResourceTags").await;
            let out = (self.client.list_resource_tags().key_id(key_id))
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| sdk_error("ListResourceTags", e))?;
            for tag in out.tags() {
                tags.insert(tag.tag_key().to_owned(), tag.tag_value().to_owned());
            }
            marker = out.next_marker().filter(|_| out.truncated()).map(str::to_owned);
            if marker.is_none() {
                return Ok(tags);
            }
        }
    }

    async fn rotation_enabled(&self, key_id: &str) -> Result<bool, KmsError> {
        self.quotas.acquire("GetKeyRotationStatus").await;
        let out = self.client.get_key_rotation_status().key_id(key_id).send().await;
        Ok(out.map_err(|e| sdk_error("GetKeyRotationStatus", e))?.key_rotation_enabled())
    }

    async fn key_policy(&self, key_id: &str) -> Result<Option<String>, KmsError> {
        self.quotas.acquire("GetKeyPolicy").await;
        let out = self.client.get_key_policy().key_id(key_id).policy_name(POLICY_NAME).send();
        let out = out.await.map_err(|e| sdk_error("GetKeyPolicy", e))?;
        Ok(out.policy().map(str::to_owned))
    }

    async fn list_aliases(&self, key_id: &str) -> Result<Vec<String>, KmsError> {
        let mut names = Vec::new();
        let mut marker = None;
        loop {
            self.quotas.acquire("ListAliases").await;
            let out = (self.client.list_aliases().key_id(key_id))
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| sdk_error("ListAliases", e))?;
            for alias in out.aliases() {
                // moto lists the AWS-managed aliases whatever KeyId asks for.
                if alias.target_key_id() == Some(key_id) {
                    names.extend(alias.alias_name().map(str::to_owned));
                }
            }
            marker = out.next_marker().filter(|_| out.truncated()).map(str::to_owned);
            if marker.is_none() {
                return Ok(names);
            }
        }
    }

    async fn list_grants(&self, key_id: &str) -> Result<Vec<GrantInfo>, KmsError> {
        let mut grants = Vec::new();
        let mut marker = None;
        loop {
            self.quotas.acquire("ListGrants").await;
            let out = (self.client.list_grants().key_id(key_id))
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| sdk_error("ListGrants", e))?;
            for grant in out.grants() {
                let context = grant.constraints().and_then(|c| c.encryption_context_equals());
                grants.push(GrantInfo {
                    grant_id: grant.grant_id().unwrap_or_default().to_owned(),
                    name: grant.name().filter(|n| !n.is_empty()).map(str::to_owned),
                    grantee_principal: grant.grantee_principal().unwrap_or_default().to_owned(),
                    operations: grant.operations().iter().map(|o| o.as_str().to_owned()).collect(),
                    encryption_context_equals: context
                        .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                });
            }
            marker = out.next_marker().filter(|_| out.truncated()).map(str::to_owned);
            if marker.is_none() {
                return Ok(grants);
            }
        }
    }

    async fn list_key_ids(&self) -> Result<Vec<String>, KmsError> {
        let mut ids = Vec::new();
        let mut marker = None;
        loop {
            self.quotas.acquire("ListKeys").await;
            let out = (self.client.list_keys().set_marker(marker).send().await)
                .map_err(|e| sdk_error("ListKeys", e))?;
            ids.extend(out.keys().iter().filter_map(|k| k.key_id().map(str::to_owned)));
            marker = out.next_marker().filter(|_| out.truncated()).map(str::to_owned);
            if marker.is_none() {
                return Ok(ids);
            }
        }
    }

    async fn create_key(&self, key: &NewKey) -> Result<KeyDescription, KmsError> {
        self.quotas.acquire("CreateKey").await;
        let out = (self.client.create_key())
            .description(&key.description)
            .set_policy(key.policy.clone())
            .set_tags(Some(aws_tags(&key.tags)))
            .multi_region(key.multi_region)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .key_spec(KeySpec::SymmetricDefault)
            // CreateKey has no idempotency token: an SDK retry after a lost response would make
            // a second key. A failed attempt is left to the create intent and adoption instead.
            .customize()
            .config_override(aws_sdk_kms::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await
            .map_err(|e| sdk_error("CreateKey", e))?;
        let meta = out.key_metadata().ok_or_else(|| {
            KmsError::new("CreateKey", ErrorKind::Transient, "response carried no key metadata")
        })?;
        Ok(describe(meta))
    }

    async fn update_description(&self, key_id: &str, description: &str) -> Result<(), KmsError> {
        let call = self.client.update_key_description().key_id(key_id).description(description);
        self.quotas.acquire("UpdateKeyDescription").await;
        call.send().await.map_err(|e| sdk_error("UpdateKeyDescription", e))?;
        Ok(())
    }

    async fn put_policy(&self, key_id: &str, policy: &str) -> Result<(), KmsError> {
        let call = self.client.put_key_policy().key_id(key_id).policy_name(POLICY_NAME);
        self.quotas.acquire("PutKeyPolicy").await;
        call.policy(policy).send().await.map_err(|e| sdk_error("PutKeyPolicy", e))?;
        Ok(())
    }

    async fn tag(&self, key_id: &str, tags: &BTreeMap<String, String>) -> Result<(), KmsError> {
        let call = self.client.tag_resource().key_id(key_id).set_tags(Some(aws_tags(tags)));
        self.quotas.acquire("TagResource").await;
        call.send().await.map_err(|e| sdk_error("TagResource", e))?;
        Ok(())
    }

    async fn untag(&self, key_id: &str, keys: &[String]) -> Result<(), KmsError> {
        let call = self.client.untag_resource().key_id(key_id).set_tag_keys(Some(keys.to_vec()));
        self.quotas.acquire("UntagResource").await;
        call.send().await.map_err(|e| sdk_error("UntagResource", e))?;
        Ok(())
    }

    async fn create_alias(&self, alias_name: &str, key_id: &str) -> Result<(), KmsError> {
        let call = self.client.create_alias().alias_name(alias_name).target_key_id(key_id);
        self.quotas.acquire("CreateAlias").await;
        call.send().await.map_err(|e| sdk_error("CreateAlias", e))?;
        Ok(())
    }

    async fn delete_alias(&self, alias_name: &str) -> Result<(), KmsError> {
        let call = self.client.delete_alias().alias_name(alias_name);
        self.quotas.acquire("DeleteAlias").await;
        call.send().await.map_err(|e| sdk_error("DeleteAlias", e))?;
        Ok(())
    }

    async fn set_rotation(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        if enabled {
            let call = self.client.enable_key_rotation().key_id(key_id);
            self.quotas.acquire("EnableKeyRotation").await;
            call.send().await.map_err(|e| sdk_error("EnableKeyRotation", e))?;
        } else {
            let call = self.client.disable_key_rotation().key_id(key_id);
            self.quotas.acquire("DisableKeyRotation").await;
            call.send().await.map_err(|e| sdk_error("DisableKeyRotation", e))?;
        }
        Ok(())
    }

    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        if enabled {
            let call = self.client.enable_key().key_id(key_id);
            self.quotas.acquire("EnableKey").await;
            call.send().await.map_err(|e| sdk_error("EnableKey", e))?;
        } else {
            let call = self.client.disable_key().key_id(key_id);
            self.quotas.acquire("DisableKey").await;
            call.send().await.map_err(|e| sdk_error("DisableKey", e))?;
        }
        Ok(())
    }

    async fn create_grant(&self, key_id: &str, grant: &NewGrant) -> Result<String, KmsError> {
        let constraints = (!grant.encryption_context_equals.is_empty()).then(|| {
            let pairs = grant.encryption_context_equals.clone().into_iter().collect();
            GrantConstraints::builder().set_encryption_context_equals(Some(pairs)).build()
        });
        let operations = grant.operations.iter().map(|o| GrantOperation::from(o.as_str()));
        self.quotas.acquire("CreateGrant").await;
        let out = (self.client.create_grant())
            .key_id(key_id)
            .name(&grant.name)
            .grantee_principal(&grant.grantee_principal)
            .set_operations(Some(operations.collect()))
            .set_constraints(constraints)
            .send()
            .await
            .map_err(|e| sdk_error("CreateGrant", e))?;
        Ok(out.grant_id().unwrap_or_default().to_owned())
    }

    async fn revoke_grant(&self, key_id: &str, grant_id: &str) -> Result<(), KmsError> {
        let call = self.client.revoke_grant().key_id(key_id).grant_id(grant_id);
        self.quotas.acquire("RevokeGrant").await;
        call.send().await.map_err(|e| sdk_error("RevokeGrant", e))?;
        Ok(())
    }

    async fn schedule_deletion(&self, key_id: &str, window_days: i32) -> Result<(), KmsError> {
        let call = self.client.schedule_key_deletion().key_id(key_id);
        self.quotas.acquire("ScheduleKeyDeletion").await;
        let out = call.pending_window_in_days(window_days).send().await;
        let out = out.map_err(|e| sdk_error("ScheduleKeyDeletion", e))?;
        // moto answers 200 with no date for a window it does not accept; AWS would refuse it.
        if out.deletion_date().is_none() && out.key_state().is_none() {
            return Err(KmsError::new(
                "ScheduleKeyDeletion",
                ErrorKind::Rejected,
                format!("KMS did not schedule deletion with a {window_days}-day window"),
            ));
        }
        Ok(())
    }

    async fn cancel_deletion(&self, key_id: &str) -> Result<(), KmsError> {
        let call = self.client.cancel_key_deletion().key_id(key_id);
        self.quotas.acquire("CancelKeyDeletion").await;
        call.send().await.map_err(|e| sdk_error("CancelKeyDeletion", e))?;
        Ok(())
    }
}
