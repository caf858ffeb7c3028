//! `synthlm bench train`: training throughput of the mini presets against the f32 matmul
//! ceiling of the same binary, measured in the same run.
//!
//! Achieved FLOP/s = tokens/s x `train_flops_per_token` (6·N + 12·L·d·T, see
//! [`ModelConfig::train_flops_per_token`]). Ceiling = candle's f32 matmul (the gemm kernel every
//! layer's matmuls use) on a 1024x1024x1024 product, best of several runs.

use crate::model::gpt::Gpt;
use crate::model::ModelConfig;
use crate::train::optim::{AdamW, AdamWParams};
use crate::train::trainer::{optimizer_step, StepResult};
use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Best f32 matmul throughput (GFLOP/s) of an n x n x n product on the CPU.
pub fn matmul_ceiling_gflops(n: usize, reps: usize) -> Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    let _ = a.matmul(&b)?; // warm up
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let c = a.matmul(&b)?;
        std::hint::black_box(c);
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}

/// One preset's measurement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainMeasurement {
    pub preset: String,
    pub params: usize,
    pub vocab_size: usize,
    pub seq_len: usize,
    pub batch_size: usize,
    /// Gradient checkpointing of the blocks (recompute in backward).
    #[serde(default)]
    pub checkpointing: bool,
    pub step_ms: f64,
    pub tokens_per_s: f64,
    pub flops_per_token: f64,
    pub achieved_gflops: f64,
    pub ceiling_gflops: f64,
    pub peak_rss_bytes: u64,
}

/// Time `steps` full optimizer steps (forward, backward, AdamW) after `warmup` steps, on random
/// tokens (speed does not depend on the data).
pub fn measure(
    preset: &str,
    vocab_size: usize,
    seq_len: usize,
    batch_size: usize,
    warmup: usize,
    steps: usize,
    checkpointing: bool,
) -> Result<TrainMeasurement> {
    let ceiling_before = matmul_ceiling_gflops(1024, 10)?;
    let mut c = ModelConfig::preset(preset)?.with_vocab(vocab_size);
    c.context = c.context.max(seq_len);
    let model = Gpt::new(c.clone(), 0, &Device::Cpu)?;
    let sizes: Vec<usize> = c
        .parameter_shapes()
        .iter()
        .map(|(_, s)| s.iter().product())
        .collect();
    let mut opt = AdamW::new(
        &sizes,
        c.parameter_shapes()
            .iter()
            .map(|(n, _)| crate::model::gpt::decays(n))
            .collect(),
        &Device::Cpu,
    )?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let data: Vec<u32> = (0..batch_size * (seq_len + 1))
        .map(|_| rng.gen_range(0..vocab_size as u32))
        .collect();
    let windows = Tensor::from_vec(data, (batch_size, seq_len + 1), &Device::Cpu)?;
    let hp = AdamWParams {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    let mut run = || -> Result<()> {
        match optimizer_step(
            &model,
            &mut opt,
            |_| Ok((windows.clone(), 0)),
            &crate::train::trainer::StepOptions {
                grad_accum: 1,
                grad_clip: 1.0,
                hp,
                checkpointing,
            },
            &crate::train::collective::Single,
        )? {
            StepResult::Ok { .. } => Ok(()),
            StepResult::NonFinite(v) => anyhow::bail!("non-finite loss {v} in the benchmark"),
        }
    };
    for _ in 0..warmup {
        run()?;
    }
    let t = Instant::now();
    for _ in 0..steps {
        run()?;
    }
    let step_s = t.elapsed().as_secs_f64() / steps as f64;
    // The ceiling is the best of two measurements, before and after, so a momentary slowdown
    // of the machine cannot flatter the ratio.
    let ceiling = ceiling_before.max(matmul_ceiling_gflops(1024, 10)?);
    let tokens_per_s = (batch_size * seq_len) as f64 / step_s;
    // Attention FLOPs at the benchmark's sequence length.
    let mut fc = c.clone();
    fc.context = seq_len;
    let flops_per_token = fc.train_flops_per_token();
    Ok(TrainMeasurement {
        preset: preset.into(),
        params: c.param_count(),
        vocab_size,
        seq_len,
        batch_size,
        checkpointing,
        step_ms: step_s * 1e3,
        tokens_per_s,
        flops_per_token,
        achieved_gflops: tokens_per_s * flops_per_token / 1e9,
        ceiling_gflops: ceiling,
        peak_rss_bytes: crate::io::peak_rss_bytes().unwrap_or(0),
    })
}

/// `synthlm bench train`: tokens/s and achieved GFLOP/s of each case (PRESET:VOCAB:SEQ:BATCH,
/// `:ckpt` appended for gradient checkpointing)
/// against the f32 matmul ceiling, each in a fresh process (`exe train-worker`).
pub fn report(steps: usize, cases: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for case in cases {
        eprintln!("measuring {case} ({steps} steps after 2 warm-up steps) ...");
        rows.push(crate::bench::run_worker::<
            crate::bench::train::TrainMeasurement,
        >(
            &exe,
            "train-worker",
            &[
                "--case".into(),
                case.clone(),
                "--steps".into(),
                steps.to_string(),
            ],
        )?);
    }
    out += &format!("\nTraining benchmark ({} threads). Achieved = tokens/s x (6N + 12·L·d·T); ceiling = f32 matmul 1024^3, same binary, same run.\n", candle_core::utils::get_num_threads());
    out += "| preset | params | vocab | seq | batch | checkpointing | ms/step | tokens/s | achieved GFLOP/s | ceiling GFLOP/s | ratio | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0}% | {:.0} |\n",
            r.preset,
            r.params,
            r.vocab_size,
            r.seq_len,
            r.batch_size,
            if r.checkpointing { "yes" } else { "no" },
            r.step_ms,
            r.tokens_per_s,
            r.achieved_gflops,
            r.ceiling_gflops,
            100.0 * r.achieved_gflops / r.ceiling_gflops,
            r.peak_rss_bytes as f64 / 1e6
        );
    }
    Ok(out)
}
