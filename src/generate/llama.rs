//! A llama-architecture decoder read from a GGUF file, dequantized once to f32, and its batched
//! forward pass over "rows": each row is one token of one sequence at one position, so a step
//! can mix many sequences' single decode tokens with chunks of other sequences' prompts.
//!
//! ```text
//! x = embed(token)
//! for each layer:                                   (pre-norm residual blocks)
//!     h = rmsnorm(x) ; q,k,v = h·Wq, h·Wk, h·Wv ; rope(q, k) ; append k, v to the cache
//!     x += attention(q, cache) · Wo                  (GQA: 3 query heads share a kv head)
//!     h = rmsnorm(x) ; x += (silu(h·Wgate) * h·Wup) · Wdown
//! logits = rmsnorm(x) · Wout                        (Wout = token embedding when tied)
//! ```

use super::gguf;
use super::kernels::{self, KvView, PackedMatrix, LANES};
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use candle_core::Device;
use rayon::prelude::*;
use std::io::{Read, Seek};

/// Hyper-parameters, all read from the GGUF metadata (`{arch}.*` keys).
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub n_layer: usize,
    pub d_model: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    /// Context length the model was trained for.
    pub ctx: usize,
    pub rope_base: f32,
    /// Leading dimensions of each head that RoPE rotates (usually all of them).
    pub rope_dim: usize,
    pub rms_eps: f32,
}

impl LlamaConfig {
    pub fn from_gguf(c: &Content) -> Result<LlamaConfig> {
        let arch = gguf::string(c, "general.architecture")?;
        if arch != "llama" {
            bail!("GGUF architecture is `{arch}`; this engine runs `llama` only");
        }
        let k = |s: &str| format!("llama.{s}");
        let d_model = gguf::usize_of(c, &k("embedding_length"))?;
        let n_head = gguf::usize_of(c, &k("attention.head_count"))?;
        let n_kv_head = gguf::usize_of(c, &k("attention.head_count_kv")).unwrap_or(n_head);
        let head_dim = d_model / n_head;
        let vocab = match c.tensor_infos.get("token_embd.weight") {
            Some(t) => t.shape.dims()[0],
            None => bail!("GGUF has no `token_embd.weight` tensor"),
        };
        let cfg = LlamaConfig {
            n_layer: gguf::usize_of(c, &k("block_count"))?,
            d_model,
            n_head,
            n_kv_head,
            head_dim,
            ffn: gguf::usize_of(c, &k("feed_forward_length"))?,
            vocab,
            ctx: gguf::usize_of(c, &k("context_length"))?,
            rope_base: gguf::f32_or(c, &k("rope.freq_base"), 10_000.0)?,
            rope_dim: gguf::usize_of(c, &k("rope.dimension_count")).unwrap_or(head_dim),
            rms_eps: gguf::f32_or(c, &k("attention.layer_norm_rms_epsilon"), 1e-5)?,
        };
        if !d_model.is_multiple_of(n_head)
            || !n_head.is_multiple_of(n_kv_head)
            || cfg.rope_dim > head_dim
            || !cfg.rope_dim.is_multiple_of(2)
        {
            bail!("inconsistent llama shapes in GGUF metadata: {cfg:?}");
        }
        Ok(cfg)
    }

    /// Floats of K and V cache per position, all layers.
    pub fn kv_floats_per_position(&self) -> usize {
        2 * self.n_layer * self.n_kv_head * self.head_dim
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    /// Q, K and V stacked: `[n_head*hd + 2*n_kv_head*hd, d]`.
    wqkv: PackedMatrix,
    wo: PackedMatrix,
    ffn_norm: Vec<f32>,
    /// Gate and up stacked: `[2*ffn, d]`.
    w_gate_up: PackedMatrix,
    w_down: PackedMatrix,
}

/// The model: f32 weights, packed for the matmul kernel.
pub struct Llama {
    pub cfg: LlamaConfig,
    layers: Vec<Layer>,
    out_norm: Vec<f32>,
    head: PackedMatrix,
    /// The embedding table when the file has a separate `output.weight`; `None` when tied
    /// (rows are then read back out of `head`, saving a second 100+ MB copy).
    embed: Option<Vec<f32>>,
}

/// Read one tensor and dequantize it to a flat f32 vector, checking its shape.
fn load<R: Read + Seek>(c: &Content, r: &mut R, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
    let q = c
        .tensor(r, name, &Device::Cpu)
        .with_context(|| format!("reading tensor `{name}`"))?;
    if q.shape().dims() != dims {
        bail!(
            "tensor `{name}` has shape {:?}, expected {dims:?}",
            q.shape().dims()
        );
    }
    let t = q.dequantize(&Device::Cpu)?;
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

impl Llama {
    pub fn from_gguf<R: Read + Seek>(c: &Content, r: &mut R) -> Result<Llama> {
        let cfg = LlamaConfig::from_gguf(c)?;
        let (d, hd, f, v) = (cfg.d_model, cfg.head_dim, cfg.ffn, cfg.vocab);
        let (qd, kvd) = (cfg.n_head * hd, cfg.n_kv_head * hd);
        // The embedding first: its f32 copy plus its packed copy (2 x 113 MB for SmolLM2) are
        // the load's largest transient, best paid before the other weights are resident.
        let embd = load(c, r, "token_embd.weight", &[v, d])?;
        let (head, embed) = if c.tensor_infos.contains_key("output.weight") {
            (
                PackedMatrix::pack(&load(c, r, "output.weight", &[v, d])?, v, d),
                Some(embd),
            )
        } else {
            (PackedMatrix::pack(&embd, v, d), None)
        };
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let t = |s: &str| format!("blk.{i}.{s}.weight");
            let (q, k, vv) = (
                load(c, r, &t("attn_q"), &[qd, d])?,
                load(c, r, &t("attn_k"), &[kvd, d])?,
                load(c, r, &t("attn_v"), &[kvd, d])?,
            );
            let (g, u) = (
                load(c, r, &t("ffn_gate"), &[f, d])?,
                load(c, r, &t("ffn_up"), &[f, d])?,
            );
            layers.push(Layer {
                attn_norm: load(c, r, &t("attn_norm"), &[d])?,
                wqkv: PackedMatrix::pack_stacked(&[&q, &k, &vv], d),
                wo: PackedMatrix::pack(&load(c, r, &t("attn_output"), &[d, qd])?, d, qd),
                ffn_norm: load(c, r, &t("ffn_norm"), &[d])?,
                w_gate_up: PackedMatrix::pack_stacked(&[&g, &u], d),
                w_down: PackedMatrix::pack(&load(c, r, &t("ffn_down"), &[d, f])?, d, f),
            });
        }
        Ok(Llama {
            out_norm: load(c, r, "output_norm.weight", &[d])?,
            cfg,
            layers,
            head,
            embed,
        })
    }

    /// Bytes of f32 weights held.
    pub fn weight_bytes(&self) -> usize {
        let l: usize = self
            .layers
            .iter()
            .map(|l| {
                l.wqkv.bytes()
                    + l.wo.bytes()
                    + l.w_gate_up.bytes()
                    + l.w_down.bytes()
                    + 8 * l.attn_norm.len()
            })
            .sum();
        l + self.head.bytes() + self.embed.as_ref().map_or(0, |e| e.len() * 4)
    }

    fn embed_row(&self, token: u32, out: &mut [f32]) {
        let d = self.cfg.d_model;
        match &self.embed {
            Some(e) => out.copy_from_slice(&e[token as usize * d..(token as usize + 1) * d]),
            None => self.head.row(token as usize, out),
        }
    }
}

/// One sequence's KV cache, all layers, allocated once for `cap` positions (layout: see
/// [`KvView`]). Pages are only touched as positions fill, so memory follows actual lengths.
pub struct KvCache {
    k: Vec<f32>,
    v: Vec<f32>,
    cap: usize,
    per_layer: usize,
}

impl KvCache {
    pub fn new(cfg: &LlamaConfig, cap: usize) -> KvCache {
        let cap = cap.div_ceil(LANES) * LANES;
        let per_layer = cfg.n_kv_head * cfg.head_dim * cap;
        KvCache {
            k: vec![0.0; per_layer * cfg.n_layer],
            v: vec![0.0; per_layer * cfg.n_layer],
            cap,
            per_layer,
        }
    }

    /// Positions this cache holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    fn view(&self, layer: usize) -> KvView<'_> {
        let r = layer * self.per_layer..(layer + 1) * self.per_layer;
        KvView {
            k: &self.k[r.clone()],
            v: &self.v[r],
            cap: self.cap,
        }
    }

    /// Store one position's keys and values (`[n_kv_head * hd]` each).
    fn write(&mut self, layer: usize, pos: usize, hd: usize, k: &[f32], v: &[f32]) {
        let base = layer * self.per_layer;
        let tiles = self.cap / LANES;
        for (g, (kh, vh)) in k.chunks_exact(hd).zip(v.chunks_exact(hd)).enumerate() {
            let tile = base + (g * tiles + pos / LANES) * hd * LANES + pos % LANES;
            for (d, &x) in kh.iter().enumerate() {
                self.k[tile + d * LANES] = x;
            }
            let row = base + (g * self.cap + pos) * hd;
            self.v[row..row + hd].copy_from_slice(vh);
        }
    }
}

/// cos/sin of every (position, frequency) pair, computed like candle does (f32 throughout) so
/// that our logits track its reference closely.
pub struct RopeTable {
    cos: Vec<f32>,
    sin: Vec<f32>,
    half: usize,
}

impl RopeTable {
    pub fn new(cfg: &LlamaConfig, positions: usize) -> RopeTable {
        let half = cfg.rope_dim / 2;
        let inv: Vec<f32> = (0..half)
            .map(|i| 1.0 / cfg.rope_base.powf((2 * i) as f32 / cfg.rope_dim as f32))
            .collect();
        let (mut cos, mut sin) = (
            Vec::with_capacity(positions * half),
            Vec::with_capacity(positions * half),
        );
        for p in 0..positions {
            for &f in &inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        RopeTable { cos, sin, half }
    }

    fn at(&self, pos: usize) -> (&[f32], &[f32]) {
        let r = pos * self.half..(pos + 1) * self.half;
        (&self.cos[r.clone()], &self.sin[r])
    }
}

/// One row of a forward step: `token` of the sequence in cache `slot`, at position `pos`.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub token: u32,
    pub slot: usize,
    pub pos: usize,
    /// Compute this row's logits (the last prompt token, or a decode token).
    pub logits: bool,
}

/// Activation buffers, grown to the largest step seen and then reused.
#[derive(Default)]
pub struct Workspace {
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    proj: Vec<f32>,
    gate_up: Vec<f32>,
    act: Vec<f32>,
    last: Vec<f32>,
    /// `[rows with logits, vocab]` after [`Llama::forward`].
    pub logits: Vec<f32>,
}

fn grow(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

thread_local! {
    /// Per-thread attention scores (group x cap).
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Llama {
    /// Run `rows` through the model, appending their keys and values to `caches`, and leave the
    /// logits of the rows marked `logits` (in order) in `ws.logits`. Rows of one sequence must
    /// come in position order, and every position below a row's must already be cached or be an
    /// earlier row of this step.
    pub fn forward(
        &self,
        rows: &[Row],
        caches: &mut [KvCache],
        rope: &RopeTable,
        ws: &mut Workspace,
    ) {
        let c = &self.cfg;
        let (n, d, hd) = (rows.len(), c.d_model, c.head_dim);
        let (qd, kvd) = (c.n_head * hd, c.n_kv_head * hd);
        let qkv_w = qd + 2 * kvd;
        let scale = 1.0 / (hd as f32).sqrt();

        let x = grow(&mut ws.x, n * d);
        for (row, xr) in rows.iter().zip(x.chunks_exact_mut(d)) {
            self.embed_row(row.token, xr);
        }
        for (li, layer) in self.layers.iter().enumerate() {
            // --- attention block ---
            let h = grow(&mut ws.h, n * d);
            kernels::rms_norm(&ws.x[..n * d], &layer.attn_norm, c.rms_eps, h);
            let qkv = grow(&mut ws.qkv, n * qkv_w);
            kernels::matmul(h, n, &layer.wqkv, qkv);
            for (row, r) in rows.iter().zip(qkv.chunks_exact_mut(qkv_w)) {
                let (cos, sin) = rope.at(row.pos);
                let (q, kv) = r.split_at_mut(qd);
                kernels::rope(q, hd, cos, sin);
                kernels::rope(&mut kv[..kvd], hd, cos, sin);
                q.iter_mut().for_each(|v| *v *= scale);
                caches[row.slot].write(li, row.pos, hd, &kv[..kvd], &kv[kvd..]);
            }
            // Every row's keys are cached now; each row attends independently (in parallel).
            let att = grow(&mut ws.att, n * qd);
            let caches_ro: &[KvCache] = caches;
            att.par_chunks_mut(qd)
                .zip(qkv.par_chunks(qkv_w))
                .zip(rows.par_iter())
                .for_each(|((out, r), row)| {
                    let kv = caches_ro[row.slot].view(li);
                    SCORES.with(|s| {
                        let mut s = s.borrow_mut();
                        let need = (c.n_head / c.n_kv_head) * kv.cap;
                        kernels::attend(
                            &r[..qd],
                            &kv,
                            c.n_kv_head,
                            hd,
                            row.pos,
                            out,
                            grow(&mut s, need),
                        );
                    });
                });
            let proj = grow(&mut ws.proj, n * d);
            kernels::matmul(att, n, &layer.wo, proj);
            ws.x[..n * d]
                .iter_mut()
                .zip(proj.iter())
                .for_each(|(x, p)| *x += p);

            // --- MLP block ---
            let h = grow(&mut ws.h, n * d);
            kernels::rms_norm(&ws.x[..n * d], &layer.ffn_norm, c.rms_eps, h);
            let gu = grow(&mut ws.gate_up, n * 2 * c.ffn);
            kernels::matmul(h, n, &layer.w_gate_up, gu);
            let act = grow(&mut ws.act, n * c.ffn);
            for (g, a) in gu.chunks_exact(2 * c.ffn).zip(act.chunks_exact_mut(c.ffn)) {
                kernels::swiglu(g, a);
            }
            let proj = grow(&mut ws.proj, n * d);
            kernels::matmul(act, n, &layer.w_down, proj);
            ws.x[..n * d]
                .iter_mut()
                .zip(proj.iter())
                .for_each(|(x, p)| *x += p);
        }

        // --- output head, only for rows that sample ---
        let want: Vec<usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.logits)
            .map(|(i, _)| i)
            .collect();
        let last = grow(&mut ws.last, want.len() * d);
        for (&i, lr) in want.iter().zip(last.chunks_exact_mut(d)) {
            kernels::rms_norm(&ws.x[i * d..(i + 1) * d], &self.out_norm, c.rms_eps, lr);
        }
        let logits = grow(&mut ws.logits, want.len() * c.vocab);
        kernels::matmul(last, want.len(), &self.head, logits);
    }
}
