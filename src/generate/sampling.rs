//! Choosing the next token from logits: repetition penalty, temperature, top-k, top-p (nucleus),
//! each request with its own seeded ChaCha8 generator so results never depend on batching.
//!
//! The order follows Hugging Face `generate`: penalty on the raw logits, then temperature, then
//! top-k, then top-p over the renormalised survivors, then one draw.

use super::kernels;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How one request samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 = greedy (argmax; ties go to the lowest id).
    pub temperature: f32,
    /// Keep the `k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `p` (1 = off).
    pub top_p: f32,
    /// CTRL-style penalty (> 1 discourages repeats): a logit of a token already in the
    /// sequence (prompt or output) is divided by it when positive, multiplied when negative.
    /// 1 = off.
    pub repetition_penalty: f32,
    /// With `repeat_last_n > 0` the penalty applies only to the last `repeat_last_n` generated
    /// tokens (llama.cpp's window) instead of to every token of prompt and output: a small
    /// model penalised for every function word it has ever seen writes stilted text.
    #[serde(default)]
    pub repeat_last_n: usize,
    /// Never repeat an n-gram of this many tokens within the generated text (Hugging Face's
    /// `no_repeat_ngram_size`; 0 = off). It stops the loops a small model falls into without
    /// the repetition penalty's side effect of pushing down every function word it has seen.
    #[serde(default)]
    pub no_repeat_ngram: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.7,
            top_k: 0,
            top_p: 0.9,
            repetition_penalty: 1.0,
            repeat_last_n: 0,
            no_repeat_ngram: 0,
        }
    }
}

impl Sampling {
    pub fn greedy() -> Sampling {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            repeat_last_n: 0,
            no_repeat_ngram: 0,
        }
    }
}

/// Which tokens a sequence has seen (for the repetition penalty): one bit per vocabulary entry.
#[derive(Clone)]
pub struct Seen(Vec<u64>);

impl Seen {
    pub fn new(vocab: usize) -> Seen {
        Seen(vec![0; vocab.div_ceil(64)])
    }
    pub fn clear(&mut self) {
        self.0.fill(0);
    }
    pub fn insert(&mut self, t: u32) {
        self.0[t as usize / 64] |= 1 << (t % 64);
    }
    /// Record token `t`, just appended to `out`, under the sampling's penalty window.
    pub fn update(&mut self, s: &Sampling, out: &[u32]) {
        if s.repetition_penalty == 1.0 {
            return;
        }
        if s.repeat_last_n == 0 {
            if let Some(&t) = out.last() {
                self.insert(t);
            }
        } else {
            self.clear();
            out[out.len().saturating_sub(s.repeat_last_n)..]
                .iter()
                .for_each(|&t| self.insert(t));
        }
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64)
                .filter(move |b| bits >> b & 1 == 1)
                .map(move |b| w * 64 + b)
        })
    }
}

/// Set to -inf the logit of every token that would complete an `n`-gram already in `out`
/// (its last `n - 1` tokens followed by that token). A scan of `out`: O(len x n) per token,
/// small beside a forward pass.
pub fn ban_repeated_ngrams(logits: &mut [f32], out: &[u32], n: usize) {
    if n == 0 || out.len() < n {
        return;
    }
    let tail = &out[out.len() - (n - 1)..];
    for w in out.windows(n) {
        if &w[..n - 1] == tail {
            logits[w[n - 1] as usize] = f32::NEG_INFINITY;
        }
    }
}

/// Pick a token. `logits` is modified (penalised, then turned into weights). `scratch` is reused
/// between calls to avoid allocations.
pub fn sample(
    logits: &mut [f32],
    s: &Sampling,
    seen: &Seen,
    rng: &mut ChaCha8Rng,
    scratch: &mut Vec<u32>,
) -> u32 {
    if s.repetition_penalty != 1.0 {
        for t in seen.iter() {
            let l = &mut logits[t];
            *l = if *l > 0.0 {
                *l / s.repetition_penalty
            } else {
                *l * s.repetition_penalty
            };
        }
    }
    if s.temperature <= 0.0 {
        return argmax(logits);
    }
    // Softmax numerators p_i = exp((l_i - max) / T), unnormalised.
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let inv_t = 1.0 / s.temperature;
    logits.iter_mut().for_each(|l| *l = (*l - max) * inv_t);
    let total = kernels::exp_inplace(logits);
    let p = &*logits;

    // Candidates, most likely first (ties: lower id first, so the order is canonical).
    let by_prob = |a: &u32, b: &u32| p[*b as usize].total_cmp(&p[*a as usize]).then(a.cmp(b));
    scratch.clear();
    let top_p = s.top_p.clamp(0.0, 1.0) as f64;
    let mass: f64;
    if s.top_k > 0 && s.top_k < p.len() {
        scratch.extend(0..p.len() as u32);
        scratch.select_nth_unstable_by(s.top_k - 1, by_prob);
        scratch.truncate(s.top_k);
        mass = scratch.iter().map(|&i| p[i as usize] as f64).sum();
    } else {
        mass = total;
        if top_p >= 1.0 {
            // Pure sampling: no need to sort anything.
            return draw(p, 0..p.len() as u32, mass, rng);
        }
        // The nucleus lies inside {i : p_i >= (1 - top_p) * mass / V}: everything below that
        // threshold weighs less than (1 - top_p) * mass in total. Usually a few hundred tokens.
        let tau = ((1.0 - top_p) * mass / p.len() as f64) as f32;
        scratch.extend((0..p.len() as u32).filter(|&i| p[i as usize] >= tau));
    }
    scratch.sort_unstable_by(by_prob);
    if top_p < 1.0 {
        let mut cum = 0.0;
        let keep = scratch
            .iter()
            .position(|&i| {
                cum += p[i as usize] as f64;
                cum >= top_p * mass
            })
            .map_or(scratch.len(), |k| k + 1);
        scratch.truncate(keep);
    }
    let kept: f64 = scratch.iter().map(|&i| p[i as usize] as f64).sum();
    draw(p, scratch.iter().copied(), kept, rng)
}

/// Draw from `cands` with weights `p[c]` (total `mass`).
fn draw(p: &[f32], cands: impl Iterator<Item = u32>, mass: f64, rng: &mut ChaCha8Rng) -> u32 {
    let mut r = rng.gen::<f64>() * mass;
    let mut last = 0;
    for i in cands {
        r -= p[i as usize] as f64;
        if r <= 0.0 {
            return i;
        }
        last = i;
    }
    last // rounding left a sliver of mass: the last candidate takes it
}

fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}
