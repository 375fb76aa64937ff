//! A moto server, started per test and killed when dropped (also when the test panics).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub url: String,
    child: Child,
    recording: PathBuf,
}

/// Where `make test` installs moto; `MOTO_SERVER` overrides.
fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server")
}

impl Moto {
    pub fn start() -> Self {
        let binary = moto_binary();
        assert!(
            binary.exists(),
            "moto_server not found at {}: run `make test` (it installs moto into .venv from \
             hack/requirements-moto.txt), or set MOTO_SERVER to a moto_server binary",
            binary.display()
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let recording = std::env::temp_dir().join(format!("moto-recording-{port}.jsonl"));
        // moto's own Python, running moto's server with the replica fixes of hack/moto_server.py.
        let python = binary.with_file_name("python3");
        assert!(
            python.exists(),
            "no python3 beside {}: MOTO_SERVER must be the moto_server of a virtualenv (`make moto` makes one)",
            binary.display()
        );
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hack/moto_server.py");
        let child = Command::new(&python)
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {}: {e}", python.display(), launcher.display()));
        let moto = Moto { url: format!("http://127.0.0.1:{port}"), child, recording };
        moto.wait_ready();
        moto
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = self.url.trim_start_matches("http://").to_owned();
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not start listening on {addr} within 30 s");
    }

    /// An SDK client for moto, as the operator builds it but with static test credentials.
    pub fn client(&self) -> aws_sdk_kms::Client {
        client_for(&self.url)
    }

    /// The operator's clients (KMS and the Tagging API) for moto.
    pub fn clients(&self) -> kms_operator::kms::AwsClients {
        clients_for(&self.url)
    }
}

impl Moto {
    /// Wipes every key, alias and grant (`POST /moto-api/reset`).
    pub fn reset(&self) {
        self.call("POST", "/moto-api/reset");
    }

    /// Starts logging every request from now on, dropping what was logged before.
    pub fn start_recording(&self) {
        self.call("POST", "/moto-api/recorder/reset-recording");
        self.call("POST", "/moto-api/recorder/start-recording");
    }

    /// The KMS operations (`X-Amz-Target` without `TrentService.`) requested since
    /// `start_recording`, in order.
    pub fn recorded_operations(&self) -> Vec<String> {
        let log = self.call("GET", "/moto-api/recorder/download-recording");
        (log.lines().filter(|l| !l.trim().is_empty()))
            .filter_map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).ok()?;
                let headers = entry["headers"].as_object()?;
                let target = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))?.1;
                Some(target.as_str()?.trim_start_matches("TrentService.").to_owned())
            })
            .collect()
    }

    /// A plain HTTP/1.1 call to moto's own API; returns the body.
    fn call(&self, method: &str, path: &str) -> String {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"), "{response}");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            return dechunk(body);
        }
        body.to_owned()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// An SDK client for a KMS endpoint at `url` (moto, or a proxy in front of it), with static test
/// credentials and a 1 s attempt timeout.
pub fn client_for(url: &str) -> aws_sdk_kms::Client {
    client_in(url, REGION)
}

/// The same, in `region` (moto keeps each Region's keys apart, by the request's SigV4 scope).
pub fn client_in(url: &str, region: &str) -> aws_sdk_kms::Client {
    let timeouts = aws_sdk_kms::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_secs(1))
        .build();
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .timeout_config(timeouts)
        .endpoint_url(url)
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// The operator's clients (KMS and the Resource Groups Tagging API) for an endpoint at `url`
/// that serves both (moto, or a proxy in front of it).
pub fn clients_for(url: &str) -> kms_operator::kms::AwsClients {
    clients_in(url, REGION)
}

/// The same, in `region`.
pub fn clients_in(url: &str, region: &str) -> kms_operator::kms::AwsClients {
    let config = aws_sdk_resourcegroupstagging::Config::builder()
        .behavior_version(aws_sdk_resourcegroupstagging::config::BehaviorVersion::latest())
        .region(aws_sdk_resourcegroupstagging::config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_resourcegroupstagging::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(url)
        .build();
    kms_operator::kms::AwsClients {
        kms: client_in(url, region),
        tagging: aws_sdk_resourcegroupstagging::Client::from_conf(config),
    }
}

/// STS AssumeRole at `url` (moto, or the proxy in front of it), as the tests' own identity:
/// the answer's head and body. moto does not check signatures.
pub async fn assume_role_raw(url: &str, role_arn: &str, external_id: Option<&str>) -> String {
    use tokio::io::AsyncWriteExt;
    let encode = |text: &str| text.replace(':', "%3A").replace('/', "%2F");
    let mut body =
        format!("Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=test", encode(role_arn));
    if let Some(id) = external_id {
        body += &format!("&ExternalId={}", encode(id));
    }
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = super::strict::upstream::read_message(&mut stream).await.expect("an answer");
    format!("{}\n{}", answer.head, String::from_utf8_lossy(&answer.body))
}

/// A KMS client at `url` in `region` with the credentials of `role_arn`, assumed at `url`;
/// `Err` with STS's answer when it refuses.
pub async fn client_as_role(
    url: &str,
    region: &str,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<aws_sdk_kms::Client, String> {
    let answer = assume_role_raw(url, role_arn, external_id).await;
    let field = |name: &str| -> Option<String> {
        let start = answer.find(&format!("<{name}>"))? + name.len() + 2;
        Some(answer[start..start + answer[start..].find('<')?].to_owned())
    };
    let (Some(key), Some(secret), Some(token)) =
        (field("AccessKeyId"), field("SecretAccessKey"), field("SessionToken"))
    else {
        return Err(answer);
    };
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(key, secret, Some(token), None, "test"))
        .endpoint_url(url)
        .build();
    Ok(aws_sdk_kms::Client::from_conf(config))
}
