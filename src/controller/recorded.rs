//! What earlier reconciles recorded in status, read back as the planner's [`Recorded`].

use k8s_openapi::jiff::Timestamp;

use crate::api::{ConditionStatus, KmsKeyStatus};
use crate::reconcile::region::RecordedRegion;
use crate::reconcile::{Intent, Recorded, RotationRequest};

/// Whether `status` says the object was Ready at its current `generation`.
pub fn settled(status: Option<&KmsKeyStatus>, generation: Option<i64>) -> bool {
    let Some(status) = status else { return false };
    let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True);
    ready && generation.is_some() && status.observed_generation == generation
}

/// Where an earlier reconcile recorded the key (or its create in flight) to be.
pub fn recorded_region(status: Option<&KmsKeyStatus>) -> RecordedRegion<'_> {
    let Some(status) = status else { return RecordedRegion::default() };
    RecordedRegion {
        key_arn: status.key_arn.as_deref(),
        region: status.region.as_deref(),
        intent: status.create_intent.as_ref().and_then(|i| i.region.as_deref()),
    }
}

/// The AWS account status records the key in (its ARN's), else `status.accountId`, else the
/// account of the create in flight.
pub fn recorded_account(status: Option<&KmsKeyStatus>) -> Option<String> {
    let status = status?;
    let from_arn = status.key_arn.as_deref().and_then(crate::reconcile::account::arn_account);
    let intent = status.create_intent.as_ref().and_then(|i| i.account_id.as_deref());
    from_arn.or(status.account_id.as_deref()).or(intent).map(str::to_owned)
}

/// The Regions where `status.replicas` records a replica (with its ARN). A Region listed only
/// because it was refused or not made yet holds nothing: it must not count as one that does,
/// which the Region checks let through.
pub fn replica_regions(status: Option<&KmsKeyStatus>) -> Vec<String> {
    let recorded = |s: &KmsKeyStatus| {
        s.replicas.iter().filter(|r| r.key_arn.is_some()).map(|r| r.region.clone()).collect()
    };
    status.map(recorded).unwrap_or_default()
}

/// What an earlier reconcile recorded, as the planner reads it.
pub fn recorded_from(status: Option<&KmsKeyStatus>) -> Recorded {
    let Some(status) = status else { return Recorded::default() };
    let intent = status.create_intent.as_ref().map(|i| Intent {
        token: i.token.clone(),
        // An unreadable time is treated as long past, so a new attempt may go ahead.
        started_at: i.started_at.parse().unwrap_or(Timestamp::UNIX_EPOCH),
        adopting: i.adopting.clone(),
    });
    let time = |t: &Option<String>| t.as_ref().and_then(|t| t.parse().ok());
    Recorded {
        key_id: status.key_id.clone(),
        adopted: status.adopted == Some(true),
        key_arn: status.key_arn.clone(),
        key_created_at: time(&status.key_created_at),
        alias_name: status.alias_name.clone(),
        additional_aliases: status.additional_aliases.clone(),
        intent,
        denied_since: time(&status.access_denied_since),
        on_demand: status.last_on_demand_rotation.as_ref().map(|r| RotationRequest {
            token: r.token.clone(),
            rotations_before: r.rotations_before as usize,
            rotated: r.rotated_at.is_some(),
        }),
        rotate_now_values: status.rotate_now_values.clone(),
        next_rotation: status.next_rotation_date.clone(),
        on_demand_rotations: status.on_demand_rotations.map(|n| n as usize),
        grants_recorded: !status.grant_ids.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_replicas_with_an_arn_count_as_recorded() {
        use crate::api::ReplicaStatus;
        let replica = |region: &str, arn: Option<&str>| ReplicaStatus {
            region: region.into(),
            key_arn: arn.map(str::to_owned),
            state: None,
            ready: arn.is_some(),
            message: None,
        };
        let status = KmsKeyStatus {
            replicas: vec![
                replica("eu-west-1", Some("arn:aws:kms:eu-west-1:1:key/k")),
                replica("ap-south-1", None),
            ],
            ..KmsKeyStatus::default()
        };
        assert_eq!(replica_regions(Some(&status)), ["eu-west-1"], "a refused Region holds nothing");
    }
    use crate::api::CreateIntent;

    #[test]
    fn a_recorded_intent_reads_back_with_its_time() {
        let status = KmsKeyStatus {
            create_intent: Some(CreateIntent {
                token: "t".into(),
                started_at: "2026-01-02T03:04:05Z".into(),
                adopting: None,
                region: None,
                account_id: None,
            }),
            ..KmsKeyStatus::default()
        };
        let intent = recorded_from(Some(&status)).intent.unwrap();
        assert_eq!(intent.token, "t");
        assert_eq!(intent.started_at.to_string(), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn the_time_refusals_began_reads_back() {
        let status = KmsKeyStatus {
            access_denied_since: Some("2026-01-02T03:04:05Z".into()),
            ..KmsKeyStatus::default()
        };
        let since = recorded_from(Some(&status)).denied_since.unwrap();
        assert_eq!(since.to_string(), "2026-01-02T03:04:05Z");
    }
}
