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
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let moto = Moto { url: format!("http://127.0.0.1:{port}"), child };
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
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url(&self.url)
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
