//! Sampling from a trained student with a KV cache: temperature, top-k, top-p, stop tokens,
//! seeded, for a batch of prompts (each with its own generator, so results do not depend on
//! how prompts are grouped).

use crate::model::{kernels, Gpt};
use anyhow::{bail, Result};
use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleOptions {
    pub max_new_tokens: usize,
    /// 0 = greedy.
    pub temperature: f64,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    /// Generation stops after emitting one of these (it is kept in the output).
    pub stop_tokens: Vec<u32>,
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            max_new_tokens: 64,
            temperature: 0.8,
            top_k: Some(50),
            top_p: Some(0.95),
            stop_tokens: vec![],
            seed: 0,
        }
    }
}

/// What one prompt produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub tokens: Vec<u32>,
    /// `stop_token`, `max_new_tokens` or `context`.
    pub stop_reason: String,
}

/// Keys and values of earlier positions, per layer: [heads, positions, head_dim].
struct KvCache {
    k: Vec<Option<Tensor>>,
    v: Vec<Option<Tensor>>,
    len: usize,
}

/// Run `tokens` (positions `cache.len ..`) through the model, extending the cache; returns the
/// logits of the last position.
fn forward_cached(m: &Gpt, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
    let c = &m.config;
    let (n, d, h, hd) = (tokens.len(), c.d_model, c.n_head, c.head_dim());
    let pos0 = cache.len;
    let p = |i: usize| m.params[i].1.as_tensor();
    let ids = Tensor::from_slice(tokens, n, &m.device)?;
    let mut x = p(0).index_select(&ids, 0)?.add(&p(1).narrow(0, pos0, n)?)?;
    // Causal mask for the new positions against all cached + new positions.
    let total = pos0 + n;
    let mask: Vec<f32> = (0..n)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j <= pos0 + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    let mask = Tensor::from_vec(mask, (1, n, total), &m.device)?;
    for layer in 0..c.n_layer {
        let w = |k: usize| p(2 + layer * 12 + k);
        let a = kernels::layer_norm(&x, w(0), w(1), 1e-5)?;
        let qkv = a.matmul(w(2))?.broadcast_add(w(3))?;
        let heads = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(1, i * d, d)?
                .reshape((n, h, hd))?
                .transpose(0, 1)?
                .contiguous()?)
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let k = match cache.k[layer].take() {
            Some(old) => Tensor::cat(&[&old, &k], 1)?,
            None => k,
        };
        let v = match cache.v[layer].take() {
            Some(old) => Tensor::cat(&[&old, &v], 1)?,
            None => v,
        };
        let att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?.broadcast_add(&mask)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v)?.transpose(0, 1)?.reshape((n, d))?;
        cache.k[layer] = Some(k);
        cache.v[layer] = Some(v);
        x = (x + y.matmul(w(4))?.broadcast_add(w(5))?)?;
        let a = kernels::layer_norm(&x, w(6), w(7), 1e-5)?;
        let a = kernels::gelu(&a.matmul(w(8))?.broadcast_add(w(9))?)?;
        x = (x + a.matmul(w(10))?.broadcast_add(w(11))?)?;
    }
    cache.len = total;
    let np = m.params.len();
    let last = x.narrow(0, n - 1, 1)?;
    let last = kernels::layer_norm(&last, p(np - 2), p(np - 1), 1e-5)?;
    Ok(last.matmul(&p(0).t()?)?.squeeze(0)?.to_vec1::<f32>()?)
}

/// Pick the next token from logits.
pub fn pick(logits: &[f32], o: &SampleOptions, rng: &mut ChaCha8Rng) -> u32 {
    if o.temperature <= 0.0 {
        return logits
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &x)| if x > b.1 { (i, x) } else { b },
            )
            .0 as u32;
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if let Some(k) = o.top_k {
        idx.truncate(k.max(1));
    }
    let max = logits[idx[0]] as f64;
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - max) / o.temperature).exp())
        .collect();
    let sum: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= sum);
    if let Some(top_p) = o.top_p {
        let mut cum = 0.0;
        let keep = probs.iter().position(|&p| {
            cum += p;
            cum >= top_p
        });
        let keep = keep.map(|k| k + 1).unwrap_or(probs.len());
        probs.truncate(keep);
        idx.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut r = rng.gen::<f64>() * total;
    for (p, &i) in probs.iter().zip(&idx) {
        r -= p;
        if r <= 0.0 {
            return i as u32;
        }
    }
    *idx.last().expect("non-empty") as u32
}

/// Continue each prompt. Prompt `i` samples with generator `ChaCha8(seed + i)`.
pub fn generate(model: &Gpt, prompts: &[Vec<u32>], o: &SampleOptions) -> Result<Vec<Generation>> {
    let ctx = model.config.context;
    prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            if prompt.is_empty() {
                bail!("prompt {i} is empty (start it with the end-of-text token to sample from scratch)");
            }
            if prompt.len() >= ctx {
                bail!("prompt {i} has {} tokens; the context is {ctx}", prompt.len());
            }
            let mut rng = ChaCha8Rng::seed_from_u64(o.seed.wrapping_add(i as u64));
            let mut cache = KvCache { k: vec![None; model.config.n_layer], v: vec![None; model.config.n_layer], len: 0 };
            let mut logits = forward_cached(model, prompt, &mut cache)?;
            let mut out = Vec::new();
            let reason = loop {
                let t = pick(&logits, o, &mut rng);
                out.push(t);
                if o.stop_tokens.contains(&t) {
                    break "stop_token";
                }
                if out.len() >= o.max_new_tokens {
                    break "max_new_tokens";
                }
                if cache.len >= ctx {
                    break "context";
                }
                logits = forward_cached(model, &[t], &mut cache)?;
            };
            Ok(Generation { tokens: out, stop_reason: reason.into() })
        })
        .collect()
}

/// Logits of the full forward pass at the last position (to check the cache against).
pub fn last_logits(model: &Gpt, tokens: &[u32]) -> Result<Vec<f32>> {
    let t = Tensor::from_slice(tokens, (1, tokens.len()), &model.device)?;
    let logits = model.forward(&t, Default::default())?;
    Ok(logits
        .narrow(0, tokens.len() - 1, 1)?
        .squeeze(0)?
        .to_vec1::<f32>()?)
}
