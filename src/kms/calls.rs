//! What becomes of each KMS request the adapter sends: how long it waited for its quota turn
//! and how KMS answered, reported to a [`CallObserver`] (the operator's metrics). Counted per
//! request as the operator sees it: one per page of a list, after the SDK's own retries.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

use super::{ErrorKind, KmsError};

/// Told of every KMS request.
pub trait CallObserver: Send + Sync {
    /// A request of `operation` waited `wait` for the client-side quota.
    fn waited(&self, operation: &'static str, wait: Duration);
    /// KMS answered a request of `operation` with `outcome` (see [`outcome_label`]).
    fn answered(&self, operation: &'static str, outcome: &'static str);
}

/// The outcome label of a failed request: its error class.
pub fn outcome_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Throttled => "throttled",
        ErrorKind::Transient => "transient",
        ErrorKind::NotFound => "not_found",
        ErrorKind::InvalidState => "invalid_state",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::AccessDenied => "access_denied",
        ErrorKind::Rejected => "rejected",
    }
}

/// One request in flight: reported as answered `ok` when dropped, unless it [`failed`]
/// or was never sent.
///
/// [`failed`]: Call::failed
pub struct Call {
    operation: &'static str,
    observer: Option<Arc<dyn CallObserver>>,
    reported: bool,
}

impl Call {
    pub fn new(operation: &'static str, observer: Option<Arc<dyn CallObserver>>) -> Self {
        Call { operation, observer, reported: false }
    }

    /// The request failed with `err`: reported by its class, and returned as a [`KmsError`].
    pub fn failed<E>(mut self, err: SdkError<E>) -> KmsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let err = super::aws::sdk_error(self.operation, err);
        self.report(outcome_label(err.kind));
        err
    }

    /// No request was sent after all (a paginator with no further page).
    pub fn unsent(mut self) {
        self.reported = true;
    }

    fn report(&mut self, outcome: &'static str) {
        if let Some(observer) = &self.observer {
            observer.answered(self.operation, outcome);
        }
        self.reported = true;
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.reported {
            self.report("ok");
        }
    }
}
