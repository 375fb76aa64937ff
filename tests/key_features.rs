//! The key's own features beyond the Terraform module (key spec and usage, richer grants,
//! on-demand rotation), reconciled against moto through the strict KMS layer with the shipped
//! IAM policy: what AWS would refuse, the layer refuses too.

mod support;

use kms_operator::api::{KeySpec, KeyUsage, KmsKeySpec};
use kms_operator::kms::AwsKms;
use support::clock::TestClock;
use support::fault_proxy::FaultProxy;
use support::moto::{Moto, clients_for};
use support::object::{Object, example};
use support::strict::StrictConfig;

struct Env {
    moto: Moto,
    proxy: FaultProxy,
    kms: AwsKms,
    clock: TestClock,
}

async fn setup() -> Env {
    let moto = Moto::start();
    let strict = StrictConfig::default();
    let clock = strict.clock.clone();
    let proxy = FaultProxy::start_with(&moto.url, strict).await;
    let kms = AwsKms::new(clients_for(&proxy.url));
    Env { moto, proxy, kms, clock }
}

#[tokio::test]
async fn a_signing_key_is_made_with_its_spec_and_usage_and_its_rotation_never_read() {
    let env = setup().await;
    let obj = Object::new("signing-key", example("signing-key.yaml").spec);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let status = obj.status();
    assert_eq!(
        (status.key_spec.as_deref(), status.key_usage.as_deref()),
        (Some("ECC_NIST_P256"), Some("SIGN_VERIFY"))
    );
    assert_eq!(status.rotation_period_in_days, None);
    let described = env.moto.client().describe_key().key_id(obj.key_id()).send().await.unwrap();
    let meta = described.key_metadata().unwrap();
    assert_eq!(meta.key_spec().map(|s| s.as_str()), Some("ECC_NIST_P256"));
    assert_eq!(meta.key_usage().map(|u| u.as_str()), Some("SIGN_VERIFY"));
    assert_eq!(status.grant_ids.len(), 1, "the Sign grant");
    let calls = env.proxy.calls();
    assert_eq!(calls.get("GetKeyRotationStatus"), None, "a key AWS does not rotate: {calls:?}");
    assert_eq!(calls.get("EnableKeyRotation"), None, "{calls:?}");
}

#[tokio::test]
async fn post_quantum_and_hmac_keys_are_made_as_asked() {
    let env = setup().await;
    for (name, key_spec, key_usage) in [
        ("ml-dsa", KeySpec::MlDsa65, KeyUsage::SignVerify),
        ("hmac", KeySpec::Hmac512, KeyUsage::GenerateVerifyMac),
    ] {
        let spec = KmsKeySpec {
            alias_name: name.into(),
            key_spec,
            key_usage,
            enable_key_rotation: false,
            ..example("basic.yaml").spec
        };
        let obj = Object::new(name, spec);
        obj.converge(&env.kms, &env.clock).await;
        assert!(obj.is_ready(), "{name}: {:?}", obj.status());
        assert_eq!(obj.status().key_spec.as_deref(), Some(key_spec.as_str()));
    }
}

#[tokio::test]
async fn a_spec_whose_rotation_or_grant_the_key_cannot_take_stalls_before_any_kms_call() {
    let env = setup().await;
    let spec = KmsKeySpec { enable_key_rotation: true, ..example("signing-key.yaml").spec };
    let obj = Object::new("signing-key", spec);
    obj.converge(&env.kms, &env.clock).await;
    assert_eq!(obj.stalled_reason().as_deref(), Some("InvalidSpec"));
    assert!(obj.condition("Stalled").message.starts_with("spec.enableKeyRotation"), "{:?}", obj.status());
    assert_eq!(env.proxy.total_calls(), 0, "{:?}", env.proxy.calls());
}

#[tokio::test]
async fn grants_for_services_with_source_arn_subset_and_retirees_reach_kms_and_stay_put() {
    let env = setup().await;
    let obj = Object::new("payments-key", example("grants-for-services.yaml").spec);
    obj.converge(&env.kms, &env.clock).await;
    assert!(obj.is_ready(), "{:?}", obj.status());
    let listed = support::moto::client_for(&env.proxy.url).list_grants().key_id(obj.key_id()).send().await;
    let listed = listed.unwrap();
    let grant = |name: &str| {
        let full = format!("kms-operator/{name}");
        listed.grants().iter().find(|g| g.name() == Some(full.as_str())).cloned().unwrap()
    };
    let logs = grant("payments-logs");
    assert_eq!(logs.grantee_service_principal(), Some("logs.amazonaws.com"));
    assert_eq!(logs.grantee_principal(), None);
    assert_eq!(logs.retiring_service_principal(), Some("logs.amazonaws.com"));
    let source = logs.constraints().and_then(|c| c.source_arn());
    assert_eq!(source, Some("arn:aws:logs:us-east-1:123456789012:log-group:payments"));
    let app = grant("payments-app");
    assert_eq!(app.retiring_principal(), Some("arn:aws:iam::123456789012:role/platform-team"));
    let subset = app.constraints().and_then(|c| c.encryption_context_subset()).unwrap();
    assert_eq!(subset.get("App").map(String::as_str), Some("Payments"));
    assert_eq!(obj.status().grant_ids.len(), 2);

    // A resync finds nothing to change: every term reads back as it was asked for.
    let before = env.proxy.calls();
    let report = obj.reconcile(&env.kms).await;
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    let after = env.proxy.calls();
    assert_eq!(before.get("CreateGrant"), after.get("CreateGrant"));
}
