//! What the controller's cache keeps of each KmsKey: its metadata only (the watch is a
//! metadata watch: a reconcile reads the whole object with one GET once it has its turn in a
//! lane), and of that neither the apiserver's field-ownership records (`managedFields`) nor
//! kubectl's copy of the last applied manifest, which are often larger than the rest. With
//! 10,000 objects the cache was most of the operator's memory when it held whole objects.
//! Nothing the operator writes depends on what is dropped: status and finalizer patches name
//! their own fields.

use kube::{Resource, ResourceExt};

/// kubectl's client-side apply keeps the whole applied manifest in this annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from `obj` what the operator never reads.
pub fn slim<K: Resource>(obj: &mut K) {
    obj.managed_fields_mut().clear();
    obj.annotations_mut().remove(LAST_APPLIED);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::KmsKey;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn slimming_drops_field_ownership_and_the_last_applied_copy_only() {
        let manifest = r#"{"apiVersion":"kms.boosterpack.io/v1alpha1","kind":"KmsKey",
            "metadata":{"name":"a","namespace":"n","generation":2,
              "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{...}",
                             "kms.boosterpack.io/rotate-now":"1"},
              "labels":{"team":"a"}},
            "spec":{"aliasName":"a","keyDescription":"d"}}"#;
        let mut obj: KmsKey = serde_json::from_str(manifest).unwrap();
        obj.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default(); 3]);
        let mut expected = obj.clone();
        expected.metadata.managed_fields = Some(vec![]);
        expected.metadata.annotations.as_mut().unwrap().remove(LAST_APPLIED);
        slim(&mut obj);
        assert_eq!(serde_json::to_value(&obj).unwrap(), serde_json::to_value(&expected).unwrap());
        assert_eq!(obj.annotations().get("kms.boosterpack.io/rotate-now").map(String::as_str), Some("1"));
        assert_eq!(obj.labels().get("team").map(String::as_str), Some("a"));
    }
}
