//! Test support shared by the integration tests: a moto KMS server on a free loopback port,
//! SDK clients for checking the AWS side independently, a fault proxy whose strict KMS layer makes
//! moto answer as AWS would, a test clock to skip the layer's lags, and an in-memory status store
//! that stands in for the apiserver (the real apiserver is exercised by the end-to-end tests).
#![allow(dead_code)]

pub mod clock;
pub mod fault_proxy;
pub mod flaky;
pub mod moto;
pub mod object;
pub mod strict;
pub mod strict_env;
