//! The operators a benchmark measures, and everything that differs between them: their CRDs,
//! the objects that make one key, what Ready means, their command lines and their metrics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube::discovery::ApiResource;
use serde_json::{Value, json};

use super::workload;

/// An operator under measurement.
#[derive(Clone, Debug)]
pub enum Subject {
    /// kms-operator, from this repository.
    Ours { binary: PathBuf },
    /// The ACK kms-controller, built from `../shared/peers/` (`crds` holds its CRDs).
    Ack { binary: PathBuf, crds: PathBuf },
}

/// Where an operator finds the parts of one run.
#[derive(Clone, Debug)]
pub struct Wiring {
    pub kubeconfig: PathBuf,
    /// KMS (and the Tagging API): the quota proxy.
    pub kms: String,
    /// moto itself, for STS (the ACK controller asks it who it is).
    pub moto: String,
    /// Where the operator serves /metrics.
    pub metrics: String,
    /// Where the operator serves its health checks (the same address for ours).
    pub health: String,
}

/// How often the operator resyncs, for one phase of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cadence {
    /// None: the operator's default.
    pub resync: Option<Duration>,
    /// kms-operator's `--deep-resync-interval`, passed only when the binary has it.
    pub deep: Option<Duration>,
}

impl Subject {
    pub fn name(&self) -> &'static str {
        match self {
            Subject::Ours { .. } => "kms-operator",
            Subject::Ack { .. } => "ACK kms-controller v1.4.1",
        }
    }

    /// A short name for file names and plot legends.
    pub fn short(&self) -> &'static str {
        match self {
            Subject::Ours { .. } => "ours",
            Subject::Ack { .. } => "ack",
        }
    }

    /// The CRD manifests to install.
    pub fn crds(&self) -> Vec<PathBuf> {
        match self {
            Subject::Ours { .. } => vec![PathBuf::from(crate::env::ROOT).join("crds/kmskey.yaml")],
            Subject::Ack { crds, .. } => {
                let mut files: Vec<PathBuf> = std::fs::read_dir(crds)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", crds.display()))
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                    .collect();
                files.sort();
                files
            }
        }
    }

    /// The kinds whose objects together make one key, the key's own kind first.
    pub fn kinds(&self) -> Vec<ApiResource> {
        match self {
            Subject::Ours { .. } => vec![resource("kms.boosterpack.io", "KmsKey", "kmskeys")],
            Subject::Ack { .. } => vec![
                resource("kms.services.k8s.aws", "Key", "keys"),
                resource("kms.services.k8s.aws", "Alias", "aliases"),
            ],
        }
    }

    /// Key `i`'s objects, one per kind of `kinds()`, in that order.
    pub fn objects(&self, i: usize, policy: bool) -> Vec<Value> {
        match self {
            Subject::Ours { .. } => vec![workload::kms_key(i, policy)],
            Subject::Ack { .. } => vec![workload::ack_key(i, policy), workload::ack_alias(i)],
        }
    }

    /// Whether the operator reports `obj` done: ours, Ready for the object's current
    /// generation; ACK's, ACK.ResourceSynced (it records no observed generation).
    pub fn is_ready(&self, obj: &Value) -> bool {
        let conditions = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let holds = |type_: &str| conditions.iter().any(|c| c["type"] == type_ && c["status"] == "True");
        match self {
            Subject::Ours { .. } => {
                holds("Ready") && obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
            }
            Subject::Ack { .. } => holds("ACK.ResourceSynced"),
        }
    }

    /// The KMS key ID the key's own object records.
    pub fn key_id(&self, obj: &Value) -> Option<String> {
        let field = match self {
            Subject::Ours { .. } => "keyId",
            Subject::Ack { .. } => "keyID",
        };
        obj["status"][field].as_str().map(str::to_owned)
    }

    /// A merge patch of the key's own object that sets its description.
    pub fn description_patch(&self, description: &str) -> Value {
        match self {
            Subject::Ours { .. } => json!({"spec": {"keyDescription": description}}),
            Subject::Ack { .. } => json!({"spec": {"description": description}}),
        }
    }

    /// The counter of finished reconciles in the operator's /metrics.
    pub fn reconcile_counter(&self) -> &'static str {
        match self {
            Subject::Ours { .. } => "kms_operator_reconciles_total",
            Subject::Ack { .. } => "controller_runtime_reconcile_total",
        }
    }

    /// Whether this build of the operator has `--deep-resync-interval`.
    pub fn has_deep_resync(&self) -> bool {
        let Subject::Ours { binary } = self else { return false };
        let help = Command::new(binary).args(["run", "--help"]).output();
        help.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--deep-resync-interval"))
    }

    /// The command line that makes many keys quickly for a later measurement: kms-operator
    /// with its own rate limits at `quota_factor` × AWS's quotas and more workers. None for the
    /// peer, which has no such setting.
    pub fn setup_command(&self, wiring: &Wiring, quota_factor: f64) -> Option<Command> {
        let Subject::Ours { .. } = self else { return None };
        let mut cmd = self.command(wiring, Cadence::default());
        let limits: Vec<String> = (kms_operator::kms::AWS_QUOTAS.iter())
            .map(|(op, rps)| format!("{op}={}", rps * quota_factor))
            .collect();
        cmd.args(["--kms-rate-limits", &limits.join(","), "--concurrency", "32"]);
        Some(cmd)
    }

    /// The command line that runs the operator against `wiring`, resyncing as `cadence` says
    /// and otherwise at its defaults.
    pub fn command(&self, wiring: &Wiring, cadence: Cadence) -> Command {
        let mut cmd = match self {
            Subject::Ours { binary } => ours(binary, wiring, cadence),
            Subject::Ack { binary, .. } => ack(binary, wiring, cadence),
        };
        cmd.env("KUBECONFIG", &wiring.kubeconfig)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", crate::support::moto::REGION)
            // The ACK controller's SDK refuses its own HTTP client when a CA bundle is set.
            .env_remove("AWS_CA_BUNDLE");
        cmd
    }
}

fn ours(binary: &Path, wiring: &Wiring, cadence: Cadence) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(["run", "--region", crate::support::moto::REGION, "--cluster-name", "bench"])
        .args(["--kms-endpoint", &wiring.kms, "--tagging-endpoint", &wiring.kms])
        .args(["--http-addr", &wiring.metrics])
        .env("RUST_LOG", "info");
    if let Some(resync) = cadence.resync {
        let interval = format!("{}s", resync.as_secs().max(1));
        cmd.args(["--resync-interval", &interval, "--min-resync-interval", &interval]);
    }
    if let Some(deep) = cadence.deep {
        cmd.args(["--deep-resync-interval", &format!("{}s", deep.as_secs().max(1))]);
    }
    cmd
}

fn ack(binary: &Path, wiring: &Wiring, cadence: Cadence) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(["--aws-region", crate::support::moto::REGION, "--aws-endpoint-url", &wiring.kms])
        .args(["--aws-identity-endpoint-url", &wiring.moto, "--allow-unsafe-aws-endpoint-urls"])
        .args(["--enable-carm=false", "--metrics-addr", &wiring.metrics, "--healthz-addr", &wiring.health]);
    if let Some(resync) = cadence.resync {
        cmd.args(["--reconcile-default-resync-seconds", &resync.as_secs().max(1).to_string()]);
    }
    cmd
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    let gvk = kube::api::GroupVersionKind::gvk(group, "v1alpha1", kind);
    ApiResource::from_gvk_with_plural(&gvk, plural)
}
