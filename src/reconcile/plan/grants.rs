//! Grant decisions. The operator names its grants `kms-operator/<name>`; grants with other
//! names (made by people or by AWS services) are never revoked.

use std::collections::BTreeSet;

use crate::api::{GrantSpec, KmsKeySpec};
use crate::kms::{GrantInfo, GrantTerms, NewGrant};

use super::{Action, Plan};

/// Prefix of the names of grants the operator manages.
pub const GRANT_PREFIX: &str = "kms-operator/";

/// The grant as CreateGrant receives it.
pub fn new_grant(spec: &GrantSpec) -> NewGrant {
    let mut operations: Vec<String> = spec.operations.iter().map(|o| o.as_str().to_owned()).collect();
    operations.sort();
    operations.dedup();
    NewGrant {
        name: format!("{GRANT_PREFIX}{}", spec.name),
        terms: GrantTerms {
            grantee_principal: spec.grantee_principal.clone(),
            grantee_service_principal: spec.grantee_service_principal.clone(),
            operations,
            encryption_context_equals: spec.encryption_context_equals.clone(),
            encryption_context_subset: spec.encryption_context_subset.clone(),
            source_arn: spec.source_arn.clone(),
            retiring_principal: spec.retiring_principal.clone(),
            retiring_service_principal: spec.retiring_service_principal.clone(),
        },
    }
}

/// The spec name of a grant the operator made, `None` for anyone else's grant.
pub fn managed_name(grant: &GrantInfo) -> Option<&str> {
    grant.name.as_deref()?.strip_prefix(GRANT_PREFIX)
}

/// Whether the grant has the wanted terms, its operations taken as a set.
fn matches(wanted: &NewGrant, grant: &GrantInfo) -> bool {
    let ops = |terms: &GrantTerms| terms.operations.iter().cloned().collect::<BTreeSet<String>>();
    let without_ops = |terms: &GrantTerms| GrantTerms { operations: Vec::new(), ..terms.clone() };
    ops(&grant.terms) == ops(&wanted.terms) && without_ops(&grant.terms) == without_ops(&wanted.terms)
}

/// Creates the missing managed grants, then revokes those gone from the spec, changed, or
/// duplicated. A changed grant is thus replaced without a moment with no grant: the new one
/// exists before the old one goes. New grants wait while the key is disabled (KMS refuses
/// them then).
///
/// A grant whose ID is in `confirmed` matches whatever form KMS reports it in: in this
/// reconcile, a CreateGrant with the spec's name and parameters answered with its ID.
pub fn plan_grants(
    spec: &KmsKeySpec,
    observed: &[GrantInfo],
    confirmed: &BTreeSet<String>,
    key_usable: bool,
    plan: &mut Plan,
) {
    let wanted: Vec<NewGrant> = match spec.create_grants {
        true => spec.grants.iter().map(new_grant).collect(),
        false => Vec::new(),
    };
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    let mut revokes = Vec::new();
    for grant in observed {
        let Some(name) = managed_name(grant) else { continue };
        let full_name = grant.name.as_deref().unwrap_or_default();
        let same = |w: &NewGrant| matches(w, grant) || confirmed.contains(&grant.grant_id);
        let keep = wanted.iter().any(|w| w.name == full_name && same(w));
        if keep && kept.insert(name) {
            continue;
        }
        revokes.push(Action::RevokeGrant { name: name.to_owned(), grant_id: grant.grant_id.clone() });
    }
    let missing: Vec<&NewGrant> = (wanted.iter())
        .filter(|w| !kept.contains(w.name.strip_prefix(GRANT_PREFIX).unwrap_or_default()))
        .collect();
    if !missing.is_empty() && !key_usable {
        plan.deferred.push("grants are created once the key is enabled".to_owned());
    } else {
        plan.actions.extend(missing.into_iter().cloned().map(Action::CreateGrant));
    }
    plan.actions.extend(revokes);
}
