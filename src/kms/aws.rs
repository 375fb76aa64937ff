//! The KMS port implemented with aws-sdk-kms (and the Resource Groups Tagging API for finding
//! keys by tag). Works against AWS and against moto's server. moto needs the bare key ID for
//! Enable/Disable/Schedule/CancelKeyDeletion, an explicit `PolicyName("default")`, and
//! explicit `KeyUsage`/`MultiRegion` on CreateKey; all are sent. Lists are read with the
//! SDK's paginators, each page waiting for its operation's quota.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::types::{
    GrantConstraints, GrantListEntry, GrantOperation, KeyMetadata, KeySpec, KeyUsageType, MultiRegionKeyType,
    Tag,
};
use aws_sdk_resourcegroupstagging::types::TagFilter;
use aws_smithy_async::future::pagination_stream::PaginationStream;

use super::calls::{Call, CallObserver};
use super::{
    ErrorKind, GrantInfo, GrantTerms, KeyDescription, KmsError, KmsPort, LastUsage, NewGrant, NewKey,
    NewReplica, PastRotation, Quotas, Rotation, TaggedKey,
};

const POLICY_NAME: &str = "default";

#[cfg(test)]
impl AwsClients {
    /// Clients of `region` for tests that never call AWS.
    pub(crate) fn unused(region: &str) -> Self {
        let region = aws_config::Region::new(region.to_owned());
        let behavior = aws_config::BehaviorVersion::latest();
        let kms = aws_sdk_kms::Config::builder().region(region.clone()).behavior_version(behavior).build();
        let tagging = aws_sdk_resourcegroupstagging::Config::builder()
            .region(region)
            .behavior_version(behavior)
            .build();
        AwsClients {
            kms: aws_sdk_kms::Client::from_conf(kms),
            tagging: aws_sdk_resourcegroupstagging::Client::from_conf(tagging),
        }
    }
}

/// The SDK clients the adapter calls.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub kms: Client,
    /// Resource Groups Tagging API, for finding a key by its ownership tags.
    pub tagging: aws_sdk_resourcegroupstagging::Client,
}

/// KMS through the AWS SDK.
#[derive(Clone)]
pub struct AwsKms {
    client: Client,
    tagging: aws_sdk_resourcegroupstagging::Client,
    quotas: Arc<Quotas>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl AwsKms {
    /// KMS through `clients`, without client-side rate limits (tests, tools).
    pub fn new(clients: AwsClients) -> Self {
        Self::with_quotas(clients, Arc::new(Quotas::unlimited()))
    }

    /// KMS through `clients`, each call first waiting for its operation's `quotas`.
    pub fn with_quotas(clients: AwsClients, quotas: Arc<Quotas>) -> Self {
        Self { client: clients.kms, tagging: clients.tagging, quotas, observer: None }
    }

    /// The same, telling `observer` of every request.
    pub fn observed_by(self, observer: Arc<dyn CallObserver>) -> Self {
        Self { observer: Some(observer), ..self }
    }

    /// Waits for the quota turn of one request of `operation`.
    async fn turn(&self, operation: &'static str) -> Call {
        let started = std::time::Instant::now();
        self.quotas.acquire(operation).await;
        if let Some(observer) = &self.observer {
            observer.waited(operation, started.elapsed());
        }
        Call::new(operation, self.observer.clone())
    }

    /// Every page of a paginated call, each page first waiting for `operation`'s quota. `more`
    /// tells from a page whether another follows, so no token is spent on a page never sent.
    async fn all_pages<P, E>(
        &self,
        operation: &'static str,
        mut pages: PaginationStream<Result<P, SdkError<E>>>,
        more: fn(&P) -> bool,
    ) -> Result<Vec<P>, KmsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut out = Vec::new();
        loop {
            let turn = self.turn(operation).await;
            match pages.next().await {
                None => {
                    turn.unsent();
                    return Ok(out);
                }
                Some(Err(err)) => return Err(turn.failed(err)),
                Some(Ok(page)) => {
                    let last = !more(&page);
                    out.push(page);
                    if last {
                        return Ok(out);
                    }
                }
            }
        }
    }
}

pub(super) fn sdk_error<E>(operation: &'static str, err: SdkError<E>) -> KmsError
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
        replica: meta.multi_region_configuration().and_then(|c| c.multi_region_key_type())
            == Some(&MultiRegionKeyType::Replica),
        replica_regions: (meta.multi_region_configuration().map(|c| c.replica_keys()).unwrap_or_default())
            .iter()
            .filter_map(|r| r.region().map(str::to_owned))
            .collect(),
        key_spec: meta.key_spec().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        key_usage: meta.key_usage().map(|u| u.as_str().to_owned()).unwrap_or_default(),
        created_at: meta
            .creation_date()
            .and_then(|d| k8s_openapi::jiff::Timestamp::from_second(d.secs()).ok()),
    }
}

fn aws_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build().expect("key and value set"))
        .collect()
}

fn grant_info(grant: &GrantListEntry) -> GrantInfo {
    let constraints = grant.constraints();
    let context = |pick: fn(&GrantConstraints) -> Option<&HashMap<String, String>>| {
        let pairs = constraints.and_then(pick).into_iter().flatten();
        pairs.map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let text = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_owned);
    GrantInfo {
        grant_id: grant.grant_id().unwrap_or_default().to_owned(),
        name: text(grant.name()),
        terms: GrantTerms {
            grantee_principal: text(grant.grantee_principal()),
            grantee_service_principal: text(grant.grantee_service_principal()),
            operations: grant.operations().iter().map(|o| o.as_str().to_owned()).collect(),
            encryption_context_equals: context(GrantConstraints::encryption_context_equals),
            encryption_context_subset: context(GrantConstraints::encryption_context_subset),
            source_arn: text(constraints.and_then(GrantConstraints::source_arn)),
            retiring_principal: text(grant.retiring_principal()),
            retiring_service_principal: text(grant.retiring_service_principal()),
        },
    }
}

/// The grant's constraints, `None` when it has none.
fn grant_constraints(terms: &GrantTerms) -> Option<GrantConstraints> {
    let pairs = |map: &BTreeMap<String, String>| (!map.is_empty()).then(|| map.clone().into_iter().collect());
    let constraints = GrantConstraints::builder()
        .set_encryption_context_equals(pairs(&terms.encryption_context_equals))
        .set_encryption_context_subset(pairs(&terms.encryption_context_subset))
        .set_source_arn(terms.source_arn.clone())
        .build();
    (constraints != GrantConstraints::builder().build()).then_some(constraints)
}

fn rfc3339(date: &aws_sdk_kms::primitives::DateTime) -> Option<String> {
    date.fmt(aws_sdk_kms::primitives::DateTimeFormat::DateTime).ok()
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
        let turn = self.turn("DescribeKey").await;
        let out = self.client.describe_key().key_id(key_id).send().await;
        let out = not_found_is_none(out.map_err(|e| turn.failed(e)))?;
        Ok(out.and_then(|o| o.key_metadata().map(describe)))
    }

    async fn alias_target(&self, alias_name: &str) -> Result<Option<String>, KmsError> {
        match self.describe_key(alias_name).await {
            Ok(key) => Ok(key.map(|key| key.key_id)),
            // The alias's key has a policy that shuts the operator out (another team's key in a
            // shared account): the account's alias list still says which key holds it.
            Err(err) if err.kind == ErrorKind::AccessDenied => {
                let pages = self.client.list_aliases().into_paginator().send();
                let pages = self.all_pages("ListAliases", pages, |p| p.truncated()).await?;
                let mut aliases = pages.iter().flat_map(|p| p.aliases());
                let holder = aliases.find(|a| a.alias_name() == Some(alias_name));
                Ok(holder.and_then(|a| a.target_key_id()).map(str::to_owned))
            }
            Err(err) => Err(err),
        }
    }

    async fn list_tags(&self, key_id: &str) -> Result<BTreeMap<String, String>, KmsError> {
        let pages = self.client.list_resource_tags().key_id(key_id).into_paginator().send();
        let pages = self.all_pages("ListResourceTags", pages, |p| p.truncated()).await?;
        let tags = pages.iter().flat_map(|p| p.tags());
        Ok(tags.map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned())).collect())
    }

    async fn rotation(&self, key_id: &str) -> Result<Rotation, KmsError> {
        let turn = self.turn("GetKeyRotationStatus").await;
        let out = self.client.get_key_rotation_status().key_id(key_id).send().await;
        let out = out.map_err(|e| turn.failed(e))?;
        Ok(Rotation {
            enabled: out.key_rotation_enabled(),
            period_days: out.rotation_period_in_days(),
            next_rotation: out.next_rotation_date().and_then(rfc3339),
            on_demand_started: out.on_demand_rotation_start_date().and_then(rfc3339),
        })
    }

    async fn last_usage(&self, key_id: &str) -> Result<LastUsage, KmsError> {
        let turn = self.turn("GetKeyLastUsage").await;
        let out = self.client.get_key_last_usage().key_id(key_id).send().await;
        let out = out.map_err(|e| turn.failed(e))?;
        let used = out.key_last_usage();
        Ok(LastUsage {
            operation: used.and_then(|u| u.operation()).map(|o| o.as_str().to_owned()),
            at: used.and_then(|u| u.timestamp()).and_then(rfc3339),
            tracking_since: out.tracking_start_date().and_then(rfc3339),
        })
    }

    async fn past_rotations(&self, key_id: &str) -> Result<Vec<PastRotation>, KmsError> {
        let pages = self.client.list_key_rotations().key_id(key_id).into_paginator().send();
        let pages = self.all_pages("ListKeyRotations", pages, |p| p.truncated()).await?;
        let rotations = pages.iter().flat_map(|p| p.rotations());
        let mut past: Vec<PastRotation> = rotations
            .filter_map(|r| {
                let date = r.rotation_date().and_then(rfc3339)?;
                let kind = r.rotation_type().map(|t| t.as_str().to_owned()).unwrap_or_default();
                Some(PastRotation { date, kind })
            })
            .collect();
        past.sort_by(|a, b| a.date.cmp(&b.date));
        Ok(past)
    }

    async fn key_policy(&self, key_id: &str) -> Result<Option<String>, KmsError> {
        let turn = self.turn("GetKeyPolicy").await;
        let out = self.client.get_key_policy().key_id(key_id).policy_name(POLICY_NAME).send();
        let out = out.await.map_err(|e| turn.failed(e))?;
        Ok(out.policy().map(str::to_owned))
    }

    async fn any_alias_arn(&self) -> Result<Option<String>, KmsError> {
        let turn = self.turn("ListAliases").await;
        let out = self.client.list_aliases().limit(1).send().await;
        let out = out.map_err(|e| turn.failed(e))?;
        Ok(out.aliases().iter().find_map(|a| a.alias_arn()).map(str::to_owned))
    }

    async fn list_aliases(&self, key_id: &str) -> Result<Vec<String>, KmsError> {
        let pages = self.client.list_aliases().key_id(key_id).into_paginator().send();
        let pages = self.all_pages("ListAliases", pages, |p| p.truncated()).await?;
        let aliases = pages.iter().flat_map(|p| p.aliases());
        // moto lists the AWS-managed aliases whatever KeyId asks for.
        let aliases = aliases.filter(|a| a.target_key_id() == Some(key_id));
        Ok(aliases.filter_map(|a| a.alias_name().map(str::to_owned)).collect())
    }

    async fn account_aliases(&self) -> Result<BTreeMap<String, String>, KmsError> {
        let pages = self.client.list_aliases().into_paginator().send();
        let pages = self.all_pages("ListAliases", pages, |p| p.truncated()).await?;
        let aliases = pages.iter().flat_map(|p| p.aliases());
        let targeted =
            aliases.filter_map(|a| Some((a.alias_name()?.to_owned(), a.target_key_id()?.to_owned())));
        Ok(targeted.collect())
    }

    async fn list_grants(&self, key_id: &str) -> Result<Vec<GrantInfo>, KmsError> {
        let pages = self.client.list_grants().key_id(key_id).into_paginator().send();
        let pages = self.all_pages("ListGrants", pages, |p| p.truncated()).await?;
        Ok(pages.iter().flat_map(|p| p.grants()).map(grant_info).collect())
    }

    async fn list_key_ids(&self) -> Result<Vec<String>, KmsError> {
        let pages = self.client.list_keys().into_paginator().send();
        let pages = self.all_pages("ListKeys", pages, |p| p.truncated()).await?;
        Ok(pages.iter().flat_map(|p| p.keys()).filter_map(|k| k.key_id().map(str::to_owned)).collect())
    }

    async fn find_tagged_keys(&self, key: &str, value: &str) -> Result<Vec<TaggedKey>, KmsError> {
        let filter = TagFilter::builder().key(key).values(value).build();
        let request = self.tagging.get_resources().resource_type_filters("kms:key").tag_filters(filter);
        let pages = request.into_paginator().send();
        let more = |p: &aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput| {
            p.pagination_token().is_some_and(|t| !t.is_empty())
        };
        let pages = self.all_pages("GetResources", pages, more).await?;
        let found = pages.iter().flat_map(|p| p.resource_tag_mapping_list());
        Ok(found
            .filter_map(|mapping| {
                let key_id = mapping.resource_arn()?.rsplit_once(":key/")?.1.to_owned();
                let tags = mapping.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned()));
                Some(TaggedKey { key_id, tags: tags.collect() })
            })
            .collect())
    }

    async fn create_key(&self, key: &NewKey) -> Result<KeyDescription, KmsError> {
        let turn = self.turn("CreateKey").await;
        let out = (self.client.create_key())
            .description(&key.description)
            .set_policy(key.policy.clone())
            .set_tags(Some(aws_tags(&key.tags)))
            .multi_region(key.multi_region)
            .key_usage(KeyUsageType::from(key.key_usage.as_str()))
            .key_spec(KeySpec::from(key.key_spec.as_str()))
            // CreateKey has no idempotency token: an SDK retry after a lost response would make
            // a second key. A failed attempt is left to the create intent and adoption instead.
            .customize()
            .config_override(aws_sdk_kms::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await
            .map_err(|e| turn.failed(e))?;
        let meta = out.key_metadata().ok_or_else(|| {
            KmsError::new("CreateKey", ErrorKind::Transient, "response carried no key metadata")
        })?;
        Ok(describe(meta))
    }

    async fn spend_quota(&self, operation: &'static str) {
        self.quotas.acquire(operation).await;
    }

    async fn replicate_key(&self, key_id: &str, replica: &NewReplica) -> Result<KeyDescription, KmsError> {
        let turn = self.turn("ReplicateKey").await;
        let out = (self.client.replicate_key())
            .key_id(key_id)
            .replica_region(&replica.region)
            .description(&replica.description)
            .set_policy(replica.policy.clone())
            .set_tags(Some(aws_tags(&replica.tags)))
            .send()
            .await
            .map_err(|e| turn.failed(e))?;
        let meta = out.replica_key_metadata().ok_or_else(|| {
            KmsError::new("ReplicateKey", ErrorKind::Transient, "response carried no replica metadata")
        })?;
        Ok(describe(meta))
    }

    async fn update_description(&self, key_id: &str, description: &str) -> Result<(), KmsError> {
        let call = self.client.update_key_description().key_id(key_id).description(description);
        let turn = self.turn("UpdateKeyDescription").await;
        call.send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }

    async fn put_policy(&self, key_id: &str, policy: &str) -> Result<(), KmsError> {
        let call = self.client.put_key_policy().key_id(key_id).policy_name(POLICY_NAME);
        let turn = self.turn("PutKeyPolicy").await;
        call.policy(policy).send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }

    async fn tag(&self, key_id: &str, tags: &BTreeMap<String, String>) -> Result<(), KmsError> {
        let call = self.client.tag_resource().key_id(key_id).set_tags(Some(aws_tags(tags)));
        let turn = self.turn("TagResource").await;
        call.send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }

    async fn untag(&self, key_id: &str, keys: &[String]) -> Result<(), KmsError> {
        let call = self.client.untag_resource().key_id(key_id).set_tag_keys(Some(keys.to_vec()));
        let turn = self.turn("UntagResource").await;
        call.send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }

    async fn create_alias(&self, alias_name: &str, key_id: &str) -> Result<(), KmsError> {
        let call = self.client.create_alias().alias_name(alias_name).target_key_id(key_id);
        let turn = self.turn("CreateAlias").await;
        call.send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }

    async fn delete_alias(&self, alias_name: &str) -> Result<(), KmsError> {
        let call = self.client.delete_alias().alias_name(alias_name);
        let turn = self.turn("DeleteAlias").await;
        call.send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }

    async fn set_rotation(
        &self,
        key_id: &str,
        enabled: bool,
        period_days: Option<i32>,
    ) -> Result<(), KmsError> {
        if enabled {
            let call =
                self.client.enable_key_rotation().key_id(key_id).set_rotation_period_in_days(period_days);
            let turn = self.turn("EnableKeyRotation").await;
            call.send().await.map_err(|e| turn.failed(e))?;
        } else {
            let call = self.client.disable_key_rotation().key_id(key_id);
            let turn = self.turn("DisableKeyRotation").await;
            call.send().await.map_err(|e| turn.failed(e))?;
        }
        Ok(())
    }

    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        if enabled {
            let call = self.client.enable_key().key_id(key_id);
            let turn = self.turn("EnableKey").await;
            call.send().await.map_err(|e| turn.failed(e))?;
        } else {
            let call = self.client.disable_key().key_id(key_id);
            let turn = self.turn("DisableKey").await;
            call.send().await.map_err(|e| turn.failed(e))?;
        }
        Ok(())
    }

    async fn rotate_on_demand(&self, key_id: &str) -> Result<(), KmsError> {
        let call = self.client.rotate_key_on_demand().key_id(key_id);
        let turn = self.turn("RotateKeyOnDemand").await;
        call.send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }

    async fn create_grant(&self, key_id: &str, grant: &NewGrant) -> Result<String, KmsError> {
        let terms = &grant.terms;
        let operations = terms.operations.iter().map(|o| GrantOperation::from(o.as_str()));
        let turn = self.turn("CreateGrant").await;
        let out = (self.client.create_grant())
            .key_id(key_id)
            .name(&grant.name)
            .set_grantee_principal(terms.grantee_principal.clone())
            .set_grantee_service_principal(terms.grantee_service_principal.clone())
            .set_retiring_principal(terms.retiring_principal.clone())
            .set_retiring_service_principal(terms.retiring_service_principal.clone())
            .set_operations(Some(operations.collect()))
            .set_constraints(grant_constraints(terms))
            .send()
            .await
            .map_err(|e| turn.failed(e))?;
        Ok(out.grant_id().unwrap_or_default().to_owned())
    }

    async fn revoke_grant(&self, key_id: &str, grant_id: &str) -> Result<(), KmsError> {
        let call = self.client.revoke_grant().key_id(key_id).grant_id(grant_id);
        let turn = self.turn("RevokeGrant").await;
        call.send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }

    async fn schedule_deletion(&self, key_id: &str, window_days: i32) -> Result<(), KmsError> {
        let call = self.client.schedule_key_deletion().key_id(key_id);
        let turn = self.turn("ScheduleKeyDeletion").await;
        let out = call.pending_window_in_days(window_days).send().await;
        let out = out.map_err(|e| turn.failed(e))?;
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
        let turn = self.turn("CancelKeyDeletion").await;
        call.send().await.map_err(|e| turn.failed(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_quota_spent_for_a_call_made_elsewhere_delays_the_next_call_here() {
        let clients = AwsClients::unused("eu-west-1");
        let overrides = BTreeMap::from([("CreateKey".to_owned(), 10.0)]);
        let kms = AwsKms::with_quotas(clients, Arc::new(Quotas::of_aws(1.0, &overrides)));
        let started = std::time::Instant::now();
        kms.spend_quota("CreateKey").await;
        kms.turn("CreateKey").await;
        assert!(started.elapsed() >= std::time::Duration::from_millis(90), "{:?}", started.elapsed());
    }
}
