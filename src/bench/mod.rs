//! Benchmarks that print figures (never timed tests). Each measurement runs in a fresh child
//! process so its peak memory is its own.

pub mod data;
pub mod train;

use anyhow::{Context, Result};
use std::path::Path;

/// Run `synthlm bench WORKER ARGS...` in a child process and parse the JSON line it prints.
pub fn run_worker<T: serde::de::DeserializeOwned>(
    exe: &Path,
    worker: &str,
    args: &[String],
) -> Result<T> {
    let mut all = vec!["bench".to_string(), worker.to_string()];
    all.extend_from_slice(args);
    run_json_child(exe, &all)
}

/// Run `EXE ARGS...` in a fresh process (so its peak memory is its own) and parse the JSON it
/// prints on standard output.
pub fn run_json_child<T: serde::de::DeserializeOwned>(exe: &Path, args: &[String]) -> Result<T> {
    let out = std::process::Command::new(exe)
        .args(args)
        .output()
        .context("starting worker")?;
    anyhow::ensure!(
        out.status.success(),
        "worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout)?;
    serde_json::from_str(line.trim()).context("parsing worker output")
}
