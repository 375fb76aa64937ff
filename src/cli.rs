//! Command line: `kms-operator run` and `kms-operator crd`. Every `run` flag has an
//! environment variable, so the Helm chart and a shell set them the same way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::DeletionPolicy;
use crate::duration::parse_duration;

#[derive(Debug, Parser)]
#[command(name = "kms-operator", version, about = "Manages AWS KMS keys from KmsKey objects")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller until SIGINT or SIGTERM.
    Run(Box<RunArgs>),
    /// Print the KmsKey CustomResourceDefinition as YAML.
    Crd,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The operator's AWS Region: where a KmsKey without `spec.region` gets its key. Without
    /// it, the AWS default chain decides (AWS_REGION, profile); the operator does not start
    /// when neither names one.
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,

    /// The Regions KmsKeys may make new keys in with `spec.region`, comma-separated (empty:
    /// any Region the operator's credentials reach). A key already recorded in status is kept
    /// and released in its Region whatever this says.
    #[arg(long, env = "KMS_OPERATOR_ALLOWED_REGIONS", value_delimiter = ',', value_parser = parse_region)]
    pub allowed_regions: Vec<String>,

    /// KMS endpoint URL for every Region, for a local KMS such as moto. AWS_ENDPOINT_URL_KMS
    /// works too.
    #[arg(long, env = "KMS_OPERATOR_KMS_ENDPOINT")]
    pub kms_endpoint: Option<String>,

    /// KMS endpoint URLs per Region, for VPC interface endpoints:
    /// `eu-west-1=https://vpce-0abc.kms.eu-west-1.vpce.amazonaws.com,...`. A Region named here
    /// uses its URL instead of `--kms-endpoint` or AWS's.
    #[arg(long, env = "KMS_OPERATOR_REGIONAL_KMS_ENDPOINTS", default_value = "", value_parser = parse_regional_endpoints)]
    pub regional_kms_endpoints: BTreeMap<String, String>,

    /// Resource Groups Tagging API endpoint URL for every Region, for a local stand-in such as
    /// moto. AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API works too.
    #[arg(long, env = "KMS_OPERATOR_TAGGING_ENDPOINT")]
    pub tagging_endpoint: Option<String>,

    /// Tagging API endpoint URLs per Region, as `--regional-kms-endpoints`.
    #[arg(long, env = "KMS_OPERATOR_REGIONAL_TAGGING_ENDPOINTS", default_value = "", value_parser = parse_regional_endpoints)]
    pub regional_tagging_endpoints: BTreeMap<String, String>,

    /// STS endpoint URL for assuming the roles KmsAccounts name, for a local STS such as
    /// moto. AWS_ENDPOINT_URL_STS works too.
    #[arg(long, env = "KMS_OPERATOR_STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,

    /// Read KmsAccounts and reach the keys of the namespaces they map by assuming their
    /// roles. With false, KmsAccounts are ignored and every key is reached with the operator's
    /// own identity.
    #[arg(long, env = "KMS_OPERATOR_ACCOUNT_MAPPING", default_value_t = true, action = clap::ArgAction::Set)]
    pub account_mapping: bool,

    /// A namespace no KmsAccount maps gets no key (Stalled, AccountNotMapped) instead of one in
    /// the operator's own account.
    #[arg(long, env = "KMS_OPERATOR_REQUIRE_ACCOUNT_MAPPING", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_account_mapping: bool,

    /// Call AWS's FIPS 140 endpoints (kms-fips.<region>.amazonaws.com, as AWS offers them).
    #[arg(long, env = "AWS_USE_FIPS_ENDPOINT", default_value_t = false, action = clap::ArgAction::Set)]
    pub use_fips_endpoint: bool,

    /// Call AWS's dual-stack (IPv4 and IPv6) endpoints.
    #[arg(long, env = "AWS_USE_DUALSTACK_ENDPOINT", default_value_t = false, action = clap::ArgAction::Set)]
    pub use_dual_stack_endpoint: bool,

    /// A PEM file of CA certificates to trust besides the system's, for AWS and the Tagging API
    /// (a TLS-inspecting egress proxy, a private endpoint's own CA).
    #[arg(long, env = "AWS_CA_BUNDLE")]
    pub ca_bundle: Option<std::path::PathBuf>,

    /// The proxy AWS calls go through (`http://proxy.internal:3128`).
    #[arg(long, env = "HTTPS_PROXY")]
    pub https_proxy: Option<String>,

    /// Hosts AWS calls reach without the proxy, comma-separated (`.internal,10.0.0.0/8`).
    #[arg(long, env = "NO_PROXY")]
    pub no_proxy: Option<String>,

    /// How often every KmsKey is checked against KMS, drift or not (e.g. 30s, 10m, 1h).
    /// Each object has its own slot in the interval (from its UID), so checks spread evenly.
    #[arg(long, env = "KMS_OPERATOR_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Shortest resync interval an object may ask for with the annotation
    /// `kms.boosterpack.io/resync-interval`; shorter values are raised to it. Each resync costs a
    /// few KMS reads per object, from quotas the account shares.
    #[arg(long, env = "KMS_OPERATOR_MIN_RESYNC_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub min_resync_interval: Duration,

    /// Protect every KmsKey from deletion unless it has the annotation
    /// `kms.boosterpack.io/deletion-protection: "false"`: deleting it then leaves it Terminating,
    /// its key untouched, until the annotation says otherwise.
    #[arg(long, env = "KMS_OPERATOR_DEFAULT_DELETION_PROTECTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub default_deletion_protection: bool,

    /// What deleting a KmsKey does to its key when the object's `spec.deletionPolicy` is absent:
    /// `Delete` (schedule the key's deletion) or `Retain` (keep the key, take the ownership
    /// tags off).
    #[arg(long, env = "KMS_OPERATOR_DEFAULT_DELETION_POLICY", default_value = "Delete", value_parser = parse_deletion_policy)]
    pub default_deletion_policy: DeletionPolicy,

    /// Namespaces whose KmsKeys may take over existing keys (`spec.adopt`), comma-separated;
    /// `*` for all. None by default: adoption reaches any key in the account that no cluster
    /// claims, so it is the cluster administrator's choice to give it.
    #[arg(long, env = "KMS_OPERATOR_ADOPT_NAMESPACES", value_delimiter = ',')]
    pub adopt_namespaces: Vec<String>,

    /// Honour `spec.exportTo`: write each such KmsKey's outputs into a ConfigMap in its
    /// namespace. Needs RBAC on ConfigMaps (get, create, patch, delete), which the chart grants
    /// only with `exportToConfigMaps: true`.
    #[arg(long, env = "KMS_OPERATOR_EXPORT_TO_CONFIG_MAPS", default_value_t = false, action = clap::ArgAction::Set)]
    pub export_to_config_maps: bool,

    /// Enforce the cluster's guardrails, the `KmsKeyPolicy` named `cluster` (watched; needs
    /// get, list and watch on kmskeypolicies). Without such an object nothing is enforced.
    #[arg(long, env = "KMS_OPERATOR_CLUSTER_POLICY", default_value_t = true, action = clap::ArgAction::Set)]
    pub cluster_policy: bool,

    /// Treat a missing `KmsKeyPolicy` named `cluster` as an error (KmsKeys wait,
    /// `AwaitingClusterPolicy`) instead of as "no guardrails": deleting the policy by mistake
    /// must not open the cluster. The chart sets it when it renders the policy.
    #[arg(long, env = "KMS_OPERATOR_REQUIRE_CLUSTER_POLICY", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_cluster_policy: bool,

    /// How often each key's last use is read (GetKeyLastUsage) for `status.lastUsage` and the
    /// `unusedDays` warning; never more often than `--resync-interval`. Days are what the
    /// warning counts, so an hour is plenty.
    #[arg(long, env = "KMS_OPERATOR_LAST_USAGE_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub last_usage_interval: Duration,

    /// How often a resync reads each key in full (policy, rotation, grants, aliases). The
    /// resyncs in between read only the key's description and tags, and the account's aliases
    /// once for all objects; a look that finds anything to change reads in full first. Any
    /// spec change, and any object not Ready, is read in full. No more than `--resync-interval`:
    /// every resync reads in full.
    #[arg(long, env = "KMS_OPERATOR_DEEP_RESYNC_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub deep_resync_interval: Duration,

    /// How many KmsKeys are reconciled at once in each of the two lanes: edits (a spec change,
    /// an object not Ready, a deletion) and resyncs of settled objects. Edits never wait for
    /// resyncs.
    #[arg(long, env = "KMS_OPERATOR_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Reconcile only the KmsKeys this label selector matches (`team=a`, `shard in (x,y)`,
    /// `!kms.boosterpack.io/shard`): run several operators, each with its own selector and
    /// `--lease-name`, to share a large cluster. The selectors must not overlap.
    #[arg(long, env = "KMS_OPERATOR_SELECTOR")]
    pub selector: Option<String>,

    /// Namespaces to watch, comma-separated. All namespaces when empty.
    #[arg(long, env = "KMS_OPERATOR_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Log format.
    #[arg(long, env = "KMS_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Name of this cluster, written in the ownership tag of every key. Give each cluster that
    /// shares an AWS account and Region its own name.
    #[arg(long, env = "KMS_OPERATOR_CLUSTER_NAME", default_value = "default", value_parser = parse_cluster_name)]
    pub cluster_name: String,

    /// Share of AWS's per-operation KMS request quotas the operator may use (0 < f <= 1); the
    /// rest is left to other software in the account.
    #[arg(long, env = "KMS_OPERATOR_KMS_QUOTA_FRACTION", default_value_t = 1.0, value_parser = parse_fraction)]
    pub kms_quota_fraction: f64,

    /// Per-operation rate limits that replace the quota-derived ones, in requests per second:
    /// `CreateKey=2,PutKeyPolicy=5`.
    #[arg(long, env = "KMS_OPERATOR_KMS_RATE_LIMITS", default_value = "", value_parser = crate::kms::parse_overrides)]
    pub kms_rate_limits: BTreeMap<String, f64>,

    /// Address of the HTTP endpoints /healthz, /readyz and /metrics.
    #[arg(long, env = "KMS_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Take a Lease before reconciling, so that only one of several replicas works at a time.
    #[arg(long, env = "KMS_OPERATOR_LEADER_ELECTION")]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "KMS_OPERATOR_LEASE_NAME", default_value = "kms-operator")]
    pub lease_name: String,

    /// Namespace of the leader-election Lease; by default the pod's namespace (POD_NAMESPACE)
    /// or the kubeconfig's.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err(format!("'{text}' is not a fraction above 0 and at most 1")),
    }
}

fn parse_deletion_policy(text: &str) -> Result<DeletionPolicy, String> {
    match text {
        "Delete" => Ok(DeletionPolicy::Delete),
        "Retain" => Ok(DeletionPolicy::Retain),
        _ => Err(format!("'{text}' is not a deletion policy; use Delete or Retain")),
    }
}

/// Whether KmsKeys in `namespace` may adopt, given `--adopt-namespaces`.
pub fn may_adopt(adopt_namespaces: &[String], namespace: &str) -> bool {
    adopt_namespaces
        .iter()
        .map(|allowed| allowed.trim())
        .any(|allowed| allowed == "*" || allowed == namespace)
}

fn parse_region(text: &str) -> Result<String, String> {
    let text = text.trim();
    match crate::reconcile::region::is_region_name(text) {
        true => Ok(text.to_owned()),
        false => Err(format!("'{text}' is not an AWS Region name (eu-west-1, us-gov-west-1, ...)")),
    }
}

/// `REGION=URL,...`: an endpoint URL per Region.
fn parse_regional_endpoints(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut endpoints = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (region, url) = pair.split_once('=').ok_or_else(|| format!("'{pair}' is not REGION=URL"))?;
        let region = parse_region(region)?;
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("the endpoint of {region}, '{url}', is not an http(s) URL"));
        }
        if endpoints.insert(region.clone(), url.to_owned()).is_some() {
            return Err(format!("{region} is given two endpoints"));
        }
    }
    Ok(endpoints)
}

/// A cluster name must be a valid KMS tag value that is not empty.
fn parse_cluster_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 256 {
        return Err("the cluster name must be 1-256 characters".to_owned());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_flags_have_defaults_and_namespaces_split_on_commas() {
        let cli = Cli::try_parse_from(["kms-operator", "run", "--namespaces", "a,b"]).unwrap();
        let Command::Run(args) = cli.command else { panic!("expected run") };
        assert_eq!(args.namespaces, vec!["a", "b"]);
        assert_eq!(args.resync_interval, Duration::from_secs(600));
        assert_eq!(args.min_resync_interval, Duration::from_secs(60));
        assert_eq!(args.concurrency, 4);
        assert_eq!(args.deep_resync_interval, Duration::from_secs(3600));
        assert!(!args.default_deletion_protection);
        assert_eq!(args.default_deletion_policy, DeletionPolicy::Delete);
        assert!(args.adopt_namespaces.is_empty());
        assert!(!args.export_to_config_maps);
        assert!(args.cluster_policy && !args.require_cluster_policy);
        assert_eq!(args.last_usage_interval, Duration::from_secs(3600));
        assert_eq!(args.cluster_name, "default");
        assert!(!args.leader_election);
        assert_eq!(args.kms_quota_fraction, 1.0);
        assert!(args.kms_rate_limits.is_empty());
        assert_eq!(args.http_addr.port(), 8080);
    }

    #[test]
    fn quota_flags_parse_and_refuse_nonsense() {
        let args = ["kms-operator", "run", "--kms-quota-fraction", "0.5", "--kms-rate-limits", "CreateKey=2"];
        let Command::Run(run) = Cli::try_parse_from(args).unwrap().command else { panic!() };
        assert_eq!(run.kms_quota_fraction, 0.5);
        assert_eq!(run.kms_rate_limits.get("CreateKey"), Some(&2.0));
        assert!(Cli::try_parse_from(["kms-operator", "run", "--kms-quota-fraction", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["kms-operator", "run", "--kms-rate-limits", "Nope=1"]).is_err());
    }

    #[test]
    fn deletion_policy_and_adoption_flags_parse() {
        let args = [
            "kms-operator",
            "run",
            "--default-deletion-policy",
            "Retain",
            "--adopt-namespaces",
            "team-a,team-b",
        ];
        let Command::Run(run) = Cli::try_parse_from(args).unwrap().command else { panic!() };
        assert_eq!(run.default_deletion_policy, DeletionPolicy::Retain);
        assert!(may_adopt(&run.adopt_namespaces, "team-b"));
        assert!(!may_adopt(&run.adopt_namespaces, "team-c"));
        assert!(may_adopt(&["*".to_owned()], "anything"));
        assert!(!may_adopt(&[], "team-a"));
        assert!(may_adopt(&["a".to_owned(), " b".to_owned()], "b"), "spaces after commas are forgiven");
        assert!(Cli::try_parse_from(["kms-operator", "run", "--default-deletion-policy", "retain"]).is_err());
    }

    #[test]
    fn regions_and_regional_endpoints_parse_and_refuse_nonsense() {
        let args = [
            "kms-operator",
            "run",
            "--allowed-regions",
            "eu-west-1,us-gov-west-1",
            "--regional-kms-endpoints",
            "eu-west-1=https://vpce-1.kms.eu-west-1.vpce.amazonaws.com",
        ];
        let Command::Run(run) = Cli::try_parse_from(args).unwrap().command else { panic!("expected run") };
        assert_eq!(run.allowed_regions, vec!["eu-west-1", "us-gov-west-1"]);
        assert_eq!(
            run.regional_kms_endpoints["eu-west-1"],
            "https://vpce-1.kms.eu-west-1.vpce.amazonaws.com"
        );
        assert!(run.regional_tagging_endpoints.is_empty());
        for bad in [
            ["--allowed-regions", "Europe"],
            ["--regional-kms-endpoints", "eu-west-1"],
            ["--regional-kms-endpoints", "eu-west-1=vpce.example"],
            ["--regional-kms-endpoints", "eu-west-1=https://a,eu-west-1=https://b"],
            ["--regional-tagging-endpoints", "mars-1=https://a"],
        ] {
            let args = ["kms-operator", "run", bad[0], bad[1]];
            let err = Cli::try_parse_from(args).expect_err(bad[1]).to_string();
            assert!(err.contains(bad[0]), "{err}");
        }
    }

    #[test]
    fn zero_concurrency_is_refused() {
        assert!(Cli::try_parse_from(["kms-operator", "run", "--concurrency", "0"]).is_err());
    }
}
