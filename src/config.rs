//! Run configuration: TOML files over built-in profiles.
//!
//! A run is described by a [`RunConfig`]. A TOML file names a `profile` (`smoke`: seconds, for
//! tests; `mini`: minutes on 2 CPU cores; `paper`: the original GPU scale) and overrides any key
//! of it. Unknown keys and impossible values are rejected with a message naming the key:
//!
//! ```toml
//! profile = "mini"
//! out_dir = "runs/mini-synthetic"
//! [model]
//! preset = "mini-7m"
//! [data]
//! train = "work/packed/synthetic-train"
//! tokenizer = "work/tokenizer.json"
//! [data.val]
//! synthetic = "work/packed/synthetic-val"
//! [train]
//! lr = 1e-3
//! ```

use crate::model::ModelConfig;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The model part of a config: a preset, with any field overridden.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub preset: Option<String>,
    pub vocab_size: Option<usize>,
    pub context: Option<usize>,
    pub d_model: Option<usize>,
    pub n_layer: Option<usize>,
    pub n_head: Option<usize>,
    pub dropout: Option<f32>,
}

impl ModelSpec {
    pub fn preset(name: &str) -> Self {
        ModelSpec {
            preset: Some(name.into()),
            ..Default::default()
        }
    }

    /// Resolve to a model config; `vocab_size` defaults to the tokenizer's.
    pub fn resolve(&self, tokenizer_vocab: Option<usize>) -> Result<ModelConfig> {
        let mut c = ModelConfig::preset(self.preset.as_deref().unwrap_or("tiny"))?;
        if let Some(v) = self.vocab_size.or(tokenizer_vocab) {
            c.vocab_size = v;
        }
        c.context = self.context.unwrap_or(c.context);
        c.d_model = self.d_model.unwrap_or(c.d_model);
        c.n_layer = self.n_layer.unwrap_or(c.n_layer);
        c.n_head = self.n_head.unwrap_or(c.n_head);
        c.dropout = self.dropout.unwrap_or(c.dropout);
        c.validate()?;
        Ok(c)
    }
}

/// Where the tokens are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A packed directory (see [`crate::data::pack`]).
    pub train: PathBuf,
    /// Held-out packed directories by name (evaluated separately: per-source perplexity).
    #[serde(default)]
    pub val: BTreeMap<String, PathBuf>,
    /// The tokenizer.json that packed them (for bits per byte and sampling).
    pub tokenizer: Option<PathBuf>,
}

/// Optimisation and bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub seed: u64,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Tokens per training sequence (at most the model's context).
    pub seq_len: usize,
    pub max_steps: u64,
    /// Peak learning rate, after linear warmup; cosine decay to `min_lr` at `max_steps`.
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub grad_clip: f64,
    pub log_interval: u64,
    /// Evaluate on the validation sets every this many steps (and at the end).
    pub eval_interval: u64,
    /// At most this many windows per validation set and evaluation (evenly spaced).
    pub eval_windows: usize,
    pub ckpt_interval: u64,
    /// Checkpoints kept on disk (the newest ones).
    pub keep_checkpoints: usize,
    /// Steps at which the model's weights are also saved on their own
    /// (`weights/step-NNNNNNNN.safetensors`, never pruned): the points a run is evaluated at
    /// besides its end (the evaluation suite compares 10% of training with the end).
    #[serde(default)]
    pub snapshot_steps: Vec<u64>,
    /// Gradient checkpointing: keep only each transformer block's input during the forward
    /// pass and recompute the block in the backward pass (one block's activations alive at a
    /// time instead of all of them; ~1/3 more compute). Gradients equal the plain backward's up
    /// to float rounding. Left out of the file when off, so older configs read and hash the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grad_checkpointing: bool,
    /// ZeRO stage 1: divide AdamW's state over the data-parallel ranks (`crate::train::zero`).
    /// The weights are those of an unsharded run, bit for bit. Left out of the file when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zero1: bool,
    /// Number format of the matmuls (`f32`, or `bf16`: mixed precision with f32 master
    /// weights, optimizer state, norms, softmax and loss). Left out of the file when `f32`.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

/// The matmuls' number format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16 inputs, f32 accumulation (what tensor cores do), result rounded to bf16 and
    /// widened back to f32 for everything that follows.
    Bf16,
}

impl Precision {
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    pub fn dtype(&self) -> candle_core::DType {
        match self {
            Precision::F32 => candle_core::DType::F32,
            Precision::Bf16 => candle_core::DType::BF16,
        }
    }

    /// The name configs and the command line use.
    pub fn name(&self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => anyhow::bail!("unknown precision `{s}` (expected f32 or bf16)"),
        }
    }
}

impl TrainConfig {
    /// Tokens consumed per optimizer step.
    pub fn tokens_per_step(&self) -> u64 {
        (self.batch_size * self.grad_accum * self.seq_len) as u64
    }
}

/// Everything a training run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub profile: String,
    pub out_dir: PathBuf,
    pub model: ModelSpec,
    pub data: DataConfig,
    pub train: TrainConfig,
    /// `cpu` or `cuda` (`cuda:N`); the latter needs the `cuda` feature.
    #[serde(default = "default_device")]
    pub device: String,
}

fn default_device() -> String {
    "cpu".into()
}

/// The built-in profiles.
pub fn profile(name: &str) -> Result<RunConfig> {
    let base = TrainConfig {
        seed: 0,
        batch_size: 8,
        grad_accum: 1,
        seq_len: 256,
        max_steps: 1000,
        lr: 1e-3,
        min_lr: 1e-4,
        warmup_steps: 50,
        weight_decay: 0.1,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        grad_clip: 1.0,
        log_interval: 10,
        eval_interval: 200,
        eval_windows: 64,
        ckpt_interval: 200,
        keep_checkpoints: 2,
        snapshot_steps: vec![],
        grad_checkpointing: false,
        zero1: false,
        precision: Precision::F32,
    };
    let (preset, train, device) = match name {
        // Seconds: a tiny model on a handful of steps.
        "smoke" => (
            "tiny",
            TrainConfig {
                batch_size: 4,
                seq_len: 32,
                max_steps: 40,
                warmup_steps: 4,
                log_interval: 5,
                eval_interval: 20,
                eval_windows: 8,
                ckpt_interval: 20,
                ..base
            },
            "cpu",
        ),
        // Minutes on 2 CPU cores: ~7M parameters, 2,048 tokens per step.
        "mini" => ("mini-7m", base, "cpu"),
        // The original plan's GPU scale: GPT-2 small, 0.5M tokens per step (32 x 16 x 1024).
        "paper" => (
            "gpt2-small",
            TrainConfig {
                batch_size: 32,
                grad_accum: 16,
                seq_len: 1024,
                max_steps: 20_000,
                lr: 6e-4,
                min_lr: 6e-5,
                warmup_steps: 700,
                eval_interval: 1000,
                eval_windows: 256,
                ckpt_interval: 1000,
                log_interval: 20,
                // Mixed precision on the GPU: bf16 matmuls, f32 master weights and AdamW.
                precision: Precision::Bf16,
                ..base
            },
            "cuda",
        ),
        _ => bail!("unknown profile `{name}` (expected smoke, mini or paper)"),
    };
    Ok(RunConfig {
        profile: name.into(),
        out_dir: PathBuf::from(format!("runs/{name}")),
        model: ModelSpec::preset(preset),
        data: DataConfig::default(),
        train,
        device: device.into(),
    })
}

/// Deep-merge `over` into `base` (tables merge key by key; other values replace).
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(bv) => merge(bv, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

impl RunConfig {
    /// Parse TOML text over its profile (default `mini`). `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<RunConfig> {
        let over: toml::Value =
            toml::from_str(text).with_context(|| format!("{origin}: invalid TOML"))?;
        let name = over
            .get("profile")
            .and_then(|p| p.as_str())
            .unwrap_or("mini")
            .to_string();
        let base = match profile(&name) {
            Ok(p) => p,
            // A complete config (such as the one the experiment grid writes for a launched
            // run, whose profile names the experiment) needs no base profile.
            Err(e) => match over.clone().try_into::<RunConfig>() {
                Ok(cfg) => {
                    cfg.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
                    return Ok(cfg);
                }
                Err(_) => return Err(e).with_context(|| format!("{origin}: key `profile`")),
            },
        };
        let mut merged = toml::Value::try_from(base)?;
        merge(&mut merged, over);
        let cfg: RunConfig = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            anyhow!("{origin}: key `{path}`: {}", e.into_inner())
        })?;
        cfg.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<RunConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Apply `key=value` overrides (`train.lr=3e-4`, `model.preset="mini-1m"`).
    pub fn with_overrides(&self, sets: &[String]) -> Result<RunConfig> {
        let mut v = toml::Value::try_from(self)?;
        for s in sets {
            let (key, val) = s
                .split_once('=')
                .ok_or_else(|| anyhow!("override `{s}` is not key=value"))?;
            let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("x = {val}"))
                .or_else(|_| toml::from_str::<toml::Table>(&format!("x = \"{val}\"")))
                .map_err(|e| anyhow!("override `{s}`: {e}"))?["x"]
                .clone();
            let mut over = parsed;
            for part in key.split('.').rev() {
                let mut t = toml::Table::new();
                t.insert(part.to_string(), over);
                over = toml::Value::Table(t);
            }
            merge(&mut v, over);
        }
        let cfg: RunConfig = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            anyhow!("override: key `{path}`: {}", e.into_inner())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check values that types cannot: each error names its key.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        for (k, v) in [
            ("batch_size", t.batch_size),
            ("grad_accum", t.grad_accum),
            ("seq_len", t.seq_len),
            ("eval_windows", t.eval_windows),
            ("keep_checkpoints", t.keep_checkpoints),
        ] {
            if v == 0 {
                bail!("train.{k} must be at least 1");
            }
        }
        for (k, v) in [
            ("max_steps", t.max_steps),
            ("log_interval", t.log_interval),
            ("eval_interval", t.eval_interval),
            ("ckpt_interval", t.ckpt_interval),
        ] {
            if v == 0 {
                bail!("train.{k} must be at least 1");
            }
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            bail!("train.lr = {} must be a positive number", t.lr);
        }
        if !(0.0..=t.lr).contains(&t.min_lr) {
            bail!(
                "train.min_lr = {} must be in [0, train.lr = {}]",
                t.min_lr,
                t.lr
            );
        }
        if t.warmup_steps > t.max_steps {
            bail!(
                "train.warmup_steps = {} exceeds train.max_steps = {}",
                t.warmup_steps,
                t.max_steps
            );
        }
        for (k, v) in [("beta1", t.beta1), ("beta2", t.beta2)] {
            if !(0.0..1.0).contains(&v) {
                bail!("train.{k} = {v} must be in [0, 1)");
            }
        }
        if t.weight_decay < 0.0 || t.grad_clip < 0.0 || t.eps <= 0.0 {
            bail!("train.weight_decay and train.grad_clip must be >= 0 and train.eps > 0");
        }
        let m = self.model.resolve(self.model.vocab_size.or(Some(256)))?;
        if t.seq_len > m.context {
            bail!(
                "train.seq_len = {} exceeds the model's context ({}; set model.context)",
                t.seq_len,
                m.context
            );
        }
        if self.device != "cpu" {
            crate::train::trainer::cuda_ordinal(&self.device, None)?;
        }
        Ok(())
    }
}
