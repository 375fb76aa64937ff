//! What a person can hold back with annotations: every KMS call while the object is paused,
//! and the release of the key while deletion protection is on. A held object says why in its
//! conditions; removing the annotation lets the held work proceed (the watch sees it).

use crate::api::KmsKey;
use crate::api::annotations::{self, DELETION_PROTECTION_ANNOTATION, PAUSED_ANNOTATION};
use crate::reconcile::Outcome;

/// Why a reconcile of `obj` makes no KMS call, if it makes none.
pub fn on_apply(obj: &KmsKey) -> Option<Outcome> {
    annotations::paused(annotations_of(obj)).then(|| Outcome::Held {
        reason: "Paused",
        message: format!(
            "paused by the {PAUSED_ANNOTATION} annotation: no KMS call is made until it is removed"
        ),
    })
}

/// Why deleting `obj` does not release its key yet, if it does not; `default_protection` is
/// the operator's `--default-deletion-protection`.
pub fn on_release(obj: &KmsKey, default_protection: bool) -> Option<Outcome> {
    let annotations = annotations_of(obj);
    if annotations::paused(annotations) {
        return Some(Outcome::Held {
            reason: "Paused",
            message: format!(
                "the deletion waits: the object is paused by the {PAUSED_ANNOTATION} annotation; remove it to let the key be released"
            ),
        });
    }
    annotations::deletion_protected(annotations, default_protection).then(|| Outcome::Stalled {
        reason: "DeletionProtected",
        message: format!(
            "the deletion waits: deletion protection is on ({DELETION_PROTECTION_ANNOTATION}, or the operator's default); the key is untouched. Remove the annotation, or set it to \"false\", to let the key be released"
        ),
    })
}

fn annotations_of(obj: &KmsKey) -> &std::collections::BTreeMap<String, String> {
    use kube::ResourceExt;
    obj.annotations()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(annotations: &[(&str, &str)]) -> KmsKey {
        let spec = serde_json::from_value(serde_json::json!({"aliasName": "k"})).unwrap();
        let mut obj = KmsKey::new("k", spec);
        let pairs = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        obj.metadata.annotations = Some(pairs.collect());
        obj
    }

    fn reason(outcome: Option<Outcome>) -> Option<&'static str> {
        outcome.map(|o| o.reason())
    }

    #[test]
    fn a_paused_object_is_held_in_reconcile_and_in_deletion() {
        let paused = object(&[(PAUSED_ANNOTATION, "true")]);
        assert_eq!(reason(on_apply(&paused)), Some("Paused"));
        assert_eq!(reason(on_release(&paused, true)), Some("Paused"));
        assert_eq!(reason(on_apply(&object(&[]))), None);
    }

    #[test]
    fn deletion_protection_holds_only_the_release() {
        let protected = object(&[(DELETION_PROTECTION_ANNOTATION, "true")]);
        assert_eq!(reason(on_apply(&protected)), None, "reconciles as usual");
        assert_eq!(reason(on_release(&protected, false)), Some("DeletionProtected"));
        assert_eq!(
            reason(on_release(&object(&[]), true)),
            Some("DeletionProtected"),
            "the operator's default"
        );
        let opted_out = object(&[(DELETION_PROTECTION_ANNOTATION, "false")]);
        assert_eq!(reason(on_release(&opted_out, true)), None);
        assert_eq!(reason(on_release(&object(&[]), false)), None);
    }
}
