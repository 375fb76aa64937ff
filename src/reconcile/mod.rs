//! Observe → Plan → Apply, with no Kubernetes in sight. [`reconcile`] makes KMS match a spec
//! and says how it ended; [`cleanup`] lets go of the key when the object is deleted.
//!
//! - `observe.rs` reads KMS into an [`Observed`] (`adopt.rs` finds the key of an interrupted
//!   create by its tags);
//! - `plan/` decides, purely, which calls to make and in which order;
//! - `apply.rs` makes them through the [`KmsPort`](crate::kms::KmsPort), with the status writes
//!   of `writer.rs` around CreateKey;
//! - `run.rs` is the pass loop, `cleanup.rs` the release on deletion;
//! - `account.rs` says which AWS identity (account) reaches the key, `region.rs` which AWS
//!   Region it lives in; `replicas.rs` runs the passes of
//!   each replica of a multi-Region key (`plan/replicas.rs` decides);
//! - `outcome.rs` and `status.rs` turn the result into kstatus conditions.

pub mod account;
mod account_aliases;
mod adopt;
mod apply;
pub mod audit;
mod cleanup;
pub mod guardrails;
mod observe;
mod outcome;
mod ownership;
mod plan;
mod policy;
mod policy_builder;
pub mod region;
mod replicas;
mod run;
mod status;
mod token;
mod validate;
mod writer;

pub use account_aliases::AccountAliases;
pub use cleanup::{Released, cleanup};
pub use outcome::{Outcome, Retry};
pub(crate) use ownership::fnv1a;
pub use ownership::{OPERATOR_TAGS, Owner, TAG_CLUSTER, TAG_CREATE_TOKEN, TAG_OWNER, TAG_UID};
pub use plan::grants::{GRANT_PREFIX, managed_name};
pub use plan::on_demand::RotationRequest;
pub use plan::reads::Standing;
pub use plan::{Action, Intent, Observed, ObservedKey, Recorded};
pub use policy::policies_equal;
pub use replicas::{Regional, ReplicaRegions, release_replicas};
pub use run::{MAX_PASSES, Report, Target, reconcile};
pub use status::{conditions, status_after};
pub use writer::{Error, StatusWriter};
