//! The strict KMS layer of the fault proxy (tests/support/strict), proved against a real moto
//! with plain aws-sdk-kms calls through the proxy, and its IAM evaluator by pure unit tests.
//! Each test starts its own moto (`MOTO_SERVER` overrides where `make moto` put it).

mod support;

// The test cases, in tests/strict_kms/.
#[path = "strict_kms/access.rs"]
mod access;
#[path = "strict_kms/accounts.rs"]
mod accounts;
#[path = "strict_kms/common.rs"]
mod common;
#[path = "strict_kms/evaluator.rs"]
mod evaluator;
#[path = "strict_kms/grants.rs"]
mod grants;
#[path = "strict_kms/limits.rs"]
mod limits;
#[path = "strict_kms/lists.rs"]
mod lists;
#[path = "strict_kms/replicas.rs"]
mod replicas;
#[path = "strict_kms/specs.rs"]
mod specs;
#[path = "strict_kms/states.rs"]
mod states;
