//! Eventual consistency and propagation lag, as AWS documents them for KMS
//! (<https://docs.aws.amazon.com/kms/latest/developerguide/accessing-kms.html#programming-eventual-consistency>
//! and "ABAC for AWS KMS": tag and alias changes can take up to five minutes to affect
//! authorization). moto is consistent at once; the strict layer remembers what it saw:
//! - when each key was created (the CreateKey response through the proxy), so a key younger
//!   than `list_lag` is missing from ListKeys and tag:GetResources, and one younger than
//!   `describe_lag` is not found by DescribeKey;
//! - each key's tags over time (CreateKey tags, TagResource, UntagResource through the proxy),
//!   so IAM sees `aws:ResourceTag/...` as it was `tag_lag` ago. A key younger than the lag has
//!   no tags for IAM; a key the proxy never saw being created or tagged (made by a test directly
//!   on moto) has had its current tags forever.
//!
//! Keys are known by their ARN: a multi-Region replica has its primary's key ID, and its own
//! creation and tags in its Region (ReplicateKey through the proxy counts as its creation).
//!
//! All times are on the test clock, so a test advances it instead of sleeping.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

pub type Tags = BTreeMap<String, String>;

/// One state of a key's tags, from `since` (`None`: since before the proxy knew the key).
#[derive(Clone, Debug)]
struct Snapshot {
    since: Option<Instant>,
    tags: Tags,
}

#[derive(Debug, Default)]
pub struct History {
    created: HashMap<String, Instant>,
    tags: HashMap<String, Vec<Snapshot>>,
}

impl History {
    /// A key was created at `at` with `tags`.
    pub fn created(&mut self, key_arn: &str, at: Instant, tags: Tags) {
        self.created.insert(key_arn.to_owned(), at);
        self.tags.insert(key_arn.to_owned(), vec![Snapshot { since: Some(at), tags }]);
    }

    /// Whether the proxy saw `key_arn` created less than `lag` before `now`. Keys it never saw
    /// created are old.
    pub fn younger_than(&self, key_arn: &str, now: Instant, lag: Duration) -> bool {
        self.created.get(key_arn).is_some_and(|at| now.saturating_duration_since(*at) < lag)
    }

    /// A key's tags changed at `at` from `before` (what moto had just before the change) to
    /// `after`.
    pub fn retagged(&mut self, key_arn: &str, at: Instant, before: &Tags, after: Tags) {
        let snapshots = self
            .tags
            .entry(key_arn.to_owned())
            .or_insert_with(|| vec![Snapshot { since: None, tags: before.clone() }]);
        snapshots.push(Snapshot { since: Some(at), tags: after });
    }

    /// The key's tags as IAM sees them at `now`: the newest state at least `lag` old, none if
    /// the key is younger than `lag`, and `current` (moto's) if the proxy never saw the key change.
    pub fn tags_for_iam(&self, key_arn: &str, now: Instant, lag: Duration, current: &Tags) -> Tags {
        let Some(snapshots) = self.tags.get(key_arn) else { return current.clone() };
        let settled = |s: &&Snapshot| s.since.is_none_or(|at| now.saturating_duration_since(at) >= lag);
        snapshots.iter().rev().find(settled).map(|s| s.tags.clone()).unwrap_or_default()
    }
}
