//! An operator under measurement: a child process whose memory and CPU time are read from
//! /proc, killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

pub struct Measured {
    child: Child,
    /// When the process was spawned.
    pub started: Instant,
}

/// Resident memory and CPU time of a process at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// VmHWM: the highest resident set size so far, MiB.
    pub peak_rss_mib: f64,
    /// VmRSS: the resident set size now, MiB.
    pub rss_mib: f64,
    /// User plus system CPU time so far, seconds.
    pub cpu_seconds: f64,
}

impl Measured {
    /// Spawns `command` with its output appended to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Self {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        command.stdin(Stdio::null()).stdout(file.try_clone().unwrap()).stderr(file);
        let started = Instant::now();
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Measured { child, started }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Memory and CPU time now, from /proc/PID/status and /proc/PID/stat.
    pub fn usage(&self) -> Usage {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| -> f64 {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap_or("");
            line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The fields after the command name (which may hold spaces) start after its ')'.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
        let ticks = |i: usize| -> f64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
        Usage {
            peak_rss_mib: kib("VmHWM:") / 1024.0,
            rss_mib: kib("VmRSS:") / 1024.0,
            cpu_seconds: (ticks(11) + ticks(12)) / clock_ticks_per_second(),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after five seconds.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..50 {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kernel's clock ticks per second for /proc times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output();
        out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(100.0)
    })
}
