//! The results schema of a training run — what notebooks, book and paper read.
//!
//! A run directory holds:
//!
//! - `metrics.jsonl`: one JSON object per line, `kind` = `train` (every `log_interval` steps:
//!   step, tokens seen, loss, learning rate, gradient norm before clipping, tokens/s, elapsed
//!   seconds) or `eval` (per validation set: loss in nats/token, perplexity, bits per byte).
//! - `summary.json`: a [`Summary`] written when the run ends (config, parameter and FLOP counts,
//!   data and tokenizer hashes, tokens, wall time, CPU/GPU hours, final losses).
//! - `checkpoints/`: see [`checkpoint`](crate::train::checkpoint).

use crate::config::RunConfig;
use crate::eval::perplexity::EvalResult;
use crate::model::ModelConfig;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

pub const METRICS: &str = "metrics.jsonl";
pub const SUMMARY: &str = "summary.json";
pub const SCHEMA: &str = "synthlm-run/1";

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricLine {
    Train {
        step: u64,
        tokens: u64,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        tokens_per_s: f64,
        elapsed_s: f64,
    },
    Eval {
        step: u64,
        tokens: u64,
        set: String,
        loss: f64,
        ppl: f64,
        bpb: f64,
        eval_tokens: u64,
    },
}

/// Identity of the training data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataIdentity {
    pub dir: String,
    pub content_sha256: String,
    pub tokens: u64,
    pub documents: u64,
}

/// The end-of-run record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub synthlm_version: String,
    pub config: RunConfig,
    pub model: ModelConfig,
    pub params: usize,
    pub non_embedding_params: usize,
    pub train_flops_per_token: f64,
    pub tokenizer_sha256: String,
    pub train_data: DataIdentity,
    pub steps: u64,
    pub tokens_seen: u64,
    pub wall_s: f64,
    /// Wall hours x cores used, over every rank (CPU runs).
    pub cpu_core_hours: f64,
    /// Wall hours x GPUs (GPU runs).
    pub gpu_hours: f64,
    /// Data-parallel ranks (processes) that trained the run.
    #[serde(default = "one")]
    pub world_size: usize,
    pub device: String,
    pub threads: usize,
    /// The matmul kernels that trained it: the CPU's ([`crate::cpu::matmul_kernels`]) or the
    /// device's name; runs recorded before the field existed were all trained by `fma` builds.
    #[serde(default = "crate::cpu::kernels_before_recorded")]
    pub matmul: String,
    /// Mean training loss over the last logging interval.
    pub final_train_loss: f64,
    /// Last evaluation of each validation set.
    pub final_val: BTreeMap<String, EvalResult>,
    /// `completed`, or why it stopped.
    pub status: String,
}

/// Append-only writer for `metrics.jsonl` (each line flushed, so a crash loses at most one).
pub struct MetricsWriter {
    /// `None`: a non-root rank of a data-parallel job, which counts lines but writes nothing.
    file: Option<std::fs::File>,
    pub lines: u64,
}

impl MetricsWriter {
    /// Open for appending, first cutting the file back to its first `keep_lines` lines (what a
    /// checkpoint had seen), so a resumed run's file equals an uninterrupted run's.
    pub fn open(path: &Path, keep_lines: u64) -> Result<Self> {
        let mut kept = Vec::new();
        if path.exists() {
            let f = std::io::BufReader::new(std::fs::File::open(path)?);
            for line in f.lines().take(keep_lines as usize) {
                kept.push(line?);
            }
        }
        let body: String = kept.iter().map(|l| format!("{l}\n")).collect();
        crate::io::write_bytes(path, body.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(MetricsWriter {
            file: Some(file),
            lines: kept.len() as u64,
        })
    }

    /// A writer that writes nothing (a rank other than 0), starting at line `lines`.
    pub fn discard(lines: u64) -> Self {
        MetricsWriter { file: None, lines }
    }

    pub fn write(&mut self, line: &MetricLine) -> Result<()> {
        if let Some(file) = self.file.as_mut() {
            let mut s = serde_json::to_string(line)?;
            s.push('\n');
            file.write_all(s.as_bytes())?;
            file.flush()?;
        }
        self.lines += 1;
        Ok(())
    }
}

/// Read a run's metrics.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<MetricLine>> {
    let path = run_dir.join(METRICS);
    let f = std::io::BufReader::new(
        std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?,
    );
    f.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(&l?).with_context(|| format!("{}: line {}", path.display(), i + 1))
        })
        .collect()
}

/// Read a run's summary.
fn one() -> usize {
    1
}

pub fn read_summary(run_dir: &Path) -> Result<Summary> {
    crate::io::read_json(&run_dir.join(SUMMARY))
}
