//! Key specs and usages through the proxy: AWS's pairs and grant operations, and the specs moto
//! does not know, made under a stand-in and reported as asked for.

use aws_sdk_kms::types::{GrantConstraints, GrantOperation, KeySpec, KeyUsageType};

use super::common::{CLUSTER_TAG, Kms, code, refusal, tag};

impl Kms {
    async fn key_of(&self, spec: KeySpec, usage: KeyUsageType) -> String {
        let create = self.kms.create_key().key_spec(spec).key_usage(usage).tags(tag(CLUSTER_TAG, "test"));
        create.send().await.unwrap().key_metadata().unwrap().key_id().to_owned()
    }
}

#[tokio::test]
async fn the_usage_must_suit_the_spec() {
    let t = Kms::start().await;
    let create = |spec: KeySpec, usage: Option<KeyUsageType>| {
        t.kms.create_key().key_spec(spec).set_key_usage(usage).tags(tag(CLUSTER_TAG, "test")).send()
    };
    let (code_, message) = refusal(create(KeySpec::Hmac256, None).await);
    assert_eq!(code_, "ValidationException", "HMAC with the default ENCRYPT_DECRYPT");
    assert!(message.contains("ENCRYPT_DECRYPT") && message.contains("HMAC_256"), "{message}");
    assert_eq!(
        code(create(KeySpec::EccNistP256, Some(KeyUsageType::EncryptDecrypt)).await),
        "ValidationException"
    );
    assert_eq!(
        code(create(KeySpec::SymmetricDefault, Some(KeyUsageType::SignVerify)).await),
        "ValidationException"
    );
    create(KeySpec::Hmac256, Some(KeyUsageType::GenerateVerifyMac)).await.expect("an HMAC key");
    create(KeySpec::EccNistP256, Some(KeyUsageType::KeyAgreement)).await.expect("an ECDH key");
    create(KeySpec::Rsa2048, Some(KeyUsageType::EncryptDecrypt)).await.expect("an RSA encryption key");
}

#[tokio::test]
async fn specs_moto_lacks_are_made_and_described_as_asked() {
    let t = Kms::start().await;
    for (spec, usage) in [
        (KeySpec::MlDsa65, KeyUsageType::SignVerify),
        (KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify),
        (KeySpec::MlKem768, KeyUsageType::EncapsulateDecapsulate),
    ] {
        let create = t.kms.create_key().key_spec(spec.clone()).key_usage(usage.clone());
        let created = create.tags(tag(CLUSTER_TAG, "test")).send().await.unwrap();
        let meta = created.key_metadata().unwrap();
        assert_eq!(meta.key_spec(), Some(&spec), "CreateKey's answer");
        let described = t.kms.describe_key().key_id(meta.key_id()).send().await.unwrap();
        let meta = described.key_metadata().unwrap();
        assert_eq!((meta.key_spec(), meta.key_usage()), (Some(&spec), Some(&usage)), "DescribeKey's answer");
        t.after_tag_lag();
        let rotate = t.kms.enable_key_rotation().key_id(meta.key_id()).send().await;
        assert_eq!(code(rotate), "UnsupportedOperationException", "{spec:?} does not rotate");
    }
}

#[tokio::test]
async fn grant_operations_and_context_must_suit_the_key() {
    let t = Kms::start().await;
    let signing = t.key_of(KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let symmetric = t.new_key().await;
    t.after_tag_lag();
    let grant = |key: &str, ops: &[GrantOperation]| {
        let grant = t.kms.create_grant().key_id(key).grantee_principal("arn:aws:iam::123456789012:root");
        grant.set_operations(Some(ops.to_vec()))
    };
    let (code_, message) =
        refusal(grant(&signing, &[GrantOperation::Sign, GrantOperation::Decrypt]).send().await);
    assert_eq!(code_, "ValidationException");
    assert!(message.contains("Decrypt"), "{message}");
    grant(&signing, &[GrantOperation::Sign, GrantOperation::GetPublicKey]).send().await.expect("signing ops");
    let context = GrantConstraints::builder().encryption_context_equals("App", "Finance").build();
    let with_context = grant(&signing, &[GrantOperation::Sign]).constraints(context.clone());
    assert_eq!(code(with_context.send().await), "ValidationException", "no encryption context");

    assert_eq!(code(grant(&symmetric, &[GrantOperation::Sign]).send().await), "ValidationException");
    let fine = grant(&symmetric, &[GrantOperation::GenerateDataKey]).constraints(context);
    fine.send().await.expect("a symmetric key takes a context");
}

#[tokio::test]
async fn on_demand_rotation_is_for_enabled_symmetric_keys_at_most_25_times() {
    let t = Kms::start().await;
    let key = t.new_key().await;
    let signing = t.key_of(KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    t.after_tag_lag();
    let rotate = |key: &str| t.kms.rotate_key_on_demand().key_id(key).send();
    assert_eq!(code(rotate(&signing).await), "UnsupportedOperationException");
    t.kms.disable_key().key_id(&key).send().await.unwrap();
    assert_eq!(code(rotate(&key).await), "DisabledException");
    t.kms.enable_key().key_id(&key).send().await.unwrap();
    for _ in 0..25 {
        rotate(&key).await.expect("within AWS's 25");
    }
    assert_eq!(code(rotate(&key).await), "LimitExceededException");
    let pages = t.kms.list_key_rotations().key_id(&key).into_paginator().items().send();
    let listed: Vec<_> = pages.collect::<Vec<_>>().await;
    assert_eq!(listed.len(), 25, "in pages");
}
