//! Where the key's outputs are published for applications to read.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A ConfigMap that receives the key's outputs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExportTo {
    /// Name of a ConfigMap in this object's namespace (a DNS subdomain, at most 253
    /// characters). The operator writes `keyId`, `keyArn`, `aliasName` and, when there are
    /// any, `additionalAliases` (comma-separated) into it, owned by this object (deleted with
    /// it by the garbage collector). A ConfigMap of that name that this object does not own is
    /// never overwritten: the object becomes Stalled (ExportConflict).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub config_map_name: String,
}
