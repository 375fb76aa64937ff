//! The plan's inputs besides the spec: what the operator recorded in status, and what KMS
//! holds for the object.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use crate::kms::{GrantInfo, KeyDescription, LastUsage, PastRotation, Rotation};

use super::on_demand::RotationRequest;
use crate::reconcile::ownership::Holder;

/// What the operator wrote in status earlier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    pub key_id: Option<String>,
    /// Whether the recorded key was adopted (`spec.adopt`) and is the object's since. Until
    /// then, a recorded key is only one an `ObserveOnly` object looked at.
    pub adopted: bool,
    pub key_arn: Option<String>,
    /// When the key ID was recorded.
    pub key_created_at: Option<Timestamp>,
    pub alias_name: Option<String>,
    /// The additional aliases status records (full names).
    pub additional_aliases: Vec<String>,
    pub intent: Option<Intent>,
    /// Since when AWS has been refusing the operator's calls for want of permission. A denial
    /// can be IAM catching up with a new key's tags, so it is waited out for a while first.
    pub denied_since: Option<Timestamp>,
    /// The last on-demand rotation asked for, and every `rotate-now` value acted on.
    pub on_demand: Option<RotationRequest>,
    pub rotate_now_values: Vec<String>,
    /// The next automatic rotation and the count of on-demand rotations as status shows them
    /// (`None`: never read): together they say when the history is worth reading again.
    pub next_rotation: Option<String>,
    pub on_demand_rotations: Option<usize>,
    /// Whether status records the ID of any grant the operator manages.
    pub grants_recorded: bool,
}

/// A create or adoption attempt that was started but never saw its key ID recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    pub token: String,
    /// When the intent was written to status, just before CreateKey was called.
    pub started_at: Timestamp,
    /// For an adoption: the key being adopted.
    pub adopting: Option<String>,
}

/// What KMS holds for the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// No key is recorded, and no key was found by the ownership tags of an interrupted create
    /// (looked up only when status holds a create intent; KMS's listings are eventually
    /// consistent, so a key made moments ago may still be missing from them). `alias_target`
    /// is the key that holds the wanted alias, if any.
    /// `account_arn` is an ARN in the account and partition the key will be made in, when the
    /// policy to create it with needs them (see `policy_builder::policy_at_create`).
    NoKey { alias_target: Option<String>, account_arn: Option<String> },
    /// DescribeKey does not know the key: the recorded one, or one just found by its tags.
    Missing { key_id: String },
    /// The recorded key exists but is tagged for another object or cluster.
    Foreign { key_id: String },
    /// The key exists but the operator may not call `permission` on it. `owned` is true when
    /// the Tagging API (which needs no key policy) shows the key with this object's ownership
    /// tags.
    Unreadable { key_id: String, permission: &'static str, owned: bool },
    /// The object's own key.
    Owned(Box<ObservedKey>),
    /// A key that is not the object's, read because `spec.adopt` names it (to take it over) or
    /// because the object only observes it (`managementPolicy: ObserveOnly`). An adoption
    /// that will be refused reads only the key's description and tags.
    Unowned { key: Box<ObservedKey>, holder: Holder },
}

impl Observed {
    /// The key the plan's calls act on: the object's own, or the recorded one it may not read.
    pub fn key_to_act_on(&self) -> Option<&str> {
        match self {
            Observed::Owned(key) | Observed::Unowned { key, .. } => Some(&key.key.key_id),
            Observed::Unreadable { key_id, .. } => Some(key_id),
            _ => None,
        }
    }

    /// The object's own key, when that is what was observed.
    pub fn owned_key(&self) -> Option<&ObservedKey> {
        match self {
            Observed::Owned(key) => Some(key),
            _ => None,
        }
    }
}

/// The object's key as KMS describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedKey {
    pub key: KeyDescription,
    /// True when the key was found by its ownership tags after an interrupted create, so
    /// status does not record it yet.
    pub unrecorded: bool,
    pub tags: BTreeMap<String, String>,
    /// `None` when the key's state does not let KMS report it, or the read was denied or not
    /// made (see `denied`, `unread`).
    pub rotation: Option<Rotation>,
    /// The key's past rotations, oldest first; `None` when not read (see
    /// `on_demand::history_wanted`).
    pub past_rotations: Option<Vec<PastRotation>>,
    /// `None` when the read was denied or not made (see `denied`, `unread`).
    pub policy: Option<String>,
    /// Aliases that point at this key.
    pub aliases: Vec<String>,
    /// The key that holds the wanted alias, if any (maybe this one).
    pub alias_target: Option<String>,
    /// For each wanted additional alias that does not point at this key: the key that holds
    /// it, if any.
    pub additional_alias_holders: BTreeMap<String, Option<String>>,
    /// The key's grants; empty when the read was denied or not made (see `denied`,
    /// `unread`), or when the key is known to hold none of the operator's
    /// (`reads::grants_unread_are_none`).
    pub grants: Vec<GrantInfo>,
    /// The key's last use, when it was due to be read (see `audit::last_usage_due`).
    pub last_usage: Option<LastUsage>,
    /// Why the due read of the last use failed (it is not worth failing the reconcile for).
    pub last_usage_unreadable: Option<String>,
    /// Permissions (`kms:GetKeyPolicy`, ...) whose reads AWS refused; what they would have
    /// shown is unknown, and the plan leaves that part alone.
    pub denied: Vec<&'static str>,
    /// Parts (named by their reads' permissions, as in `denied`) that were not read this time:
    /// a quick resync reads only the description, the tags and the account's shared alias
    /// listing (see `reads`). The plan leaves an unread part alone, and asks for a full read
    /// before it changes anything.
    pub unread: Vec<&'static str>,
}

impl ObservedKey {
    /// A key known only by its description and tags (nothing else was read).
    pub fn described(key: KeyDescription, tags: BTreeMap<String, String>, unrecorded: bool) -> Self {
        ObservedKey {
            key,
            unrecorded,
            tags,
            rotation: None,
            past_rotations: None,
            policy: None,
            aliases: Vec::new(),
            alias_target: None,
            additional_alias_holders: BTreeMap::new(),
            grants: Vec::new(),
            last_usage: None,
            last_usage_unreadable: None,
            denied: Vec::new(),
            unread: super::reads::PARTS.to_vec(),
        }
    }

    /// Whether the read needing `permission` was refused.
    pub fn was_denied(&self, permission: &str) -> bool {
        self.denied.contains(&permission)
    }

    /// Whether the part read with `permission` is known: read, and not refused.
    pub fn known(&self, permission: &str) -> bool {
        !self.was_denied(permission) && !self.unread.contains(&permission)
    }
}
