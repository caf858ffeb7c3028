//! # The training ops off the CPU (a GPU), with their backward passes
//!
//! [`super::kernels`] runs fused CPU kernels on f32 CPU tensors; everywhere else it used to run
//! [`super::kernels::reference`], every op composed from differentiable candle ops. On an H200
//! that trained gpt2-small (batch 16 x 1024) at 1.3% MFU and held 136 GB: the attention
//! softmax alone is ~10 elementwise passes forward and ~20 backward over a [B, H, T, T] tensor
//! (805 MB per layer), each pass a kernel, several of them kept alive for the backward; the
//! loss, the same over the [B·T, V] logits (3.3 GB).
//!
//! Here the forward of softmax and of LayerNorm's normalisation is candle-nn's one-pass fused
//! kernel (forward-only in candle-nn), and their backward is attached by [`with_grad`]: a custom
//! op whose value is the fused kernel's output and whose gradient is the function's closed
//! form, computed from that output (softmax: `y ⊙ (g − Σ g⊙y)`; normalisation:
//! `rstd · (g − mean g − ŷ · mean(g ⊙ ŷ))`). The loss's forward is log-sum-exp minus the target
//! logit with no graph, and its backward `(softmax(x) − onehot) · g`. The causal mask is built
//! on the device, and the `1/√hd` scale is applied to q ([B, H, T, hd]) rather than to the
//! scores ([B, H, T, T]).
//!
//! Not yet as lean as it should be: [`with_grad`] is a two-input custom op, so the graph keeps
//! the input x as well as the output, and its forward copies the precomputed output once. A
//! one-input op that launches the fused kernel itself and differentiates from its result would
//! keep only y (for the softmax, a third of what the scores cost now).
//!
//! Everything here also runs on the CPU (candle-nn's ops have CPU kernels), which is how the
//! tests check it against [`super::kernels::reference`], forward and backward.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, D};

/// The backward rule [`with_grad`] attaches.
#[derive(Clone)]
enum Rule {
    /// `y = softmax(x)` over the last dimension.
    Softmax,
    /// `y = (x − mean) / sqrt(var + eps)` over the last dimension.
    Normalize { eps: f64 },
    /// `y[i] = −log softmax(x[i])[targets[i]]` (rows of logits `x`).
    Nll { targets: Tensor },
}

/// A value `y` computed without a graph, returned as a tensor equal to `y` whose gradient with
/// respect to `x` follows `rule`.
struct WithGrad(Rule);

fn whole(l: &Layout) -> Result<()> {
    match l.contiguous_offsets() {
        Some((0, n)) if n == l.shape().elem_count() => Ok(()),
        _ => bail!("with_grad: the precomputed value must be a fresh contiguous tensor"),
    }
}

impl CustomOp2 for WithGrad {
    fn name(&self) -> &'static str {
        "with-grad"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        y: &CpuStorage,
        l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        whole(l)?;
        Ok((y.try_clone(l)?, l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        y: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        whole(l)?;
        Ok((y.try_clone(l)?, l.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _: &Tensor,
        y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let gx = match &self.0 {
            Rule::Softmax => {
                let dot = (g * y)?.sum_keepdim(D::Minus1)?;
                (g.broadcast_sub(&dot)? * y)?
            }
            Rule::Normalize { eps } => {
                let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
                let rstd = (xc.sqr()?.mean_keepdim(D::Minus1)? + *eps)?
                    .sqrt()?
                    .recip()?;
                let mg = g.mean_keepdim(D::Minus1)?;
                let mgy = (g * y)?.mean_keepdim(D::Minus1)?;
                g.broadcast_sub(&mg)?
                    .sub(&y.broadcast_mul(&mgy)?)?
                    .broadcast_mul(&rstd)?
            }
            Rule::Nll { targets } => {
                let p = candle_nn::ops::softmax_last_dim(&x.contiguous()?)?;
                let idx = targets.unsqueeze(1)?;
                let minus_one = Tensor::full(-1f32, (idx.dim(0)?, 1), x.device())?;
                p.scatter_add(&idx, &minus_one, 1)?
                    .broadcast_mul(&g.unsqueeze(1)?)?
            }
        };
        Ok((Some(gx), None))
    }
}

/// `y` (computed from `x` without a graph), differentiable in `x` by `rule`.
fn with_grad(x: &Tensor, y: Tensor, rule: Rule) -> Result<Tensor> {
    x.apply_op2(&y, WithGrad(rule))
}

/// Softmax over the last dimension: one fused pass forward, `y ⊙ (g − Σ g⊙y)` backward.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let y = candle_nn::ops::softmax_last_dim(&x.detach().contiguous()?)?;
    with_grad(x, y, Rule::Softmax)
}

/// LayerNorm over the last dimension: the normalisation fused (forward) with its closed-form
/// backward, then the gain and bias as ordinary differentiable ops.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let (one, zero) = (
        Tensor::ones(d, DType::F32, x.device())?,
        Tensor::zeros(d, DType::F32, x.device())?,
    );
    // Centred first: candle's kernel takes the variance in one pass as E[x²] − mean², which
    // cancels catastrophically on rows with a large mean (the backward's rstd is two-pass).
    let xd = x.detach();
    let xc = xd
        .broadcast_sub(&xd.mean_keepdim(D::Minus1)?)?
        .contiguous()?;
    let y = candle_nn::ops::layer_norm(&xc, &one, &zero, eps as f32)?;
    with_grad(x, y, Rule::Normalize { eps })?
        .broadcast_mul(weight)?
        .broadcast_add(bias)
}

/// The causal mask `[t, t]` built on the device: 0 where `j <= i`, −∞ where `j > i`.
fn causal_mask(t: usize, device: &candle_core::Device) -> Result<Tensor> {
    let i = Tensor::arange(0u32, t as u32, device)?;
    let future = i.unsqueeze(0)?.broadcast_gt(&i.unsqueeze(1)?)?;
    let ninf = Tensor::full(f32::NEG_INFINITY, (t, t), device)?;
    future.where_cond(&ninf, &Tensor::zeros((t, t), DType::F32, device)?)
}

/// Causal multi-head self-attention on `qkv` `[B, T, 3·d]` (the layout of
/// [`super::kernels::causal_attention`]).
pub fn causal_attention(qkv: &Tensor, n_head: usize) -> Result<Tensor> {
    let (b, t, c3) = qkv.dims3()?;
    let (q, k, v, hd) = super::kernels::reference::split_heads(qkv, n_head)?;
    let q = (q * (1.0 / (hd as f64).sqrt()))?;
    let scores = q
        .matmul(&k.t()?)?
        .broadcast_add(&causal_mask(t, qkv.device())?)?;
    softmax_last_dim(&scores)?
        .matmul(&v)?
        .transpose(1, 2)?
        .reshape((b, t, c3 / 3))
}

/// `−log softmax(logits)[target]` per row, without a graph: log-sum-exp minus the target logit.
pub fn per_row_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let x = logits.detach();
    let max = x.max_keepdim(D::Minus1)?;
    let lse = x
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        .add(&max)?;
    let picked = x.gather(&targets.unsqueeze(1)?, 1)?;
    lse.sub(&picked)?.squeeze(1)
}

/// Mean negative log-likelihood of `targets` under `logits` `[N, V]`, differentiable in
/// `logits` with the backward `(softmax − onehot) / N`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let nll = per_row_nll(logits, targets)?;
    let rows = with_grad(
        logits,
        nll,
        Rule::Nll {
            targets: targets.clone(),
        },
    )?;
    rows.mean_all()
}
