//! Building the aws-sdk KMS client from the `run` flags and the AWS default chain.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

use crate::cli::RunArgs;

/// A KMS client with bounded timeouts. Credentials come from the AWS default chain
/// (environment, profile, IRSA web identity, EKS Pod Identity); `AWS_ENDPOINT_URL_KMS` is
/// honoured, and `--kms-endpoint` overrides it.
pub async fn aws_client(args: &RunArgs) -> aws_sdk_kms::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_kms::config::Builder::from(&shared);
    if let Some(endpoint) = &args.kms_endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_kms::Client::from_conf(config.build())
}
