//! Compute budgets for the `paper` scale: FLOPs, device-hours and dollars for training a model
//! on a number of tokens on a GPU fleet. Nothing here runs a GPU; it plans what would.
//!
//! Assumptions, stated so they can be changed: an RTX 4090's tensor cores do 165.2 TFLOP/s of
//! dense BF16 matmul with FP32 accumulation (NVIDIA's Ada whitepaper, table 2; 82.6 is its FP32
//! non-tensor rate, which an earlier version of this planner used by mistake, and 330 is FP16
//! accumulation, which training does not use); a well-tuned GPT training loop reaches ~40% of
//! the peak (model FLOPs utilisation). That 40% is *assumed*, not measured: no GPU run of ours
//! exists yet, and [`Gpu::mfu_source`] says so wherever the figure is printed. A GPU-hour
//! costs $5 (the figure the plan uses). FLOPs per token are
//! [`ModelConfig::train_flops_per_token`]; the time they take is [`seconds_per_token`], which
//! runs each kind of matmul at the rate our implementation gets for it.

use crate::model::ModelConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub name: String,
    /// Dense BF16 tensor-core peak (FP32 accumulate), TFLOP/s: the rate of the weight matmuls
    /// under bf16.
    pub peak_tflops: f64,
    /// FP32 (non-tensor) peak, TFLOP/s: the rate of every matmul that stays f32 (all of them
    /// under `precision = "f32"`, attention's two under bf16; candle's f32 matmul does not use
    /// TF32 unless asked).
    pub f32_tflops: f64,
    /// Model FLOPs utilisation a real run reaches.
    pub mfu: f64,
    /// Where `mfu` comes from: "assumed" until a run on this GPU measured it.
    pub mfu_source: String,
    pub dollars_per_hour: f64,
    /// Device memory, GiB (2^30 bytes, as cards are sold: a "24 GB" RTX 4090 has 24 GiB).
    pub memory_gib: f64,
}

impl Gpu {
    /// Device memory in bytes.
    pub fn memory_bytes(&self) -> f64 {
        self.memory_gib * (1u64 << 30) as f64
    }

    pub fn rtx4090() -> Gpu {
        Gpu {
            name: "RTX 4090 (BF16 tensor cores, FP32 accumulate)".into(),
            peak_tflops: 165.2,
            f32_tflops: 82.6,
            mfu: 0.40,
            mfu_source: "assumed (no GPU run measured yet)".into(),
            dollars_per_hour: 5.0,
            memory_gib: 24.0,
        }
    }

    /// The GPU the benchmark measured on, by the name the driver reports: the H100 SXM and the
    /// H200 share one compute die and clocks, so one peak (989.4 TFLOP/s dense BF16 with FP32
    /// accumulate, 66.9 FP32; NVIDIA's H100 datasheet) and differ in memory (80 vs 141 GB, which
    /// `nvidia-smi` shows as 79.6 and 140.4 GiB).
    /// `None` for a GPU whose peak this table does not know.
    pub fn by_name(name: &str) -> Option<Gpu> {
        let memory_gib = if name.contains("H200") {
            140.0
        } else if name.contains("H100") {
            80.0
        } else {
            return None;
        };
        Some(Gpu {
            name: name.into(),
            peak_tflops: 989.4,
            f32_tflops: 66.9,
            mfu: 0.40,
            mfu_source: "assumed".into(),
            dollars_per_hour: 5.0,
            memory_gib,
        })
    }
}

/// The cost of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunBudget {
    pub preset: String,
    pub params: usize,
    pub tokens: u64,
    /// Model FLOPs ([`ModelConfig::train_flops_per_token`] x tokens), the numerator of MFU.
    pub flops: f64,
    /// FLOPs the hardware does: the model FLOPs plus checkpointing's recomputed forward.
    pub hardware_flops: f64,
    pub gpu_hours: f64,
    /// Wall hours on `gpus` GPUs (perfect data-parallel scaling).
    pub wall_hours: f64,
    pub dollars: f64,
}

/// Seconds one GPU spends per training token. The weight matmuls (6·N FLOPs per token) run at
/// the BF16 tensor rate under bf16, else at the FP32 rate; attention's scores and weighted
/// values (12·L·d·T) stay f32 in our bf16 mode ([`crate::model::Gpt`] casts the weights'
/// matmuls only), so they run at the FP32 rate: for gpt2-small at context 1024 they are 13% of
/// the FLOPs but 23% of the time. Gradient checkpointing runs every block's forward again in
/// the backward pass: 2·N_blocks + 4·L·d·T more FLOPs per token (the embeddings and the head
/// are not recomputed), about a third more work. `gpu.mfu` is the share of each peak reached.
pub fn seconds_per_token(c: &ModelConfig, gpu: &Gpu, o: TrainOptions) -> f64 {
    let attn = 12.0 * (c.n_layer * c.d_model * c.context) as f64;
    let dense = c.train_flops_per_token() - attn;
    let (dense_redo, attn_redo) = if o.checkpointing {
        (2.0 * c.non_embedding_params() as f64, attn / 3.0)
    } else {
        (0.0, 0.0)
    };
    let dense_rate = if o.bf16 {
        gpu.peak_tflops
    } else {
        gpu.f32_tflops
    };
    ((dense + dense_redo) / dense_rate + (attn + attn_redo) / gpu.f32_tflops) / (1e12 * gpu.mfu)
}

/// How [`seconds_per_token`] costs a run, in words (for the book, the paper and `synthlm budget`).
pub fn costing_text(gpu: &Gpu, o: TrainOptions) -> String {
    let dense = if o.bf16 {
        format!("at the {} TFLOP/s BF16 tensor rate", gpu.peak_tflops)
    } else {
        format!("at the {} TFLOP/s FP32 rate (f32 training)", gpu.f32_tflops)
    };
    let redo = if o.checkpointing {
        " Gradient checkpointing recomputes every block's forward in the backward pass (2 x block parameters + 4 x layers x width x sequence length more FLOPs per token, about a third more work)."
    } else {
        ""
    };
    format!(
        "FLOPs per token = 6N + 12 x layers x width x sequence length (N: parameters). The weight matmuls run {dense}, attention's scores and weighted values at the {} TFLOP/s FP32 rate (our bf16 mode leaves them in f32), each at {:.0}% of its peak, a utilisation {}.{redo}",
        gpu.f32_tflops,
        gpu.mfu * 100.0,
        gpu.mfu_source
    )
}

/// Hardware FLOPs per token: the model's plus checkpointing's recomputed forward.
fn hardware_flops_per_token(c: &ModelConfig, o: TrainOptions) -> f64 {
    let redo =
        2.0 * c.non_embedding_params() as f64 + 4.0 * (c.n_layer * c.d_model * c.context) as f64;
    c.train_flops_per_token() + if o.checkpointing { redo } else { 0.0 }
}

/// Budget of training `preset` on `tokens` tokens on `gpus` GPUs.
pub fn run_budget(
    preset: &str,
    tokens: u64,
    gpu: &Gpu,
    gpus: usize,
    o: TrainOptions,
) -> anyhow::Result<RunBudget> {
    Ok(budget_for(
        preset,
        &ModelConfig::preset(preset)?,
        tokens,
        gpu,
        gpus,
        o,
    ))
}

/// Budget of training model `c` (named `preset` in the result) on `tokens` tokens.
pub fn budget_for(
    preset: &str,
    c: &ModelConfig,
    tokens: u64,
    gpu: &Gpu,
    gpus: usize,
    o: TrainOptions,
) -> RunBudget {
    let gpu_hours = seconds_per_token(c, gpu, o) * tokens as f64 / 3600.0;
    RunBudget {
        preset: preset.into(),
        params: c.param_count(),
        tokens,
        flops: c.train_flops_per_token() * tokens as f64,
        hardware_flops: hardware_flops_per_token(c, o) * tokens as f64,
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
pub fn tokens_for_gpu_hours(
    preset: &str,
    gpu_hours: f64,
    gpu: &Gpu,
    o: TrainOptions,
) -> anyhow::Result<u64> {
    let c = ModelConfig::preset(preset)?;
    Ok((gpu_hours * 3600.0 / seconds_per_token(&c, gpu, o)) as u64)
}

/// The largest model of GPT-2's aspect (width = 64 x layers, 64-wide heads; gpt2-small is
/// 12 layers of 768) at `shape`'s vocabulary and context whose `runs` runs at 20 tokens per
/// parameter fit `gpu_hours`, costed as every run is ([`seconds_per_token`]: attention,
/// precision and recompute included). `None` if not even one layer fits.
pub fn compute_optimal(
    gpu_hours: f64,
    runs: usize,
    gpu: &Gpu,
    shape: &ModelConfig,
    o: TrainOptions,
) -> Option<ModelConfig> {
    let at = |layers: usize| ModelConfig {
        d_model: 64 * layers,
        n_layer: layers,
        n_head: layers,
        ..shape.clone()
    };
    let hours = |c: &ModelConfig| {
        let tokens = 20.0 * c.param_count() as f64 * runs.max(1) as f64;
        seconds_per_token(c, gpu, o) * tokens / 3600.0
    };
    // the cost grows with the layers; 128 layers of 8,192 is past any budget this plans
    (1..=128)
        .map(at)
        .take_while(|c| hours(c) <= gpu_hours)
        .last()
}

/// Device memory of one data-parallel rank in training, bytes, by part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainMemory {
    /// f32 master weights (4 bytes/param), and under bf16 their bf16 copies, which the matmuls
    /// keep for the backward pass (2).
    pub weights: f64,
    /// f32 gradients (4 bytes/param), twice over under gradient accumulation (the running sum
    /// and the micro-batch's own).
    pub grads: f64,
    /// AdamW's two f32 moments (8 bytes/param), divided over the ranks under ZeRO-1.
    pub optimizer: f64,
    /// Activations kept for the backward pass, and the f32 logits and their gradient.
    pub activations: f64,
    pub total: f64,
}

/// Device memory a training process cannot use for tensors: the CUDA context, cuBLAS workspaces
/// and the caching allocator's fragmentation (1.5 GiB; PyTorch users see 0.5-1 GB of context
/// alone). A plan that needs the last gigabyte of a card does not fit it.
pub const RESERVED_BYTES: f64 = 1.5 * (1u64 << 30) as f64;

/// How a rank trains, for [`train_memory`] and [`seconds_per_token`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    pub checkpointing: bool,
    /// Ranks the optimizer state is sharded over (ZeRO stage 1); 1 for none.
    pub zero1_ranks: usize,
    /// bf16 matmuls (`train.precision = "bf16"`).
    pub bf16: bool,
    pub grad_accum: usize,
}

/// Activation bytes one block keeps per token and model dimension, f32: an op-by-op count of
/// our block (candle keeps every op's inputs): the block input and LayerNorm outputs (4 x 4),
/// q/k/v and their per-head copies (2 x 12), the attention output and projection (2 x 4),
/// the MLP's two 4h tensors (2 x 16), the second residual (4) and the MLP output (4) — 88
/// bytes. Not Korthikanti et al.'s 34, which assumes 16-bit activations and fused kernels: our
/// matmuls widen their results to f32. Checked against peak RSS on the CPU (gpt2-small, vocab
/// 8,192, 4 x 512, f32): this model predicts 4.5 GB plain and 1.9 GB checkpointed, measured
/// 5.2 and 2.1 (the process's RSS, which also holds the binary and allocator slack); the old
/// 34-byte figure predicted 3.0 GB plain.
const BLOCK_BYTES_F32: f64 = 88.0;
/// Under bf16, the bf16 copies of the four matmuls' inputs (h, h, h, 4h) are kept too.
const BLOCK_BYTES_BF16_COPIES: f64 = 14.0;
/// The attention scores and their softmax, f32, per head and query-key pair.
const SCORE_BYTES: f64 = 8.0;
/// The logits, their log-softmax and their gradient, f32, per token and vocabulary entry.
const LOGIT_BYTES: f64 = 12.0;

/// Memory of training `c` with `rows` sequences of `seq` tokens per micro-batch on one rank.
/// With every block checkpointed, a block keeps only its f32 input and one block's full
/// activations exist at a time, during its recomputation.
pub fn train_memory(c: &ModelConfig, rows: usize, seq: usize, o: TrainOptions) -> TrainMemory {
    let n = c.param_count() as f64;
    let (s, b, h, a) = (seq as f64, rows as f64, c.d_model as f64, c.n_head as f64);
    let per_token = BLOCK_BYTES_F32 + if o.bf16 { BLOCK_BYTES_BF16_COPIES } else { 0.0 };
    let layer = s * b * h * per_token + SCORE_BYTES * a * s * s * b;
    let layers = c.n_layer as f64;
    let blocks = if o.checkpointing {
        layers * 4.0 * s * b * h + layer
    } else {
        layers * layer
    };
    let logits = LOGIT_BYTES * s * b * c.vocab_size as f64;
    let m = TrainMemory {
        weights: if o.bf16 { 6.0 * n } else { 4.0 * n },
        grads: if o.grad_accum > 1 { 8.0 * n } else { 4.0 * n },
        optimizer: 8.0 * n / o.zero1_ranks.max(1) as f64,
        activations: blocks + logits,
        total: 0.0,
    };
    TrainMemory {
        total: m.weights + m.grads + m.optimizer + m.activations,
        ..m
    }
}
