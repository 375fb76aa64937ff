//! Letting go of the key when the object is deleted: observe, let the plan decide, run its
//! calls. Safe to repeat; a key already pending deletion or gone counts as released, and so
//! does a retained key whose ownership tags are already off. An `ObserveOnly` object never
//! deletes or repairs the key: it only takes off the ownership tags it wrote while it was
//! `Full`, if the key has them, so that no key is left tied to an object that is gone.

use k8s_openapi::jiff::Timestamp;

use crate::api::{DeletionPolicy, KmsKeySpec, ManagementPolicy};
use crate::kms::{ErrorKind, KmsError, KmsPort};

use super::apply::apply_one;
use super::ownership::Owner;
use super::plan::{self, Action, Cleanup, Observed, Recorded};
use super::{observe, writer::Error};

/// How the release of a deleted object's key went.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// The key is scheduled for deletion (now or earlier), or never existed.
    Done { changes: Vec<String> },
    /// The key stays (`deletionPolicy: Retain`, or an `ObserveOnly` object): these changes let
    /// it go.
    Kept { changes: Vec<String> },
    /// The key exists but is not this object's: left alone, nothing to release.
    NotOwned { key_id: String },
    /// A key may exist that KMS does not list or describe yet (it was created moments ago):
    /// look again after this long before letting the object go.
    Wait(std::time::Duration),
}

impl Released {
    /// The primary's release (`self`), preceded by its replicas' (`replicas`, never `Wait`):
    /// their changes come first.
    pub fn after_replicas(self, replicas: Released) -> Released {
        let (Released::Done { changes: before } | Released::Kept { changes: before }) = replicas else {
            return self;
        };
        let joined = |changes: Vec<String>| before.iter().cloned().chain(changes).collect();
        match self {
            Released::Done { changes } => Released::Done { changes: joined(changes) },
            Released::Kept { changes } => Released::Kept { changes: joined(changes) },
            other => other,
        }
    }
}

/// Lets go of the object's key as `policy` says: drops its aliases and schedules deletion
/// with the spec's window, or takes the ownership tags off a key that stays.
pub async fn cleanup(
    kms: &dyn KmsPort,
    spec: &KmsKeySpec,
    owner: &Owner,
    recorded: &Recorded,
    now: Timestamp,
    policy: DeletionPolicy,
) -> Result<Released, KmsError> {
    let observe_only = spec.management_policy == ManagementPolicy::ObserveOnly;
    let policy = if observe_only { DeletionPolicy::Retain } else { policy };
    let mut observed =
        observe::observe(kms, spec, owner, recorded, None, false, observe::Basis::Full { no_grants: false })
            .await?;
    if let Some(repair) = plan::blind_policy_repair(spec, &observed, recorded, now).filter(|_| !observe_only)
        && let Some(key_id) = observed.key_to_act_on().map(str::to_owned)
    {
        // Its policy may shut the operator out; if the spec's lets it back in, go on.
        if apply_one(kms, &key_id, &repair).await.is_ok() {
            observed = observe::observe(
                kms,
                spec,
                owner,
                recorded,
                None,
                false,
                observe::Basis::Full { no_grants: false },
            )
            .await?;
        }
    }
    let actions = match plan::plan_cleanup(spec, &observed, recorded, now, policy) {
        Cleanup::Wait(wait) => return Ok(Released::Wait(wait)),
        // A key an observer looked at and never owned: nothing to let go of.
        Cleanup::NotOwned { .. } if observe_only => return Ok(Released::Kept { changes: Vec::new() }),
        Cleanup::NotOwned { key_id } => return Ok(Released::NotOwned { key_id }),
        Cleanup::Unreadable { key_id, permission } => {
            let message = format!(
                "the operator may not call {permission} on key {key_id}, so it cannot tell whether the key is this object's; allow it in the operator's IAM policy and the key policy"
            );
            return Err(KmsError::new("DescribeKey", ErrorKind::AccessDenied, message));
        }
        Cleanup::Release(actions) => actions,
    };
    let mut changes = Vec::new();
    if let Observed::Owned(key) = &observed {
        for action in &actions {
            changes.extend(release_step(kms, &key.key.key_id, action).await?);
        }
    }
    Ok(match policy {
        DeletionPolicy::Delete => Released::Done { changes },
        DeletionPolicy::Retain => Released::Kept { changes },
    })
}

/// One cleanup call; `None` when KMS refused it because someone scheduled the deletion
/// between observe and now (the key is released all the same).
async fn release_step(kms: &dyn KmsPort, key_id: &str, action: &Action) -> Result<Option<String>, KmsError> {
    match apply_one(kms, key_id, action).await {
        Ok(change) => Ok(Some(change)),
        Err(Error::Kms(err)) if err.kind == ErrorKind::InvalidState => {
            let state = kms.describe_key(key_id).await?.map(|k| k.state);
            match state {
                Some(state) if !plan::is_pending_deletion(&state) => Err(err),
                _ => Ok(None),
            }
        }
        Err(Error::Kms(err)) => Err(err),
        Err(Error::StatusWrite(_)) => unreachable!("a single action on an existing key writes no status"),
    }
}
