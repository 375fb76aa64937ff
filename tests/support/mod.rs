//! Test support shared by the integration tests: a moto KMS server on a free loopback port,
//! SDK clients for checking the AWS side independently, and an in-memory status store that
//! stands in for the apiserver (the real apiserver is exercised by the end-to-end tests).
#![allow(dead_code)]

pub mod fault_proxy;
pub mod flaky;
pub mod moto;
pub mod object;
