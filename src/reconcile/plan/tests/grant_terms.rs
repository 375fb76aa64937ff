//! Grants with the terms beyond the module: context subsets, retiring principals, and grants
//! for AWS service principals.

use super::*;

fn service_grant_spec() -> GrantSpec {
    GrantSpec {
        name: "logs".into(),
        grantee_principal: None,
        grantee_service_principal: Some("logs.amazonaws.com".into()),
        encryption_context_equals: BTreeMap::new(),
        source_arn: Some("arn:aws:logs:us-east-1:123456789012:log-group:app".into()),
        retiring_service_principal: Some("logs.amazonaws.com".into()),
        ..mk_grant_spec()
    }
}

fn managing(grants: Vec<GrantSpec>) -> KmsKeySpec {
    KmsKeySpec { create_grants: true, grants, ..mk_spec() }
}

/// The grant as KMS would list it after CreateGrant with `spec`'s terms.
fn listed(id: &str, spec: &GrantSpec) -> GrantInfo {
    let wanted = grants::new_grant(spec);
    GrantInfo { grant_id: id.into(), name: Some(wanted.name), terms: wanted.terms }
}

#[test]
fn every_term_reaches_create_grant() {
    let spec = service_grant_spec();
    let [Action::CreateGrant(grant)] = &actions(&managing(vec![spec.clone()]), mk_key())[..] else {
        panic!()
    };
    assert_eq!(grant.terms.grantee_principal, None);
    assert_eq!(grant.terms.grantee_service_principal.as_deref(), Some("logs.amazonaws.com"));
    assert_eq!(grant.terms.source_arn, spec.source_arn);
    assert_eq!(grant.terms.retiring_service_principal.as_deref(), Some("logs.amazonaws.com"));
}

#[test]
fn a_grant_listed_with_the_same_terms_is_kept() {
    let spec = service_grant_spec();
    let key = ObservedKey { grants: vec![listed("g1", &spec)], ..mk_key() };
    assert!(actions(&managing(vec![spec]), key).is_empty());
}

#[test]
fn a_change_to_any_term_replaces_the_grant() {
    let base = service_grant_spec();
    let changed = [
        GrantSpec {
            source_arn: Some("arn:aws:logs:us-east-1:123456789012:log-group:other".into()),
            ..base.clone()
        },
        GrantSpec {
            retiring_service_principal: None,
            retiring_principal: Some("arn:aws:iam::123456789012:role/ops".into()),
            ..base.clone()
        },
        GrantSpec { encryption_context_subset: [("App".into(), "Logs".into())].into(), ..base.clone() },
        GrantSpec {
            grantee_service_principal: None,
            grantee_principal: Some("arn:aws:iam::123456789012:role/app".into()),
            source_arn: None,
            ..base.clone()
        },
    ];
    for spec in changed {
        let key = ObservedKey { grants: vec![listed("g1", &base)], ..mk_key() };
        let got = actions(&managing(vec![spec.clone()]), key);
        let revoke = Action::RevokeGrant { name: "logs".into(), grant_id: "g1".into() };
        assert!(matches!(&got[..], [Action::CreateGrant(_), r] if *r == revoke), "{spec:?}: {got:?}");
    }
}
