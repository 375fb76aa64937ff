//! Ownership tags: how a KMS key says which `KmsKey` object it belongs to. The operator only
//! modifies or deletes keys whose tags name this object's UID and this operator's cluster.

use std::collections::BTreeMap;

/// Prefix of every tag the operator writes.
pub const TAG_PREFIX: &str = "kms.boosterpack.io/";
/// Tag with `namespace/name` of the owning object (for people reading the key).
pub const TAG_OWNER: &str = "kms.boosterpack.io/owner";
/// Tag with the owning object's UID: this, with the cluster, decides ownership.
pub const TAG_UID: &str = "kms.boosterpack.io/uid";
/// Tag with the name of the cluster the operator runs for.
pub const TAG_CLUSTER: &str = "kms.boosterpack.io/cluster";
/// Tag with the token of the create attempt that made the key (used to adopt after a crash).
pub const TAG_CREATE_TOKEN: &str = "kms.boosterpack.io/create-token";
/// How many tags the operator keeps on a key: owner, UID, cluster and create token. AWS
/// allows 50 tags per key in all, so a spec may hold at most 50 minus these.
pub const OPERATOR_TAGS: usize = 4;
/// Longest tag value AWS accepts.
const MAX_TAG_VALUE: usize = 256;

/// The `KmsKey` object a key belongs to, as the operator identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub cluster: String,
}

impl Owner {
    /// The tags every key of this object carries (the create token comes on top at creation).
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_OWNER.to_owned(), self.owner_tag_value()),
            (TAG_UID.to_owned(), self.uid.clone()),
            (TAG_CLUSTER.to_owned(), self.cluster.clone()),
        ])
    }

    /// `namespace/name`, shortened to the 256 characters AWS allows in a tag value when a long
    /// name would not fit (a namespace may have 63 characters and a name 253): the name's end
    /// is replaced by a hash of the whole, so two long names still read differently. The UID
    /// tag, not this one, decides ownership.
    fn owner_tag_value(&self) -> String {
        let full = format!("{}/{}", self.namespace, self.name);
        if full.len() <= MAX_TAG_VALUE {
            return full;
        }
        let suffix = format!("~{:016x}", fnv1a(full.as_bytes()));
        let keep = MAX_TAG_VALUE - suffix.len();
        // Kubernetes names are ASCII, so any byte index is a character boundary.
        format!("{}{suffix}", &full[..keep])
    }

    /// Whether a key with these tags belongs to this object.
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(TAG_UID) == Some(&self.uid) && tags.get(TAG_CLUSTER) == Some(&self.cluster)
    }
}

/// The tags that make a key an object's. A key let go with `deletionPolicy: Retain` loses all
/// of them in one request (the IAM policy refuses taking some off and leaving the cluster's).
pub const OWNERSHIP_TAGS: [&str; OPERATOR_TAGS] = [TAG_OWNER, TAG_UID, TAG_CLUSTER, TAG_CREATE_TOKEN];

/// Who a key that is not this object's belongs to, by its ownership tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// No `kms.boosterpack.io/cluster` tag: no kms-operator claims the key.
    Nobody,
    /// The object `owner` (`namespace/name`, as its tag reads) in the cluster `cluster`.
    Object { cluster: String, owner: String },
}

impl Holder {
    /// The holder of a key with these tags (which are not `owner`'s).
    pub fn of(tags: &BTreeMap<String, String>) -> Self {
        match tags.get(TAG_CLUSTER) {
            None => Holder::Nobody,
            Some(cluster) => Holder::Object {
                cluster: cluster.clone(),
                owner: tags.get(TAG_OWNER).cloned().unwrap_or_else(|| "an unnamed object".to_owned()),
            },
        }
    }
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions, so the owner tag of a
/// long name never changes under an upgrade.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn mk_owner() -> Owner {
        Owner {
            namespace: "team-a".into(),
            name: "orders".into(),
            uid: "uid-1".into(),
            cluster: "prod".into(),
        }
    }

    #[test]
    fn a_key_tagged_for_this_object_and_cluster_is_owned() {
        assert!(mk_owner().owns(&mk_owner().tags()));
    }

    #[test]
    fn a_key_tagged_for_another_object_or_cluster_is_not_owned() {
        let other_uid = Owner { uid: "uid-2".into(), ..mk_owner() };
        let other_cluster = Owner { cluster: "staging".into(), ..mk_owner() };
        assert!(!mk_owner().owns(&other_uid.tags()));
        assert!(!mk_owner().owns(&other_cluster.tags()));
        assert!(!mk_owner().owns(&BTreeMap::new()));
    }

    #[test]
    fn the_owner_tag_reads_namespace_slash_name() {
        assert_eq!(mk_owner().tags()[TAG_OWNER], "team-a/orders");
    }

    #[test]
    fn the_owner_tag_fits_aws_limit_for_the_longest_legal_names() {
        let long = |name: char| Owner {
            namespace: "n".repeat(63),
            name: name.to_string().repeat(253),
            ..mk_owner()
        };
        let (a, b) = (long('a').tags()[TAG_OWNER].clone(), long('b').tags()[TAG_OWNER].clone());
        assert_eq!(a.len(), MAX_TAG_VALUE);
        assert!(a.starts_with(&format!("{}/aaa", "n".repeat(63))));
        assert_ne!(a, b);
    }

    #[test]
    fn every_tag_the_operator_writes_counts_against_the_budget() {
        let mut tags = mk_owner().tags();
        tags.insert(TAG_CREATE_TOKEN.into(), "t".into());
        assert_eq!(tags.len(), OPERATOR_TAGS);
        assert!(tags.keys().all(|k| k.starts_with(TAG_PREFIX)));
    }
}
