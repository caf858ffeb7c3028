//! `synthlm bench train`: training throughput of a preset against the matmul ceiling of the same
//! binary on the same device, measured in the same run, and its peak memory.
//!
//! Achieved FLOP/s = tokens/s x `train_flops_per_token` (6·N + 12·L·d·T, see
//! [`ModelConfig::train_flops_per_token`]). Ceiling: on the CPU candle's f32 matmul (the gemm
//! kernel every layer's matmuls use) on a 1024x1024x1024 product; on a GPU cuBLAS through candle
//! in the run's matmul format on an 8192-cube. On a GPU whose datasheet peak
//! [`crate::budget::Gpu::by_name`] knows, model FLOPs utilisation (MFU) is achieved / that peak
//! (dense BF16), the figure nanoGPT and PaLM report.

use crate::budget::Gpu;
use crate::config::Precision;
use crate::model::gpt::Gpt;
use crate::model::ModelConfig;
use crate::train::optim::{AdamW, AdamWParams};
use crate::train::trainer::{optimizer_step, StepResult};
use anyhow::{ensure, Result};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Best matmul throughput (GFLOP/s) of an n x n x n product in `dtype` on `device`.
pub fn matmul_ceiling_gflops(n: usize, reps: usize, dtype: DType, device: &Device) -> Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (n, n), device)?.to_dtype(dtype)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), device)?.to_dtype(dtype)?;
    let _ = a.matmul(&b)?; // warm up
    device.synchronize()?;
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let c = a.matmul(&b)?;
        device.synchronize()?;
        std::hint::black_box(c);
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}

/// One benchmark case: `PRESET:VOCAB:SEQ_LEN:BATCH`, `:ckpt` appended for gradient
/// checkpointing.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub preset: String,
    pub vocab_size: usize,
    pub seq_len: usize,
    pub batch_size: usize,
    pub checkpointing: bool,
}

impl Case {
    pub fn parse(s: &str) -> Result<Case> {
        let p: Vec<&str> = s.split(':').collect();
        ensure!(
            p.len() == 4 || (p.len() == 5 && p[4] == "ckpt"),
            "case `{s}` must be PRESET:VOCAB:SEQ_LEN:BATCH or PRESET:VOCAB:SEQ_LEN:BATCH:ckpt"
        );
        Ok(Case {
            preset: p[0].into(),
            vocab_size: p[1].parse()?,
            seq_len: p[2].parse()?,
            batch_size: p[3].parse()?,
            checkpointing: p.len() == 5,
        })
    }
}

/// Where a case runs: a device name (`cpu`, `cuda`, `cuda:N`) and the matmuls' format.
#[derive(Clone, Debug)]
pub struct Target {
    pub device: String,
    pub precision: Precision,
}

/// One case's measurement.
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
    #[serde(default = "cpu")]
    pub device: String,
    /// The GPU's name as the driver reports it (`None` on the CPU).
    #[serde(default)]
    pub gpu: Option<String>,
    #[serde(default)]
    pub precision: Precision,
    pub step_ms: f64,
    /// Where a step goes: the forward pass (timed alone), the backward pass (forward + backward
    /// timed alone, less the forward) and the remainder of `step_ms` (gradient norm, clipping,
    /// AdamW, and the noise of the other two), which is a difference, not a measurement.
    #[serde(default)]
    pub phases_ms: Option<[f64; 3]>,
    pub tokens_per_s: f64,
    pub flops_per_token: f64,
    pub achieved_gflops: f64,
    pub ceiling_gflops: f64,
    /// The GPU's datasheet dense BF16 peak, when known: MFU's denominator.
    #[serde(default)]
    pub peak_gflops: Option<f64>,
    pub peak_rss_bytes: u64,
    /// Most bytes tensors held on the GPU at once (weights, gradients, optimizer state,
    /// activations; not the CUDA context): [`crate::train::gpu::peak_bytes`].
    #[serde(default)]
    pub peak_device_bytes: Option<u64>,
}

fn cpu() -> String {
    "cpu".into()
}

impl TrainMeasurement {
    /// Model FLOPs utilisation against the datasheet peak, when one is known.
    pub fn mfu(&self) -> Option<f64> {
        self.peak_gflops.map(|p| self.achieved_gflops / p)
    }
}

/// The matmul ceiling of `target`: f32 1024-cube on the CPU, the run's format on an 8192-cube
/// on a GPU.
fn ceiling(device: &Device, precision: Precision) -> Result<f64> {
    if device.is_cpu() {
        matmul_ceiling_gflops(1024, 10, DType::F32, device)
    } else {
        matmul_ceiling_gflops(8192, 10, precision.dtype(), device)
    }
}

/// Time `steps` full optimizer steps (forward, backward, AdamW) after `warmup` steps, on random
/// tokens (speed does not depend on the data).
pub fn measure(
    case: &Case,
    target: &Target,
    warmup: usize,
    steps: usize,
) -> Result<TrainMeasurement> {
    let device = crate::train::trainer::device(&target.device)?;
    let ceiling_before = ceiling(&device, target.precision)?;
    let mut c = ModelConfig::preset(&case.preset)?.with_vocab(case.vocab_size);
    c.context = c.context.max(case.seq_len);
    let model = Gpt::new(c.clone(), 0, &device)?.with_matmul_dtype(target.precision.dtype());
    let shapes = c.parameter_shapes();
    let sizes: Vec<usize> = shapes.iter().map(|(_, s)| s.iter().product()).collect();
    let decays = shapes
        .iter()
        .map(|(n, _)| crate::model::gpt::decays(n))
        .collect();
    let mut opt = AdamW::new(&sizes, decays, &device)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (b, t) = (case.batch_size, case.seq_len);
    let data: Vec<u32> = (0..b * (t + 1))
        .map(|_| rng.gen_range(0..case.vocab_size as u32))
        .collect();
    let windows = Tensor::from_vec(data, (b, t + 1), &device)?;
    let hp = AdamWParams {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    let options = crate::train::trainer::StepOptions {
        grad_accum: 1,
        grad_clip: 1.0,
        hp,
        checkpointing: case.checkpointing,
    };
    let single = crate::train::collective::Single;
    let mut run = || -> Result<()> {
        match optimizer_step(
            &model,
            &mut opt,
            |_| Ok((windows.clone(), 0)),
            &options,
            &single,
        )? {
            StepResult::Ok { .. } => Ok(()),
            StepResult::NonFinite(v) => anyhow::bail!("non-finite loss {v} in the benchmark"),
        }
    };
    for _ in 0..warmup {
        run()?;
    }
    device.synchronize()?;
    // the high-water mark of the timed steps only (as PyTorch's reset_peak_memory_stats)
    crate::train::gpu::reset_peak(&device);
    let t0 = Instant::now();
    for _ in 0..steps {
        run()?;
    }
    device.synchronize()?;
    let step_s = t0.elapsed().as_secs_f64() / steps as f64;
    let peak_device_bytes = crate::train::gpu::peak_bytes(&device);
    let phases = phases_ms(&model, &windows, case.checkpointing, &device, step_s * 1e3)?;
    // The ceiling is the best of two measurements, before and after, so a momentary slowdown
    // of the machine cannot flatter the ratio.
    let ceiling = ceiling_before.max(self::ceiling(&device, target.precision)?);
    let tokens_per_s = (b * t) as f64 / step_s;
    // Attention FLOPs at the benchmark's sequence length.
    let mut fc = c.clone();
    fc.context = t;
    let flops_per_token = fc.train_flops_per_token();
    let gpu = crate::train::gpu::name(&device);
    Ok(TrainMeasurement {
        preset: case.preset.clone(),
        params: c.param_count(),
        vocab_size: case.vocab_size,
        seq_len: t,
        batch_size: b,
        checkpointing: case.checkpointing,
        device: target.device.clone(),
        peak_gflops: gpu
            .as_deref()
            .and_then(Gpu::by_name)
            .map(|g| g.peak_tflops * 1e3),
        gpu,
        precision: target.precision,
        step_ms: step_s * 1e3,
        phases_ms: Some(phases),
        tokens_per_s,
        flops_per_token,
        achieved_gflops: tokens_per_s * flops_per_token / 1e9,
        ceiling_gflops: ceiling,
        peak_rss_bytes: crate::io::peak_rss_bytes().unwrap_or(0),
        peak_device_bytes,
    })
}

/// Forward and backward (each the mean of 3 synchronised runs) and the remainder of a step of
/// `step_ms`, in ms.
fn phases_ms(
    model: &Gpt,
    windows: &Tensor,
    checkpointing: bool,
    device: &Device,
    step_ms: f64,
) -> Result<[f64; 3]> {
    use crate::model::gpt::Dropout;
    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        device.synchronize()?;
        let t = Instant::now();
        for _ in 0..3 {
            f()?;
        }
        device.synchronize()?;
        Ok(t.elapsed().as_secs_f64() / 3.0 * 1e3)
    };
    let forward = time(&|| {
        model
            .loss(windows, Dropout::default())?
            .to_scalar::<f32>()?;
        Ok(())
    })?;
    let both = time(&|| {
        if checkpointing {
            model.loss_and_grads_checkpointed(windows, Dropout::default())?;
        } else {
            model.loss(windows, Dropout::default())?.backward()?;
        }
        Ok(())
    })?;
    Ok([forward, both - forward, (step_ms - both).max(0.0)])
}

/// `synthlm bench train`: tokens/s and achieved GFLOP/s of each case against the matmul
/// ceiling (and MFU on a known GPU), each case in a fresh process (`exe train-worker`) so its
/// peak memory is its own. Render them with [`table`].
pub fn measure_all(
    steps: usize,
    cases: &[String],
    target: &Target,
) -> Result<Vec<TrainMeasurement>> {
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for case in cases {
        Case::parse(case)?;
        eprintln!(
            "measuring {case} on {} ({steps} steps after 2 warm-up steps) ...",
            target.device
        );
        let args = [
            "--case",
            case,
            "--steps",
            &steps.to_string(),
            "--device",
            &target.device,
            "--precision",
            target.precision.name(),
        ];
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        rows.push(crate::bench::run_worker::<TrainMeasurement>(
            &exe,
            "train-worker",
            &args,
        )?);
    }
    Ok(rows)
}

/// The measurements as a markdown table with a line saying what the ceiling is.
pub fn table(rows: &[TrainMeasurement]) -> String {
    let on_gpu = rows.iter().any(|r| r.gpu.is_some());
    let mut out = if on_gpu {
        let name = rows.iter().find_map(|r| r.gpu.clone()).unwrap_or_default();
        format!("\nTraining benchmark on {name}. Achieved = tokens/s x (6N + 12·L·d·T); ceiling = cuBLAS matmul 8192^3 in the run's format, same binary, same run; MFU = achieved / the datasheet dense BF16 peak; peak memory = most bytes tensors held on the GPU at once.\n")
    } else {
        format!("\nTraining benchmark ({} threads). Achieved = tokens/s x (6N + 12·L·d·T); ceiling = f32 matmul 1024^3, same binary, same run.\n", candle_core::utils::get_num_threads())
    };
    out += "| preset | params | vocab | seq | batch | precision | checkpointing | ms/step | fwd/bwd/rest ms | tokens/s | achieved GFLOP/s | ceiling GFLOP/s | ratio | MFU | peak memory MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        let mfu = r.mfu().map_or("-".into(), |m| format!("{:.1}%", 100.0 * m));
        let mem = r.peak_device_bytes.unwrap_or(r.peak_rss_bytes);
        let phases = r.phases_ms.map_or("-".into(), |p| {
            format!("{:.0}/{:.0}/{:.0}", p[0], p[1], p[2])
        });
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {phases} | {:.0} | {:.1} | {:.1} | {:.0}% | {mfu} | {:.0} |\n",
            r.preset,
            r.params,
            r.vocab_size,
            r.seq_len,
            r.batch_size,
            r.precision.name(),
            if r.checkpointing { "yes" } else { "no" },
            r.step_ms,
            r.tokens_per_s,
            r.achieved_gflops,
            r.ceiling_gflops,
            100.0 * r.achieved_gflops / r.ceiling_gflops,
            mem as f64 / 1e6
        );
    }
    out
}
