//! moto behind the fault proxy's strict layer, and the operator's KMS port pointed at the
//! proxy: what every integration test that reconciles through "AWS" starts from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kms_operator::kms::AwsKms;
use kms_operator::reconcile::{AccountAliases, Regional, ReplicaRegions};

use super::clock::TestClock;
use super::fault_proxy::FaultProxy;
use super::moto::{Moto, clients_for, clients_in};
use super::strict::StrictConfig;

pub struct StrictEnv {
    pub moto: Moto,
    pub proxy: FaultProxy,
    /// The operator's port, through the proxy.
    pub kms: AwsKms,
    /// The strict layer's clock.
    pub clock: TestClock,
}

impl StrictEnv {
    pub async fn start(strict: StrictConfig) -> StrictEnv {
        let moto = Moto::start();
        let clock = strict.clock.clone();
        let proxy = FaultProxy::start_with(&moto.url, strict).await;
        let kms = AwsKms::new(clients_for(&proxy.url));
        StrictEnv { moto, proxy, kms, clock }
    }
}

impl StrictEnv {
    /// The operator's port in `region`, through the proxy.
    pub fn kms_in(&self, region: &str) -> AwsKms {
        AwsKms::new(clients_in(&self.proxy.url, region))
    }

    /// KMS in every Region through the proxy, one port per Region as the operator keeps them.
    pub fn regions(&self) -> Arc<ProxyRegions> {
        Arc::new(ProxyRegions { url: self.proxy.url.clone(), known: Mutex::default() })
    }
}

/// Every Region of the proxied moto.
pub struct ProxyRegions {
    url: String,
    known: Mutex<HashMap<String, Arc<Regional>>>,
}

impl ReplicaRegions for ProxyRegions {
    fn regional(&self, region: &str, _holds_key: bool) -> Result<Arc<Regional>, String> {
        let mut known = self.known.lock().unwrap();
        let regional = known.entry(region.to_owned()).or_insert_with(|| {
            Arc::new(Regional {
                kms: Arc::new(AwsKms::new(clients_in(&self.url, region))),
                account_aliases: AccountAliases::new(Duration::from_secs(300)),
            })
        });
        Ok(regional.clone())
    }
}
