//! The KmsAccounts and the namespaces' labels, watched, and from them the AWS identity each
//! object's key is reached with (`reconcile::account` decides). Fails closed like the
//! cluster's KmsKeyPolicy: until both lists have completed, no KmsKey is reconciled, so a
//! missing RBAC rule can never let a key be made in the operator's own account that a
//! KmsAccount meant for another.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api::KmsAccount;
use crate::reconcile::Outcome;
use crate::reconcile::account::{AccountRules, Identity, identity_for};

/// Why an object has no identity yet.
pub enum Unmapped {
    /// The KmsAccounts or namespaces are not listed yet: try again shortly.
    Waiting(String),
    /// The mapping refuses the object (Stalled).
    Refused(Outcome),
}

/// The account mapping of one operator.
pub struct Accounts {
    /// `None` with `--account-mapping false`: every key is reached with the operator's own
    /// identity.
    watched: Option<Watched>,
    require_mapping: bool,
}

struct Watched {
    accounts: reflector::Store<KmsAccount>,
    namespaces: reflector::Store<PartialObjectMeta<Namespace>>,
    listed: Arc<AtomicBool>,
}

impl Accounts {
    /// Starts watching KmsAccounts and namespaces' metadata, when `enabled`.
    pub fn watch(client: &Client, enabled: bool, require_mapping: bool) -> Self {
        if !enabled {
            return Accounts { watched: None, require_mapping };
        }
        let (accounts, account_writer) = reflector::store();
        let api: Api<KmsAccount> = Api::all(client.clone());
        let account_stream = reflector::reflector(account_writer, watcher(api, watcher::Config::default()));
        let (namespaces, namespace_writer) = reflector::store();
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        let namespace_stream =
            reflector::reflector(namespace_writer, watcher(api, watcher::Config::default()));
        tokio::spawn(account_stream.default_backoff().for_each(|event| async move {
            if let Err(err) = event {
                tracing::warn!(error = %err, "cannot watch KmsAccounts; KmsKeys wait (the operator needs list and watch on kmsaccounts)");
            }
        }));
        tokio::spawn(namespace_stream.default_backoff().for_each(|event| async move {
            if let Err(err) = event {
                tracing::warn!(error = %err, "cannot watch namespaces; KmsKeys wait (the operator needs list and watch on namespaces)");
            }
        }));
        let listed = Arc::new(AtomicBool::new(false));
        let (flag, both) = (listed.clone(), (accounts.clone(), namespaces.clone()));
        tokio::spawn(async move {
            if both.0.wait_until_ready().await.is_ok() && both.1.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Release);
            }
        });
        Accounts { watched: Some(Watched { accounts, namespaces, listed }), require_mapping }
    }

    /// The identity `namespace`'s keys are reached with. `recorded_account`: the account status
    /// records the key (or its create) in; `own_account`: the operator's own, if known.
    pub fn identity(
        &self,
        namespace: &str,
        recorded_account: Option<&str>,
        own_account: Option<&str>,
    ) -> Result<Identity, Unmapped> {
        let rules = AccountRules { require_mapping: self.require_mapping, own_account, recorded_account };
        let Some(watched) = &self.watched else {
            return identity_for(namespace, &BTreeMap::new(), &[], rules).map_err(Unmapped::Refused);
        };
        if !watched.listed.load(Ordering::Acquire) {
            return Err(Unmapped::Waiting(
                "waiting to read the KmsAccounts and namespaces (the operator needs list and watch on both)"
                    .to_owned(),
            ));
        }
        // A namespace not in the cache yet (made with its KmsKeys in one apply) has labels
        // that may map it: it is waited for, never taken as unlabelled.
        let Some(labels) = watched.namespaces.get(&ObjectRef::new(namespace)).map(|ns| ns.labels().clone())
        else {
            return Err(Unmapped::Waiting(format!("waiting to see namespace {namespace} and its labels")));
        };
        // Without the operator's own account, a key recorded in another account could not be
        // told from one in its own: wait until it is learned.
        if own_account.is_none() {
            return Err(Unmapped::Waiting("waiting to learn the operator's own AWS account".to_owned()));
        }
        let state = watched.accounts.state();
        let accounts: Vec<(&str, &crate::api::KmsAccountSpec)> =
            state.iter().map(|a| (a.metadata.name.as_deref().unwrap_or_default(), &a.spec)).collect();
        identity_for(namespace, &labels, &accounts, rules).map_err(Unmapped::Refused)
    }
}
