//! What the controller's cache keeps of each KmsKey: everything a reconcile reads, without the
//! apiserver's field-ownership records (`managedFields`) or kubectl's copy of the last applied
//! manifest, which together are often larger than the rest of the object. With 10,000 objects
//! in the cache that is most of the operator's memory. Nothing the operator writes depends on
//! them: status and finalizer patches name their own fields.

use kube::ResourceExt;

use crate::api::KmsKey;

/// kubectl's client-side apply keeps the whole applied manifest in this annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from `obj` what the operator never reads.
pub fn slim(obj: &mut KmsKey) {
    obj.managed_fields_mut().clear();
    obj.annotations_mut().remove(LAST_APPLIED);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn the_cache_keeps_everything_but_field_ownership_and_the_last_applied_copy() {
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
