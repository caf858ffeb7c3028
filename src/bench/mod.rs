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
    let out = std::process::Command::new(exe)
        .args(["bench", worker])
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
