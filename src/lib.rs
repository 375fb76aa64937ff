//! kms-operator: AWS KMS keys managed from `KmsKey` objects.
//!
//! - [`api`]: the custom resource, its schema and the generated CRD.
//! - [`kms`]: the narrow KMS port and its aws-sdk adapter.
//! - [`reconcile`]: observe → plan → apply, pure decisions in `plan`.
//! - [`controller`]: the kube-runtime shell: watch, finalizer, status, events, leader election.
//! - [`health`], [`metrics`]: the HTTP probes and Prometheus metrics.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod controller;
pub mod duration;
pub mod health;
pub mod kms;
pub mod metrics;
pub mod reconcile;
