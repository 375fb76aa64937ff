//! The parts one benchmark run measures an operator against: a fresh local control plane
//! (etcd + kube-apiserver), moto, and the fault proxy in front of moto enforcing AWS's
//! per-operation KMS quotas. Everything is stopped when the stack is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use kms_operator::kms::AWS_QUOTAS;

use crate::env::{ControlPlane, ROOT};
use crate::support::fault_proxy::FaultProxy;
use crate::support::moto::Moto;
use crate::support::strict::{IdentityPolicy, StrictConfig};

pub struct Stack {
    pub proxy: FaultProxy,
    pub moto: Moto,
    pub cp: ControlPlane,
    pub kube: kube::Client,
}

/// The strict KMS layer as the benchmark uses it when asked for (`strict`): AWS's checks,
/// pagination at AWS's page sizes, no IAM (the shipped policy is kms-operator's own and would
/// refuse the peer's calls) and so no tag lag; otherwise raw moto. Quotas apply either way.
pub fn strict_config(strict: bool) -> StrictConfig {
    if !strict {
        return StrictConfig::off();
    }
    StrictConfig {
        cluster: "bench".into(),
        identity_policy: IdentityPolicy::Off,
        tag_lag: std::time::Duration::ZERO,
        page_size: 100,
        ..StrictConfig::default()
    }
}

impl Stack {
    /// Starts the parts with their state under `dir` and installs the CRDs in `crds`.
    pub async fn start(dir: &Path, strict: bool, crds: &[PathBuf]) -> Stack {
        require_control_plane();
        std::fs::create_dir_all(dir).unwrap();
        let cp = ControlPlane::start(dir.join("cp"));
        let moto = Moto::start();
        let proxy = FaultProxy::start_with(&moto.url, strict_config(strict)).await;
        proxy.enforce_quotas(&AWS_QUOTAS);
        for crd in crds {
            let file = crd.to_string_lossy();
            cp.kubectl_ok(&["apply", "--server-side", "-f", &file]);
            cp.kubectl_ok(&["wait", "--for=condition=Established", "-f", &file, "--timeout=60s"]);
        }
        let kubeconfig = kube::config::Kubeconfig::read_from(&cp.kubeconfig).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
        let kube = kube::Client::try_from(config).unwrap();
        Stack { proxy, moto, cp, kube }
    }
}

/// Fails, naming the command that builds them, when the control plane's binaries are not in
/// the cache (`hack/controlplane.sh start` would otherwise spend many minutes building them).
pub fn require_control_plane() {
    for binary in ["etcd", "kube-apiserver", "kubectl", "kube-controller-manager"] {
        let out = Command::new("bash")
            .args(["-c", "source \"$1/hack/lib.sh\" && kms_cp_binary_path \"$2\"", "_", ROOT, binary])
            .output()
            .expect("bash runs");
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(
            path.is_file(),
            "{binary} is not built ({} is missing): run `make controlplane` (or `make test`, \
             `make bench`), which builds etcd, kube-apiserver, kubectl and kube-controller-manager into the cache",
            path.display()
        );
    }
}
