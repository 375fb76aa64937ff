//! Rotation decisions: on or off as the spec says, every `rotationPeriodInDays` (AWS's 365 by
//! default). KMS refuses rotation changes on a disabled key, so they wait while the key stays
//! disabled.

use crate::api::{DEFAULT_ROTATION_PERIOD_DAYS, KmsKeySpec};
use crate::kms::Rotation;

use super::{Action, Plan};

/// Adds the rotation change the key needs, if any; `usable` says whether the key is (or is
/// about to be) enabled.
pub fn plan_rotation(spec: &KmsKeySpec, observed: &Rotation, usable: bool, plan: &mut Plan) {
    let period = spec.rotation_period_in_days.unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
    let wanted = match (spec.enable_key_rotation, observed.enabled) {
        (true, false) => Action::SetRotation { enabled: true, period_days: Some(period) },
        (false, true) => Action::SetRotation { enabled: false, period_days: None },
        // A period KMS does not report (an older KMS) is taken as right.
        (true, true) if observed.period_days.is_some_and(|p| p != period) => {
            Action::SetRotation { enabled: true, period_days: Some(period) }
        }
        _ => return,
    };
    if usable {
        plan.actions.push(wanted);
    } else {
        plan.deferred.push("key rotation changes once the key is enabled".to_owned());
    }
}
