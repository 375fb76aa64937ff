//! What the strict-layer tests share: moto with the proxy in front, clients on both sides, keys
//! tagged for a cluster, and reading a refusal's error code.

use std::fmt::Debug;
use std::time::Duration;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::Tag;

use crate::support::fault_proxy::FaultProxy;
use crate::support::moto::{self, Moto};
use crate::support::strict::StrictConfig;

pub const CLUSTER_TAG: &str = "kms.boosterpack.io/cluster";

/// moto, the proxy with its strict layer, a client through the proxy (`kms`), and one
/// straight to moto (`raw`) to set up and check what the layer hides.
pub struct Kms {
    pub kms: Client,
    pub raw: Client,
    pub proxy: FaultProxy,
    pub moto: Moto,
}

impl Kms {
    pub async fn start() -> Kms {
        Self::start_with(StrictConfig::default()).await
    }

    pub async fn start_with(config: StrictConfig) -> Kms {
        let moto = Moto::start();
        let proxy = FaultProxy::start_with(&moto.url, config).await;
        Kms { kms: moto::client_for(&proxy.url), raw: moto.client(), proxy, moto }
    }

    /// Moves the strict layer's clock past the IAM tag lag (300 s by default).
    pub fn after_tag_lag(&self) {
        self.proxy.clock().advance(Duration::from_secs(301));
    }

    /// A key made straight on moto (the proxy never saw it made, so IAM sees its tags at once),
    /// tagged for `cluster`.
    pub async fn raw_key(&self, cluster: &str) -> String {
        let out = self.raw.create_key().tags(tag(CLUSTER_TAG, cluster)).send().await.unwrap();
        out.key_metadata().unwrap().key_id().to_owned()
    }

    /// A key made through the proxy, tagged for the `test` cluster (IAM sees the tag only after
    /// the tag lag).
    pub async fn new_key(&self) -> String {
        let out = self.kms.create_key().tags(tag(CLUSTER_TAG, "test")).send().await.unwrap();
        out.key_metadata().unwrap().key_id().to_owned()
    }

    /// The key's state as moto has it.
    pub async fn state(&self, key_id: &str) -> String {
        let out = self.raw.describe_key().key_id(key_id).send().await.unwrap();
        out.key_metadata().unwrap().key_state().unwrap().as_str().to_owned()
    }
}

pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().tag_key(key).tag_value(value).build().unwrap()
}

/// The error code of a call that must fail.
pub fn code<T: Debug, E: ProvideErrorMetadata + Debug>(result: Result<T, E>) -> String {
    result.expect_err("the call should have been refused").code().unwrap_or("(no code)").to_owned()
}

/// The error code and message of a call that must fail.
pub fn refusal<T: Debug, E: ProvideErrorMetadata + Debug>(result: Result<T, E>) -> (String, String) {
    let err = result.expect_err("the call should have been refused");
    (err.code().unwrap_or("").to_owned(), err.message().unwrap_or("").to_owned())
}

/// A key policy that gives the account (and so IAM) `kms:*`, like AWS's default.
pub fn root_policy() -> String {
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}"#.to_owned()
}

/// A Resource Groups Tagging API client for `url`, with the test credentials.
pub fn tagging_for(url: &str) -> aws_sdk_resourcegroupstagging::Client {
    use aws_sdk_resourcegroupstagging::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_resourcegroupstagging::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(url)
        .build();
    aws_sdk_resourcegroupstagging::Client::from_conf(config)
}

/// A key policy with one statement: `principal` gets `actions` (a JSON string or list).
pub fn policy_for(principal: &str, actions: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":{actions},"Resource":"*"}}]}}"#
    )
}

/// A key policy: the account gets `kms:*` (so IAM counts), and `principal` gets `actions`.
pub fn with_root(principal: &str, actions: &str) -> String {
    let root = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}"#;
    policy_for(principal, actions).replacen(r#""Statement":["#, &format!(r#""Statement":[{root},"#), 1)
}
