//! How the AWS clients reach AWS from an enterprise network: a CA bundle to trust besides the
//! system's (a TLS-inspecting egress proxy, a private endpoint's certificate) and an HTTPS
//! proxy with its bypass list. aws-sdk-rust reads neither `AWS_CA_BUNDLE` nor `HTTPS_PROXY`
//! by itself; the `run` flags (which take those variables as defaults) do. Both apply to every
//! AWS call: KMS, the Resource Groups Tagging API and the credential providers' (STS, for
//! IRSA). The proxy carries HTTPS requests only (CONNECT tunnels), as `HTTPS_PROXY` means, so
//! the plain-HTTP instance metadata service and EKS Pod Identity agent are reached directly.

use std::path::{Path, PathBuf};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// What the network needs beyond the SDK's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    /// A PEM file of CA certificates trusted besides the system's.
    pub ca_bundle: Option<PathBuf>,
    /// The proxy for HTTPS (and HTTP) requests, `http://host:port`.
    pub https_proxy: Option<String>,
    /// Hosts reached without the proxy, comma-separated (`NO_PROXY` syntax).
    pub no_proxy: Option<String>,
}

/// A setting the operator cannot start with; the message names the flag.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("--ca-bundle {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("--https-proxy {url}: {reason}")]
    Proxy { url: String, reason: String },
}

/// The HTTP client for AWS calls, or `None` when the SDK's default does (no bundle, no proxy).
pub fn http_client(network: &Network) -> Result<Option<SharedHttpClient>, NetworkError> {
    if network.ca_bundle.is_none() && network.https_proxy.is_none() {
        return Ok(None);
    }
    let mut trust = TrustStore::default();
    if let Some(path) = &network.ca_bundle {
        trust = trust.with_pem_certificate(ca_bundle(path)?);
    }
    let context = TlsContext::builder().with_trust_store(trust).build().map_err(|err| {
        let path = network.ca_bundle.as_deref().map(Path::display).map(|p| p.to_string()).unwrap_or_default();
        NetworkError::CaBundle { path, reason: err.to_string() }
    })?;
    let proxy = match &network.https_proxy {
        None => ProxyConfig::disabled(),
        Some(url) => {
            let config = ProxyConfig::https(url.as_str())
                .map_err(|err| NetworkError::Proxy { url: url.clone(), reason: err.to_string() })?;
            match &network.no_proxy {
                Some(rules) => config.no_proxy(rules),
                None => config,
            }
        }
    };
    let provider = tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc);
    let client = Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = Connector::builder()
            .tls_provider(provider.clone())
            .tls_context(context.clone())
            .proxy_config(proxy.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.build()
    });
    Ok(Some(client))
}

/// The bundle's PEM text, refused when it holds no certificate.
fn ca_bundle(path: &Path) -> Result<Vec<u8>, NetworkError> {
    let failed = |reason: String| NetworkError::CaBundle { path: path.display().to_string(), reason };
    let pem = std::fs::read(path).map_err(|err| failed(err.to_string()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(failed("holds no PEM certificate".to_owned()));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_network_keeps_the_sdks_client() {
        assert!(http_client(&Network::default()).unwrap().is_none());
    }

    #[test]
    fn a_bad_bundle_or_proxy_is_refused_naming_the_flag() {
        let missing = Network { ca_bundle: Some("/nonexistent/ca.pem".into()), ..Network::default() };
        let err = http_client(&missing).unwrap_err().to_string();
        assert!(err.starts_with("--ca-bundle /nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("kms-operator-network-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let err = http_client(&Network { ca_bundle: Some(not_pem), ..Network::default() }).unwrap_err();
        assert!(err.to_string().contains("holds no PEM certificate"), "{err}");
        let proxy = Network { https_proxy: Some("not a url".into()), ..Network::default() };
        assert!(http_client(&proxy).unwrap_err().to_string().starts_with("--https-proxy not a url"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
