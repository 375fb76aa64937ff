//! The facts about this machine that a benchmark figure depends on, read from /proc.

use std::process::Command;

/// Cores, memory and CPU model, for the report's header.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
}

impl Machine {
    pub fn read() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".to_owned());
        Machine { cores, memory_gib: memory_kib / 1024.0 / 1024.0, cpu_model }
    }
}

/// The value after `key:` on the first line that starts with `key`.
fn field(text: &str, key: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

/// Today's date and time in UTC, as `date -u` prints it in ISO form.
pub fn now_utc() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}
