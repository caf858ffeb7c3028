//! Compute budgets for the `paper` scale: FLOPs, device-hours and dollars for training a model
//! on a number of tokens on a GPU fleet. Nothing here runs a GPU; it plans what would.
//!
//! Assumptions, stated so they can be changed: an RTX 4090 does 82.6 TFLOP/s of dense BF16
//! matmul with FP32 accumulation (165 with FP16 accumulation, which training does not use); a
//! well-tuned GPT training loop reaches ~40% of that (model FLOPs utilisation); a GPU-hour costs
//! $5 (the figure the plan uses). FLOPs per token are [`ModelConfig::train_flops_per_token`].

use crate::model::ModelConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub name: String,
    /// Dense peak for the training dtype, TFLOP/s.
    pub peak_tflops: f64,
    /// Model FLOPs utilisation a real run reaches.
    pub mfu: f64,
    pub dollars_per_hour: f64,
}

impl Gpu {
    pub fn rtx4090() -> Gpu {
        Gpu {
            name: "RTX 4090 (BF16, FP32 accumulate)".into(),
            peak_tflops: 82.6,
            mfu: 0.40,
            dollars_per_hour: 5.0,
        }
    }
}

/// The cost of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunBudget {
    pub preset: String,
    pub params: usize,
    pub tokens: u64,
    pub flops: f64,
    pub gpu_hours: f64,
    /// Wall hours on `gpus` GPUs (perfect data-parallel scaling).
    pub wall_hours: f64,
    pub dollars: f64,
}

/// Budget of training `preset` on `tokens` tokens on `gpus` GPUs.
pub fn run_budget(preset: &str, tokens: u64, gpu: &Gpu, gpus: usize) -> anyhow::Result<RunBudget> {
    Ok(budget_for(
        preset,
        &ModelConfig::preset(preset)?,
        tokens,
        gpu,
        gpus,
    ))
}

/// Budget of training model `c` (named `preset` in the result) on `tokens` tokens.
pub fn budget_for(preset: &str, c: &ModelConfig, tokens: u64, gpu: &Gpu, gpus: usize) -> RunBudget {
    let flops = c.train_flops_per_token() * tokens as f64;
    let gpu_hours = flops / (gpu.peak_tflops * 1e12 * gpu.mfu) / 3600.0;
    RunBudget {
        preset: preset.into(),
        params: c.param_count(),
        tokens,
        flops,
        gpu_hours,
        wall_hours: gpu_hours / gpus.max(1) as f64,
        dollars: gpu_hours * gpu.dollars_per_hour,
    }
}

/// Tokens for a compute-optimal run (Hoffmann et al. 2022: ~20 tokens per parameter).
pub fn chinchilla_tokens(preset: &str) -> anyhow::Result<u64> {
    Ok(20 * ModelConfig::preset(preset)?.param_count() as u64)
}

/// How many tokens a GPU-hour budget buys for a preset.
pub fn tokens_for_gpu_hours(preset: &str, gpu_hours: f64, gpu: &Gpu) -> anyhow::Result<u64> {
    let c = ModelConfig::preset(preset)?;
    Ok((gpu_hours * 3600.0 * gpu.peak_tflops * 1e12 * gpu.mfu / c.train_flops_per_token()) as u64)
}
