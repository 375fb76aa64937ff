//! Building the aws-sdk clients from the `run` flags and the AWS default chain.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

use super::AwsClients;
use super::network::{self, Network, NetworkError};
use crate::cli::RunArgs;

/// KMS and Resource Groups Tagging API clients with bounded timeouts. Credentials come from
/// the AWS default chain (environment, profile, IRSA web identity, EKS Pod Identity).
/// `AWS_ENDPOINT_URL_KMS` and `AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API` are honoured;
/// `--kms-endpoint` and `--tagging-endpoint` override them. FIPS and dual-stack endpoints, a CA
/// bundle and a proxy come from their flags (see `network`).
pub async fn aws_clients(args: &RunArgs) -> Result<AwsClients, NetworkError> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    loader = loader.use_fips(args.use_fips_endpoint).use_dual_stack(args.use_dual_stack_endpoint);
    let network = Network {
        ca_bundle: args.ca_bundle.clone(),
        https_proxy: args.https_proxy.clone(),
        no_proxy: args.no_proxy.clone(),
    };
    if let Some(client) = network::http_client(&network)? {
        loader = loader.http_client(client);
    }
    let shared = loader.load().await;
    let mut kms = aws_sdk_kms::config::Builder::from(&shared);
    let mut tagging = aws_sdk_resourcegroupstagging::config::Builder::from(&shared);
    if let Some(endpoint) = &args.kms_endpoint {
        kms = kms.endpoint_url(endpoint);
    }
    if let Some(endpoint) = &args.tagging_endpoint {
        tagging = tagging.endpoint_url(endpoint);
    }
    Ok(AwsClients {
        kms: aws_sdk_kms::Client::from_conf(kms.build()),
        tagging: aws_sdk_resourcegroupstagging::Client::from_conf(tagging.build()),
    })
}
