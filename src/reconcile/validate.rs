//! Checks of the spec that the CRD schema cannot express, made before any KMS call. A spec
//! that fails here is reported as Stalled (InvalidSpec) and nothing is sent to AWS.

use crate::api::{GrantSpec, KmsKeySpec};

use super::policy::parse_policy;
use super::policy_builder::wanted_policy;
use super::region::is_region_name;

/// Largest key policy KMS accepts, in bytes.
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// Why a spec cannot be applied; the message names the field.
pub fn validate(spec: &KmsKeySpec) -> Result<(), String> {
    if let Some(policy) = &spec.key_policy {
        if policy.len() > MAX_POLICY_BYTES {
            return Err(format!(
                "spec.keyPolicy is {} bytes; KMS accepts at most {MAX_POLICY_BYTES}",
                policy.len()
            ));
        }
        if let Some(bad) = policy.chars().find(|c| !allowed_policy_char(*c)) {
            return Err(format!("spec.keyPolicy contains a character KMS refuses: {bad:?}"));
        }
        parse_policy(policy).map_err(|why| format!("spec.keyPolicy: {why}"))?;
    }
    if let Some(days) = spec.rotation_period_in_days.filter(|d| !(90..=2560).contains(d)) {
        return Err(format!("spec.rotationPeriodInDays is {days}; it must be between 90 and 2560"));
    }
    if spec.rotation_period_in_days.is_some() && !spec.enable_key_rotation {
        return Err("spec.rotationPeriodInDays needs spec.enableKeyRotation: true".to_owned());
    }
    validate_key_kind(spec)?;
    validate_replica_regions(spec)?;
    if spec.policy.is_some() {
        // The longest partition's ARN: the size holds for every key.
        let built =
            wanted_policy(spec, "arn:aws-iso-b:kms:us-isob-east-1:123456789012:key/k").unwrap_or_default();
        if built.len() > MAX_POLICY_BYTES {
            return Err(format!(
                "spec.policy: the key policy built from it and spec.keyPolicy is {} bytes; KMS accepts at most {MAX_POLICY_BYTES}",
                built.len()
            ));
        }
    }
    if !(7..=30).contains(&spec.deletion_window_in_days) {
        return Err(format!(
            "spec.deletionWindowInDays is {}; it must be between 7 and 30",
            spec.deletion_window_in_days
        ));
    }
    Ok(())
}

/// At most 20 Regions, each a Region name, each once, of a multi-Region key (the CRD's
/// schema and CEL rules, checked again for objects admitted without them). The key's own
/// Region is checked once it is known (`plan::replicas::own_region_listed`).
fn validate_replica_regions(spec: &KmsKeySpec) -> Result<(), String> {
    let regions = &spec.replica_regions;
    if regions.is_empty() {
        return Ok(());
    }
    if !spec.multi_region {
        return Err(
            "spec.replicaRegions needs spec.multiRegion: true: only a multi-Region key can have replicas"
                .to_owned(),
        );
    }
    if regions.len() > MAX_REPLICA_REGIONS {
        return Err(format!(
            "spec.replicaRegions names {} Regions; at most {MAX_REPLICA_REGIONS}",
            regions.len()
        ));
    }
    for (i, region) in regions.iter().enumerate() {
        if !is_region_name(region) {
            return Err(format!("spec.replicaRegions[{i}] is {region:?}, not an AWS Region name"));
        }
        if regions[..i].contains(region) {
            return Err(format!("spec.replicaRegions names {region} twice"));
        }
    }
    if let Some(own) = spec.region.as_ref().filter(|own| regions.contains(own)) {
        return Err(format!("spec.replicaRegions must not name the key's own region ({own})"));
    }
    Ok(())
}

/// Most replica Regions a spec may name.
pub const MAX_REPLICA_REGIONS: usize = 20;

/// The usage suits the spec, and rotation and grants suit the key (the CRD's CEL rules, checked
/// again for objects admitted without them).
fn validate_key_kind(spec: &KmsKeySpec) -> Result<(), String> {
    let (kind, usage) = (spec.key_spec, spec.key_usage);
    if !kind.usages().contains(&usage) {
        return Err(format!("spec.keyUsage {} does not suit spec.keySpec {}", usage.as_str(), kind.as_str()));
    }
    if spec.enable_key_rotation && !kind.rotates() {
        return Err(format!(
            "spec.enableKeyRotation must be false for keySpec {}: AWS rotates only SYMMETRIC_DEFAULT keys",
            kind.as_str()
        ));
    }
    let allowed = kind.grant_operations(usage);
    for grant in &spec.grants {
        if let Some(op) = grant.operations.iter().find(|op| !allowed.contains(op)) {
            return Err(format!(
                "spec.grants[{}].operations: a {} {} key cannot do {}",
                grant.name,
                kind.as_str(),
                usage.as_str(),
                op.as_str()
            ));
        }
        let has_context =
            !grant.encryption_context_equals.is_empty() || !grant.encryption_context_subset.is_empty();
        if has_context && !kind.takes_encryption_context() {
            return Err(format!(
                "spec.grants[{}]: a {} key takes no encryption context constraint",
                grant.name,
                kind.as_str()
            ));
        }
        validate_grant_parties(grant).map_err(|why| format!("spec.grants[{}]: {why}", grant.name))?;
    }
    Ok(())
}

/// Who the grant is for and who may retire it, as AWS's CreateGrant requires (the CRD's CEL
/// rules on a grant, checked again).
fn validate_grant_parties(grant: &GrantSpec) -> Result<(), &'static str> {
    let service = grant.grantee_service_principal.is_some();
    if grant.grantee_principal.is_some() == service {
        return Err("name exactly one of granteePrincipal and granteeServicePrincipal");
    }
    if service && grant.source_arn.is_none() {
        return Err("granteeServicePrincipal needs sourceArn");
    }
    if service && grant.retiring_principal.is_none() && grant.retiring_service_principal.is_none() {
        return Err("granteeServicePrincipal needs retiringPrincipal or retiringServicePrincipal");
    }
    if !service && grant.source_arn.is_some() {
        return Err("sourceArn is only for grants to a granteeServicePrincipal");
    }
    if !grant.encryption_context_equals.is_empty() && !grant.encryption_context_subset.is_empty() {
        return Err("at most one of encryptionContextEquals and encryptionContextSubset");
    }
    Ok(())
}

fn allowed_policy_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || ('\u{20}'..='\u{ff}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GrantOperation, KeySpec, KeyUsage};
    use crate::reconcile::plan::tests::{mk_grant_spec, mk_spec};

    #[test]
    fn replica_regions_are_checked_naming_the_field() {
        let with = |regions: &[&str], multi_region: bool, region: Option<&str>| KmsKeySpec {
            replica_regions: regions.iter().map(|r| r.to_string()).collect(),
            multi_region,
            region: region.map(str::to_owned),
            ..mk_spec()
        };
        assert_eq!(validate(&with(&["eu-west-1", "ap-south-1"], true, None)), Ok(()));
        let many: Vec<String> = (1..=21).map(|i| format!("eu-west-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cases = [
            (with(&["eu-west-1"], false, None), "spec.replicaRegions needs spec.multiRegion: true"),
            (with(&many, true, None), "names 21 Regions; at most 20"),
            (with(&["Europe"], true, None), "spec.replicaRegions[0] is \"Europe\""),
            (with(&["eu-west-1", "eu-west-1"], true, None), "names eu-west-1 twice"),
            (with(&["eu-west-1"], true, Some("eu-west-1")), "must not name the key's own region (eu-west-1)"),
        ];
        for (spec, expected) in cases {
            let message = validate(&spec).unwrap_err();
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn a_spec_without_policy_is_valid() {
        assert_eq!(validate(&mk_spec()), Ok(()));
    }

    #[test]
    fn a_policy_that_is_not_json_names_the_field() {
        let spec = KmsKeySpec { key_policy: Some("{oops".into()), ..mk_spec() };
        assert!(validate(&spec).unwrap_err().starts_with("spec.keyPolicy: the policy is not valid JSON"));
    }

    #[test]
    fn an_oversized_policy_is_refused_before_aws_sees_it() {
        let big = format!(r#"{{"Sid":"{}"}}"#, "x".repeat(MAX_POLICY_BYTES));
        let spec = KmsKeySpec { key_policy: Some(big), ..mk_spec() };
        assert!(validate(&spec).unwrap_err().contains("KMS accepts at most 32768"));
    }

    #[test]
    fn a_policy_with_characters_kms_refuses_is_invalid() {
        let spec = KmsKeySpec { key_policy: Some("{\"Sid\":\"\u{263a}\"}".into()), ..mk_spec() };
        assert!(validate(&spec).unwrap_err().contains("character KMS refuses"));
    }

    #[test]
    fn a_rotation_period_outside_90_to_2560_or_without_rotation_is_invalid() {
        for days in [89, 2561] {
            let spec = KmsKeySpec { rotation_period_in_days: Some(days), ..mk_spec() };
            assert!(validate(&spec).unwrap_err().contains("spec.rotationPeriodInDays"));
        }
        let off = KmsKeySpec { rotation_period_in_days: Some(90), enable_key_rotation: false, ..mk_spec() };
        assert!(validate(&off).unwrap_err().contains("spec.enableKeyRotation"));
    }

    #[test]
    fn a_usage_the_key_spec_does_not_allow_names_both_fields() {
        let spec = KmsKeySpec { key_spec: KeySpec::Hmac256, enable_key_rotation: false, ..mk_spec() };
        let err = validate(&spec).unwrap_err();
        assert_eq!(err, "spec.keyUsage ENCRYPT_DECRYPT does not suit spec.keySpec HMAC_256");
        let mac = KmsKeySpec { key_usage: KeyUsage::GenerateVerifyMac, ..spec };
        assert_eq!(validate(&mac), Ok(()));
    }

    #[test]
    fn rotation_of_a_key_aws_does_not_rotate_is_refused() {
        let spec = KmsKeySpec { key_spec: KeySpec::Rsa2048, key_usage: KeyUsage::SignVerify, ..mk_spec() };
        assert!(
            validate(&spec)
                .unwrap_err()
                .starts_with("spec.enableKeyRotation must be false for keySpec RSA_2048")
        );
    }

    #[test]
    fn a_grant_operation_or_context_the_key_cannot_take_names_the_grant() {
        let signing = KmsKeySpec {
            key_spec: KeySpec::EccNistP256,
            key_usage: KeyUsage::SignVerify,
            enable_key_rotation: false,
            ..mk_spec()
        };
        let grant = |ops: Vec<GrantOperation>, context: &[(&str, &str)]| GrantSpec {
            operations: ops,
            encryption_context_equals: context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..mk_grant_spec()
        };
        let decrypting =
            KmsKeySpec { grants: vec![grant(vec![GrantOperation::Decrypt], &[])], ..signing.clone() };
        assert_eq!(
            validate(&decrypting).unwrap_err(),
            "spec.grants[app].operations: a ECC_NIST_P256 SIGN_VERIFY key cannot do Decrypt"
        );
        let with_context =
            KmsKeySpec { grants: vec![grant(vec![GrantOperation::Sign], &[("a", "b")])], ..signing.clone() };
        assert!(validate(&with_context).unwrap_err().contains("takes no encryption context"));
        let fine = KmsKeySpec {
            grants: vec![grant(vec![GrantOperation::Sign, GrantOperation::GetPublicKey], &[])],
            ..signing
        };
        assert_eq!(validate(&fine), Ok(()));
    }

    #[test]
    fn a_grant_for_a_service_needs_a_source_arn_and_a_retiring_principal_and_no_iam_grantee() {
        let service = GrantSpec {
            name: "logs".into(),
            grantee_principal: None,
            grantee_service_principal: Some("logs.amazonaws.com".into()),
            source_arn: Some("arn:aws:logs:us-east-1:123456789012:log-group:app".into()),
            retiring_service_principal: Some("logs.amazonaws.com".into()),
            encryption_context_equals: Default::default(),
            ..mk_grant_spec()
        };
        let with = |grant: GrantSpec| validate(&KmsKeySpec { grants: vec![grant], ..mk_spec() });
        assert_eq!(with(service.clone()), Ok(()));
        let table = [
            (GrantSpec { source_arn: None, ..service.clone() }, "needs sourceArn"),
            (GrantSpec { retiring_service_principal: None, ..service.clone() }, "needs retiringPrincipal"),
            (
                GrantSpec { grantee_principal: Some("arn:aws:iam::1:root".into()), ..service.clone() },
                "exactly one",
            ),
            (GrantSpec { grantee_service_principal: None, ..service.clone() }, "exactly one"),
            (GrantSpec { source_arn: Some("arn:aws:s3:::b".into()), ..mk_grant_spec() }, "sourceArn is only"),
            (
                GrantSpec { encryption_context_subset: [("a".into(), "b".into())].into(), ..mk_grant_spec() },
                "at most one of encryptionContextEquals and encryptionContextSubset",
            ),
        ];
        for (grant, why) in table {
            let err = with(grant).unwrap_err();
            assert!(err.starts_with("spec.grants[") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_built_policy_too_big_for_kms_names_spec_policy() {
        let many: Vec<String> =
            (0..50).map(|i| format!("arn:aws:iam::123456789012:role/{}-{i}", "r".repeat(100))).collect();
        let builder = crate::api::PolicyBuilder {
            enable_default_policy: true,
            key_administrators: many.clone(),
            key_users: many.clone(),
            key_service_users: many,
        };
        let padding = format!(r#"{{"Statement":[{{"Sid":"{}"}}]}}"#, "x".repeat(20_000));
        let spec = KmsKeySpec { policy: Some(builder.clone()), key_policy: Some(padding), ..mk_spec() };
        assert!(validate(&spec).unwrap_err().starts_with("spec.policy: the key policy built"));
        assert_eq!(validate(&KmsKeySpec { policy: Some(builder), ..mk_spec() }), Ok(()));
    }

    #[test]
    fn a_deletion_window_outside_7_to_30_is_invalid() {
        for days in [6, 31] {
            let spec = KmsKeySpec { deletion_window_in_days: days, ..mk_spec() };
            assert!(validate(&spec).unwrap_err().contains("spec.deletionWindowInDays"));
        }
    }
}
