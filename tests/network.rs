//! The AWS clients on an enterprise network: KMS reached over TLS through a terminating proxy
//! whose certificate a CA of the test's own signs (trusted only with `--ca-bundle`), and
//! through an HTTPS proxy (`--https-proxy`, bypassed with `--no-proxy`). moto answers behind
//! both; and a Region's own endpoint (`--regional-kms-endpoints`, as for a VPC interface
//! endpoint); and STS, where KmsAccount roles are assumed, through the same private CA. The
//! clients are built by the operator's own `ClientFactory`, from parsed `run` flags.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use kms_operator::cli::{Cli, Command, RunArgs};
use kms_operator::kms::{AwsKms, ClientFactory, KmsPort};
use kms_operator::reconcile::account::{AssumedRole, Identity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use support::moto::Moto;

/// A CA made for this test, and a certificate for `localhost` it signed.
struct TestPki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn make_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "kms-operator test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server_chain: vec![server_cert.der().clone()],
        server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
    }
}

/// Terminates TLS on a loopback port and passes the plain bytes on to `upstream` (moto).
async fn tls_terminator(pki: &TestPki, upstream: String) -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake: nothing to pass on.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut moto) = TcpStream::connect(&upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut moto).await;
            });
        }
    });
    port
}

/// An HTTP proxy that serves CONNECT tunnels, counting them.
async fn connect_proxy(tunnels: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let tunnels = tunnels.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let Some(target) = head.strip_prefix("CONNECT ").and_then(|rest| rest.split(' ').next())
                else {
                    let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n").await;
                    return;
                };
                let Ok(mut server) = TcpStream::connect(target).await else { return };
                tunnels.fetch_add(1, Ordering::SeqCst);
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    port
}

/// `run` flags for KMS at `endpoint`, with neither a CA bundle nor a proxy from the
/// environment (the machine running the test may set AWS_CA_BUNDLE or HTTPS_PROXY).
fn run_args(endpoint: &str) -> RunArgs {
    let argv = ["kms-operator", "run", "--region", "us-east-1", "--kms-endpoint", endpoint];
    let Command::Run(args) =
        Cli::try_parse_from(argv.iter().chain(&["--tagging-endpoint", endpoint])).unwrap().command
    else {
        panic!("run")
    };
    RunArgs { ca_bundle: None, https_proxy: None, no_proxy: None, ..*args }
}

async fn kms(args: &RunArgs) -> AwsKms {
    kms_in(args, "us-east-1").await
}

async fn kms_in(args: &RunArgs, region: &str) -> AwsKms {
    let factory = ClientFactory::from_args(args).await.expect("the network settings are valid");
    AwsKms::new(factory.clients(region))
}

#[tokio::test]
async fn kms_is_reached_through_a_private_ca_an_https_proxy_and_a_regions_own_endpoint() {
    // SAFETY: set before this test (the only one in its binary) starts any other thread that
    // could read the environment; the SDK's default chain reads the credentials from it.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    }
    let moto = Moto::start();
    let upstream = moto.url.trim_start_matches("http://").to_owned();
    let pki = make_pki();
    let tls_port = tls_terminator(&pki, upstream).await;
    let endpoint = format!("https://localhost:{tls_port}");
    let dir = std::env::temp_dir().join(format!("kms-operator-network-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    // Without the CA, the terminating proxy's certificate is not trusted.
    let untrusted = kms(&run_args(&endpoint)).await.list_key_ids().await;
    assert!(untrusted.is_err(), "a certificate from an unknown CA must be refused: {untrusted:?}");

    // With --ca-bundle, KMS answers, reads and writes.
    let trusted = RunArgs { ca_bundle: Some(ca_file.clone()), ..run_args(&endpoint) };
    let port = kms(&trusted).await;
    let key = port.create_key(&new_key()).await.expect("CreateKey through the private CA");
    assert!(port.list_key_ids().await.unwrap().contains(&key.key_id));

    // Through the HTTPS proxy: every connection is a CONNECT tunnel; NO_PROXY bypasses it.
    let tunnels = Arc::new(AtomicUsize::new(0));
    let proxy = format!("http://127.0.0.1:{}", connect_proxy(tunnels.clone()).await);
    let proxied = RunArgs { https_proxy: Some(proxy.clone()), ..trusted.clone() };
    let described = kms(&proxied).await.describe_key(&key.key_id).await.unwrap();
    assert_eq!(described.map(|k| k.key_id), Some(key.key_id.clone()));
    let through = tunnels.load(Ordering::SeqCst);
    assert!(through >= 1, "the call went through the proxy");
    let bypassed = RunArgs { no_proxy: Some("localhost".to_owned()), ..proxied };
    assert!(kms(&bypassed).await.describe_key(&key.key_id).await.unwrap().is_some());
    assert_eq!(tunnels.load(Ordering::SeqCst), through, "localhost is reached without the proxy");

    // A Region's own endpoint wins over the one for every Region: here every Region but
    // eu-west-1 points at a closed port.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let regional = RunArgs {
        regional_kms_endpoints: [("eu-west-1".to_owned(), moto.url.clone())].into(),
        ..run_args(&closed)
    };
    let eu = kms_in(&regional, "eu-west-1").await.create_key(&new_key()).await.expect("eu-west-1 answers");
    assert!(eu.arn.starts_with("arn:aws:kms:eu-west-1:"), "{}", eu.arn);
    assert!(
        kms_in(&regional, "us-east-1").await.list_key_ids().await.is_err(),
        "us-east-1 is the closed port"
    );

    // STS is reached like KMS: a role assumed through the private CA only with --ca-bundle,
    // and the keys made with its credentials are in its account.
    let role = Identity::Role(AssumedRole {
        role_arn: "arn:aws:iam::111111111111:role/kms-operator".to_owned(),
        external_id: Some("ext-1".to_owned()),
        session_tags: [("team".to_owned(), "a".to_owned())].into(),
        account_id: "111111111111".to_owned(),
    });
    let as_role = |args: RunArgs| {
        let role = role.clone();
        async move {
            let factory = ClientFactory::from_args(&args).await.expect("valid");
            AwsKms::new(factory.clients_as("us-east-1", &role))
        }
    };
    let sts_untrusted = RunArgs { sts_endpoint: Some(endpoint.clone()), ..run_args(&moto.url) };
    let refused = as_role(sts_untrusted).await.list_key_ids().await;
    assert!(refused.is_err(), "STS behind a certificate from an unknown CA must be refused: {refused:?}");
    let sts_trusted = RunArgs {
        sts_endpoint: Some(endpoint.clone()),
        ca_bundle: Some(ca_file.clone()),
        ..run_args(&moto.url)
    };
    let made =
        as_role(sts_trusted).await.create_key(&new_key()).await.expect("AssumeRole through the private CA");
    assert!(made.arn.starts_with("arn:aws:kms:us-east-1:111111111111:key/"), "{}", made.arn);

    remove(&dir);
}

fn new_key() -> kms_operator::kms::NewKey {
    kms_operator::kms::NewKey {
        description: "through the network".to_owned(),
        policy: None,
        tags: Default::default(),
        multi_region: false,
        key_spec: "SYMMETRIC_DEFAULT".to_owned(),
        key_usage: "ENCRYPT_DECRYPT".to_owned(),
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
