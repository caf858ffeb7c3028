//! Sampling from a trained student: the model's one forward pass ([`Gpt::forward`], over the
//! last `context` tokens at every step) and the crate's one sampler
//! ([`crate::generate::sampling::sample`]: temperature, top-k, top-p, as the teacher samples).
//! Seeded per prompt, so results do not depend on how prompts are grouped. Students are small
//! and samples short, so recomputing the window each step (no KV cache) costs little: ~2 ms a
//! token for a 3M-parameter student at context 128.

use crate::generate::sampling::{sample, Sampling, Seen};
use crate::model::Gpt;
use anyhow::{bail, Result};
use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleOptions {
    pub max_new_tokens: usize,
    /// 0 = greedy.
    pub temperature: f64,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    /// Generation ends when one of these is sampled; it is not included in the output.
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

impl SampleOptions {
    fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature as f32,
            top_k: self.top_k.unwrap_or(0),
            top_p: self.top_p.unwrap_or(1.0) as f32,
            ..Sampling::greedy()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub tokens: Vec<u32>,
    /// `stop_token`, `max_new_tokens`.
    pub stop_reason: String,
}

/// Continue each prompt. Prompt `i` samples with generator `ChaCha8(seed + i)`. A sequence
/// longer than the context is cut to its last `context` tokens for each step.
pub fn generate(model: &Gpt, prompts: &[Vec<u32>], o: &SampleOptions) -> Result<Vec<Generation>> {
    let ctx = model.config.context;
    let s = o.sampling();
    let seen = Seen::new(model.config.vocab_size);
    prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            if prompt.is_empty() {
                bail!("prompt {i} is empty (start it with the end-of-text token to sample from scratch)");
            }
            let mut rng = ChaCha8Rng::seed_from_u64(o.seed.wrapping_add(i as u64));
            let (mut seq, mut out, mut scratch) = (prompt.clone(), Vec::new(), Vec::new());
            let reason = loop {
                if out.len() >= o.max_new_tokens {
                    break "max_new_tokens";
                }
                let mut logits = last_logits(model, &seq[seq.len().saturating_sub(ctx)..])?;
                let t = sample(&mut logits, &s, &seen, &mut rng, &mut scratch);
                if o.stop_tokens.contains(&t) {
                    break "stop_token";
                }
                out.push(t);
                seq.push(t);
            };
            Ok(Generation {
                tokens: out,
                stop_reason: reason.into(),
            })
        })
        .collect()
}

/// Logits of the forward pass at the last position.
pub fn last_logits(model: &Gpt, tokens: &[u32]) -> Result<Vec<f32>> {
    let t = Tensor::from_slice(tokens, (1, tokens.len()), &model.device)?;
    let logits = model.forward(&t, Default::default())?;
    Ok(logits
        .narrow(0, tokens.len() - 1, 1)?
        .squeeze(0)?
        .to_vec1::<f32>()?)
}
