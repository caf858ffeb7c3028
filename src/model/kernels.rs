//! # Fused CPU kernels, with their backward passes
//!
//! candle trains a small GPT on the CPU at 13-30 GFLOP/s although its f32 matrix multiply runs
//! at ~110 GFLOP/s. Two reasons:
//!
//! 1. `candle_nn::LayerNorm::forward` (on contiguous input) and `candle_nn::ops::softmax_last_dim`
//!    are forward-only custom ops (`apply_op*_no_bwd`): no gradient flows through them, silently.
//! 2. The differentiable compositions (softmax as exp / sum / div, GELU's backward, masks,
//!    log-softmax) are long chains of single-threaded elementwise passes, each allocating a
//!    fresh tensor.
//!
//! This module replaces the non-matmul parts of a GPT-2 block by a handful of fused kernels, in
//! the spirit of llm.c: one pass (or two) over the data per kernel, rows in parallel with rayon,
//! and a hand-written backward that is itself a fused kernel.
//!
//! | kernel               | forward                          | backward gives            |
//! |----------------------|----------------------------------|---------------------------|
//! | [`layer_norm`]       | `(x - mean) / sqrt(var + eps) * w + b` per row | dx, dw, db  |
//! | [`gelu`]             | GPT-2's tanh GELU (`gelu_new`)   | dx                        |
//! | [`bias_gelu`]        | `gelu(x + b)`                    | dx, db                    |
//! | [`bias_add`]         | `h + b`, or `x + (h + b)` with a residual | (dx,) dh, db     |
//! | [`causal_attention`] | softmax(QKᵀ/√hd + causal mask)·V  | d(qkv)                    |
//! | [`causal_attention_rows`] | the same on `[B·T, 3·d]` rows | d(qkv)                    |
//! | [`cross_entropy`]    | mean NLL of the targets          | dlogits                   |
//! | [`per_row_nll`]      | NLL of each row (evaluation)     | (none)                    |
//!
//! Every public function takes candle `Tensor`s. On a CPU with f32 data it runs the fused
//! kernel; anywhere else (CUDA behind the `cuda` feature, or another dtype) it runs
//! [`super::device_ops`]: candle's fused forward kernels with closed-form backward passes, so
//! GPU training gets gradients without composing softmax and LayerNorm op by op. [`reference`]
//! writes the same maths with plain differentiable candle ops; the tests compare both paths
//! with it, forward and backward.
//!
//! **Determinism.** Every result is bit-identical run to run *and for any number of threads*:
//! work is split into pieces whose boundaries do not depend on the thread count, no piece
//! reads another's output, and sums across rows (dweight, dbias) are taken over fixed chunks of
//! rows whose partial sums are then added in chunk order on one thread; except in [`bias_add`],
//! whose bias gradient is candle's own sum (each column from row 0 down, columns split across
//! tasks), so that it stays bit-identical to the `broadcast_add` it replaced.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result};
use candle_core::{Shape, Tensor};
use rayon::prelude::*;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Layer normalisation over the last dimension: `x` is `[..., d]`, `weight` and `bias` are `[d]`.
///
/// Differentiable with respect to all three inputs (unlike `candle_nn::LayerNorm::forward`).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if cpu_f32(&[x, weight, bias]) {
        let op = LayerNorm { eps: eps as f32 };
        x.contiguous()?
            .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)
    } else {
        super::device_ops::layer_norm(x, weight, bias, eps)
    }
}

/// GPT-2's GELU, the tanh approximation (`gelu_new` in Hugging Face):
/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if cpu_f32(&[x]) {
        x.contiguous()?.apply_op1(Gelu)
    } else {
        // candle's own tanh GELU: one fused kernel forward on CUDA, and differentiable.
        x.gelu()
    }
}

/// `gelu(x + b)` with `x` `[..., d]` and `b` `[d]`: the bias of the MLP's first linear layer,
/// added inside the GELU pass instead of in a pass of its own.
pub fn bias_gelu(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if cpu_f32(&[x, b]) {
        x.contiguous()?.apply_op2(&b.contiguous()?, BiasGelu)
    } else {
        x.broadcast_add(b)?.gelu()
    }
}

/// `h + b` with `h` `[N, d]` and `b` `[d]` (the bias of a linear layer), or `x + (h + b)` when a
/// residual `x` (`[N, d]`) is given: a block's output projection added to its residual stream.
///
/// Measured reason (mini-1m, 2 cores): candle's `broadcast_add` makes a broadcast node whose
/// backward sums the gradient over rows with one division per element on one thread, and every
/// node costs a zeroed gradient buffer plus an add in candle's backward. One node instead of
/// two or three. The arithmetic is candle's to the bit: the same two roundings forward, and the
/// bias gradient summed down each column from row 0 (candle's order), so runs trained before
/// this kernel existed still reproduce bit for bit.
pub fn bias_add(h: &Tensor, b: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
    match residual {
        None if cpu_f32(&[h, b]) => h.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd),
        None => h.broadcast_add(b),
        Some(x) if cpu_f32(&[x, h, b]) => {
            x.contiguous()?
                .apply_op3(&h.contiguous()?, &b.contiguous()?, ResidualBiasAdd)
        }
        Some(x) => x + h.broadcast_add(b)?,
    }
}

/// Causal multi-head self-attention on the output of a fused QKV projection.
///
/// `qkv` is `[B, T, 3·d]`: columns `0..d` hold q for all heads, `d..2d` k and `2d..3d` v, and
/// head `h` owns columns `h·hd..(h+1)·hd` of each (`hd = d / n_head`). The result is `[B, T, d]`
/// with the heads merged back in the same column layout, ready for the output projection.
/// Scores are scaled by `1/√hd`; position `i` attends to positions `0..=i`.
pub fn causal_attention(qkv: &Tensor, n_head: usize) -> Result<Tensor> {
    if cpu_f32(&[qkv]) {
        let (_, _, c3) = qkv.dims3()?;
        check_heads(c3, n_head)?;
        qkv.contiguous()?.apply_op1(CausalAttention {
            n_head,
            seq: None,
            stats: OnceLock::new(),
        })
    } else {
        super::device_ops::causal_attention(qkv, n_head)
    }
}

/// [`causal_attention`] on rows, the model's layout: `qkv` `[B·T, 3·d]` holding sequences of `t`
/// rows each, the result `[B·T, d]`. On the CPU it is the same kernel without a reshape on either
/// side: a reshape is a graph node, and every node costs a zeroed gradient and an add in candle's
/// backward (4 MB of each per mini-1m layer and step).
pub fn causal_attention_rows(qkv: &Tensor, t: usize, n_head: usize) -> Result<Tensor> {
    let (n, c3) = qkv.dims2()?;
    if t == 0 || !n.is_multiple_of(t) {
        bail!("causal_attention: {n} rows are not whole sequences of {t}")
    }
    if cpu_f32(&[qkv]) {
        check_heads(c3, n_head)?;
        qkv.contiguous()?.apply_op1(CausalAttention {
            n_head,
            seq: Some(t),
            stats: OnceLock::new(),
        })
    } else {
        causal_attention(&qkv.reshape((n / t, t, c3))?, n_head)?.reshape((n, c3 / 3))
    }
}

/// (batch, sequence length, 3·d) of an attention input: `[B, T, 3·d]`, or rows `[B·T, 3·d]` in
/// sequences of `seq`.
fn attention_dims(l: &Layout, seq: Option<usize>) -> Result<(usize, usize, usize)> {
    match seq {
        None => l.shape().dims3(),
        Some(t) => {
            let (n, c3) = l.shape().dims2()?;
            Ok((n / t, t, c3))
        }
    }
}

/// Mean negative log-likelihood of `targets` (`[N]`, u32 or i64) under `logits` (`[N, V]`):
/// the usual language-modelling loss, a scalar (shape `[]`). Differentiable in `logits`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if cpu_f32(&[logits]) && index_dtype(targets) {
        logits.contiguous()?.apply_op2(
            &targets.contiguous()?,
            CrossEntropy {
                lse: OnceLock::new(),
            },
        )
    } else {
        super::device_ops::cross_entropy(logits, targets)
    }
}

/// The negative log-likelihood of each row's target, `[N]`, for evaluation (no backward; sum
/// it for a token-weighted mean over many batches).
pub fn per_row_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if cpu_f32(&[logits]) && index_dtype(targets) {
        logits
            .contiguous()?
            .apply_op2_no_bwd(&targets.contiguous()?, &PerRowNll)
    } else {
        super::device_ops::per_row_nll(logits, targets)
    }
}

fn cpu_f32(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

fn index_dtype(t: &Tensor) -> bool {
    matches!(t.dtype(), DType::U32 | DType::I64)
}

fn check_heads(c3: usize, n_head: usize) -> Result<()> {
    if n_head == 0 || !c3.is_multiple_of(3 * n_head) {
        bail!("causal_attention: last dim {c3} is not 3 * n_head * head_dim (n_head = {n_head})")
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reference implementations: plain differentiable candle ops (the tests' oracle)
// ---------------------------------------------------------------------------------------------

/// The same maths as the fused kernels, composed from ordinary differentiable candle ops: what
/// the tests and the benchmark compare the CPU kernels and [`super::device_ops`] with.
pub mod reference {
    use candle_core::{Result, Tensor, D};

    pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
        xn.broadcast_mul(weight)?.broadcast_add(bias)
    }

    /// The tanh GELU written out op by op (candle's `Tensor::gelu` is the same function with a
    /// built-in backward; this spelled-out form is an independent check of both).
    pub fn gelu(x: &Tensor) -> Result<Tensor> {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        let inner = ((x.sqr()?.mul(x)? * 0.044715)? + x)?;
        let t = (inner * c)?.tanh()?;
        (x * 0.5)?.mul(&(t + 1.0)?)
    }

    pub fn bias_gelu(x: &Tensor, b: &Tensor) -> Result<Tensor> {
        gelu(&x.broadcast_add(b)?)
    }

    /// Softmax over the last dimension from exp / sum / div (differentiable, unlike
    /// `candle_nn::ops::softmax_last_dim`). The row maximum is subtracted for range only; the
    /// result does not depend on it, so it is detached.
    pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
        let max = x.max_keepdim(D::Minus1)?.detach();
        let e = x.broadcast_sub(&max)?.exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
    }

    pub fn log_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
        let max = x.max_keepdim(D::Minus1)?.detach();
        let xs = x.broadcast_sub(&max)?;
        xs.broadcast_sub(&xs.exp()?.sum_keepdim(D::Minus1)?.log()?)
    }

    /// q, k and v of a fused QKV projection `[B, T, 3·d]`, each `[B, n_head, T, hd]`
    /// (contiguous), and `hd`.
    pub fn split_heads(qkv: &Tensor, n_head: usize) -> Result<(Tensor, Tensor, Tensor, usize)> {
        let (b, t, c3) = qkv.dims3()?;
        super::check_heads(c3, n_head)?;
        let d = c3 / 3;
        let hd = d / n_head;
        let head = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * d, d)?
                .reshape((b, t, n_head, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        Ok((head(0)?, head(1)?, head(2)?, hd))
    }

    pub fn causal_attention(qkv: &Tensor, n_head: usize) -> Result<Tensor> {
        let (b, t, c3) = qkv.dims3()?;
        let d = c3 / 3;
        let (q, k, v, hd) = split_heads(qkv, n_head)?;
        let att = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let mask: Vec<f32> = (0..t * t)
            .map(|ij| {
                if ij % t > ij / t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), qkv.device())?.to_dtype(qkv.dtype())?;
        let att = softmax_last_dim(&att.broadcast_add(&mask)?)?;
        att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))
    }

    pub fn per_row_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logp = log_softmax_last_dim(logits)?;
        logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?.neg()
    }

    pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        per_row_nll(logits, targets)?.mean_all()
    }
}

// ---------------------------------------------------------------------------------------------
// Vector helpers
// ---------------------------------------------------------------------------------------------
//
// Rust (rightly) never reorders float additions, so a plain `xs.iter().sum()` is a serial chain
// of dependent adds: one add every ~4 cycles, no SIMD. Keeping LANES independent partial sums in
// a fixed-size array lets LLVM put them in one AVX-512 register. The order of additions is still
// fixed by the code, so results stay deterministic.

const LANES: usize = 16;

/// Add the lanes in a fixed pairwise tree.
#[inline(always)]
fn reduce_lanes(mut acc: [f32; LANES]) -> f32 {
    let mut w = LANES / 2;
    while w > 0 {
        for k in 0..w {
            acc[k] += acc[k + w];
        }
        w /= 2;
    }
    acc[0]
}

#[inline]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut it = xs.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            acc[k] += c[k];
        }
    }
    it.remainder().iter().fold(reduce_lanes(acc), |s, &x| s + x)
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let mut ia = a.chunks_exact(LANES);
    let mut ib = b.chunks_exact(LANES);
    for (ca, cb) in (&mut ia).zip(&mut ib) {
        for k in 0..LANES {
            acc[k] += ca[k] * cb[k];
        }
    }
    let tail = ia.remainder().iter().zip(ib.remainder());
    tail.fold(reduce_lanes(acc), |s, (&x, &y)| s + x * y)
}

/// Sum of squared deviations from `mean` (the numerator of the variance).
#[inline]
fn sum_sq_dev(xs: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut it = xs.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            let e = c[k] - mean;
            acc[k] += e * e;
        }
    }
    let tail = it.remainder().iter();
    tail.fold(reduce_lanes(acc), |s, &x| s + (x - mean) * (x - mean))
}

/// Largest element (`-inf` for an empty slice). Written as a compare-and-select, which maps to
/// `vmaxps`; `f32::max` has NaN rules that keep LLVM from vectorising.
#[inline]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut it = xs.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            acc[k] = if c[k] > acc[k] { c[k] } else { acc[k] };
        }
    }
    let m = acc
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    it.remainder()
        .iter()
        .fold(m, |m, &x| if x > m { x } else { m })
}

/// `xs[i] = exp(xs[i] - shift)` in place; returns the sum of the new values.
#[inline]
fn exp_shift_in_place(xs: &mut [f32], shift: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut it = xs.chunks_exact_mut(LANES);
    for c in &mut it {
        for k in 0..LANES {
            c[k] = fast_exp(c[k] - shift);
            acc[k] += c[k];
        }
    }
    it.into_remainder()
        .iter_mut()
        .fold(reduce_lanes(acc), |s, x| {
            *x = fast_exp(*x - shift);
            s + *x
        })
}

/// `sum_i exp(xs[i] - shift)`, leaving `xs` alone.
#[inline]
fn sum_exp_shift(xs: &[f32], shift: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut it = xs.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            acc[k] += fast_exp(c[k] - shift);
        }
    }
    let tail = it.remainder().iter();
    tail.fold(reduce_lanes(acc), |s, &x| s + fast_exp(x - shift))
}

/// `a·b + c`, as one fused instruction when the build targets FMA (this crate builds with
/// `target-cpu=native`), else as two. Never the slow software `fmaf` that `f32::mul_add`
/// becomes without hardware FMA.
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(target_feature = "fma")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(target_feature = "fma"))]
    {
        a * b + c
    }
}

/// `exp(x)` to within ~2 ulp, branch-free so that loops over slices vectorise (the standard
/// library's `expf` is a scalar libm call and would dominate softmax and cross-entropy).
///
/// Cephes' method: write `x = n·ln2 + r` with integer `n` and `|r| ≤ ln2/2`, so
/// `exp(x) = 2ⁿ · exp(r)`; `exp(r)` is a degree-6 polynomial and `2ⁿ` is built directly in the
/// float's exponent bits. Inputs are clamped so that `2ⁿ` stays a normal float: below -87.3 the
/// result is ~1e-38 instead of a denormal or 0 (harmless next to the ≥ 1 sums of a softmax), and
/// the largest finite results are kept. NaN stays NaN, so a diverging run still shows it.
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4; // ln 2 split in two so that n·LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = fma(-n, LN2_LO, fma(-n, LN2_HI, x));
    let mut p = 1.987_569_1e-4;
    p = fma(p, r, 1.398_199_9e-3);
    p = fma(p, r, 8.333_452e-3);
    p = fma(p, r, 4.166_579_6e-2);
    p = fma(p, r, 1.666_666_5e-1);
    p = fma(p, r, 0.5);
    let exp_r = fma(p, r * r, r + 1.0);
    // 2ⁿ, built in the exponent field. `n as i32` would not vectorise (Rust's float-to-int cast
    // saturates and maps NaN to 0, lane by lane), so: n + 127 is a whole number in [1, 254], and
    // adding 2²³ to it leaves exactly that number in the low mantissa bits of the float sum.
    let biased = (n + (127.0 + 8_388_608.0))
        .to_bits()
        .wrapping_sub(0x4B00_0000);
    exp_r * f32::from_bits(biased << 23)
}

/// `tanh(u) = 1 - 2 / (exp(2u) + 1)`: saturates cleanly to ±1 for large |u|; the absolute error
/// near 0 (~1e-7) is what matters inside GELU.
#[inline(always)]
fn fast_tanh(u: f32) -> f32 {
    1.0 - 2.0 / (fast_exp(2.0 * u) + 1.0)
}

/// Borrow the f32 data of a contiguous CPU input.
fn f32_data<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => bail!("{what}: expected f32 data"),
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: input must be contiguous"),
    }
}

/// Targets as row indices, checked against the vocabulary size.
fn targets_data(s: &CpuStorage, l: &Layout, n: usize, v: usize, what: &str) -> Result<Vec<usize>> {
    let Some((start, end)) = l.contiguous_offsets() else {
        bail!("{what}: targets must be contiguous")
    };
    let ts: Vec<usize> = match s {
        CpuStorage::U32(t) => t[start..end].iter().map(|&x| x as usize).collect(),
        CpuStorage::I64(t) => t[start..end]
            .iter()
            .map(|&x| usize::try_from(x).unwrap_or(usize::MAX))
            .collect(),
        _ => bail!("{what}: targets must be u32 or i64"),
    };
    if v == 0 {
        bail!("{what}: logits have an empty vocabulary dimension")
    }
    if ts.len() != n {
        bail!("{what}: {} targets for {n} rows of logits", ts.len())
    }
    if let Some(&bad) = ts.iter().find(|&&t| t >= v) {
        bail!("{what}: target {bad} out of range for a vocabulary of {v}")
    }
    Ok(ts)
}

/// Last dimension and number of rows of a `[..., d]` input.
fn rows_of(l: &Layout, what: &str) -> Result<(usize, usize)> {
    let d = match l.dims().last() {
        Some(&d) if d > 0 => d,
        _ => bail!("{what}: input needs a non-empty last dimension"),
    };
    Ok((l.shape().elem_count() / d, d))
}

/// How many elements one rayon task handles in the elementwise kernels: big enough to hide the
/// scheduling cost, small enough to balance two cores.
const ELEMS_PER_TASK: usize = 1 << 14;
/// Rows per rayon task in row-wise kernels without cross-row sums.
const ROWS_PER_TASK: usize = 16;
/// Rows per partial sum when summing *across* rows (dweight, dbias). A constant, never derived
/// from the thread count, so the order of every float addition is fixed: partials are computed
/// in parallel, then added in chunk order on one thread.
const ROWS_PER_PARTIAL: usize = 32;

/// Sum per-chunk partial vectors (each `len` long) in chunk order.
fn add_partials(partials: &[Vec<f32>], len: usize) -> Vec<f32> {
    let mut total = vec![0f32; len];
    for p in partials {
        for (t, x) in total.iter_mut().zip(p) {
            *t += x;
        }
    }
    total
}

/// Split a tensor packed as `[a | b | c]` (flat, as a backward op returns several gradients in
/// one buffer) into views with the given shapes. `narrow` + `reshape` of contiguous data are
/// views, not copies.
fn unpack(packed: &Tensor, shapes: &[&Shape]) -> Result<Vec<Tensor>> {
    let mut start = 0;
    let mut out = Vec::with_capacity(shapes.len());
    for s in shapes {
        let n = s.elem_count();
        out.push(packed.narrow(0, start, n)?.reshape(*s)?);
        start += n;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Layer norm
// ---------------------------------------------------------------------------------------------
//
// Forward, per row of d:   mean = Σx/d,  rstd = 1/√(Σ(x-mean)²/d + eps),
//                          n = (x - mean)·rstd,  y = n·w + b.
// Backward (llm.c's layernorm_backward), with g = dL/dy:
//   db += g,  dw += n·g   (sums over rows: fixed chunks, see ROWS_PER_PARTIAL)
//   dn  = w·g
//   dx  = rstd · (dn - mean(dn) - n·mean(dn·n))
// The two means come from differentiating through mean and rstd, which depend on every x of
// the row. mean and rstd are recomputed in the backward rather than cached: it costs two quick
// passes over a row that is being read anyway.

struct LayerNorm {
    eps: f32,
}

#[inline]
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let d = x.len() as f32;
    let mean = sum(x) / d;
    let var = sum_sq_dev(x, mean) / d;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "synthlm-layer-norm"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "layer_norm")?;
        let w = f32_data(sw, lw, "layer_norm weight")?;
        let b = f32_data(sb, lb, "layer_norm bias")?;
        let (_, d) = rows_of(lx, "layer_norm")?;
        if w.len() != d || b.len() != d {
            bail!(
                "layer_norm: weight/bias have {}/{} elements, rows have {d}",
                w.len(),
                b.len()
            )
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(ROWS_PER_TASK * d)
            .zip(x.par_chunks(ROWS_PER_TASK * d))
            .for_each(|(ys, xs)| {
                for (yr, xr) in ys.chunks_exact_mut(d).zip(xs.chunks_exact(d)) {
                    let (mean, rstd) = row_stats(xr, self.eps);
                    let yx = yr.iter_mut().zip(xr);
                    for ((y, &x), (&w, &b)) in yx.zip(w.iter().zip(b)) {
                        *y = (x - mean) * rstd * w + b;
                    }
                }
            });
        Ok((CpuStorage::F32(y), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let op = LayerNormBackward { eps: self.eps };
        let packed = x.apply_op3_no_bwd(w, &grad.contiguous()?, &op)?;
        let mut g = unpack(&packed, &[x.shape(), w.shape(), b.shape()])?.into_iter();
        Ok((g.next(), g.next(), g.next()))
    }
}

/// Inputs (x, w, dy); output `[dx | dw | db]` flattened.
struct LayerNormBackward {
    eps: f32,
}

impl CustomOp3 for LayerNormBackward {
    fn name(&self) -> &'static str {
        "synthlm-layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "layer_norm backward")?;
        let w = f32_data(sw, lw, "layer_norm backward")?;
        let g = f32_data(sg, lg, "layer_norm backward")?;
        let (_, d) = rows_of(lx, "layer_norm backward")?;
        let n = x.len();
        let mut out = vec![0f32; n + 2 * d];
        let (dx, dwb) = out.split_at_mut(n);
        // Each chunk of rows writes its dx rows and returns its partial [dw | db].
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(ROWS_PER_PARTIAL * d)
            .zip(x.par_chunks(ROWS_PER_PARTIAL * d))
            .zip(g.par_chunks(ROWS_PER_PARTIAL * d))
            .map(|((dxs, xs), gs)| {
                let mut part = vec![0f32; 2 * d];
                let (dw, db) = part.split_at_mut(d);
                let mut norm = vec![0f32; d];
                let mut dnorm = vec![0f32; d];
                let rows = dxs.chunks_exact_mut(d).zip(xs.chunks_exact(d));
                for ((dxr, xr), gr) in rows.zip(gs.chunks_exact(d)) {
                    let (mean, rstd) = row_stats(xr, self.eps);
                    // Every slice re-cut to exactly d, so LLVM drops the bounds checks.
                    let (xr, gr, w, dxr) = (&xr[..d], &gr[..d], &w[..d], &mut dxr[..d]);
                    let (dw, db) = (&mut dw[..d], &mut db[..d]);
                    let (norm, dnorm) = (&mut norm[..d], &mut dnorm[..d]);
                    for i in 0..d {
                        norm[i] = (xr[i] - mean) * rstd;
                        dnorm[i] = w[i] * gr[i];
                        db[i] += gr[i];
                        dw[i] += norm[i] * gr[i];
                    }
                    let dnorm_mean = sum(dnorm) / d as f32;
                    let dnorm_norm_mean = dot(dnorm, norm) / d as f32;
                    for i in 0..d {
                        dxr[i] = (dnorm[i] - dnorm_mean - norm[i] * dnorm_norm_mean) * rstd;
                    }
                }
                part
            })
            .collect();
        dwb.copy_from_slice(&add_partials(&partials, 2 * d));
        Ok((CpuStorage::F32(out), Shape::from(n + 2 * d)))
    }
}

// ---------------------------------------------------------------------------------------------
// GELU (tanh approximation)
// ---------------------------------------------------------------------------------------------
//
// y = 0.5·x·(1 + t),  t = tanh(u),  u = c·(x + a·x³),  c = √(2/π), a = 0.044715
// dy/dx = 0.5·(1 + t) + 0.5·x·(1 - t²)·c·(1 + 3a·x²)
// The backward recomputes t from x (cheaper than storing it: one exp per element).

const GELU_C: f32 = 0.797_884_6; // √(2/π)
const GELU_A: f32 = 0.044_715;

#[inline(always)]
fn gelu_scalar(x: f32) -> f32 {
    let u = GELU_C * x * (1.0 + GELU_A * x * x);
    0.5 * x * (1.0 + fast_tanh(u))
}

#[inline(always)]
fn gelu_grad_scalar(x: f32) -> f32 {
    let x2 = x * x;
    let t = fast_tanh(GELU_C * x * (1.0 + GELU_A * x2));
    let du_dx = GELU_C * (1.0 + 3.0 * GELU_A * x2);
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "synthlm-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(s, l, "gelu")?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(ELEMS_PER_TASK)
            .zip(x.par_chunks(ELEMS_PER_TASK))
            .for_each(|(ys, xs)| {
                for (y, &x) in ys.iter_mut().zip(xs) {
                    *y = gelu_scalar(x);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            x.apply_op2_no_bwd(&grad.contiguous()?, &GeluBackward)?,
        ))
    }
}

/// Inputs (x, dy); output dx = dy · gelu'(x).
struct GeluBackward;

impl CustomOp2 for GeluBackward {
    fn name(&self) -> &'static str {
        "synthlm-gelu-backward"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "gelu backward")?;
        let g = f32_data(sg, lg, "gelu backward")?;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(ELEMS_PER_TASK)
            .zip(x.par_chunks(ELEMS_PER_TASK))
            .zip(g.par_chunks(ELEMS_PER_TASK))
            .for_each(|((dxs, xs), gs)| {
                for ((dx, &x), &g) in dxs.iter_mut().zip(xs).zip(gs) {
                    *dx = g * gelu_grad_scalar(x);
                }
            });
        Ok((CpuStorage::F32(dx), lx.shape().clone()))
    }
}

/// `gelu(x + b)`, `b` broadcast over the rows of `x`.
struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "synthlm-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "bias_gelu")?;
        let b = f32_data(sb, lb, "bias_gelu bias")?;
        let (_, d) = rows_of(lx, "bias_gelu")?;
        if b.len() != d {
            bail!("bias_gelu: bias has {} elements, rows have {d}", b.len())
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(ROWS_PER_TASK * d)
            .zip(x.par_chunks(ROWS_PER_TASK * d))
            .for_each(|(ys, xs)| {
                for (yr, xr) in ys.chunks_exact_mut(d).zip(xs.chunks_exact(d)) {
                    for ((y, &x), &b) in yr.iter_mut().zip(xr).zip(b) {
                        *y = gelu_scalar(x + b);
                    }
                }
            });
        Ok((CpuStorage::F32(y), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let packed = x.apply_op3_no_bwd(b, &grad.contiguous()?, &BiasGeluBackward)?;
        let mut g = unpack(&packed, &[x.shape(), b.shape()])?.into_iter();
        Ok((g.next(), g.next()))
    }
}

/// Inputs (x, b, dy); output `[dx | db]` flattened, db = Σ_rows dx.
struct BiasGeluBackward;

impl CustomOp3 for BiasGeluBackward {
    fn name(&self) -> &'static str {
        "synthlm-bias-gelu-backward"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "bias_gelu backward")?;
        let b = f32_data(sb, lb, "bias_gelu backward")?;
        let g = f32_data(sg, lg, "bias_gelu backward")?;
        let (_, d) = rows_of(lx, "bias_gelu backward")?;
        let n = x.len();
        let mut out = vec![0f32; n + d];
        let (dx, db) = out.split_at_mut(n);
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(ROWS_PER_PARTIAL * d)
            .zip(x.par_chunks(ROWS_PER_PARTIAL * d))
            .zip(g.par_chunks(ROWS_PER_PARTIAL * d))
            .map(|((dxs, xs), gs)| {
                let mut db = vec![0f32; d];
                let rows = dxs.chunks_exact_mut(d).zip(xs.chunks_exact(d));
                for ((dxr, xr), gr) in rows.zip(gs.chunks_exact(d)) {
                    let (dxr, xr, gr, b, db) =
                        (&mut dxr[..d], &xr[..d], &gr[..d], &b[..d], &mut db[..d]);
                    for i in 0..d {
                        dxr[i] = gr[i] * gelu_grad_scalar(xr[i] + b[i]);
                        db[i] += dxr[i];
                    }
                }
                db
            })
            .collect();
        db.copy_from_slice(&add_partials(&partials, d));
        Ok((CpuStorage::F32(out), Shape::from(n + d)))
    }
}

// ---------------------------------------------------------------------------------------------
// Bias add, with or without a residual
// ---------------------------------------------------------------------------------------------
//
// Forward: y = h + b, or y = x + (h + b) (two roundings, in candle's order).
// Backward: dx = dy, dh = dy, db = Σ_rows dy, each column summed from row 0 down, as candle's
// `sum_keepdim(0)` does; the columns are split across tasks, the rows never are, so the sums
// are bit-identical to candle's for any thread count.

/// Columns per task in [`column_sums`]: 16 floats, one cache line per row.
const COLS_PER_TASK: usize = 16;

/// `y[r] = x[r] + (h[r] + b)` (or `h[r] + b` without `x`), rows in parallel.
fn bias_add_rows(x: Option<&[f32]>, h: &[f32], b: &[f32]) -> Vec<f32> {
    let d = b.len();
    let mut y = vec![0f32; h.len()];
    y.par_chunks_mut(ROWS_PER_TASK * d)
        .enumerate()
        .for_each(|(chunk, ys)| {
            let start = chunk * ROWS_PER_TASK * d;
            let hs = &h[start..start + ys.len()];
            for (yr, hr) in ys.chunks_exact_mut(d).zip(hs.chunks_exact(d)) {
                for ((y, &h), &b) in yr.iter_mut().zip(hr).zip(b) {
                    *y = h + b;
                }
            }
            if let Some(x) = x {
                for (y, &x) in ys.iter_mut().zip(&x[start..start + hs.len()]) {
                    *y += x; // x + (h + b): addition commutes exactly
                }
            }
        });
    y
}

/// Σ over rows of `g` (`[N, d]`), per column in row order from 0.0.
fn column_sums(g: &[f32], d: usize) -> Vec<f32> {
    let blocks: Vec<Vec<f32>> = (0..d.div_ceil(COLS_PER_TASK))
        .into_par_iter()
        .map(|blk| {
            let (c0, c1) = (blk * COLS_PER_TASK, d.min((blk + 1) * COLS_PER_TASK));
            let mut acc = vec![0f32; c1 - c0];
            for row in g.chunks_exact(d) {
                for (a, &x) in acc.iter_mut().zip(&row[c0..c1]) {
                    *a += x;
                }
            }
            acc
        })
        .collect();
    blocks.concat()
}

/// Check a bias of `[d]` (rank 1: its gradient is returned as `[d]`) against rows `[N, d]`.
fn bias_rows(lh: &Layout, lb: &Layout, b: &[f32], what: &str) -> Result<usize> {
    let (_, d) = rows_of(lh, what)?;
    if lb.dims().len() != 1 {
        bail!(
            "{what}: the bias must be one-dimensional, not {:?}",
            lb.dims()
        )
    }
    if b.len() != d {
        bail!("{what}: bias has {} elements, rows have {d}", b.len())
    }
    Ok(d)
}

/// The column sums of a gradient as a tensor `[d]`.
fn bias_grad(grad: &Tensor, d: usize) -> Result<Tensor> {
    grad.contiguous()?.apply_op1_no_bwd(&ColumnSums { d })
}

struct ColumnSums {
    d: usize,
}

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "synthlm-column-sums"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = f32_data(s, l, "bias_add backward")?;
        Ok((CpuStorage::F32(column_sums(g, self.d)), Shape::from(self.d)))
    }
}

/// `h + b`.
struct BiasAdd;

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "synthlm-bias-add"
    }

    fn cpu_fwd(
        &self,
        sh: &CpuStorage,
        lh: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let h = f32_data(sh, lh, "bias_add")?;
        let b = f32_data(sb, lb, "bias_add bias")?;
        bias_rows(lh, lb, b, "bias_add")?;
        Ok((
            CpuStorage::F32(bias_add_rows(None, h, b)),
            lh.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        _h: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.clone()), Some(bias_grad(grad, b.elem_count())?)))
    }
}

/// `x + (h + b)`.
struct ResidualBiasAdd;

impl CustomOp3 for ResidualBiasAdd {
    fn name(&self) -> &'static str {
        "synthlm-residual-bias-add"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sh: &CpuStorage,
        lh: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "bias_add residual")?;
        let h = f32_data(sh, lh, "bias_add")?;
        let b = f32_data(sb, lb, "bias_add bias")?;
        bias_rows(lh, lb, b, "bias_add")?;
        if lx.shape() != lh.shape() {
            bail!(
                "bias_add: residual {:?} and rows {:?} differ in shape",
                lx.dims(),
                lh.dims()
            )
        }
        Ok((
            CpuStorage::F32(bias_add_rows(Some(x), h, b)),
            lh.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _h: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let db = bias_grad(grad, b.elem_count())?;
        Ok((Some(grad.clone()), Some(grad.clone()), Some(db)))
    }
}

// ---------------------------------------------------------------------------------------------
// Causal self-attention
// ---------------------------------------------------------------------------------------------
//
// One rayon task per (batch, head): the tasks are independent, each writes its own columns of
// the output, so there is nothing to reduce across tasks. Inside a task the queries are taken in
// blocks of BLOCK_Q rows (flash-attention style): block [i0, i1) only needs keys 0..i1, so the
// masked upper triangle is mostly skipped and the score scratch is BLOCK_Q × T, not T × T.
//
// Forward, per block (S, P: [m × n] with m = i1 - i0 queries, n = i1 keys):
//   S = scale · Q_blk Kᵀ                     (gemm)
//   P = softmax(S) row by row over j ≤ i;    P = 0 for j > i (the causal mask)
//   Y_blk = P V                              (gemm)
// The row max and 1/Σexp are kept (2 floats per row) so that the backward can rebuild exactly
// the same P from a recomputed S without another max or sum pass.
//
// Backward, per block, with dY the gradient of Y:
//   S, P recomputed as above
//   dP = dY_blk Vᵀ                           (gemm)
//   dS = P ⊙ (dP − D),  D_i = Σ_j P_ij dP_ij = dY_i · Y_i   (softmax backward)
//   dV  += Pᵀ dY_blk                         (gemm, accumulated over blocks)
//   dQ_blk = scale · dS K                    (gemm)
//   dK  += scale · dSᵀ Q_blk                 (gemm, accumulated over blocks)
// The products run on the `gemm` crate (the kernel under candle's matmul), single-threaded
// within the task, reading q, k, v in place through strides (row stride 3d).

/// Query rows per block.
const BLOCK_Q: usize = 64;

#[derive(Clone, Copy)]
struct AttnDims {
    t: usize,
    d: usize,
    hd: usize,
    n_head: usize,
    scale: f32,
}

impl AttnDims {
    fn new(t: usize, c3: usize, n_head: usize) -> Self {
        let d = c3 / 3;
        let hd = d / n_head;
        AttnDims {
            t,
            d,
            hd,
            n_head,
            scale: 1.0 / (hd as f32).sqrt(),
        }
    }
    fn c3(&self) -> usize {
        3 * self.d
    }
}

/// A raw pointer that rayon tasks may share. Sound here because every task writes a disjoint
/// set of elements and nothing reads them until all tasks are done.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}
impl SharedMut {
    // A method, not `.0`: closures would otherwise capture the bare (non-Send) pointer field.
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// `C = beta·A·B`, or `C += beta·A·B` when `accumulate`; `A` is m×k, `B` k×n, `C` m×n, and
/// element (i, j) of a matrix X lives at `X[i·X_rs + j·X_cs]`. Single-threaded.
///
/// # Safety
/// The pointers must be valid for every element the strides reach; `c` must not alias `a`/`b`.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm(
    (m, n, k): (usize, usize, usize),
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
    (a, a_rs, a_cs): (*const f32, usize, usize),
    (b, b_rs, b_cs): (*const f32, usize, usize),
    beta: f32,
) {
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        c_rs as isize,
        accumulate,
        a,
        a_cs as isize,
        a_rs as isize,
        b,
        b_cs as isize,
        b_rs as isize,
        1.0,
        beta,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// Pointers to this head's q, k, v columns (row stride 3d) at row 0 of batch `b`.
fn qkv_ptrs(qkv: &[f32], dm: &AttnDims, b: usize, h: usize) -> [*const f32; 3] {
    let base = b * dm.t * dm.c3() + h * dm.hd;
    [0, 1, 2].map(|i| qkv[base + i * dm.d..].as_ptr())
}

/// Scores of query block [i0, i0 + m) against keys 0..n into `s` ([m × n]). Shared by forward
/// and backward so that both see bit-identical scores.
fn scores(s: &mut [f32], (q, k): (*const f32, *const f32), dm: &AttnDims, i0: usize, m: usize) {
    let n = s.len() / m;
    let c3 = dm.c3();
    // Kᵀ as a strided view: element (kk, j) = K[j, kk] at k + j·c3 + kk.
    unsafe {
        let q_blk = q.add(i0 * c3);
        let b = (k, 1, c3);
        sgemm(
            (m, n, dm.hd),
            s.as_mut_ptr(),
            n,
            false,
            (q_blk, c3, 1),
            b,
            dm.scale,
        );
    }
}

/// Attention of one (batch, head). Writes its columns of `y` and the row statistics.
fn attention_forward_head(
    qkv: &[f32],
    dm: &AttnDims,
    (b, h): (usize, usize),
    y: SharedMut,
    (row_max, row_inv): (&mut [f32], &mut [f32]),
) {
    let [q, k, v] = qkv_ptrs(qkv, dm, b, h);
    let (t, d, c3) = (dm.t, dm.d, dm.c3());
    let y = unsafe { y.ptr().add(b * t * d + h * dm.hd) };
    let mut scratch = vec![0f32; BLOCK_Q.min(t) * t];
    for i0 in (0..t).step_by(BLOCK_Q) {
        let i1 = (i0 + BLOCK_Q).min(t);
        let (m, n) = (i1 - i0, i1);
        let p = &mut scratch[..m * n];
        scores(p, (q, k), dm, i0, m);
        for (r, row) in p.chunks_exact_mut(n).enumerate() {
            let i = i0 + r;
            let (live, masked) = row.split_at_mut(i + 1);
            let mx = max(live);
            let inv = 1.0 / exp_shift_in_place(live, mx);
            live.iter_mut().for_each(|x| *x *= inv);
            masked.fill(0.0);
            row_max[i] = mx;
            row_inv[i] = inv;
        }
        // Y_blk = P V, written straight into this head's columns of y (row stride d).
        unsafe {
            sgemm(
                (m, dm.hd, n),
                y.add(i0 * d),
                d,
                false,
                (p.as_ptr(), n, 1),
                (v, c3, 1),
                1.0,
            )
        }
    }
}

/// Backward of one (batch, head): writes this head's dq, dk, dv columns of `dqkv` (zeroed).
#[allow(clippy::too_many_arguments)]
fn attention_backward_head(
    qkv: &[f32],
    y: &[f32],
    dy: &[f32],
    dm: &AttnDims,
    (b, h): (usize, usize),
    (row_max, row_inv): (&[f32], &[f32]),
    dqkv: SharedMut,
) {
    let [q, k, v] = qkv_ptrs(qkv, dm, b, h);
    let (t, d, hd, c3) = (dm.t, dm.d, dm.hd, dm.c3());
    let base = b * t * c3 + h * hd;
    let (dq, dk, dv) = unsafe {
        let p = dqkv.ptr().add(base);
        (p, p.add(d), p.add(2 * d))
    };
    // This head's rows of y and dy start here, with row stride d.
    let yh = b * t * d + h * hd;
    let mut p_buf = vec![0f32; BLOCK_Q.min(t) * t];
    let mut ds_buf = vec![0f32; BLOCK_Q.min(t) * t];
    for i0 in (0..t).step_by(BLOCK_Q) {
        let i1 = (i0 + BLOCK_Q).min(t);
        let (m, n) = (i1 - i0, i1);
        let p = &mut p_buf[..m * n];
        let ds = &mut ds_buf[..m * n];
        // Rebuild P exactly as the forward did.
        scores(p, (q, k), dm, i0, m);
        for (r, row) in p.chunks_exact_mut(n).enumerate() {
            let i = i0 + r;
            let (live, masked) = row.split_at_mut(i + 1);
            let (mx, inv) = (row_max[i], row_inv[i]);
            live.iter_mut().for_each(|x| *x = fast_exp(*x - mx) * inv);
            masked.fill(0.0);
        }
        let dy_blk = dy[yh + i0 * d..].as_ptr();
        unsafe {
            // dP = dY_blk Vᵀ   ([m × hd]·[hd × n])
            sgemm(
                (m, n, hd),
                ds.as_mut_ptr(),
                n,
                false,
                (dy_blk, d, 1),
                (v, 1, c3),
                1.0,
            );
        }
        // dS = P ⊙ (dP − D), D_i = dY_i · Y_i. Masked entries stay 0 because P is 0 there.
        for (r, (ds_row, p_row)) in ds.chunks_exact_mut(n).zip(p.chunks_exact(n)).enumerate() {
            let at = yh + (i0 + r) * d;
            let dd = dot(&dy[at..at + hd], &y[at..at + hd]);
            for (g, &pij) in ds_row.iter_mut().zip(p_row) {
                *g = pij * (*g - dd);
            }
        }
        unsafe {
            // dV[0..n] += Pᵀ dY_blk   (Pᵀ: element (j, r) at p[r·n + j])
            sgemm(
                (n, hd, m),
                dv,
                c3,
                true,
                (p.as_ptr(), 1, n),
                (dy_blk, d, 1),
                1.0,
            );
            // dQ_blk = scale · dS K[0..n]
            let dq_blk = dq.add(i0 * c3);
            sgemm(
                (m, hd, n),
                dq_blk,
                c3,
                false,
                (ds.as_ptr(), n, 1),
                (k, c3, 1),
                dm.scale,
            );
            // dK[0..n] += scale · dSᵀ Q_blk
            let q_blk = q.add(i0 * c3);
            sgemm(
                (n, hd, m),
                dk,
                c3,
                true,
                (ds.as_ptr(), 1, n),
                (q_blk, c3, 1),
                dm.scale,
            );
        }
    }
}

struct CausalAttention {
    n_head: usize,
    /// `Some(T)`: rows `[B·T, 3·d]` in, rows `[B·T, d]` out; `None`: `[B, T, ·]` both ways.
    seq: Option<usize>,
    /// Per (batch, head, row): the softmax's row max and 1/Σexp, set by the forward.
    stats: OnceLock<(Vec<f32>, Vec<f32>)>,
}

impl CustomOp1 for CausalAttention {
    fn name(&self) -> &'static str {
        "synthlm-causal-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = f32_data(s, l, "causal_attention")?;
        let (bsz, t, c3) = attention_dims(l, self.seq)?;
        check_heads(c3, self.n_head)?;
        let dm = AttnDims::new(t, c3, self.n_head);
        let shape = match self.seq {
            None => Shape::from((bsz, t, dm.d)),
            Some(_) => Shape::from((bsz * t, dm.d)),
        };
        let mut y = vec![0f32; bsz * t * dm.d];
        if y.is_empty() {
            return Ok((CpuStorage::F32(y), shape));
        }
        let mut row_max = vec![0f32; bsz * dm.n_head * t];
        let mut row_inv = vec![0f32; bsz * dm.n_head * t];
        let y_ptr = SharedMut(y.as_mut_ptr());
        row_max
            .par_chunks_mut(t)
            .zip(row_inv.par_chunks_mut(t))
            .enumerate()
            .for_each(|(bh, stats)| {
                let bh = (bh / dm.n_head, bh % dm.n_head);
                attention_forward_head(qkv, &dm, bh, y_ptr, stats);
            });
        // A fresh op is built for every call, so the forward runs once per op.
        let _ = self.stats.set((row_max, row_inv));
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(&self, qkv: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let Some((row_max, row_inv)) = self.stats.get() else {
            bail!("causal_attention backward: the forward's softmax statistics are missing")
        };
        let op = CausalAttentionBackward {
            n_head: self.n_head,
            seq: self.seq,
            row_max,
            row_inv,
        };
        Ok(Some(qkv.apply_op3_no_bwd(
            &y.contiguous()?,
            &grad.contiguous()?,
            &op,
        )?))
    }
}

/// Inputs (qkv, y, dy); output d(qkv).
struct CausalAttentionBackward<'a> {
    n_head: usize,
    seq: Option<usize>,
    row_max: &'a [f32],
    row_inv: &'a [f32],
}

impl CustomOp3 for CausalAttentionBackward<'_> {
    fn name(&self) -> &'static str {
        "synthlm-causal-attention-backward"
    }

    fn cpu_fwd(
        &self,
        sq: &CpuStorage,
        lq: &Layout,
        sy: &CpuStorage,
        ly: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let qkv = f32_data(sq, lq, "causal_attention backward")?;
        let y = f32_data(sy, ly, "causal_attention backward")?;
        let dy = f32_data(sg, lg, "causal_attention backward")?;
        let (bsz, t, c3) = attention_dims(lq, self.seq)?;
        let dm = AttnDims::new(t, c3, self.n_head);
        if y.len() != bsz * t * dm.d || dy.len() != y.len() {
            bail!(
                "causal_attention backward: y/dy do not match qkv {:?}",
                lq.dims()
            )
        }
        let mut dqkv = vec![0f32; qkv.len()];
        if dqkv.is_empty() {
            return Ok((CpuStorage::F32(dqkv), lq.shape().clone()));
        }
        let out = SharedMut(dqkv.as_mut_ptr());
        (0..bsz * dm.n_head).into_par_iter().for_each(|bh| {
            let rows = bh * t..(bh + 1) * t;
            let stats = (&self.row_max[rows.clone()], &self.row_inv[rows]);
            let bh = (bh / dm.n_head, bh % dm.n_head);
            attention_backward_head(qkv, y, dy, &dm, bh, stats, out);
        });
        Ok((CpuStorage::F32(dqkv), lq.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy
// ---------------------------------------------------------------------------------------------
//
// Per row:  lse = max + ln Σ_j exp(x_j − max),  nll = lse − x_target.
// Loss = Σ nll / N (summed in f64, in row order).
// Backward: dx_j = (softmax_j − [j = target]) · g / N  with softmax_j = exp(x_j − lse), using the
// lse kept from the forward: one pass over the logits instead of three.

/// Log-sum-exp of every row, rows in parallel.
fn row_lse(x: &[f32], v: usize) -> Vec<f32> {
    x.par_chunks(v)
        .map(|row| {
            let mx = max(row);
            mx + sum_exp_shift(row, mx).ln()
        })
        .collect()
}

struct CrossEntropy {
    /// Per-row log-sum-exp, set by the forward.
    lse: OnceLock<Vec<f32>>,
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "synthlm-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        st: &CpuStorage,
        lt: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "cross_entropy")?;
        let (n, v) = lx.shape().dims2()?;
        let targets = targets_data(st, lt, n, v, "cross_entropy")?;
        let lse = row_lse(x, v);
        let total: f64 = (0..n)
            .map(|i| (lse[i] - x[i * v + targets[i]]) as f64)
            .sum();
        let _ = self.lse.set(lse);
        let loss = if n == 0 {
            f32::NAN
        } else {
            (total / n as f64) as f32
        };
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _loss: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(lse) = self.lse.get() else {
            bail!("cross_entropy backward: the forward's log-sum-exp is missing")
        };
        let n = logits.dim(0)?;
        let g = grad.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let op = CrossEntropyBackward {
            lse,
            scale: g / n as f32,
        };
        Ok((Some(logits.apply_op2_no_bwd(targets, &op)?), None))
    }
}

/// Inputs (logits, targets); output dlogits = (softmax − onehot) · scale.
struct CrossEntropyBackward<'a> {
    lse: &'a [f32],
    scale: f32,
}

impl CustomOp2 for CrossEntropyBackward<'_> {
    fn name(&self) -> &'static str {
        "synthlm-cross-entropy-backward"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        st: &CpuStorage,
        lt: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "cross_entropy backward")?;
        let (n, v) = lx.shape().dims2()?;
        let targets = targets_data(st, lt, n, v, "cross_entropy backward")?;
        let scale = self.scale;
        // Written in full without zeroing it first: at vocab 4,096 and 2,048 rows the buffer is
        // 33.5 MB, and its memset was a pass of its own.
        let mut dx: Vec<f32> = Vec::with_capacity(x.len());
        dx.spare_capacity_mut()[..x.len()]
            .par_chunks_mut(v)
            .zip(x.par_chunks(v))
            .enumerate()
            .for_each(|(i, (dr, xr))| {
                let (lse, target) = (self.lse[i], targets[i]);
                for (j, (d, &x)) in dr.iter_mut().zip(xr).enumerate() {
                    let p = fast_exp(x - lse) * scale;
                    d.write(if j == target { p - scale } else { p });
                }
            });
        // SAFETY: the rows cover all x.len() elements and each was written above.
        unsafe { dx.set_len(x.len()) };
        Ok((CpuStorage::F32(dx), lx.shape().clone()))
    }
}

/// Inputs (logits, targets); output the NLL of each row.
struct PerRowNll;

impl CustomOp2 for PerRowNll {
    fn name(&self) -> &'static str {
        "synthlm-per-row-nll"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        st: &CpuStorage,
        lt: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(sx, lx, "per_row_nll")?;
        let (n, v) = lx.shape().dims2()?;
        let targets = targets_data(st, lt, n, v, "per_row_nll")?;
        let nll: Vec<f32> = row_lse(x, v)
            .into_iter()
            .enumerate()
            .map(|(i, lse)| lse - x[i * v + targets[i]])
            .collect();
        Ok((CpuStorage::F32(nll), Shape::from(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            let got = fast_exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert!(fast_exp(f32::NAN).is_nan());
        assert!(fast_exp(-1e4) < 1.3e-38 && fast_exp(-1e4) > 0.0);
        assert!(fast_exp(1e4).is_finite());
    }

    #[test]
    fn lane_helpers_match_serial_sums() {
        let xs: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let ys: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let s: f32 = xs.iter().sum();
        assert!((sum(&xs) - s).abs() < 1e-5);
        let dd: f32 = xs.iter().zip(&ys).map(|(a, b)| a * b).sum();
        assert!((dot(&xs, &ys) - dd).abs() < 1e-5);
        let m = xs.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max(&xs), m);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
    }
}
