//! Leader election with a `coordination.k8s.io` Lease (kube-lease-manager): with several
//! replicas, only the holder reconciles. A replica that loses the lease, or can no longer be
//! sure that it holds it, exits, so that it never acts alongside the new leader; Kubernetes
//! restarts it as a standby.
//!
//! # Timing: why two replicas never reconcile at once
//!
//! A standby takes the lease once [`LEASE`] has passed since the holder's last renewal (the
//! Lease's `renewTime`). The holder renews every [`RENEW_EVERY`]. Its watchdog ([`Watchdog`])
//! reads the Lease every [`CHECK_EVERY`] and keeps a deadline [`RENEW_DEADLINE`] after the last
//! renewal it *read* naming this replica. A read that fails, times out or hangs never moves the
//! deadline, and the deadline is a timer that races the read, so a hung call cannot postpone
//! it. When it fires, `run` drops the controllers (their in-flight reconciles are aborted) and
//! the process exits, at the latest [`EXIT_GRACE`] later. Controllers start only after a first
//! read confirmed the lease, so there is no moment of reconciling without a deadline.
//!
//! Every Lease call is bounded by [`CALL_TIMEOUT`]: the lease manager gets its own client with
//! connect, read and write timeouts of that length and no retries of its own
//! ([`lease_client`]), and the watchdog's reads are also wrapped in a timeout. A replica cut off
//! from a frozen apiserver (whose sockets accept bytes but never answer) thus notices within
//! one call instead of hanging on it.
//!
//! The rules, checked by unit tests:
//!
//! - Safety: `RENEW_DEADLINE + CALL_TIMEOUT + CHECK_EVERY < LEASE` (10 + 2 + 1 = 13 < 15 s).
//!   Even a watchdog that noticed its deadline only after one more check interval and one
//!   timed-out call would stop before the lease can pass; ours notices it on time, so this
//!   slack covers stopping ([`EXIT_GRACE`] fits in it) and the standby's clock running ahead.
//! - Liveness: `RENEW_EVERY + CALL_TIMEOUT + RETRY_EVERY + CHECK_EVERY + CALL_TIMEOUT <=
//!   RENEW_DEADLINE` (4 + 2 + 1 + 1 + 2 = 10 s): a healthy leader survives one renewal that
//!   times out, its retry, and the read that confirms the retry.
//!
//! The holder identity is the pod name (or, outside Kubernetes, the host name) plus a random
//! suffix, unique per process: two containers that both run as PID 1 never share one.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cli::RunArgs;

/// Seconds a lease lasts without renewal: the longest a failover takes.
pub const LEASE_SECONDS: u64 = 15;
const LEASE: Duration = Duration::from_secs(LEASE_SECONDS);
/// How often the holder renews: kube-lease-manager renews `grace` seconds before expiry.
const RENEW_EVERY: Duration = Duration::from_secs(4);
const GRACE_SECONDS: u64 = LEASE_SECONDS - RENEW_EVERY.as_secs();
/// The longest any Lease call may take; a call that takes longer counts as failed.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// A leader that cannot confirm a renewal this recent stops, before the lease can expire and a
/// standby take over.
const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the watchdog reads the Lease.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Pause after a failed lease call before the campaign tries again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Once the lease is lost, the process ends within this, whatever still runs.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// Leaves room for a lease's prefix in the field manager name (at most 128 characters).
const MAX_IDENTITY_PREFIX: usize = 100;

/// A client for Lease calls only: every call fails after [`CALL_TIMEOUT`] without an answer
/// (connect, TLS handshake, each write and each read), and is not retried by the client, so
/// that no lease call outlives the time budget above. Not for watches, which idle longer.
pub fn lease_client(mut config: kube::Config) -> Result<Client, kube::Error> {
    config.connect_timeout = Some(CALL_TIMEOUT);
    config.read_timeout = Some(CALL_TIMEOUT);
    config.write_timeout = Some(CALL_TIMEOUT);
    // Count the read timeout from the request, not from when a pooled connection went idle.
    config.reset_reader_on_write = true;
    config.default_retry = false;
    Client::try_from(config)
}

/// A running lease campaign; dropping every receiver releases the lease.
pub struct Campaign {
    pub identity: String,
    pub namespace: String,
    pub lease_name: String,
    /// The [`lease_client`] the campaign and its watchdog use.
    client: Client,
    pub is_leader: watch::Receiver<bool>,
    pub task: JoinHandle<()>,
}

/// Starts competing for the lease, with `client` from [`lease_client`].
pub async fn campaign(
    client: Client,
    args: &RunArgs,
) -> Result<Campaign, kube_lease_manager::LeaseManagerError> {
    let namespace = args.lease_namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let identity = default_identity();
    tracing::info!(%namespace, lease = %args.lease_name, %identity, "competing for the leader lease");
    let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(namespace.clone())
        .with_identity(identity.clone())
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        // One field manager per replica: server-side apply detects conflicts only between
        // different managers, and the lease relies on it so that two replicas never both win.
        .with_field_manager(format!("kms-operator-{identity}"))
        .build()
        .await?;
    let (sender, is_leader) = watch::channel(false);
    let task = tokio::spawn(keep_campaigning(manager, sender));
    Ok(Campaign { identity, namespace, lease_name: args.lease_name.clone(), client, is_leader, task })
}

/// kube-lease-manager's `watch()` loop, with a short fixed retry instead of its backoff of up to
/// 30 s: after an apiserver outage, a standby takes an expired lease within seconds.
async fn keep_campaigning(manager: LeaseManager, sender: watch::Sender<bool>) {
    loop {
        tokio::select! {
            biased;
            () = sender.closed() => break,
            changed = manager.changed() => match changed {
                Ok(leader) => {
                    // Fails only without receivers, which the next turn notices.
                    let _ = sender.send(leader);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "a leader lease call failed; retrying");
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            },
        }
    }
    // Nobody listens any more: a clean shutdown, so hand the lease on right away.
    match tokio::time::timeout(CALL_TIMEOUT * 3, manager.release()).await {
        Ok(Ok(())) => tracing::debug!("leader lease released"),
        Ok(Err(err)) => tracing::warn!(error = %err, "could not release the leader lease"),
        Err(_) => tracing::warn!("could not release the leader lease in time"),
    }
}

/// This process's holder identity: `POD_NAME`, else the host name, then a random suffix.
pub fn default_identity() -> String {
    let hostname = || std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let prefix = (std::env::var("POD_NAME").ok().into_iter().chain(hostname()))
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "kms-operator".to_owned());
    identity_with(&prefix)
}

fn identity_with(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..8).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    let prefix: String = prefix.chars().take(MAX_IDENTITY_PREFIX).collect();
    format!("{prefix}-{suffix}")
}

/// Waits until `receiver` reads `wanted` (or the campaign ends).
pub async fn until(receiver: &mut watch::Receiver<bool>, wanted: bool) {
    let _ = receiver.wait_for(|leader| *leader == wanted).await;
}

/// Gives the lease up for good: the campaign stops (it must not touch a Lease that may already
/// be another replica's) and the process ends within [`EXIT_GRACE`] even if something blocks
/// the normal exit, e.g. the runtime's shutdown waiting for a blocking DNS lookup.
pub fn abandon(campaign: Campaign) {
    campaign.task.abort();
    std::thread::spawn(|| {
        std::thread::sleep(EXIT_GRACE);
        eprintln!("kms-operator: lost the leader lease and did not exit within {EXIT_GRACE:?}; exiting now");
        std::process::exit(1);
    });
}

/// What one read of the Lease tells the watchdog.
#[derive(Debug, PartialEq)]
enum Reading {
    /// The Lease names us: stop at `deadline` unless a later renewal is read before.
    Ours { deadline: Instant },
    /// It names another holder, or none.
    NotOurs { holder: Option<String> },
}

/// Reads `lease`, read at wall-clock `now` and monotonic `at`. The deadline counts from the
/// `renewTime`, which this process wrote with its own clock; a renewal "in the future" (the
/// clock stepped back) counts as made at `now`.
fn reading(lease: &Lease, identity: &str, now: Timestamp, at: Instant) -> Reading {
    let spec = lease.spec.as_ref();
    let holder = spec.and_then(|s| s.holder_identity.clone());
    if holder.as_deref() != Some(identity) {
        return Reading::NotOurs { holder };
    }
    let Some(renewed) = spec.and_then(|s| s.renew_time.as_ref()) else {
        return Reading::Ours { deadline: at };
    };
    let age = Duration::try_from(now.duration_since(renewed.0)).unwrap_or(Duration::ZERO);
    Reading::Ours { deadline: at + RENEW_DEADLINE.saturating_sub(age) }
}

/// Reads the Lease, failing after [`CALL_TIMEOUT`].
async fn read(api: &Api<Lease>, name: &str) -> Result<Lease, String> {
    match tokio::time::timeout(CALL_TIMEOUT, api.get(name)).await {
        Ok(result) => result.map_err(|err| err.to_string()),
        Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
    }
}

/// The leader's watchdog: see the module documentation.
pub struct Watchdog {
    api: Api<Lease>,
    lease_name: String,
    identity: String,
    deadline: Instant,
}

impl Watchdog {
    /// Confirms that the freshly won lease is ours before anything is reconciled. `None` when
    /// it names someone else, or no read confirms it within [`RENEW_DEADLINE`].
    pub async fn arm(campaign: &Campaign) -> Option<Watchdog> {
        let api: Api<Lease> = Api::namespaced(campaign.client.clone(), &campaign.namespace);
        let give_up = Instant::now() + RENEW_DEADLINE;
        while Instant::now() < give_up {
            match read(&api, &campaign.lease_name).await {
                Ok(lease) => match reading(&lease, &campaign.identity, Timestamp::now(), Instant::now()) {
                    Reading::Ours { deadline } if deadline > Instant::now() => {
                        let (lease_name, identity) = (campaign.lease_name.clone(), campaign.identity.clone());
                        return Some(Watchdog { api, lease_name, identity, deadline });
                    }
                    Reading::Ours { .. } => {}
                    Reading::NotOurs { holder } => {
                        tracing::error!(?holder, "the leader lease names another holder");
                        return None;
                    }
                },
                Err(err) => tracing::warn!(error = %err, "could not read the leader lease"),
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
        tracing::error!("could not confirm the freshly won leader lease");
        None
    }

    /// Resolves once this replica can no longer be sure that it holds the lease: the Lease
    /// names another holder, or no renewal within [`RENEW_DEADLINE`] could be confirmed.
    pub async fn fired(self) {
        let Watchdog { api, lease_name, identity, mut deadline } = self;
        loop {
            let check = async {
                tokio::time::sleep(CHECK_EVERY).await;
                read(&api, &lease_name).await
            };
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => {
                    tracing::error!(
                        "no renewal of the leader lease confirmed within {RENEW_DEADLINE:?}; stopping \
                         before the {LEASE:?} lease can pass to another replica"
                    );
                    return;
                }
                result = check => match result {
                    Ok(lease) => match reading(&lease, &identity, Timestamp::now(), Instant::now()) {
                        Reading::Ours { deadline: next } => deadline = next,
                        Reading::NotOurs { holder } => {
                            tracing::error!(?holder, "the leader lease names another holder");
                            return;
                        }
                    },
                    Err(err) => tracing::warn!(error = %err, "could not read the leader lease"),
                },
            }
        }
    }
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
    fn the_watchdog_stops_before_the_lease_can_expire() {
        assert!(RENEW_DEADLINE + CALL_TIMEOUT + CHECK_EVERY < LEASE);
        assert!(EXIT_GRACE <= CALL_TIMEOUT + CHECK_EVERY, "stopping fits in the slack");
        assert_eq!(LEASE, Duration::from_secs(LEASE_SECONDS));
    }

    #[test]
    fn a_healthy_leader_survives_one_timed_out_renewal() {
        assert_eq!(Duration::from_secs(LEASE_SECONDS - GRACE_SECONDS), RENEW_EVERY);
        assert!(RENEW_EVERY + CALL_TIMEOUT + RETRY_EVERY + CHECK_EVERY + CALL_TIMEOUT <= RENEW_DEADLINE);
    }

    #[test]
    fn the_deadline_counts_from_the_renewal_read_not_from_the_read() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let at = Instant::now();
        let read = reading(&lease("me", now - Duration::from_secs(3)), "me", now, at);
        assert_eq!(read, Reading::Ours { deadline: at + Duration::from_secs(7) });
        // A renewal older than the deadline: already past.
        let stale = reading(&lease("me", now - Duration::from_secs(11)), "me", now, at);
        assert_eq!(stale, Reading::Ours { deadline: at });
        // A renewal ahead of our clock counts as just made.
        let ahead = reading(&lease("me", now + Duration::from_secs(5)), "me", now, at);
        assert_eq!(ahead, Reading::Ours { deadline: at + RENEW_DEADLINE });
    }

    #[test]
    fn another_holder_or_none_means_stop() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let at = Instant::now();
        let other = reading(&lease("other", now), "me", now, at);
        assert_eq!(other, Reading::NotOurs { holder: Some("other".into()) });
        assert_eq!(reading(&Lease::default(), "me", now, at), Reading::NotOurs { holder: None });
    }

    #[test]
    fn identities_are_unique_per_process_and_keep_the_pod_name() {
        assert_ne!(default_identity(), default_identity());
        let identity = identity_with("kms-operator-7d9f-abcde");
        assert!(identity.starts_with("kms-operator-7d9f-abcde-"), "{identity}");
        assert_eq!(identity.len(), "kms-operator-7d9f-abcde-".len() + 8);
        assert_ne!(identity, identity_with("kms-operator-7d9f-abcde"));
        assert!(format!("kms-operator-{}", identity_with(&"x".repeat(300))).len() <= 128);
    }

    /// A server that accepts connections and never answers, as a frozen (SIGSTOPped)
    /// apiserver does: the kernel completes the handshake and buffers the request.
    fn frozen_apiserver() -> kube::Config {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().collect();
            drop(held);
        });
        kube::Config::new(url.parse().unwrap())
    }

    #[tokio::test]
    async fn a_lease_call_against_a_frozen_apiserver_fails_within_the_call_timeout() {
        let api: Api<Lease> = Api::namespaced(lease_client(frozen_apiserver()).unwrap(), "default");
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(CALL_TIMEOUT * 3, api.get("kms-operator")).await;
        assert!(matches!(outcome, Ok(Err(_))), "the client itself gives up: {outcome:?}");
        assert!(started.elapsed() < CALL_TIMEOUT + Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_hung_read_cannot_postpone_the_deadline() {
        let api: Api<Lease> = Api::namespaced(Client::try_from(frozen_apiserver()).unwrap(), "default");
        // The first read starts after CHECK_EVERY and hangs; the deadline falls while it does.
        let deadline = Instant::now() + CHECK_EVERY + Duration::from_millis(300);
        let watchdog = Watchdog { api, lease_name: "kms-operator".into(), identity: "me".into(), deadline };
        let fired = tokio::time::timeout(CHECK_EVERY + CALL_TIMEOUT, watchdog.fired()).await;
        assert!(fired.is_ok(), "the watchdog waited for the hung read");
        let late = Instant::now() - deadline;
        assert!(late < Duration::from_millis(200), "fired {late:?} after its deadline");
    }
}
