//! GPT-2 / GPT-Neo style model, readable top to bottom (nanoGPT's shape):
//!
//! ```text
//! tokens -> wte + wpe -> [ x + attn(ln_1(x)) ; x + mlp(ln_2(x)) ] x n_layer -> ln_f -> x · wteᵀ
//! ```
//!
//! Learned position embeddings, pre-LayerNorm blocks, causal multi-head self-attention with a
//! fused QKV projection, GELU (tanh approximation) MLP of width 4d, output head tied to the input
//! embedding, optional dropout. Parameters use Hugging Face GPT-2 names and shapes
//! (`transformer.h.0.attn.c_attn.weight` is [d, 3d], applied as `x · W`), so a checkpoint can be
//! loaded by `transformers.GPT2LMHeadModel`.

use crate::model::kernels;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// The shape of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub vocab_size: usize,
    /// Maximum sequence length (learned position embeddings).
    pub context: usize,
    pub d_model: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Dropout on embeddings, attention output and MLP output (0 = off).
    #[serde(default)]
    pub dropout: f32,
}

/// Named presets. `vocab_size` of the CPU presets is a placeholder: experiments set it from
/// their tokenizer. The GPU presets use GPT-2's vocabulary (50257) and context (1024).
pub const PRESETS: &[(&str, &str)] = &[
    ("tiny", "d=32, 2 layers, 2 heads, ctx 64: tests"),
    (
        "mini-1m",
        "d=128, 4 layers, 4 heads, ctx 128: 1,334,016 params at vocab 4096",
    ),
    (
        "mini-3m",
        "d=192, 6 layers, 6 heads, ctx 256: ~3.4M params at vocab 4096",
    ),
    (
        "mini-7m",
        "d=256, 6 layers, 8 heads, ctx 256: 6,901,760 params at vocab 8192",
    ),
    (
        "gpt2-small",
        "GPT-2 small: d=768, 12 layers, 12 heads: 124,439,808 params",
    ),
    (
        "gpt-500m",
        "d=1280, 24 layers, 20 heads: 537,900,800 params",
    ),
    (
        "gpt-1b",
        "d=2048, 18 layers, 16 heads: 1,011,476,480 params",
    ),
];

impl ModelConfig {
    /// A named preset (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<ModelConfig> {
        let (vocab_size, context, d_model, n_layer, n_head) = match name {
            "tiny" => (512, 64, 32, 2, 2),
            "mini-1m" => (4096, 128, 128, 4, 4),
            "mini-3m" => (4096, 256, 192, 6, 6),
            "mini-7m" => (8192, 256, 256, 6, 8),
            "gpt2-small" => (50257, 1024, 768, 12, 12),
            "gpt-500m" => (50257, 1024, 1280, 24, 20),
            "gpt-1b" => (50257, 1024, 2048, 18, 16),
            _ => {
                let names: Vec<_> = PRESETS.iter().map(|p| p.0).collect();
                bail!(
                    "unknown model preset `{name}` (expected one of: {})",
                    names.join(", ")
                )
            }
        };
        Ok(ModelConfig {
            vocab_size,
            context,
            d_model,
            n_layer,
            n_head,
            dropout: 0.0,
        })
    }

    pub fn with_vocab(mut self, vocab_size: usize) -> Self {
        self.vocab_size = vocab_size;
        self
    }

    /// Check the shape; errors name the offending key.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("vocab_size", self.vocab_size),
            ("context", self.context),
            ("d_model", self.d_model),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
        ] {
            if v == 0 {
                bail!("model.{k} must be at least 1");
            }
        }
        if !self.d_model.is_multiple_of(self.n_head) {
            bail!(
                "model.n_head = {} does not divide model.d_model = {}",
                self.n_head,
                self.d_model
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("model.dropout = {} must be in [0, 1)", self.dropout);
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Every parameter's name and shape, in a fixed order (computed, nothing allocated).
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, v, t) = (self.d_model, self.vocab_size, self.context);
        let mut out = vec![
            ("transformer.wte.weight".to_string(), vec![v, d]),
            ("transformer.wpe.weight".to_string(), vec![t, d]),
        ];
        for i in 0..self.n_layer {
            let p = |s: &str| format!("transformer.h.{i}.{s}");
            out.extend([
                (p("ln_1.weight"), vec![d]),
                (p("ln_1.bias"), vec![d]),
                (p("attn.c_attn.weight"), vec![d, 3 * d]),
                (p("attn.c_attn.bias"), vec![3 * d]),
                (p("attn.c_proj.weight"), vec![d, d]),
                (p("attn.c_proj.bias"), vec![d]),
                (p("ln_2.weight"), vec![d]),
                (p("ln_2.bias"), vec![d]),
                (p("mlp.c_fc.weight"), vec![d, 4 * d]),
                (p("mlp.c_fc.bias"), vec![4 * d]),
                (p("mlp.c_proj.weight"), vec![4 * d, d]),
                (p("mlp.c_proj.bias"), vec![d]),
            ]);
        }
        out.push(("transformer.ln_f.weight".to_string(), vec![d]));
        out.push(("transformer.ln_f.bias".to_string(), vec![d]));
        out
    }

    /// Exact parameter count (the output head is tied, so it adds nothing).
    pub fn param_count(&self) -> usize {
        self.parameter_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Parameters outside the embeddings (the `N` of scaling laws).
    pub fn non_embedding_params(&self) -> usize {
        self.param_count() - (self.vocab_size + self.context) * self.d_model
    }

    /// Training FLOPs per token: `6·N + 12·L·d·T` (PaLM, appendix B). `6·N`: a multiply-add
    /// (2 FLOPs) per parameter per token forward, twice that backward; N counts every parameter
    /// including the tied head (whose matmul is real work) and the position table (which is
    /// not; a small overcount). `12·L·d·T`: attention scores and weighted values, 2·2·T·d per
    /// layer forward, x3 with backward, over the full context T (no causal discount).
    pub fn train_flops_per_token(&self) -> f64 {
        6.0 * self.param_count() as f64 + 12.0 * (self.n_layer * self.d_model * self.context) as f64
    }
}

/// Names of parameters that get weight decay: the matrices of the blocks. Biases, LayerNorm
/// parameters and the (tied) embeddings are not decayed (GPT-2 / nanoGPT practice).
pub fn decays(name: &str) -> bool {
    name.ends_with(".weight") && (name.contains(".attn.") || name.contains(".mlp."))
}

/// The model: its config and its parameters (as candle `Var`s, in `parameter_shapes` order).
pub struct Gpt {
    pub config: ModelConfig,
    pub params: Vec<(String, Var)>,
    pub device: Device,
    /// Number format of the matmuls (F32, or BF16 for mixed precision); the parameters are
    /// always f32 (the master weights), cast per use, so their gradients arrive in f32.
    pub matmul_dtype: DType,
}

/// Per-call options for the forward pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dropout {
    /// Seed for this step's dropout masks; `None` = evaluation (no dropout).
    pub seed: Option<u64>,
}

impl Gpt {
    /// A freshly initialised model: weights ~ N(0, 0.02), residual output projections scaled
    /// by 1/sqrt(2·n_layer) (GPT-2), biases 0, LayerNorm gains 1. Seeded: same seed, same model.
    pub fn new(config: ModelConfig, seed: u64, device: &Device) -> Result<Gpt> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let resid = 0.02 / (2.0 * config.n_layer as f64).sqrt();
        let mut params = Vec::new();
        for (name, shape) in config.parameter_shapes() {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = if name.contains("ln_") && name.ends_with(".weight") {
                vec![1.0; n]
            } else if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                let std = if name.ends_with("c_proj.weight") {
                    resid
                } else {
                    0.02
                };
                let normal = Normal::new(0.0, std).expect("valid std");
                (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
            };
            let t = Tensor::from_vec(data, shape, device)?;
            params.push((name, Var::from_tensor(&t)?));
        }
        Ok(Gpt {
            config,
            params,
            device: device.clone(),
            matmul_dtype: DType::F32,
        })
    }

    /// Build from named tensors (a checkpoint); every expected parameter must be present with
    /// the right shape.
    pub fn from_tensors(
        config: ModelConfig,
        mut tensors: std::collections::HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Gpt> {
        config.validate()?;
        let mut params = Vec::new();
        for (name, shape) in config.parameter_shapes() {
            let t = tensors
                .remove(&name)
                .ok_or_else(|| anyhow::anyhow!("missing parameter `{name}`"))?;
            if t.dims() != shape.as_slice() {
                bail!(
                    "parameter `{name}` has shape {:?}, the config needs {shape:?}",
                    t.dims()
                );
            }
            params.push((
                name,
                Var::from_tensor(&t.to_dtype(DType::F32)?.to_device(device)?)?,
            ));
        }
        Ok(Gpt {
            config,
            params,
            device: device.clone(),
            matmul_dtype: DType::F32,
        })
    }

    /// The same model with its matmuls in `dtype` (mixed precision when BF16).
    pub fn with_matmul_dtype(mut self, dtype: DType) -> Self {
        self.matmul_dtype = dtype;
        self
    }

    /// `x · w` in the model's matmul format, returned in f32. In BF16 both inputs are rounded
    /// to bf16, the products accumulate in f32 and the result is rounded to bf16 (a tensor
    /// core's arithmetic); the backward pass of the casts hands f32 gradients to the f32
    /// master weights.
    fn mm(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        if self.matmul_dtype == DType::F32 {
            return Ok(x.matmul(w)?);
        }
        let d = self.matmul_dtype;
        Ok(x.to_dtype(d)?
            .matmul(&w.to_dtype(d)?)?
            .to_dtype(DType::F32)?)
    }

    /// `x · W + b` for x [N, in], W [in, out] (GPT-2's Conv1D layout), b [out].
    fn linear(&self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok(kernels::bias_add(&self.mm(x, w)?, b, None)?)
    }

    /// `x + drop(h · W + b)`: a block's output projection added to its residual stream `x`,
    /// in one fused kernel when there is no dropout between them.
    fn residual(
        &self,
        x: &Tensor,
        (h, w, b): (&Tensor, &Tensor, &Tensor),
        dropout: Dropout,
        site: u64,
    ) -> Result<Tensor> {
        if dropout.seed.is_some() && self.config.dropout > 0.0 {
            return Ok((x + self.drop(self.linear(h, w, b)?, dropout, site)?)?);
        }
        Ok(kernels::bias_add(&self.mm(h, w)?, b, Some(x))?)
    }

    fn p(&self, i: usize) -> &Tensor {
        self.params[i].1.as_tensor()
    }

    /// Logits [B·T, vocab] for token ids [B, T].
    pub fn forward(&self, idx: &Tensor, dropout: Dropout) -> Result<Tensor> {
        let (_, t) = idx.dims2()?;
        let mut x = self.embed(idx, dropout)?;
        for layer in 0..self.config.n_layer {
            x = self.block(layer, &x, t, dropout)?;
        }
        self.head(&x)
    }

    /// Token plus position embeddings, [B·T, d].
    fn embed(&self, idx: &Tensor, dropout: Dropout) -> Result<Tensor> {
        let (b, t) = idx.dims2()?;
        let c = &self.config;
        if t > c.context {
            bail!(
                "sequence of {t} tokens is longer than the context ({})",
                c.context
            );
        }
        // A sequence's embeddings as one row of T·d, the positions as its bias: the fused bias
        // add sums the positions' gradient over the batch in candle's order.
        let d = c.d_model;
        let tok = self
            .p(0)
            .index_select(&idx.flatten_all()?, 0)?
            .reshape((b, t * d))?;
        let pos = self.p(1).narrow(0, 0, t)?.reshape(t * d)?;
        let x = kernels::bias_add(&tok, &pos, None)?.reshape((b * t, d))?;
        self.drop(x, dropout, 0)
    }

    /// Transformer block `layer` on x [B·T, d] (sequences of `t` rows): `x + attn(ln_1(x))`, then
    /// `x + mlp(ln_2(x))`.
    fn block(&self, layer: usize, x: &Tensor, t: usize, dropout: Dropout) -> Result<Tensor> {
        let c = &self.config;
        let w = |k: usize| self.p(2 + layer * 12 + k);
        let h = kernels::layer_norm(x, w(0), w(1), 1e-5)?;
        let qkv = self.linear(&h, w(2), w(3))?;
        let y = kernels::causal_attention_rows(&qkv, t, c.n_head)?;
        let x = self.residual(x, (&y, w(4), w(5)), dropout, 1 + 2 * layer as u64)?;
        let h = kernels::layer_norm(&x, w(6), w(7), 1e-5)?;
        let h = kernels::bias_gelu(&self.mm(&h, w(8))?, w(9))?;
        self.residual(&x, (&h, w(10), w(11)), dropout, 2 + 2 * layer as u64)
    }

    /// Final LayerNorm and the tied output head: logits [B·T, vocab].
    fn head(&self, x: &Tensor) -> Result<Tensor> {
        let n = self.params.len();
        let x = kernels::layer_norm(x, self.p(n - 2), self.p(n - 1), 1e-5)?;
        self.mm(&x, &self.p(0).t()?)
    }

    /// Dropout at `site` (a fixed number per place in the network, so masks are reproducible).
    fn drop(&self, x: Tensor, dropout: Dropout, site: u64) -> Result<Tensor> {
        match dropout.seed {
            Some(seed) if self.config.dropout > 0.0 => dropout_mask(
                &x,
                self.config.dropout,
                seed.wrapping_mul(1_000_003).wrapping_add(site),
            ),
            _ => Ok(x),
        }
    }

    /// Mean cross-entropy of next-token prediction on windows [B, T+1] (inputs and targets).
    pub fn loss(&self, windows: &Tensor, dropout: Dropout) -> Result<Tensor> {
        let (inputs, targets) = split_windows(windows)?;
        let logits = self.forward(&inputs, dropout)?;
        Ok(kernels::cross_entropy(&logits, &targets)?)
    }

    /// Loss and every parameter's gradient (in parameter order) with gradient checkpointing.
    ///
    /// The forward pass keeps only each block's input, cut from the graph. The backward pass
    /// then walks the blocks from last to first: it recomputes block i from its saved input
    /// (made a `Var` so the gradient reaches it), and back-propagates the surrogate
    /// `sum(y_i · g_{i+1})`, whose gradient with respect to the block's output y_i is exactly
    /// g_{i+1}, the gradient arriving from above. So one block's activations are alive at a
    /// time instead of all of them, for one extra forward pass of the blocks.
    pub fn loss_and_grads_checkpointed(
        &self,
        windows: &Tensor,
        dropout: Dropout,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (inputs, targets) = split_windows(windows)?;
        let (_, t) = inputs.dims2()?;
        let mut saved = vec![self.embed(&inputs, dropout)?.detach()];
        for layer in 0..self.config.n_layer {
            let y = self.block(layer, &saved[layer], t, dropout)?.detach();
            saved.push(y);
        }
        let top = Var::from_tensor(saved.last().expect("embedding"))?;
        let loss = kernels::cross_entropy(&self.head(top.as_tensor())?, &targets)?;
        let mut grads: Vec<Option<Tensor>> = vec![None; self.params.len()];
        let mut g_above = {
            // Scoped: the head's GradStore holds the logits' gradient (B·T·vocab floats),
            // which must not stay alive through the block loop.
            let gs = loss.backward()?;
            self.take_grads(&gs, &mut grads)?;
            grad_of(&gs, &top)?
        };
        // Only the value is returned: the loss's graph holds the logits.
        let loss = loss.detach();
        for layer in (0..self.config.n_layer).rev() {
            let x = Var::from_tensor(&saved[layer])?;
            let y = self.block(layer, x.as_tensor(), t, dropout)?;
            let gs = (y * &g_above)?.sum_all()?.backward()?;
            self.take_grads(&gs, &mut grads)?;
            g_above = grad_of(&gs, &x)?;
        }
        let gs = (self.embed(&inputs, dropout)? * &g_above)?
            .sum_all()?
            .backward()?;
        self.take_grads(&gs, &mut grads)?;
        let grads = grads
            .into_iter()
            .zip(&self.params)
            .map(|(g, (name, _))| {
                g.ok_or_else(|| anyhow::anyhow!("parameter `{name}` received no gradient"))
            })
            .collect::<Result<_>>()?;
        Ok((loss, grads))
    }

    /// Add the gradients `gs` holds for parameters into `acc` (the tied embedding gets one
    /// from the head and one from the input).
    fn take_grads(
        &self,
        gs: &candle_core::backprop::GradStore,
        acc: &mut [Option<Tensor>],
    ) -> Result<()> {
        for (slot, (_, var)) in acc.iter_mut().zip(&self.params) {
            if let Some(g) = gs.get(var.as_tensor()) {
                // Detached: a gradient computed from forward activations carries the op that
                // made it, which would keep this block's whole forward graph alive (measured:
                // +280 MB per gpt2-small block at 2,048 tokens, i.e. no saving at all).
                let g = g.detach();
                *slot = Some(match slot.take() {
                    None => g,
                    Some(prev) => (prev + g)?,
                });
            }
        }
        Ok(())
    }

    /// All parameters as named tensors (for safetensors).
    pub fn tensors(&self) -> std::collections::HashMap<String, Tensor> {
        self.params
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }
}

/// Inputs [B, T] and flattened targets [B·T] of windows [B, T+1].
fn split_windows(windows: &Tensor) -> Result<(Tensor, Tensor)> {
    let (_, t1) = windows.dims2()?;
    let inputs = windows.narrow(1, 0, t1 - 1)?.contiguous()?;
    let targets = windows.narrow(1, 1, t1 - 1)?.flatten_all()?.contiguous()?;
    Ok((inputs, targets))
}

/// The gradient `gs` holds for `v` (a block boundary).
fn grad_of(gs: &candle_core::backprop::GradStore, v: &Var) -> Result<Tensor> {
    gs.get(v.as_tensor())
        .map(|g| g.detach())
        .ok_or_else(|| anyhow::anyhow!("no gradient reached a block boundary"))
}

/// Inverted dropout with a mask drawn from a seeded generator, so a resumed run draws the same
/// masks as an uninterrupted one.
fn dropout_mask(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keep = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.gen::<f32>() < p { 0.0 } else { keep })
        .collect();
    Ok(x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)?)
}
