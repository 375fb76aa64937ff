//! The status writes a reconcile cannot go on without: the create intent before CreateKey,
//! the new key's ID right after it, and an on-demand rotation request before the rotation. A port, so tests can fail a write on purpose.

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;

use crate::kms::{KeyDescription, KmsError};

use super::plan::Intent;

/// Status writes that must land before the reconcile goes on. Each write stamps its own
/// time: a reconcile may wait long (quotas, retries) between its start and the write.
#[async_trait]
pub trait StatusWriter: Send + Sync {
    /// Records a create attempt with `token` before CreateKey is called, or an adoption of
    /// the key `adopting` before it is tagged; the intent as written, with its time.
    async fn record_intent(&self, token: &str, adopting: Option<&str>) -> Result<Intent, Error>;
    /// Forgets the create attempt: KMS refused it, so no key exists.
    async fn clear_intent(&self) -> Result<(), Error>;
    /// Records the ID and ARN of a key just created or found after an interrupted create, and
    /// clears the intent; when it was recorded.
    async fn record_key(&self, key: &KeyDescription) -> Result<Timestamp, Error>;
    /// Records an on-demand rotation asked for with `token`, and how many the key had before,
    /// before RotateKeyOnDemand is called, so that a restart after the call does not rotate
    /// again.
    async fn record_rotation_request(&self, token: &str, rotations_before: usize) -> Result<(), Error>;
}

/// Failures that stop a reconcile without an outcome to report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kms(#[from] KmsError),
    #[error("writing status failed: {0}")]
    StatusWrite(String),
}
