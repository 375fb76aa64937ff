//! moto behind the fault proxy's strict layer, and the operator's KMS port pointed at the
//! proxy: what every integration test that reconciles through "AWS" starts from.

use kms_operator::kms::AwsKms;

use super::clock::TestClock;
use super::fault_proxy::FaultProxy;
use super::moto::{Moto, clients_for};
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
