//! Leader election with a `coordination.k8s.io` Lease (kube-lease-manager): with several
//! replicas, only the holder reconciles. A replica that loses the lease exits, so that it can
//! never act alongside the new leader; Kubernetes restarts it as a standby.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::RunArgs;

/// Seconds a lease lasts without renewal: the longest a failover takes.
pub const LEASE_SECONDS: u64 = 15;
const GRACE_SECONDS: u64 = 5;

/// A running lease campaign; dropping the receiver releases the lease.
pub struct Campaign {
    pub is_leader: watch::Receiver<bool>,
    pub task: JoinHandle<Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>>,
}

/// Starts competing for the lease.
pub async fn campaign(
    client: Client,
    args: &RunArgs,
) -> Result<Campaign, kube_lease_manager::LeaseManagerError> {
    let namespace = args.lease_namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("kms-operator-{}", std::process::id()));
    tracing::info!(%namespace, lease = %args.lease_name, %identity, "competing for the leader lease");
    let manager = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        .with_field_manager("kms-operator")
        .build()
        .await?;
    let (is_leader, task) = manager.watch().await;
    Ok(Campaign { is_leader, task })
}

/// Waits until `receiver` reads `wanted` (or the campaign ends).
pub async fn until(receiver: &mut watch::Receiver<bool>, wanted: bool) {
    let _ = receiver.wait_for(|leader| *leader == wanted).await;
}
