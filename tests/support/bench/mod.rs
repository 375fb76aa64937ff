//! The benchmark harness of issue 13: kms-operator (and, when its source is at hand, the ACK
//! kms-controller) against a fresh local control plane, moto, and the fault proxy enforcing
//! AWS's per-operation KMS quotas. `benches/bench.rs` runs it at N = 100, 1000, 10000 and
//! writes BENCHMARKS.md; `tests/bench.rs` runs a small version in `make test`.
//!
//! The including crate provides `crate::env` (tests/e2e/env.rs: the control plane) and
//! `crate::support` (tests/support: moto, the fault proxy, the strict layer).

pub mod apply;
pub mod calls;
pub mod canvas;
pub mod font;
pub mod machine;
pub mod outcome;
pub mod peer;
pub mod plot;
pub mod process;
pub mod readiness;
pub mod report;
pub mod run;
pub mod scrape;
pub mod settled;
pub mod stack;
pub mod subject;
pub mod workload;
