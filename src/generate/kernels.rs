//! CPU kernels of the teacher's forward pass: packed matmul, attention over one sequence's KV
//! cache, SwiGLU, RMSNorm, RoPE.
//!
//! Two rules shape everything here:
//!
//! 1. **A row's result never depends on its neighbours.** Every output element is one chain of
//!    fused multiply-adds in a fixed order (k = 0, 1, 2, ...), whatever the batch size, whatever
//!    block of rows or columns it lands in. So a request decoded alone and the same request
//!    decoded among 63 others produce bit-identical logits, and sampling with a seeded RNG gives
//!    identical text. (BLAS-style kernels usually split k or pick blockings by matrix size, which
//!    breaks this.)
//! 2. **Weights are packed once** at load time into 16-float-wide column panels, the layout the
//!    AVX-512 micro-kernel streams, so no per-call packing.
//!
//! Every kernel has an AVX-512 path (chosen at run time) and a plain-Rust fallback with the same
//! arithmetic order, so the crate works on any CPU (just slowly).

use rayon::prelude::*;

/// Width of a packed column panel: one AVX-512 register of f32.
pub const LANES: usize = 16;
/// Rows of the activation matrix one micro-kernel call handles.
const MR: usize = 8;
/// Panels (of 16 output columns) one micro-kernel call handles: 8 rows x 3 panels = 24
/// accumulator registers of the 32, leaving room for the 3 weight vectors.
const NP: usize = 3;

static FALLBACK_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Use the plain-Rust kernels from now on, in this whole process (tests of the fallback; the
/// two paths differ in the last bits of `exp`, so do not mix them within one comparison).
pub fn use_fallback_kernels() {
    FALLBACK_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the AVX-512 kernels may run (`is_x86_feature_detected` caches its answer).
#[inline]
pub fn has_avx512() -> bool {
    if FALLBACK_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A weight matrix `W` of shape `[n, k]` (n outputs, k inputs; GGUF/PyTorch order), stored as
/// panels of 16 outputs: `data[(p * k + kk) * 16 + j] = W[p * 16 + j][kk]`. Columns past `n` in
/// the last panel are zero.
pub struct PackedMatrix {
    pub n: usize,
    pub k: usize,
    data: Vec<f32>,
}

impl PackedMatrix {
    /// Pack a row-major `[n, k]` matrix.
    pub fn pack(w: &[f32], n: usize, k: usize) -> PackedMatrix {
        assert_eq!(w.len(), n * k, "matrix size");
        let panels = n.div_ceil(LANES);
        let mut data = vec![0f32; panels * k * LANES];
        for (row, wr) in w.chunks_exact(k).enumerate() {
            let (p, j) = (row / LANES, row % LANES);
            let panel = &mut data[p * k * LANES..(p + 1) * k * LANES];
            for (kk, &v) in wr.iter().enumerate() {
                panel[kk * LANES + j] = v;
            }
        }
        PackedMatrix { n, k, data }
    }

    /// Stack matrices with the same `k` along the output dimension (fused Q|K|V, gate|up).
    pub fn pack_stacked(parts: &[&[f32]], k: usize) -> PackedMatrix {
        let all: Vec<f32> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let n = all.len() / k;
        PackedMatrix::pack(&all, n, k)
    }

    /// Copy row `r` of `W` (length k) into `out`: the embedding lookup of a tied head.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        let (p, j) = (r / LANES, r % LANES);
        let panel = &self.data[p * self.k * LANES..];
        for (kk, o) in out[..self.k].iter_mut().enumerate() {
            *o = panel[kk * LANES + j];
        }
    }

    /// Bytes of weight data.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }
}

/// A raw pointer that rayon tasks may share; each task writes a disjoint set of elements.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// A method (not `.0`) so closures capture the whole Sync wrapper, not the raw field.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `y[rows, n] = x[rows, k] · Wᵀ`, row-major `x` and `y`. Columns are split among rayon's
/// threads; each thread walks its column blocks and, inside each, all rows (so the block's
/// weights stay in L2 while every row uses them).
pub fn matmul(x: &[f32], rows: usize, w: &PackedMatrix, y: &mut [f32]) {
    let (n, k) = (w.n, w.k);
    assert!(
        x.len() >= rows * k && y.len() >= rows * n,
        "matmul buffer sizes"
    );
    if rows == 0 {
        return;
    }
    let blocks = n.div_ceil(LANES * NP);
    let threads = rayon::current_num_threads().min(blocks).max(1);
    let yp = SendPtr(y.as_mut_ptr());
    let avx = has_avx512();
    let work = |t: usize| {
        let (b0, b1) = (blocks * t / threads, blocks * (t + 1) / threads);
        for b in b0..b1 {
            let col0 = b * LANES * NP;
            let cols = (n - col0).min(LANES * NP);
            let wp = &w.data[col0 * k..];
            let mut r = 0;
            while r < rows {
                let mr = (rows - r).min(MR);
                // SAFETY: rows r..r+mr and columns col0..col0+cols of y belong to this task only.
                unsafe {
                    let xr = x.as_ptr().add(r * k);
                    let yr = yp.get().add(r * n + col0);
                    if avx {
                        #[cfg(target_arch = "x86_64")]
                        avx512::matmul_block(xr, k, wp.as_ptr(), yr, n, mr, cols);
                    } else {
                        scalar_matmul_block(xr, k, wp, yr, n, mr, cols);
                    }
                }
                r += mr;
            }
        }
    };
    if threads == 1 {
        work(0);
    } else {
        (0..threads).into_par_iter().for_each(work);
    }
}

/// The fallback micro-kernel: the same FMA chain per element as the AVX-512 one.
unsafe fn scalar_matmul_block(
    x: *const f32,
    k: usize,
    w: &[f32],
    y: *mut f32,
    ldy: usize,
    rows: usize,
    cols: usize,
) {
    for r in 0..rows {
        let xr = std::slice::from_raw_parts(x.add(r * k), k);
        for c in 0..cols {
            let panel = &w[(c / LANES) * k * LANES..];
            let j = c % LANES;
            let mut acc = 0f32;
            for (kk, &xv) in xr.iter().enumerate() {
                acc = xv.mul_add(panel[kk * LANES + j], acc);
            }
            *y.add(r * ldy + c) = acc;
        }
    }
}

/// `x / sqrt(mean(x²) + eps) * w`, row by row (llama's RMSNorm).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ss: f32 = xr.iter().map(|v| v * v).sum();
        let scale = 1.0 / (ss / d as f32 + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = v * scale * g;
        }
    }
}

/// `out = silu(gate) * up` for one row laid out as `[gate (f) | up (f)]`.
pub fn swiglu(gate_up: &[f32], out: &mut [f32]) {
    let f = out.len();
    let (g, u) = gate_up.split_at(f);
    #[cfg(target_arch = "x86_64")]
    if has_avx512() && f.is_multiple_of(LANES) {
        // SAFETY: lengths checked above; avx512f detected.
        unsafe { avx512::swiglu(g, &u[..f], out) };
        return;
    }
    for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
        *o = g / (1.0 + (-g).exp()) * u;
    }
}

/// Rotary position embedding, GGML "normal" (interleaved) convention: dimensions (2i, 2i+1) of
/// each head rotate by angle `pos * base^(-2i/rope_dim)`. GGUF llama files store Q and K
/// already permuted for this convention (the HF->GGUF converter does it), so no un-permuting.
pub fn rope(x: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32]) {
    let half = cos.len(); // rope_dim / 2
    for head in x.chunks_exact_mut(head_dim) {
        for i in 0..half {
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * cos[i] - b * sin[i];
            head[2 * i + 1] = a * sin[i] + b * cos[i];
        }
    }
}

/// Where one sequence's keys and values for one layer live.
///
/// Keys are stored in tiles of 16 positions, transposed: `k[(g * tiles + t) * hd * 16 + d * 16
/// + j]` is dimension `d` of kv-head `g` at position `16 t + j`. Scoring a query against 16 keys
/// is then 64 FMAs on contiguous memory with no horizontal sums. Values are position-major:
/// `v[(g * cap + pos) * hd + d]`, so the weighted sum adds whole rows.
pub struct KvView<'a> {
    pub k: &'a [f32],
    pub v: &'a [f32],
    /// Positions the cache can hold (a multiple of 16).
    pub cap: usize,
}

/// Causal attention of one query row at position `pos` (it sees keys 0..=pos).
/// `q`: `[n_head * hd]`, already rotated and scaled by 1/sqrt(hd). `out`: `[n_head * hd]`.
/// `scores`: scratch of at least `group * cap` floats.
pub fn attend(
    q: &[f32],
    kv: &KvView,
    n_kv_head: usize,
    hd: usize,
    pos: usize,
    out: &mut [f32],
    scores: &mut [f32],
) {
    let n_head = q.len() / hd;
    let group = n_head / n_kv_head;
    let n = pos + 1;
    let tiles = kv.cap / LANES;
    let n_tiles = n.div_ceil(LANES);
    for g in 0..n_kv_head {
        let kg = &kv.k[g * tiles * hd * LANES..(g * tiles + n_tiles) * hd * LANES];
        let vg = &kv.v[g * kv.cap * hd..(g * kv.cap + n) * hd];
        let qg = &q[g * group * hd..(g + 1) * group * hd];
        let og = &mut out[g * group * hd..(g + 1) * group * hd];
        #[cfg(target_arch = "x86_64")]
        if has_avx512() && group <= 4 && hd == 64 {
            // SAFETY: slices sized above; avx512f detected.
            unsafe {
                match group {
                    1 => avx512::attend_group::<1>(qg, kg, vg, n, kv.cap, og, scores),
                    2 => avx512::attend_group::<2>(qg, kg, vg, n, kv.cap, og, scores),
                    3 => avx512::attend_group::<3>(qg, kg, vg, n, kv.cap, og, scores),
                    _ => avx512::attend_group::<4>(qg, kg, vg, n, kv.cap, og, scores),
                }
            };
            continue;
        }
        scalar_attend_group(qg, kg, vg, group, hd, n, kv.cap, og, scores);
    }
}

/// Plain-Rust attention for the `group` query heads sharing one kv head.
#[allow(clippy::too_many_arguments)]
fn scalar_attend_group(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    group: usize,
    hd: usize,
    n: usize,
    cap: usize,
    out: &mut [f32],
    scores: &mut [f32],
) {
    for j in 0..group {
        let qh = &q[j * hd..(j + 1) * hd];
        let s = &mut scores[j * cap..j * cap + n];
        for (pos, sv) in s.iter_mut().enumerate() {
            let tile = &k[(pos / LANES) * hd * LANES..];
            let mut acc = 0f32;
            for (d, &qv) in qh.iter().enumerate() {
                acc = qv.mul_add(tile[d * LANES + pos % LANES], acc);
            }
            *sv = acc;
        }
        let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for sv in s.iter_mut() {
            *sv = (*sv - max).exp();
            sum += *sv;
        }
        let oh = &mut out[j * hd..(j + 1) * hd];
        oh.fill(0.0);
        for (pos, &p) in s.iter().enumerate() {
            for (o, &vv) in oh.iter_mut().zip(&v[pos * hd..(pos + 1) * hd]) {
                *o = p.mul_add(vv, *o);
            }
        }
        let inv = 1.0 / sum;
        oh.iter_mut().for_each(|o| *o *= inv);
    }
}

/// `exp` of every element, in place; returns the sum of the results (the sampler's softmax
/// denominator over the vocabulary).
pub fn exp_inplace(x: &mut [f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: avx512f detected.
        return unsafe { avx512::exp_inplace(x) };
    }
    x.iter_mut()
        .map(|v| {
            *v = v.exp();
            *v as f64
        })
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The AVX-512 bodies. Each is `unsafe` because it requires the CPU feature; callers check.
    use super::{LANES, MR, NP};
    use std::arch::x86_64::*;

    /// `exp(x)` for 16 lanes, Cephes-style: exp(x) = 2^n * exp(r) with n = round(x / ln 2) and
    /// |r| <= ln2 / 2, exp(r) by a degree-6 polynomial; ~1 ulp. `scalef` applies 2^n without
    /// building exponent bits by hand.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp16(x: __m512) -> __m512 {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-103.0)),
            _mm512_set1_ps(88.7),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        // r = x - n ln2, with ln2 split in two parts so the product is exact enough.
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_2e-3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_5e-1));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
        p = _mm512_fmadd_ps(
            p,
            _mm512_mul_ps(r, r),
            _mm512_add_ps(r, _mm512_set1_ps(1.0)),
        );
        _mm512_scalef_ps(p, n)
    }

    /// exp in place; the sum is kept in f32 lanes over 1024 elements at a time, then in f64.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp_inplace(x: &mut [f32]) -> f64 {
        let mut total = 0f64;
        for block in x.chunks_mut(1024) {
            let mut sum = _mm512_setzero_ps();
            let mut chunks = block.chunks_exact_mut(LANES);
            for c in &mut chunks {
                let e = exp16(_mm512_loadu_ps(c.as_ptr()));
                _mm512_storeu_ps(c.as_mut_ptr(), e);
                sum = _mm512_add_ps(sum, e);
            }
            let rest = chunks.into_remainder();
            if !rest.is_empty() {
                let m: __mmask16 = ((1u32 << rest.len()) - 1) as u16;
                let e = exp16(_mm512_maskz_loadu_ps(m, rest.as_ptr()));
                _mm512_mask_storeu_ps(rest.as_mut_ptr(), m, e);
                sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
            }
            total += _mm512_reduce_add_ps(sum) as f64;
        }
        total
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn swiglu(g: &[f32], u: &[f32], out: &mut [f32]) {
        let one = _mm512_set1_ps(1.0);
        for i in (0..out.len()).step_by(LANES) {
            let gv = _mm512_loadu_ps(g.as_ptr().add(i));
            let uv = _mm512_loadu_ps(u.as_ptr().add(i));
            let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), gv));
            let s = _mm512_div_ps(gv, _mm512_add_ps(one, e));
            _mm512_storeu_ps(out.as_mut_ptr().add(i), _mm512_mul_ps(s, uv));
        }
    }

    /// Dispatch a block of `rows` (<= MR) x `cols` (<= 48) to the right const-size kernel.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn matmul_block(
        x: *const f32,
        k: usize,
        w: *const f32,
        y: *mut f32,
        ldy: usize,
        rows: usize,
        cols: usize,
    ) {
        let panels = cols.div_ceil(LANES);
        let tail = cols - (panels - 1) * LANES;
        let mask: __mmask16 = if tail == LANES {
            0xffff
        } else {
            ((1u32 << tail) - 1) as u16
        };
        macro_rules! go {
            ($($r:literal)*) => {
                match (rows, panels) {
                    $(($r, 1) => kernel::<$r, 1>(x, k, w, y, ldy, mask),
                      ($r, 2) => kernel::<$r, 2>(x, k, w, y, ldy, mask),
                      ($r, 3) => kernel::<$r, 3>(x, k, w, y, ldy, mask),)*
                    _ => unreachable!(),
                }
            };
        }
        const _: () = assert!(MR == 8 && NP == 3);
        go!(1 2 3 4 5 6 7 8)
    }

    /// The micro-kernel: R rows x P panels of 16 columns, accumulated over all k in registers.
    /// Per k: P weight loads, R broadcasts, R*P FMAs. `mask` selects the valid columns of the
    /// last panel.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const R: usize, const P: usize>(
        x: *const f32,
        k: usize,
        w: *const f32,
        y: *mut f32,
        ldy: usize,
        mask: __mmask16,
    ) {
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for kk in 0..k {
            let mut wv = [_mm512_setzero_ps(); P];
            for (p, wp) in wv.iter_mut().enumerate() {
                *wp = _mm512_loadu_ps(w.add((p * k + kk) * LANES));
            }
            for (r, ar) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*x.add(r * k + kk));
                for p in 0..P {
                    ar[p] = _mm512_fmadd_ps(xv, wv[p], ar[p]);
                }
            }
        }
        for (r, ar) in acc.iter().enumerate() {
            for (p, &a) in ar.iter().enumerate() {
                let dst = y.add(r * ldy + p * LANES);
                if p + 1 == P {
                    _mm512_mask_storeu_ps(dst, mask, a);
                } else {
                    _mm512_storeu_ps(dst, a);
                }
            }
        }
    }

    /// Scores of `group` query heads against `T` consecutive key tiles (16 positions each).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn score_tiles<const G: usize, const T: usize>(
        q: &[f32],
        k: *const f32,
        out: *mut f32,
        cap: usize,
    ) {
        const HD: usize = 64;
        let mut acc = [[_mm512_setzero_ps(); T]; G];
        for d in 0..HD {
            let mut kv = [_mm512_setzero_ps(); T];
            for (t, v) in kv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(k.add((t * HD + d) * LANES));
            }
            for (j, aj) in acc.iter_mut().enumerate() {
                let qv = _mm512_set1_ps(*q.get_unchecked(j * HD + d));
                for t in 0..T {
                    aj[t] = _mm512_fmadd_ps(qv, kv[t], aj[t]);
                }
            }
        }
        for (j, aj) in acc.iter().enumerate() {
            for (t, &a) in aj.iter().enumerate() {
                _mm512_storeu_ps(out.add(j * cap + t * LANES), a);
            }
        }
    }

    /// Attention of `group` query heads (<= 4) against one kv head, head_dim 64, `n` keys.
    /// Same arithmetic per element as the scalar version, with one difference: exp is the
    /// polynomial above.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn attend_group<const G: usize>(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        n: usize,
        cap: usize,
        out: &mut [f32],
        scores: &mut [f32],
    ) {
        const HD: usize = 64;
        let tiles = n.div_ceil(LANES);
        let sp = scores.as_mut_ptr();
        // 1. Scores: for each tile of 16 keys, acc[j] += q_j[d] * K[d][16 keys], d = 0..63.
        //    Four tiles at a time give 4 * G independent FMA chains (enough to cover the FMA
        //    latency); the last few tiles go one by one with the same per-lane arithmetic.
        let mut t = 0;
        while t + 4 <= tiles {
            score_tiles::<G, 4>(q, k.as_ptr().add(t * HD * LANES), sp.add(t * LANES), cap);
            t += 4;
        }
        while t < tiles {
            score_tiles::<G, 1>(q, k.as_ptr().add(t * HD * LANES), sp.add(t * LANES), cap);
            t += 1;
        }
        // 2. Softmax numerators exp(s - max), in place, and their sum. Lanes past n are masked.
        let full = n / LANES;
        let tail = n % LANES;
        let tmask: __mmask16 = ((1u32 << tail) - 1) as u16;
        let mut inv = [0f32; G];
        for (j, inv_j) in inv.iter_mut().enumerate() {
            let s = sp.add(j * cap);
            let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
            for c in 0..full {
                m = _mm512_max_ps(m, _mm512_loadu_ps(s.add(c * LANES)));
            }
            if tail > 0 {
                m = _mm512_mask_max_ps(m, tmask, m, _mm512_loadu_ps(s.add(full * LANES)));
            }
            let mv = _mm512_set1_ps(_mm512_reduce_max_ps(m));
            let mut sum = _mm512_setzero_ps();
            for c in 0..full {
                let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s.add(c * LANES)), mv));
                _mm512_storeu_ps(s.add(c * LANES), e);
                sum = _mm512_add_ps(sum, e);
            }
            if tail > 0 {
                let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s.add(full * LANES)), mv));
                let e = _mm512_maskz_mov_ps(tmask, e);
                _mm512_storeu_ps(s.add(full * LANES), e);
                sum = _mm512_add_ps(sum, e);
            }
            *inv_j = 1.0 / _mm512_reduce_add_ps(sum);
        }
        // 3. Weighted sum of value rows: o_j += p_j[pos] * V[pos] (4 registers per head).
        // G x 4 accumulators: G is a compile-time constant so they live in registers (with a
        // run-time group count they spill to the stack and every FMA waits on a store).
        let mut o = [[_mm512_setzero_ps(); 4]; G];
        for pos in 0..n {
            let vr = v.as_ptr().add(pos * HD);
            let vv = [
                _mm512_loadu_ps(vr),
                _mm512_loadu_ps(vr.add(16)),
                _mm512_loadu_ps(vr.add(32)),
                _mm512_loadu_ps(vr.add(48)),
            ];
            for (j, oj) in o.iter_mut().enumerate() {
                let p = _mm512_set1_ps(*sp.add(j * cap + pos));
                for i in 0..4 {
                    oj[i] = _mm512_fmadd_ps(p, vv[i], oj[i]);
                }
            }
        }
        for (j, oj) in o.iter().enumerate() {
            let s = _mm512_set1_ps(inv[j]);
            for (i, &acc) in oj.iter().enumerate() {
                _mm512_storeu_ps(
                    out.as_mut_ptr().add(j * HD + i * LANES),
                    _mm512_mul_ps(acc, s),
                );
            }
        }
    }
}
