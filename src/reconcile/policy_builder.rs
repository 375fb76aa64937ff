//! The key policy the spec asks for: `keyPolicy` as written, AWS's default, or — with
//! `spec.policy` — statements built from lists of principals, merged with `keyPolicy`'s by
//! `Sid` (the written statement wins). Pure: the plan compares the result with what KMS holds.

use serde_json::{Value, json};

use crate::api::{GeneratedPolicy, KeySpec, KeyUsage, KmsKeySpec, PolicyBuilder};

use super::ownership::fnv1a;

use super::policy::{default_policy, default_statement, parse_policy, statements_of};

pub const ADMINISTRATION_SID: &str = "KeyAdministration";
pub const USAGE_SID: &str = "KeyUsage";
pub const SERVICE_USAGE_SID: &str = "KeyServiceUsage";

/// What key administrators may do: manage the key, not use it.
const ADMINISTRATION_ACTIONS: &[&str] = &[
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
];

/// What key service users may do: grants for AWS resources only.
const SERVICE_USAGE_ACTIONS: &[&str] = &["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"];

/// The policy the key should have; `key_arn` names its partition and account (for AWS's default
/// statement). `None` only when the ARN does not parse and no policy is written.
pub fn wanted_policy(spec: &KmsKeySpec, key_arn: &str) -> Option<String> {
    let Some(builder) = &spec.policy else {
        return spec.key_policy.clone().or_else(|| default_policy(key_arn));
    };
    let root = builder.enable_default_policy.then(|| root_of(key_arn)).flatten();
    if builder.enable_default_policy && root.is_none() {
        return None;
    }
    Some(merged(spec, builder, root.as_deref()))
}

/// Whether the policy CreateKey is given needs the account's root ARN, which only an ARN in
/// the account can tell before the key exists: a built policy that keeps AWS's default.
pub fn needs_account_at_create(spec: &KmsKeySpec) -> bool {
    spec.policy.as_ref().is_some_and(|b| b.enable_default_policy)
}

/// The policy CreateKey is given; `account_arn` is any ARN in the key's account and partition
/// (an alias's). Without it, a built policy that keeps AWS's default statement cannot be
/// written yet: the key is then created with AWS's default and gets the built one next — until
/// then without `keyPolicy`'s Deny statements, if it has any.
pub fn policy_at_create(spec: &KmsKeySpec, account_arn: Option<&str>) -> Option<String> {
    match (&spec.policy, account_arn) {
        (None, _) => spec.key_policy.clone(),
        (Some(builder), _) if !builder.enable_default_policy => Some(merged(spec, builder, None)),
        (Some(_), Some(arn)) => wanted_policy(spec, arn),
        (Some(_), None) => None,
    }
}

/// What status shows of the policy built from `spec.policy` for the key `key_arn`.
pub fn generated(spec: &KmsKeySpec, key_arn: &str) -> Option<GeneratedPolicy> {
    spec.policy.as_ref()?;
    let document = wanted_policy(spec, key_arn)?;
    let statements = statements_of(&parse_policy(&document).ok()?);
    Some(GeneratedPolicy {
        hash: format!("{:016x}", fnv1a(document.as_bytes())),
        bytes: document.len() as u32,
        statements: statements.iter().filter_map(|s| s["Sid"].as_str().map(str::to_owned)).collect(),
    })
}

/// `arn:<partition>:iam::<account>:root` of the key's account.
fn root_of(key_arn: &str) -> Option<String> {
    let mut parts = key_arn.split(':');
    let partition = parts.nth(1).filter(|p| !p.is_empty())?;
    let account = parts.nth(2).filter(|a| !a.is_empty())?;
    Some(format!("arn:{partition}:iam::{account}:root"))
}

/// The built statements with `keyPolicy`'s, which win by `Sid`; `keyPolicy`'s other fields
/// (`Version`, `Id`) are kept.
fn merged(spec: &KmsKeySpec, builder: &PolicyBuilder, root: Option<&str>) -> String {
    let mut document = match spec.key_policy.as_deref().map(parse_policy) {
        Some(Ok(written)) => written,
        _ => json!({"Version": "2012-10-17", "Id": "kms-operator"}),
    };
    let written = statements_of(&document);
    let written_sids: Vec<&str> = written.iter().filter_map(|s| s["Sid"].as_str()).collect();
    let mut statements: Vec<Value> = built(spec, builder, root)
        .into_iter()
        .filter(|s| !written_sids.contains(&s["Sid"].as_str().unwrap_or_default()))
        .collect();
    statements.extend(written.iter().cloned());
    document["Statement"] = Value::Array(statements);
    document.to_string()
}

/// The statements the builder's lists ask for, in a fixed order.
fn built(spec: &KmsKeySpec, builder: &PolicyBuilder, root: Option<&str>) -> Vec<Value> {
    let mut statements = Vec::new();
    if let Some(root) = root {
        statements.push(default_statement(root));
    }
    let allow = |sid: &str, principals: &[String], actions: Vec<&str>| json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principals}, "Action": actions, "Resource": "*"});
    if !builder.key_administrators.is_empty() {
        statements.push(allow(
            ADMINISTRATION_SID,
            &builder.key_administrators,
            ADMINISTRATION_ACTIONS.to_vec(),
        ));
    }
    if !builder.key_users.is_empty() {
        statements.push(allow(USAGE_SID, &builder.key_users, usage_actions(spec.key_spec, spec.key_usage)));
    }
    if !builder.key_service_users.is_empty() {
        let mut statement =
            allow(SERVICE_USAGE_SID, &builder.key_service_users, SERVICE_USAGE_ACTIONS.to_vec());
        statement["Condition"] = json!({"Bool": {"kms:GrantIsForAWSResource": "true"}});
        statements.push(statement);
    }
    statements
}

/// The cryptographic actions a key of this kind allows, and DescribeKey.
fn usage_actions(spec: KeySpec, usage: KeyUsage) -> Vec<&'static str> {
    let mut actions: Vec<&str> = match (spec, usage) {
        (KeySpec::SymmetricDefault, _) => {
            vec!["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
        }
        (_, KeyUsage::EncryptDecrypt) => {
            vec!["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GetPublicKey"]
        }
        (_, KeyUsage::SignVerify) => vec!["kms:Sign", "kms:Verify", "kms:GetPublicKey"],
        (_, KeyUsage::GenerateVerifyMac) => vec!["kms:GenerateMac", "kms:VerifyMac"],
        (_, KeyUsage::KeyAgreement) => vec!["kms:DeriveSharedSecret", "kms:GetPublicKey"],
        (_, KeyUsage::EncapsulateDecapsulate) => {
            vec!["kms:Encapsulate", "kms:Decapsulate", "kms:GetPublicKey"]
        }
    };
    actions.push("kms:DescribeKey");
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan::tests::mk_spec;
    use crate::reconcile::policy::DEFAULT_STATEMENT_SID;

    const ARN: &str = "arn:aws:kms:eu-west-1:123456789012:key/k1";
    const ADMIN: &str = "arn:aws:iam::123456789012:role/admin";
    const APP: &str = "arn:aws:iam::123456789012:role/app";

    fn with_builder(builder: PolicyBuilder) -> KmsKeySpec {
        KmsKeySpec { policy: Some(builder), ..mk_spec() }
    }

    fn statements(policy: &str) -> Vec<Value> {
        parse_policy(policy).unwrap()["Statement"].as_array().unwrap().clone()
    }

    fn sids(policy: &str) -> Vec<String> {
        statements(policy).iter().map(|s| s["Sid"].as_str().unwrap_or("").to_owned()).collect()
    }

    fn builder() -> PolicyBuilder {
        PolicyBuilder {
            enable_default_policy: true,
            key_administrators: vec![ADMIN.into()],
            key_users: vec![APP.into()],
            key_service_users: vec![APP.into()],
        }
    }

    #[test]
    fn without_a_builder_the_policy_is_the_written_one_or_aws_default() {
        assert_eq!(wanted_policy(&mk_spec(), ARN), default_policy(ARN));
        let written = KmsKeySpec { key_policy: Some("{\"Statement\":[]}".into()), ..mk_spec() };
        assert_eq!(wanted_policy(&written, ARN).as_deref(), Some("{\"Statement\":[]}"));
        assert_eq!(policy_at_create(&written, None).as_deref(), Some("{\"Statement\":[]}"));
        assert_eq!(policy_at_create(&mk_spec(), None), None);
    }

    #[test]
    fn each_list_becomes_its_statement_beside_aws_default() {
        let policy = wanted_policy(&with_builder(builder()), ARN).unwrap();
        assert_eq!(sids(&policy), [DEFAULT_STATEMENT_SID, ADMINISTRATION_SID, USAGE_SID, SERVICE_USAGE_SID]);
        let all = statements(&policy);
        assert_eq!(all[0]["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
        assert_eq!(all[1]["Principal"]["AWS"], json!([ADMIN]));
        assert!(all[2]["Action"].as_array().unwrap().contains(&json!("kms:GenerateDataKey*")));
        assert_eq!(all[3]["Condition"]["Bool"]["kms:GrantIsForAWSResource"], "true");
        let admin_actions = all[1]["Action"].as_array().unwrap();
        assert!(
            !admin_actions.iter().any(|a| a == "kms:Decrypt" || a == "kms:*"),
            "administrators cannot decrypt"
        );
    }

    #[test]
    fn users_of_a_signing_key_may_sign_not_decrypt() {
        let spec = KmsKeySpec {
            key_spec: KeySpec::EccNistP256,
            key_usage: KeyUsage::SignVerify,
            policy: Some(builder()),
            ..mk_spec()
        };
        let usage = &statements(&wanted_policy(&spec, ARN).unwrap())[2];
        assert_eq!(usage["Action"], json!(["kms:Sign", "kms:Verify", "kms:GetPublicKey", "kms:DescribeKey"]));
    }

    #[test]
    fn a_written_statement_wins_over_a_built_one_with_its_sid() {
        let written = r#"{"Version":"2012-10-17","Id":"mine","Statement":[{"Sid":"KeyUsage","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"},{"Sid":"Extra","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/x"},"Action":"kms:DescribeKey","Resource":"*"}]}"#;
        let spec = KmsKeySpec { key_policy: Some(written.into()), policy: Some(builder()), ..mk_spec() };
        let policy = wanted_policy(&spec, ARN).unwrap();
        assert_eq!(
            sids(&policy),
            [DEFAULT_STATEMENT_SID, ADMINISTRATION_SID, SERVICE_USAGE_SID, USAGE_SID, "Extra"]
        );
        assert_eq!(statements(&policy)[3]["Effect"], "Deny");
        assert_eq!(parse_policy(&policy).unwrap()["Id"], "mine");
    }

    #[test]
    fn status_shows_the_generated_documents_hash_size_and_statements_only_with_a_builder() {
        assert_eq!(generated(&mk_spec(), ARN), None);
        let shown = generated(&with_builder(builder()), ARN).unwrap();
        let document = wanted_policy(&with_builder(builder()), ARN).unwrap();
        assert_eq!(shown.bytes as usize, document.len());
        assert_eq!(
            shown.statements,
            [DEFAULT_STATEMENT_SID, ADMINISTRATION_SID, USAGE_SID, SERVICE_USAGE_SID]
        );
        let fewer = PolicyBuilder { key_service_users: vec![], ..builder() };
        assert_ne!(generated(&with_builder(fewer), ARN).unwrap().hash, shown.hash);
    }

    #[test]
    fn a_written_policy_with_one_statement_as_an_object_keeps_it() {
        let written = r#"{"Statement":{"Sid":"OnlyDeny","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}}"#;
        let spec = KmsKeySpec { key_policy: Some(written.into()), policy: Some(builder()), ..mk_spec() };
        let policy = wanted_policy(&spec, ARN).unwrap();
        assert_eq!(sids(&policy).last().map(String::as_str), Some("OnlyDeny"));
        assert_eq!(generated(&spec, ARN).unwrap().statements.last().map(String::as_str), Some("OnlyDeny"));
    }

    #[test]
    fn without_the_default_statement_the_policy_is_known_before_the_key_exists() {
        let only_listed = PolicyBuilder { enable_default_policy: false, ..builder() };
        let spec = with_builder(only_listed);
        let at_create = policy_at_create(&spec, None).unwrap();
        assert_eq!(sids(&at_create), [ADMINISTRATION_SID, USAGE_SID, SERVICE_USAGE_SID]);
        assert_eq!(wanted_policy(&spec, ARN).as_deref(), Some(at_create.as_str()));
        assert_eq!(policy_at_create(&with_builder(builder()), None), None, "AWS's default first");
        let alias_arn = "arn:aws:kms:eu-west-1:123456789012:alias/aws/ebs";
        assert_eq!(
            policy_at_create(&with_builder(builder()), Some(alias_arn)),
            wanted_policy(&with_builder(builder()), ARN)
        );
    }
}
