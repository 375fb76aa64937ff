//! Plans for keys other than the default symmetric one.

use super::*;

fn signing_spec() -> KmsKeySpec {
    KmsKeySpec {
        key_spec: KeySpec::EccNistP256,
        key_usage: KeyUsage::SignVerify,
        enable_key_rotation: false,
        ..mk_spec()
    }
}

fn signing_key() -> ObservedKey {
    let mut key = mk_key();
    key.key.key_spec = "ECC_NIST_P256".into();
    key.key.key_usage = "SIGN_VERIFY".into();
    key.rotation = None;
    key
}

#[test]
fn a_new_key_is_created_with_the_spec_and_usage_asked_for() {
    let plan = run(
        &signing_spec(),
        &Observed::NoKey { alias_target: None, account_arn: None },
        &Recorded::default(),
    );
    let [Action::CreateKey { key, .. }] = plan.actions.as_slice() else { panic!("{plan:?}") };
    assert_eq!((key.key_spec.as_str(), key.key_usage.as_str()), ("ECC_NIST_P256", "SIGN_VERIFY"));
}

#[test]
fn a_matching_signing_key_needs_nothing_and_its_rotation_is_never_touched() {
    assert_eq!(run_key(&signing_spec(), signing_key()), Plan::default());
}

#[test]
fn a_key_of_another_kind_stalls_and_nothing_is_changed_on_it() {
    // A changed description would normally be put back; on a key of the wrong kind nothing is.
    let spec = KmsKeySpec { key_description: "new".into(), ..signing_spec() };
    let plan = run_key(&spec, mk_key());
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(
        plan.blockers,
        vec![Blocker::WrongKind {
            field: "keySpec",
            wanted: "ECC_NIST_P256".into(),
            actual: "SYMMETRIC_DEFAULT".into()
        }]
    );
    let mut other_usage = signing_key();
    other_usage.key.key_usage = "KEY_AGREEMENT".into();
    let plan = run_key(&signing_spec(), other_usage);
    assert!(matches!(&plan.blockers[..], [Blocker::WrongKind { field: "keyUsage", .. }]), "{plan:?}");
}

#[test]
fn a_kms_that_does_not_report_the_kind_is_taken_at_its_word() {
    let mut key = mk_key();
    key.key.key_spec = String::new();
    key.key.key_usage = String::new();
    assert_eq!(run_key(&mk_spec(), key), Plan::default());
}
