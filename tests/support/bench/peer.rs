//! The peer: the ACK kms-controller, built once from the source snapshots in a peers folder
//! (`../shared/peers/`, with its `build-ack.sh`) into the cache, and reused after that.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::subject::Subject;

/// Where the built controller and its CRDs are kept between runs.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    base.join("kms-operator/ack-v1.4.1")
}

/// The peer built from `source` (building it first if the cache lacks it), or why it cannot run.
pub fn locate(source: Option<&Path>) -> Result<Subject, String> {
    let Some(source) = source else {
        return Err("no peer source given (BENCH_PEER= / --peer): kms-operator only".into());
    };
    let script = source.join("build-ack.sh");
    if !script.is_file() {
        return Err(format!(
            "peer source absent: {} has no build-ack.sh (the ACK kms-controller snapshot): kms-operator only",
            source.display()
        ));
    }
    let out = cache_dir();
    let binary = out.join("ack-kms-controller");
    if !binary.is_file() {
        eprintln!(
            "==> building the ACK kms-controller into {} (about 8 minutes on 2 cores, once)",
            out.display()
        );
        let status = Command::new("bash").arg(&script).arg(&out).status().map_err(|e| e.to_string())?;
        if !status.success() || !binary.is_file() {
            return Err(format!("{} {} failed: kms-operator only", script.display(), out.display()));
        }
    }
    Ok(Subject::Ack { binary, crds: out.join("crds") })
}
