//! A strict KMS layer for the fault proxy: moto accepts almost everything that AWS KMS refuses,
//! so every call that reaches "AWS" through the proxy first goes through AWS's rules, and only
//! then to moto. The pipeline for one KMS call, in the order AWS applies its checks:
//! 1. input limits and formats (`limits`);
//! 2. the key(s) the call names, resolved on moto by side calls (DescribeKey, ListResourceTags,
//!    GetKeyPolicy) that the proxy does not count; a key moto does not know → moto's own answer;
//! 3. eventual consistency of a young key (`consistency`);
//! 4. IAM: the identity policy and the key policy (`iam`), with the key's tags as IAM sees them;
//! 5. the key's state (`key_states`), then limits that need the key (tag total, rotation), and
//!    what the key's spec and usage allow (`key_specs`); no rotation call on a multi-Region
//!    replica (its rotation is its primary's);
//! 6. the lockout safety check and unknown principals of a new key policy (PutKeyPolicy,
//!    CreateKey, ReplicateKey); ReplicateKey also needs kms:CreateKey (and with Tags,
//!    kms:TagResource) as the replica is a new key;
//! 7. CreateGrant idempotency (`grants`), pagination of lists (`pages`), then moto;
//! 8. what the answer teaches: creation times, tag history, grant tokens, rotation periods,
//!    the keys' cryptographic use (GetKeyLastUsage, which moto lacks, is answered from it).
//!
//! tag:GetResources (Resource Groups Tagging API) gets IAM, list lag and pagination. Anything
//! else passes through unchanged. `StrictConfig::off()` passes everything through.

pub mod consistency;
pub mod grants;
pub mod iam;
pub mod key_specs;
pub mod key_states;
pub mod limits;
pub mod pages;
mod pipeline;
pub mod sts;
pub mod upstream;
pub mod usage;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::clock::TestClock;
use consistency::{History, Tags};
use iam::Policy;
use upstream::{Message, Upstream};

/// moto's account, and the ARN its STS GetCallerIdentity answers for the tests' credentials.
pub const MOTO_ACCOUNT: &str = "123456789012";
pub const MOTO_CALLER: &str = "arn:aws:sts::123456789012:user/moto";

/// The identity policy the operator's calls are evaluated against.
#[derive(Clone, Debug)]
pub enum IdentityPolicy {
    /// `deploy/iam-policy.json`, read when the proxy starts.
    Shipped,
    /// This document; `ACCOUNT_ID` and `CLUSTER_NAME` are replaced as in the shipped one.
    Json(String),
    /// No IAM evaluation at all: neither identity nor key policies.
    Off,
}

#[derive(Clone, Debug)]
pub struct StrictConfig {
    /// `false`: raw moto, every call passed through (faults and quotas still apply).
    pub enabled: bool,
    pub clock: TestClock,
    pub account: String,
    pub cluster: String,
    /// The principal the calls come from (the operator's role in AWS).
    pub caller: String,
    pub identity_policy: IdentityPolicy,
    /// Items per page of every list (fewer if the request's `Limit` is smaller).
    pub page_size: usize,
    /// A key is missing from ListKeys and tag:GetResources until it is this old.
    pub list_lag: Duration,
    /// A key is missing from tag:GetResources until it is this old (the Tagging API indexes
    /// on its own schedule, with no bound AWS states).
    pub tagging_lag: Duration,
    /// DescribeKey by key ID or ARN answers NotFoundException until the key is this old.
    pub describe_lag: Duration,
    /// IAM sees a key's tags as they were this long ago.
    pub tag_lag: Duration,
    /// Principals that do not exist: a key policy naming one is malformed.
    pub unknown_principals: Vec<String>,
    /// Roles in other accounts that trust `caller` (see `sts`): AssumeRole of any other is
    /// refused.
    pub roles: Vec<sts::TrustedRole>,
}

impl Default for StrictConfig {
    fn default() -> Self {
        StrictConfig {
            enabled: true,
            clock: TestClock::new(),
            account: MOTO_ACCOUNT.to_owned(),
            cluster: "test".to_owned(),
            caller: MOTO_CALLER.to_owned(),
            identity_policy: IdentityPolicy::Shipped,
            page_size: 2,
            list_lag: Duration::from_secs(5),
            tagging_lag: Duration::from_secs(5),
            describe_lag: Duration::ZERO,
            tag_lag: Duration::from_secs(300),
            unknown_principals: Vec::new(),
            roles: Vec::new(),
        }
    }
}

impl StrictConfig {
    /// Raw moto: the proxy forwards every call unchanged.
    pub fn off() -> Self {
        StrictConfig { enabled: false, ..Self::default() }
    }

    /// The identity policy text with the account and cluster filled in, if IAM is on.
    pub fn identity_policy_text(&self) -> Option<String> {
        self.identity_policy_in(&self.account)
    }

    /// The same for a role in `account` (the shipped policy is attached to it there).
    pub fn identity_policy_in(&self, account: &str) -> Option<String> {
        let template = match &self.identity_policy {
            IdentityPolicy::Off => return None,
            IdentityPolicy::Json(text) => text.clone(),
            IdentityPolicy::Shipped => std::fs::read_to_string(shipped_policy_path())
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", shipped_policy_path().display())),
        };
        Some(template.replace("ACCOUNT_ID", account).replace("CLUSTER_NAME", &self.cluster))
    }
}

/// The STS action of a query-protocol request (`Action=...` in a form body), if it is one.
fn sts_action(request: &Message) -> Option<String> {
    let form = request.header("content-type")?.starts_with("application/x-www-form-urlencoded");
    form.then(|| sts::form(&request.body).remove("Action")).flatten()
}

/// Where the operator's shipped IAM policy lives.
pub fn shipped_policy_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/iam-policy.json")
}

/// A refusal in KMS's terms: the error code and an AWS-like message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal { code, message: message.into() }
    }
}

/// A key as moto describes it, with its tags and policy when the call needs them.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub id: String,
    pub arn: String,
    pub state: String,
    pub spec: String,
    pub usage: String,
    pub origin: String,
    /// A multi-Region replica (its rotation is its primary's).
    pub replica: bool,
    /// CreationDate as moto has it (epoch seconds).
    pub created: f64,
    pub tags: Tags,
    pub policy: Option<Policy>,
}

/// What the layer has learned from the calls it saw.
#[derive(Debug, Default)]
struct Learned {
    history: History,
    grant_tokens: HashMap<String, String>,
    /// Per key: the rotation period EnableKeyRotation set, and when (epoch seconds).
    rotation_periods: HashMap<String, (i64, i64)>,
    /// The keys' cryptographic use, for GetKeyLastUsage (see `usage`).
    usage: usage::Usage,
    /// Per grant ID: the service principals moto forgot (see `grants`).
    service_grants: HashMap<String, serde_json::Value>,
    /// Per key: when (epoch seconds, test clock) each on-demand rotation this layer saw was made.
    on_demand_rotations: HashMap<String, Vec<i64>>,
    /// Keys moto holds under a stand-in spec, with their real spec.
    real_specs: HashMap<String, String>,
    /// Access key IDs of assumed roles, with who they are (see `sts`).
    assumed: HashMap<String, sts::Principal>,
    /// The identity policy of each other account a role was assumed in.
    policies: HashMap<String, Policy>,
    unknown_until: Vec<(String, Instant)>,
}

/// The strict layer of one proxy.
pub struct Strict {
    config: StrictConfig,
    identity: Option<Policy>,
    upstream: Upstream,
    learned: Mutex<Learned>,
}

impl Strict {
    /// The layer in front of moto at `upstream` (`host:port`). Panics if the identity policy
    /// has anything the evaluator does not model.
    pub fn new(upstream: &str, config: StrictConfig) -> Strict {
        let identity =
            if config.enabled { config.identity_policy_text().map(|t| Policy::parse(&t)) } else { None };
        let upstream = Upstream { addr: upstream.trim_start_matches("http://").to_owned() };
        Strict { config, identity, upstream, learned: Mutex::default() }
    }

    pub fn config(&self) -> &StrictConfig {
        &self.config
    }

    /// The principal `arn` does not exist in IAM for `duration` on the test clock (a new role
    /// that has not propagated yet): a key policy naming it is malformed until then.
    pub fn mark_principal_unknown(&self, arn: &str, duration: Duration) {
        let until = self.now() + duration;
        self.learned().unknown_until.push((arn.to_owned(), until));
    }

    /// KMS began tracking the key's use `ago` before now (see `usage`).
    pub fn backdate_usage_tracking(&self, key_id: &str, ago: Duration) {
        let at = self.config.clock.now_timestamp().as_second() - ago.as_secs() as i64;
        self.learned().usage.created(key_id, at);
    }

    /// Answers one client request (the bytes for the client), or `None` if moto could not be
    /// reached (the proxy then drops the client's connection).
    pub async fn handle(&self, request: &Message) -> Option<Vec<u8>> {
        let passthrough = async { self.upstream.send(request).await.map(|r| r.to_client()) };
        if !self.config.enabled {
            return passthrough.await;
        }
        if sts_action(request).as_deref() == Some("AssumeRole") {
            return self.assume_role(request).await;
        }
        match pipeline::Call::parse(request) {
            Some(call) => self.run(&call).await,
            None => passthrough.await,
        }
    }

    /// AssumeRole: refused unless the role trusts the caller (with its external ID); else
    /// moto's answer, whose access key is remembered as the role's.
    async fn assume_role(&self, request: &Message) -> Option<Vec<u8>> {
        let params = sts::form(&request.body);
        let caller = self.principal(request).caller;
        if let Err(message) = sts::check_assume_role(&params, &self.config.roles, &caller) {
            return Some(sts::error("AccessDenied", &message));
        }
        let response = self.upstream.send(request).await?;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        if let Some((access_key, arn)) = sts::learned_credentials(&text)
            && let Some(account) = sts::account_of(&arn)
        {
            let principal = sts::Principal { account: account.to_owned(), caller: arn.clone() };
            self.learned().assumed.insert(access_key, principal);
        }
        Some(response.to_client())
    }

    /// Who `request` comes from: an assumed role (by its access key), else the operator's own
    /// identity.
    pub fn principal(&self, request: &Message) -> sts::Principal {
        let assumed =
            upstream::access_key_of(request).and_then(|key| self.learned().assumed.get(&key).cloned());
        assumed.unwrap_or_else(|| sts::Principal {
            account: self.config.account.clone(),
            caller: self.config.caller.clone(),
        })
    }

    /// The identity policy `principal` is evaluated against (`None`: IAM is off).
    fn identity_of(&self, principal: &sts::Principal) -> Option<Policy> {
        let own = self.identity.as_ref()?;
        if principal.account == self.config.account {
            return Some(own.clone());
        }
        let mut learned = self.learned();
        let policy = learned.policies.entry(principal.account.clone()).or_insert_with(|| {
            let text = self.config.identity_policy_in(&principal.account).expect("IAM is on");
            Policy::parse(&text)
        });
        Some(policy.clone())
    }

    fn now(&self) -> Instant {
        self.config.clock.now_instant()
    }

    fn learned(&self) -> MutexGuard<'_, Learned> {
        self.learned.lock().unwrap()
    }

    fn principal_unknown(&self, principal: &str) -> bool {
        let now = self.now();
        self.config.unknown_principals.iter().any(|p| p == principal)
            || self.learned().unknown_until.iter().any(|(p, until)| p == principal && now < *until)
    }
}
