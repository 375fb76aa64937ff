//! Tag decisions. The spec's tags plus the ownership tags are the whole truth, with two
//! exceptions: the create token stays (it ties the key to the attempt that made it), and a
//! tag under the operator's own prefix that the operator did not write is reported, never
//! removed: the shipped IAM policy forbids removing such tags, and an untag batch holding one
//! would fail whole.

use std::collections::BTreeMap;

use crate::api::KmsKeySpec;

use super::super::ownership::{Owner, TAG_CREATE_TOKEN, TAG_PREFIX};
use super::{Action, Plan};

/// Adds the Untag and Tag calls that make the key's tags match, and a notice per stray tag.
pub fn plan_tags(spec: &KmsKeySpec, owner: &Owner, observed: &BTreeMap<String, String>, plan: &mut Plan) {
    let mut wanted = spec.tags.clone();
    wanted.extend(owner.tags());
    let to_set: BTreeMap<String, String> = (wanted.iter())
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut to_remove = Vec::new();
    for key in observed.keys().filter(|k| !wanted.contains_key(*k) && *k != TAG_CREATE_TOKEN) {
        if key.starts_with(TAG_PREFIX) {
            plan.notices.push(format!(
                "tag {key} uses the operator's prefix but was not written by it; it is left on the key (remove it by hand)"
            ));
        } else {
            to_remove.push(key.clone());
        }
    }
    // Untag first: AWS counts the key's tags after each call against its limit of 50, so a
    // rename at the limit must make room before it adds.
    if !to_remove.is_empty() {
        plan.actions.push(Action::Untag(to_remove));
    }
    if !to_set.is_empty() {
        plan.actions.push(Action::Tag(to_set));
    }
}
