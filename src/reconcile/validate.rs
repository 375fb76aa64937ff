//! Checks of the spec that the CRD schema cannot express, made before any KMS call. A spec
//! that fails here is reported as Stalled (InvalidSpec) and nothing is sent to AWS.

use crate::api::KmsKeySpec;

use super::policy::parse_policy;

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
    if !(7..=30).contains(&spec.deletion_window_in_days) {
        return Err(format!(
            "spec.deletionWindowInDays is {}; it must be between 7 and 30",
            spec.deletion_window_in_days
        ));
    }
    Ok(())
}

fn allowed_policy_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || ('\u{20}'..='\u{ff}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan::tests::mk_spec;

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
    fn a_deletion_window_outside_7_to_30_is_invalid() {
        for days in [6, 31] {
            let spec = KmsKeySpec { deletion_window_in_days: days, ..mk_spec() };
            assert!(validate(&spec).unwrap_err().contains("spec.deletionWindowInDays"));
        }
    }
}
