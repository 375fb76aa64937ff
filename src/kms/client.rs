//! Building the aws-sdk clients from the `run` flags and the AWS default chain: one shared
//! configuration (credentials, timeouts, FIPS, dual-stack, CA bundle, proxy), and from it the
//! clients of any Region, each with the endpoint the flags give that Region.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use futures::FutureExt;

use super::AwsClients;
use super::network::{self, Network, NetworkError};
use crate::cli::RunArgs;
use crate::reconcile::account::{AssumedRole, Identity};

/// Makes the KMS and Tagging API clients of a Region. Credentials come from the AWS default
/// chain (environment, profile, IRSA web identity, EKS Pod Identity). A Region's endpoint is,
/// in order: its `--regional-kms-endpoints` entry, `--kms-endpoint`, `AWS_ENDPOINT_URL_KMS`,
/// AWS's (FIPS and dual-stack as the flags say); likewise for the Tagging API.
#[derive(Clone, Debug)]
pub struct ClientFactory {
    shared: SdkConfig,
    kms: Endpoints,
    tagging: Endpoints,
    /// `--sts-endpoint`: where roles are assumed.
    sts_endpoint: Option<String>,
}

/// The endpoint overrides of one service.
#[derive(Clone, Debug, Default)]
struct Endpoints {
    every_region: Option<String>,
    per_region: BTreeMap<String, String>,
}

impl Endpoints {
    fn of(&self, region: &str) -> Option<&str> {
        self.per_region.get(region).or(self.every_region.as_ref()).map(String::as_str)
    }
}

impl ClientFactory {
    pub async fn from_args(args: &RunArgs) -> Result<Self, NetworkError> {
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
        Ok(ClientFactory {
            shared: loader.load().await,
            kms: Endpoints {
                every_region: args.kms_endpoint.clone(),
                per_region: args.regional_kms_endpoints.clone(),
            },
            tagging: Endpoints {
                every_region: args.tagging_endpoint.clone(),
                per_region: args.regional_tagging_endpoints.clone(),
            },
            sts_endpoint: args.sts_endpoint.clone(),
        })
    }

    /// The operator's own Region (`--region`, else the default chain's), if any.
    pub fn home_region(&self) -> Option<String> {
        self.shared.region().map(|r| r.to_string())
    }

    /// The clients of `region`, with the operator's own credentials.
    pub fn clients(&self, region: &str) -> AwsClients {
        self.clients_as(region, &Identity::Own)
    }

    /// The clients of `region` acting as `identity`: for a role, credentials from STS
    /// AssumeRole (with its external ID and session tags), refreshed before they expire, asked
    /// for with the operator's own credentials (`--sts-endpoint` overrides STS's endpoint).
    pub fn clients_as(&self, region: &str, identity: &Identity) -> AwsClients {
        let config = match identity {
            Identity::Own => self.shared.clone(),
            Identity::Role(role) => self.assuming(role),
        };
        let name = aws_config::Region::new(region.to_owned());
        let mut kms = aws_sdk_kms::config::Builder::from(&config).region(name.clone());
        let mut tagging = aws_sdk_resourcegroupstagging::config::Builder::from(&config).region(name);
        if let Some(endpoint) = self.kms.of(region) {
            kms = kms.endpoint_url(endpoint);
        }
        if let Some(endpoint) = self.tagging.of(region) {
            tagging = tagging.endpoint_url(endpoint);
        }
        AwsClients {
            kms: aws_sdk_kms::Client::from_conf(kms.build()),
            tagging: aws_sdk_resourcegroupstagging::Client::from_conf(tagging.build()),
        }
    }
}

impl ClientFactory {
    /// The shared configuration with `role`'s credentials instead of the operator's own.
    fn assuming(&self, role: &AssumedRole) -> SdkConfig {
        let mut sts = self.shared.clone().into_builder();
        if let Some(endpoint) = &self.sts_endpoint {
            sts = sts.endpoint_url(endpoint);
        }
        let mut builder = AssumeRoleProvider::builder(role.role_arn.clone())
            .session_name("kms-operator")
            .configure(&sts.build());
        if let Some(external_id) = &role.external_id {
            builder = builder.external_id(external_id.clone());
        }
        if !role.session_tags.is_empty() {
            builder = builder.tags(role.session_tags.clone());
        }
        // Configured with an SdkConfig, building reads nothing: it is ready at its first poll.
        let provider = builder.build().now_or_never().expect("an AssumeRoleProvider builds without I/O");
        let credentials = aws_sdk_kms::config::SharedCredentialsProvider::new(provider);
        self.shared.clone().into_builder().credentials_provider(credentials).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regions_own_endpoint_wins_over_the_one_for_every_region() {
        let endpoints = Endpoints {
            every_region: Some("http://local:5000".into()),
            per_region: BTreeMap::from([("eu-west-1".into(), "https://vpce-eu".into())]),
        };
        assert_eq!(endpoints.of("eu-west-1"), Some("https://vpce-eu"));
        assert_eq!(endpoints.of("us-east-1"), Some("http://local:5000"));
        assert_eq!(Endpoints::default().of("us-east-1"), None);
    }
}
