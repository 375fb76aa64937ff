//! The real parts an end-to-end run needs: a local control plane (hack/controlplane.sh), a
//! moto server, and the operator binary as a child process. Each is stopped when dropped,
//! including when a scenario panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct ControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

fn hack(script: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(ROOT).join("hack").join(script));
    cmd
}

impl ControlPlane {
    pub fn start(dir: PathBuf) -> Self {
        eprintln!("==> starting etcd and kube-apiserver (hack/controlplane.sh start)");
        let status = hack("controlplane.sh").arg("start").arg(&dir).status().expect("bash runs");
        assert!(
            status.success(),
            "the local control plane did not start; see the logs in {} (binaries are built by \
             hack/build-controlplane.sh, which `make test` runs first)",
            dir.display()
        );
        let out = Command::new("bash")
            .args(["-c", "source \"$1/hack/lib.sh\" && kms_cp_binary_path kubectl", "_", ROOT])
            .output()
            .expect("bash runs");
        let kubectl = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        ControlPlane { kubeconfig: dir.join("kubeconfig"), dir, kubectl }
    }

    /// `kubectl ARGS`, with `stdin` piped in when given.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// `kubectl ARGS` that must succeed; returns its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args, None);
        assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        eprintln!("==> stopping the control plane");
        let _ = hack("controlplane.sh").arg("stop").arg(&self.dir).status();
    }
}

/// The operator binary under test, run as a user would run it.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
    /// Where its /healthz, /readyz and /metrics are served.
    pub http: String,
}

impl Operator {
    pub fn start(cp: &ControlPlane, kms_url: &str, log: PathBuf, extra: &[&str]) -> Self {
        Self::start_as(&cp.kubeconfig, kms_url, log, extra)
    }

    /// Runs the operator with the identity of `kubeconfig`.
    pub fn start_as(kubeconfig: &Path, kms_url: &str, log: PathBuf, extra: &[&str]) -> Self {
        // Appended, not truncated: the shared operator is restarted by many scenarios, and the
        // log of a failed one must survive the restarts after it.
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let http = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_kms-operator"))
            .args(["run", "--region", "us-east-1"])
            // The standard variable, not --kms-endpoint: the run proves the SDK honours it.
            .env("AWS_ENDPOINT_URL_KMS", kms_url)
            .env("AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API", kms_url)
            .args(["--http-addr", &http, "--last-usage-interval", "15s"])
            // A scenario that plays another cluster names it.
            .args(if extra.contains(&"--cluster-name") { &[][..] } else { &["--cluster-name", "e2e"][..] })
            // A scenario that sets its own resync interval (or wants the default) says so.
            .args(if extra.iter().any(|a| a.starts_with("--resync-interval")) {
                &[][..]
            } else {
                &["--resync-interval", "3s"][..]
            })
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("RUST_LOG", "info,kms_operator=debug")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the operator binary starts");
        Operator { child, log, http }
    }

    /// Peak and current resident memory, as /proc reports them.
    pub fn memory(&self) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let pick = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .unwrap_or(key)
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        };
        format!("peak {} , now {}", pick("VmHWM:"), pick("VmRSS:"))
    }

    /// Sends SIGTERM and waits up to `grace` for the process to exit; its exit status.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The sum of every sample of the metric whose lines start with `series` (a name, or a name
    /// and `{` for a labelled family), as this operator's /metrics shows it now.
    pub fn metric_sum(&self, series: &str) -> u64 {
        let (_, metrics) = http_get(&self.http, "/metrics");
        (metrics.lines())
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `GET path` on `addr`: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return (0, String::new()) };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}
