//! The GPU trainer's page: what one run of `scripts/gpu-check.sh` on a GPU machine showed,
//! from the files it brought back (committed under `data/results/gpu/NAME/`):
//!
//! - `test-cuda.log`: the `cuda` feature's tests (tests/cuda.rs) as run there;
//! - `loss/{cpu-f32,gpu-f32,gpu-bf16}/`: the same gpt2-small config trained 40 steps on the CPU
//!   (here) and on the GPU in f32 and bf16, each a run folder's metrics and summary;
//! - `before/` and `after/`: `synthlm bench train --json` rows before and after a change of the
//!   device path ([`crate::model::device_ops`]), the same cases and binary otherwise;
//! - `nanogpt.jsonl`: scripts/bench_nanogpt.py's rows (PyTorch on the same shape).

use super::tables::col;
use super::{Block, Page, Report};
use crate::bench::train::TrainMeasurement;
use crate::train::metrics::{read_metrics, read_summary, MetricLine};
use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where GPU results live; each run is a folder, the newest (by name) is reported.
pub const DIR: &str = "data/results/gpu";

/// The planner's RTX 4090, its utilisation's source stating what the newest committed GPU
/// results measured (the planner's 40% is a PyTorch-class trainer's; synthlm's own is far lower).
pub fn rtx4090(root: &Path) -> crate::budget::Gpu {
    let mut gpu = crate::budget::Gpu::rtx4090();
    let measured = latest(root)
        .ok()
        .flatten()
        .and_then(|d| GpuResults::load(&d).ok().map(|r| (d, r)));
    if let Some((dir, r)) = measured {
        let ours = r
            .after
            .iter()
            .find(|m| same_shape_as_torch(m) && !m.checkpointing)
            .and_then(|m| m.mfu())
            .unwrap_or(f64::NAN);
        let best = r
            .after
            .iter()
            .filter(|m| !m.checkpointing)
            .filter_map(|m| m.mfu())
            .fold(0f64, f64::max);
        if let (_, Some(c)) = torch_eager_and_compiled(&r) {
            let source = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
            gpu.mfu_source = format!(
                "assumed, and what a PyTorch-class trainer reaches: on an {} nanoGPT's model with torch.compile measured {:.1}% on gpt2-small, while synthlm's own candle trainer measured {:.1}% on the same shape and at most {:.1}% on the larger students ({source}), so with synthlm's trainer as it stands every GPU-hour here would be about {:.0} to {:.0} times as many",
                r.gpu,
                100.0 * c.mfu,
                100.0 * ours,
                100.0 * best,
                gpu.mfu / best.max(1e-9),
                gpu.mfu / ours.max(1e-9)
            );
        }
    }
    gpu
}

/// One row of scripts/bench_nanogpt.py.
#[derive(Debug, Deserialize)]
pub struct TorchRow {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub tokens_per_s: f64,
    pub step_ms: f64,
    pub mfu: f64,
    pub peak_memory_mb: f64,
    pub batch: usize,
    pub seq: usize,
}

/// Everything one GPU check brought back.
pub struct GpuResults {
    pub dir: PathBuf,
    /// The GPU's name, and nvidia-smi's line (name, driver, memory).
    pub gpu: String,
    pub gpu_detail: String,
    pub before: Vec<TrainMeasurement>,
    pub after: Vec<TrainMeasurement>,
    pub torch: Vec<TorchRow>,
    /// (run name, per-step train losses, final validation loss)
    pub loss: Vec<(String, Vec<f64>, f64)>,
    /// The loss runs' config in words, their validation set's name and their vocabulary.
    pub loss_setup: String,
    pub loss_val: String,
    pub loss_vocab: usize,
    /// (passed, failed) and each test's name with its outcome
    pub tests: (usize, usize),
    pub test_names: Vec<(String, bool)>,
    /// transformers' largest logit difference from synthlm's, as the test printed it
    pub transformers_diff: Option<f64>,
}

/// The newest results folder under `root/DIR`, if any.
pub fn latest(root: &Path) -> Result<Option<PathBuf>> {
    let dir = root.join(DIR);
    if !dir.exists() {
        return Ok(None);
    }
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    Ok(runs.pop())
}

fn bench_rows(p: &Path) -> Result<Vec<TrainMeasurement>> {
    crate::io::read_json(p).with_context(|| format!("reading {}", p.display()))
}

impl GpuResults {
    pub fn load(dir: &Path) -> Result<GpuResults> {
        let gpu_txt = std::fs::read_to_string(dir.join("gpu.txt"))?;
        let detail = gpu_txt.lines().nth(1).unwrap_or("").trim().to_string();
        let gpu = detail.split(',').next().unwrap_or("").trim().to_string();
        let torch = std::fs::read_to_string(dir.join("nanogpt.jsonl"))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Ok(serde_json::from_str(l)?))
            .collect::<Result<Vec<TorchRow>>>()?;
        let mut loss = Vec::new();
        let first = read_summary(&dir.join("loss/cpu-f32"))?;
        let t = &first.config.train;
        let loss_setup = format!(
            "{} (vocabulary {}, {} steps of {} x {} tokens, seed {})",
            first.config.model.preset.clone().unwrap_or_default(),
            first.model.vocab_size,
            t.max_steps,
            t.batch_size,
            t.seq_len,
            t.seed
        );
        let loss_val = first.final_val.keys().next().cloned().unwrap_or_default();
        for name in ["cpu-f32", "gpu-f32", "gpu-bf16"] {
            let run = dir.join("loss").join(name);
            let steps = read_metrics(&run)?
                .into_iter()
                .filter_map(|l| match l {
                    MetricLine::Train { loss, .. } => Some(loss),
                    _ => None,
                })
                .collect();
            let s = read_summary(&run)?;
            let val = s.final_val.values().next().map_or(f64::NAN, |r| r.loss);
            loss.push((name.to_string(), steps, val));
        }
        let log = std::fs::read_to_string(dir.join("test-cuda.log"))?;
        let (tests, test_names, transformers_diff) = parse_test_log(&log);
        Ok(GpuResults {
            dir: dir.to_path_buf(),
            gpu,
            gpu_detail: detail,
            before: bench_rows(&dir.join("before/bench-mfu.json"))?
                .into_iter()
                .chain(bench_rows(&dir.join("before/bench-memory.json"))?)
                .collect(),
            after: bench_rows(&dir.join("after/bench-mfu.json"))?
                .into_iter()
                .chain(bench_rows(&dir.join("after/bench-memory.json"))?)
                .collect(),
            torch,
            loss,
            loss_setup,
            loss_val,
            loss_vocab: first.model.vocab_size,
            tests,
            test_names,
            transformers_diff,
        })
    }
}

/// What a libtest log says: (passed, failed), each test's outcome, and transformers' logit
/// difference as check_hf_export.py printed it.
type TestLog = ((usize, usize), Vec<(String, bool)>, Option<f64>);

/// Reads a libtest log (see [`TestLog`]).
fn parse_test_log(log: &str) -> TestLog {
    let mut names = Vec::new();
    let mut counts = (0, 0);
    let mut diff = None;
    let mut current: Option<String> = None;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, tail)) = rest.split_once(" ... ") {
                current = Some(name.to_string());
                if let Some(ok) = outcome(tail) {
                    names.push((name.to_string(), ok));
                    current = None;
                }
                continue;
            }
            if let Some(r) = rest.strip_prefix("result: ") {
                let num = |w: &str| {
                    r.split(';')
                        .find_map(|p| p.trim().strip_suffix(w))
                        .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
                        .unwrap_or(0)
                };
                counts = (num(" passed"), num(" failed"));
            }
        }
        if let Some(v) = line.strip_prefix("transformers GPT2LMHeadModel: max |logit difference| ")
        {
            diff = v.trim().parse().ok();
        }
        if let (Some(name), Some(ok)) = (current.as_ref(), outcome(line.trim())) {
            names.push((name.clone(), ok));
            current = None;
        }
    }
    (counts, names, diff)
}

fn outcome(s: &str) -> Option<bool> {
    match s.trim() {
        "ok" => Some(true),
        "FAILED" => Some(false),
        _ => None,
    }
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The page (book) and its tables and macros (paper).
pub fn report(r: &GpuResults, source: &str) -> Result<Report> {
    let mut b = vec![Block::Text(format!(
        "Calls of `scripts/gpu-check.sh` on lent GPU machines, a fresh machine each call (nvidia-smi: {}). The numbers below are read from the files they brought back, committed in `{source}` (its README lists the calls and which gave which file), except the CPU half of the loss comparison, run here, and the planner's column, the count this version of `synthlm budget` makes. The binaries were built here with `--features nccl` and carried there. CI never has a GPU: these checks run only where one is lent.",
        r.gpu_detail
    ))];
    b.push(Block::Heading(3, "Correctness".into()));
    b.extend(correctness(r)?);
    b.push(Block::Heading(3, "Speed against PyTorch".into()));
    b.extend(speed(r)?);
    b.push(Block::Heading(3, "Memory against the planner".into()));
    b.extend(memory(r)?);
    Ok(Report {
        experiment: "gpu".into(),
        source: source.into(),
        pages: vec![Page {
            name: "gpu".into(),
            blocks: b,
        }],
    })
}

fn correctness(r: &GpuResults) -> Result<Vec<Block>> {
    let (passed, failed) = r.tests;
    let mut items: Vec<String> = r
        .test_names
        .iter()
        .map(|(n, ok)| format!("`{n}`: {}", if *ok { "passed" } else { "FAILED" }))
        .collect();
    if let Some(d) = r.transformers_diff {
        items.push(format!(
            "transformers' `GPT2LMHeadModel`, loading the export of a GPU-trained student, gives synthlm's logits to a largest difference of {d:.1e} (the test's bound is 1e-4)."
        ));
    }
    let cpu = &r.loss[0];
    let worst = |i: usize| max_abs_diff(&r.loss[i].1, &cpu.1);
    let summary = format!(
        "On an {}, the `cuda` feature's tests pass ({passed} passed, {failed} failed): training on the GPU follows the CPU run of the same config, bf16 matmuls stay close to f32 early in training, checkpointed gradients equal the plain backward, the device AdamW matches the host kernel, a GPU checkpoint resumes on the CPU, NCCL's all-reduce runs at world size 1 (two or more ranks have not run: one GPU cannot host them), and transformers loads an exported GPU-trained student with synthlm's logits. On {} the per-step train loss on the GPU differs from the CPU's by at most {:.1e} in f32 and {:.1e} with bf16 matmuls; that is early training (the loss falls from {:.2} to {:.2}; a uniform guess scores {:.2}), so it shows the implementations agree, not how bf16 fares over a whole run.",
        r.gpu,
        r.loss_setup,
        worst(1),
        worst(2),
        cpu.1[0],
        cpu.1[cpu.1.len() - 1],
        (r.loss_vocab as f64).ln()
    );
    let frame = DataFrame::new(vec![
        col("run", r.loss.iter().map(|l| l.0.clone())),
        col(
            "first / last train loss",
            r.loss
                .iter()
                .map(|l| format!("{:.4} / {:.4}", l.1[0], l.1[l.1.len() - 1])),
        ),
        col(
            "largest per-step difference from the CPU run",
            r.loss
                .iter()
                .map(|l| format!("{:.1e}", max_abs_diff(&l.1, &cpu.1))),
        ),
        col(
            &format!("validation loss ({}, held out)", r.loss_val),
            r.loss.iter().map(|l| format!("{:.4}", l.2)),
        ),
    ])?;
    Ok(vec![
        Block::Macro {
            name: "GpuCorrectText".into(),
            value: summary,
        },
        Block::Text(format!("The `cuda` feature's tests on the GPU: {passed} passed, {failed} failed.")),
        Block::List(items),
        Block::Text(format!("The same config, {} on the real corpus, on the CPU here and on the GPU there. The initial weights are drawn on the host, so all three start equal:", r.loss_setup)),
        Block::Table {
            name: "loss".into(),
            caption: "Train loss per step and final validation loss of one config on three devices/precisions.".into(),
            frame,
        },
    ])
}

fn torch_eager_and_compiled(r: &GpuResults) -> (Option<&TorchRow>, Option<&TorchRow>) {
    let find = |w: &str| r.torch.iter().find(|t| t.implementation.contains(w));
    (find("eager"), find("compile"))
}

/// gpt2-small at nanoGPT's vocabulary, 16 x 1024 tokens: the shape PyTorch was measured on.
fn same_shape_as_torch(m: &TrainMeasurement) -> bool {
    m.preset == "gpt2-small" && m.vocab_size == 50257 && m.batch_size == 16 && m.seq_len == 1024
}

fn speed(r: &GpuResults) -> Result<Vec<Block>> {
    let shape = same_shape_as_torch;
    let mut rows: Vec<(String, f64, f64, Option<f64>, f64)> = Vec::new();
    for (label, set) in [
        ("synthlm, device ops composed (before)", &r.before),
        ("synthlm, fused device ops (after)", &r.after),
    ] {
        for m in set.iter().filter(|m| shape(m)) {
            let ck = if m.checkpointing {
                ", checkpointing"
            } else {
                ""
            };
            rows.push((
                format!("{label}{ck}"),
                m.tokens_per_s,
                m.step_ms,
                m.mfu(),
                m.peak_device_bytes.unwrap_or(0) as f64 / 1e9,
            ));
        }
    }
    for t in &r.torch {
        rows.push((
            t.implementation.clone(),
            t.tokens_per_s,
            t.step_ms,
            Some(t.mfu),
            t.peak_memory_mb / 1e3,
        ));
    }
    let (eager, compiled) = torch_eager_and_compiled(r);
    let vs = |x: f64, t: Option<&TorchRow>| {
        t.map_or("-".into(), |t| format!("{:.3}", x / t.tokens_per_s))
    };
    let frame = DataFrame::new(vec![
        col("implementation", rows.iter().map(|x| x.0.clone())),
        col("tokens/s", rows.iter().map(|x| format!("{:.0}", x.1))),
        col("ms/step", rows.iter().map(|x| format!("{:.0}", x.2))),
        col(
            "MFU",
            rows.iter()
                .map(|x| x.3.map_or("-".into(), |m| format!("{:.1}%", 100.0 * m))),
        ),
        col("peak memory GB", rows.iter().map(|x| format!("{:.1}", x.4))),
        col("x PyTorch eager", rows.iter().map(|x| vs(x.1, eager))),
        col("x torch.compile", rows.iter().map(|x| vs(x.1, compiled))),
    ])?;
    let after = r.after.iter().find(|m| shape(m) && !m.checkpointing);
    let Some(a) = after else {
        anyhow::bail!("{}: no gpt2-small row at PyTorch's shape", r.dir.display())
    };
    let mut text = format!(
        "{} ({} parameters, vocabulary {}) at context {}, {} sequences per step, bf16 matmuls with f32 master weights, AdamW, on random tokens; MFU = model FLOPs (6N + 12·L·d·T per token) per second over the datasheet dense BF16 peak, {:.1} TFLOP/s. PyTorch runs nanoGPT's model.py unchanged (scripts/bench_nanogpt.py), the reference the project measures itself against.",
        a.preset,
        crate::report::tables::int(a.params as u64),
        crate::report::tables::int(a.vocab_size as u64),
        a.seq_len,
        a.batch_size,
        a.peak_gflops.unwrap_or(f64::NAN) / 1e3
    );
    if let Some(c) = compiled {
        let ph = a.phases_ms.unwrap_or([f64::NAN; 3]);
        text += &format!(
            " synthlm reaches {:.1}% MFU, {:.3} of torch.compile's tokens/s: far short of the targets (40% MFU, 0.5x PyTorch). Of its {:.0} ms step, the forward pass takes {:.0} ms and the backward {:.0} ms (each timed alone), leaving {:.0} ms by difference for the optimizer. The comparison is not like-for-like in two ways: in synthlm's bf16 mode attention's two matmuls stay f32 and its [B, H, T, T] scores are materialised, while PyTorch's autocast runs them in bf16 in a fused attention kernel; and the PyTorch rows come from an earlier call, on another machine of the same kind. Where synthlm's time goes was not profiled; the likely places are the materialised attention and candle's unfused elementwise kernels, not the weight matmuls (cuBLAS ran a bf16 8192-cube at {:.0} TFLOP/s in the same run).",
            100.0 * a.mfu().unwrap_or(f64::NAN),
            a.tokens_per_s / c.tokens_per_s,
            a.step_ms,
            ph[0],
            ph[1],
            ph[2],
            a.ceiling_gflops / 1e3
        );
    }
    Ok(vec![
        Block::Text(text.clone()),
        Block::Macro {
            name: "GpuSpeedText".into(),
            value: text,
        },
        Block::Table {
            name: "speed".into(),
            caption: "Training throughput of gpt2-small on one GPU: synthlm before and after its fused device ops, and nanoGPT's model in PyTorch.".into(),
            frame,
        },
    ])
}

/// Measured peaks next to the planner's counts (GB), with the smallest and largest ratio.
pub type PlannerComparison<'a> = (Vec<(&'a TrainMeasurement, f64)>, f64, f64);

/// The measured peaks at the planner's micro-batch (vocabulary 32,768) with the planner's count
/// of each (GB), and the smallest and largest measured / counted ratio.
pub fn against_planner(r: &GpuResults) -> Result<PlannerComparison<'_>> {
    let mut rows = Vec::new();
    for m in r.after.iter().filter(|m| m.vocab_size == 32768) {
        let c = crate::model::ModelConfig::preset(&m.preset)?.with_vocab(m.vocab_size);
        let o = crate::budget::TrainOptions {
            bf16: m.precision == crate::config::Precision::Bf16,
            checkpointing: m.checkpointing,
            zero1_ranks: 1,
            grad_accum: 1,
        };
        let counted = crate::budget::train_memory(&c, m.batch_size, m.seq_len, o).total / 1e9;
        rows.push((m, counted));
    }
    let ratio =
        |(m, p): &(&TrainMeasurement, f64)| m.peak_device_bytes.unwrap_or(0) as f64 / 1e9 / p;
    let lo = rows.iter().map(ratio).fold(f64::MAX, f64::min);
    let hi = rows.iter().map(ratio).fold(0f64, f64::max);
    Ok((rows, lo, hi))
}

/// "on an H200 the measured peaks were 1.09 to 1.96 times this count", from the newest results.
pub fn planner_memory_note(root: &Path) -> Option<String> {
    let r = GpuResults::load(&latest(root).ok()??).ok()?;
    let (_, lo, hi) = against_planner(&r).ok()?;
    Some(format!(
        "on an {} the measured peaks were {lo:.2} to {hi:.2} times this count (the book's GPU page), so read the fits column as optimistic",
        r.gpu
    ))
}

fn memory(r: &GpuResults) -> Result<Vec<Block>> {
    let (rows, lo, hi) = against_planner(r)?;
    let gb = |m: &TrainMeasurement| m.peak_device_bytes.unwrap_or(0) as f64 / 1e9;
    let frame = DataFrame::new(vec![
        col("student", rows.iter().map(|(m, _)| m.preset.clone())),
        col(
            "checkpointing",
            rows.iter()
                .map(|(m, _)| if m.checkpointing { "yes" } else { "no" }),
        ),
        col(
            "measured peak GB",
            rows.iter().map(|(m, _)| format!("{:.1}", gb(m))),
        ),
        col("planner GB", rows.iter().map(|(_, p)| format!("{p:.1}"))),
        col(
            "measured / planner",
            rows.iter().map(|(m, p)| format!("{:.2}", gb(m) / p)),
        ),
    ])?;
    let gpu = crate::budget::Gpu::rtx4090();
    let cap = gpu.memory_bytes() - crate::budget::RESERVED_BYTES;
    let flips: Vec<String> = rows
        .iter()
        .filter(|(m, p)| (p * 1e9 <= cap) != ((m.peak_device_bytes.unwrap_or(0) as f64) <= cap))
        .map(|(m, _)| {
            format!(
                "{}{}",
                m.preset,
                if m.checkpointing { " checkpointed" } else { "" }
            )
        })
        .collect();
    let verdict = format!(
        "The planner undercounts: the measured peaks are {lo:.2} to {hi:.2} times its count. {} The peaks include the warm-up steps and the benchmark's own matmul operands (a reset after warm-up was added after this run).",
        if flips.is_empty() {
            format!("No measured case changes its verdict on a {} GiB card, but its margins are smaller than it states.", gpu.memory_gib)
        } else {
            format!("On a {} GiB card the verdict changes for {}.", gpu.memory_gib, flips.join(", "))
        }
    );
    Ok(vec![
        Block::Text(verdict),
        Block::Text("Peak device memory (the most bytes tensors held at once: weights, gradients, AdamW state, activations; read from the CUDA memory pool's high-water mark, without the CUDA context) at the planner's micro-batch, 4 sequences x 1024 tokens at vocabulary 32,768, bf16 matmuls, against `synthlm budget`'s op-by-op count for the same case.".into()),
        Block::Table {
            name: "memory".into(),
            caption: "Peak GPU memory per student, with and without gradient checkpointing, measured and as the planner counts it.".into(),
            frame,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::parse_test_log;

    /// Outcomes printed on the test's own line, after its output, or as FAILED; the counts;
    /// and transformers' difference.
    #[test]
    fn reads_a_libtest_log() {
        let log = "running 3 tests\ntest a ... ok\ntest b ... safetensors: fine\ntransformers GPT2LMHeadModel: max |logit difference| 1.5e-07\nok\ntest c ... FAILED\n\ntest result: FAILED. 2 passed; 1 failed; 0 ignored\n";
        let ((p, f), names, diff) = parse_test_log(log);
        assert_eq!((p, f), (2, 1));
        assert_eq!(
            names,
            vec![("a".into(), true), ("b".into(), true), ("c".into(), false)]
        );
        assert_eq!(diff, Some(1.5e-7));
    }
}
