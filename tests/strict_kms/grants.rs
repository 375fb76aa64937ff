//! CreateGrant's input rules, and grants for AWS service principals, which moto forgets.

use aws_sdk_kms::types::{GrantConstraints, GrantOperation};

use super::common::{Kms, code, refusal};

const APP: &str = "arn:aws:iam::123456789012:role/app";
const LOG_GROUP: &str = "arn:aws:logs:us-east-1:123456789012:log-group:app";

#[tokio::test]
async fn grant_names_parties_and_constraints_are_checked() {
    let t = Kms::start().await;
    let key = t.new_key().await;
    t.after_tag_lag();
    let grant = || t.kms.create_grant().key_id(&key).operations(GrantOperation::Decrypt);
    let (code_, message) = refusal(grant().grantee_principal(APP).name("a b").send().await);
    assert_eq!(code_, "ValidationException");
    assert!(message.contains("Grant name"), "{message}");
    assert_eq!(
        code(grant().name("x".repeat(257)).grantee_principal(APP).send().await),
        "ValidationException"
    );
    assert_eq!(code(grant().send().await), "ValidationException", "no grantee");
    let both = grant().grantee_principal(APP).grantee_service_principal("logs.amazonaws.com");
    assert_eq!(code(both.send().await), "ValidationException");
    let both_contexts = GrantConstraints::builder()
        .encryption_context_equals("a", "b")
        .encryption_context_subset("c", "d")
        .build();
    assert_eq!(
        code(grant().grantee_principal(APP).constraints(both_contexts).send().await),
        "ValidationException"
    );
    let mut nine = GrantConstraints::builder();
    for i in 0..9 {
        nine = nine.encryption_context_subset(format!("k{i}"), "v");
    }
    assert_eq!(
        code(grant().grantee_principal(APP).constraints(nine.build()).send().await),
        "ValidationException"
    );
    let subset = GrantConstraints::builder().encryption_context_subset("App", "Finance").build();
    grant()
        .grantee_principal(APP)
        .retiring_principal(APP)
        .constraints(subset)
        .send()
        .await
        .expect("a valid grant");
}

#[tokio::test]
async fn a_grant_for_a_service_needs_a_source_arn_and_a_retiree_and_is_listed_with_its_principals() {
    let t = Kms::start().await;
    let key = t.new_key().await;
    t.after_tag_lag();
    let grant = || {
        (t.kms.create_grant().key_id(&key).name("logs"))
            .operations(GrantOperation::Encrypt)
            .grantee_service_principal("logs.amazonaws.com")
    };
    let source = GrantConstraints::builder().source_arn(LOG_GROUP).build();
    let (code_, message) = refusal(grant().retiring_service_principal("logs.amazonaws.com").send().await);
    assert_eq!(code_, "ValidationException");
    assert!(message.contains("SourceArn"), "{message}");
    assert_eq!(code(grant().constraints(source.clone()).send().await), "ValidationException", "no retiree");
    let made = grant().constraints(source.clone()).retiring_service_principal("logs.amazonaws.com");
    let id = made.send().await.expect("a valid service grant").grant_id().unwrap().to_owned();

    let listed = t.kms.list_grants().key_id(&key).send().await.unwrap();
    let entry = listed.grants().iter().find(|g| g.grant_id() == Some(id.as_str())).unwrap();
    assert_eq!(entry.grantee_service_principal(), Some("logs.amazonaws.com"));
    assert_eq!(entry.retiring_service_principal(), Some("logs.amazonaws.com"));
    assert_eq!(entry.constraints().and_then(|c| c.source_arn()), Some(LOG_GROUP));

    let again = grant().constraints(source).retiring_service_principal("logs.amazonaws.com");
    assert_eq!(again.send().await.unwrap().grant_id(), Some(id.as_str()), "the same grant, idempotently");
}
