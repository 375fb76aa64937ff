//! Leader election with a `coordination.k8s.io` Lease (kube-lease-manager): with several
//! replicas, only the holder reconciles. A replica that loses the lease exits, so that it can
//! never act alongside the new leader; Kubernetes restarts it as a standby.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::RunArgs;

/// Seconds a lease lasts without renewal: the longest a failover takes.
pub const LEASE_SECONDS: u64 = 15;
const GRACE_SECONDS: u64 = 5;
/// A leader that cannot confirm its lease for this long stops, before the lease can expire
/// and a standby take over: two replicas never reconcile at once.
const RENEW_DEADLINE: Duration = Duration::from_secs(10);
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// A running lease campaign; dropping the receiver releases the lease.
pub struct Campaign {
    pub identity: String,
    pub namespace: String,
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
        .with_namespace(namespace.clone())
        .with_identity(identity.clone())
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        // One field manager per replica: server-side apply detects conflicts only between
        // different managers, and the lease relies on it so that two replicas never both win.
        .with_field_manager(format!("kms-operator-{identity}"))
        .build()
        .await?;
    let (is_leader, task) = manager.watch().await;
    Ok(Campaign { identity, namespace, is_leader, task })
}

/// Resolves once this replica can no longer be sure that it holds the lease: the Lease names
/// another holder, its last renewal is close to expiring, or it could not be read for
/// [`RENEW_DEADLINE`] (cut off from the apiserver, while a standby may be taking over).
pub async fn lost(client: Client, campaign_namespace: &str, lease_name: &str, identity: &str) {
    let api: Api<Lease> = Api::namespaced(client, campaign_namespace);
    let mut confirmed = Instant::now();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        match api.get(lease_name).await {
            Ok(lease) if still_ours(&lease, identity, Timestamp::now()) => confirmed = Instant::now(),
            Ok(_) => return,
            Err(err) if confirmed.elapsed() >= RENEW_DEADLINE => {
                tracing::error!(error = %err, "cannot confirm the leader lease");
                return;
            }
            Err(_) => {}
        }
    }
}

/// Whether `lease` names `identity` as holder with a renewal recent enough to be safe.
pub fn still_ours(lease: &Lease, identity: &str, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return false };
    let holder = spec.holder_identity.as_deref() == Some(identity);
    let renewed = spec.renew_time.as_ref().map(|t| t.0);
    let fresh = renewed.is_some_and(|at| now.duration_since(at).unsigned_abs() < RENEW_DEADLINE);
    holder && fresh
}

/// Waits until `receiver` reads `wanted` (or the campaign ends).
pub async fn until(receiver: &mut watch::Receiver<bool>, wanted: bool) {
    let _ = receiver.wait_for(|leader| *leader == wanted).await;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    use super::*;

    fn lease(holder: &str, renewed: Timestamp) -> Lease {
        let spec = LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            ..LeaseSpec::default()
        };
        Lease { spec: Some(spec), ..Lease::default() }
    }

    #[test]
    fn a_freshly_renewed_lease_in_our_name_is_ours() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        assert!(still_ours(&lease("me", now - Duration::from_secs(3)), "me", now));
    }

    #[test]
    fn another_holder_or_a_stale_renewal_means_stop() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        assert!(!still_ours(&lease("other", now), "me", now));
        assert!(!still_ours(&lease("me", now - Duration::from_secs(11)), "me", now));
        assert!(!still_ours(&Lease::default(), "me", now));
    }
}
