//! Token-weighted perplexity and bits per byte on held-out packed shards.
//!
//! Loss is the mean negative log-likelihood (nats) over every predicted token, so long and short
//! documents weigh by their tokens. Perplexity is `exp(loss)`. Bits per byte divides the total
//! NLL, in bits, by the UTF-8 bytes of the predicted tokens: unlike perplexity it does not depend
//! on the tokenizer, so models with different vocabularies can be compared.

use crate::data::pack::TokenShards;
use crate::model::{gpt::Dropout, kernels, Gpt};
use anyhow::Result;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Tokens predicted.
    pub tokens: u64,
    /// UTF-8 bytes of those tokens (special tokens count 0).
    pub bytes: u64,
    /// Mean NLL in nats per token.
    pub loss: f64,
    pub ppl: f64,
    pub bpb: f64,
}

/// Evaluate on `shards` with windows of `seq_len` tokens, `batch` windows per forward pass,
/// at most `max_windows` windows, evenly spaced over the whole set (deterministic).
/// `token_bytes[id]` is the byte length of each token.
pub fn evaluate(
    model: &Gpt,
    shards: &TokenShards,
    seq_len: usize,
    batch: usize,
    max_windows: usize,
    token_bytes: &[u32],
) -> Result<EvalResult> {
    let available = shards.sequential_windows(seq_len);
    anyhow::ensure!(
        available > 0,
        "{}: {} tokens is too few for one window of {}",
        shards.dir.display(),
        shards.len(),
        seq_len + 1
    );
    let n = (max_windows as u64).min(available);
    // Evenly spaced windows: i * available / n.
    let picks: Vec<u64> = (0..n).map(|i| i * available / n).collect();
    let (mut nll, mut tokens, mut bytes) = (0f64, 0u64, 0u64);
    for chunk in picks.chunks(batch.max(1)) {
        let mut data = Vec::with_capacity(chunk.len() * (seq_len + 1));
        for &w in chunk {
            data.extend(shards.sequential_window(w, seq_len));
        }
        let windows = Tensor::from_vec(data.clone(), (chunk.len(), seq_len + 1), &model.device)?;
        let inputs = windows.narrow(1, 0, seq_len)?.contiguous()?;
        let targets = windows.narrow(1, 1, seq_len)?.flatten_all()?.contiguous()?;
        let logits = model.forward(&inputs, Dropout::default())?;
        let row_nll = kernels::per_row_nll(&logits, &targets)?.to_vec1::<f32>()?;
        nll += row_nll.iter().map(|&x| x as f64).sum::<f64>();
        tokens += row_nll.len() as u64;
        for row in data.chunks(seq_len + 1) {
            bytes += row[1..]
                .iter()
                .map(|&t| token_bytes.get(t as usize).copied().unwrap_or(0) as u64)
                .sum::<u64>();
        }
    }
    let loss = nll / tokens as f64;
    Ok(EvalResult {
        tokens,
        bytes,
        loss,
        ppl: loss.exp(),
        bpb: nll / std::f64::consts::LN_2 / bytes.max(1) as f64,
    })
}
