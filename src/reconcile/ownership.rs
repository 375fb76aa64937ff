//! Ownership tags: how a KMS key says which `KmsKey` object it belongs to. The operator only
//! modifies or deletes keys whose tags name this object's UID and this operator's cluster.

use std::collections::BTreeMap;

/// Tag with `namespace/name` of the owning object (for people reading the key).
pub const TAG_OWNER: &str = "kms.boosterpack.io/owner";
/// Tag with the owning object's UID: this, with the cluster, decides ownership.
pub const TAG_UID: &str = "kms.boosterpack.io/uid";
/// Tag with the name of the cluster the operator runs for.
pub const TAG_CLUSTER: &str = "kms.boosterpack.io/cluster";
/// Tag with the token of the create attempt that made the key (used to adopt after a crash).
pub const TAG_CREATE_TOKEN: &str = "kms.boosterpack.io/create-token";

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
            (TAG_OWNER.to_owned(), format!("{}/{}", self.namespace, self.name)),
            (TAG_UID.to_owned(), self.uid.clone()),
            (TAG_CLUSTER.to_owned(), self.cluster.clone()),
        ])
    }

    /// Whether a key with these tags belongs to this object.
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(TAG_UID) == Some(&self.uid) && tags.get(TAG_CLUSTER) == Some(&self.cluster)
    }
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
}
