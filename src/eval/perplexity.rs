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

/// One window of [`score_documents`]: document `doc`, input tokens `[start, start + len)` of
/// its sequence (EOT + document), scoring targets from `from` (absolute positions).
struct Window {
    doc: usize,
    start: usize,
    from: usize,
}

/// Bits of every document of a packed held-out set under `model` (the whole set, not a
/// sample). Each document is read from an end-of-text token before it; a document longer than
/// the context is covered by windows of `seq_len` tokens with stride `seq_len / 2`, each
/// position scored once, with at least half a context before it except near the document's
/// start. Windows are batched `batch` at a time (short ones padded; padding is not scored and,
/// coming last, cannot affect the scored positions of a causal model).
pub fn score_documents(
    model: &Gpt,
    shards: &TokenShards,
    seq_len: usize,
    batch: usize,
) -> Result<crate::stats::DocScores> {
    let (docs, bytes) = shards.documents()?;
    let tokens = shards.all_tokens();
    let eot = shards.manifest.eot_id;
    let stride = (seq_len / 2).max(1);
    // The sequence of document d: EOT then its tokens; position 0 is never a target.
    let seq = |d: usize| -> Vec<u32> {
        std::iter::once(eot)
            .chain(tokens[docs[d].clone()].iter().copied())
            .collect()
    };
    let mut windows = Vec::new();
    for (d, r) in docs.iter().enumerate() {
        let targets = r.len(); // positions 1..=targets
        let mut start = 0;
        let mut scored = 0; // last scored position
        loop {
            let end = (start + seq_len).min(targets); // last target of this window
            windows.push(Window {
                doc: d,
                start,
                from: scored + 1,
            });
            scored = end;
            if end >= targets {
                break;
            }
            start += stride;
        }
    }
    let mut bits = vec![0f64; docs.len()];
    for chunk in windows.chunks(batch.max(1)) {
        let mut data = Vec::with_capacity(chunk.len() * (seq_len + 1));
        for w in chunk {
            let s = seq(w.doc);
            let mut win: Vec<u32> = s[w.start..(w.start + seq_len + 1).min(s.len())].to_vec();
            win.resize(seq_len + 1, eot);
            data.extend(win);
        }
        let t = Tensor::from_vec(data, (chunk.len(), seq_len + 1), &model.device)?;
        let inputs = t.narrow(1, 0, seq_len)?.contiguous()?;
        let targets = t.narrow(1, 1, seq_len)?.flatten_all()?.contiguous()?;
        let logits = model.forward(&inputs, Dropout::default())?;
        let nll = kernels::per_row_nll(&logits, &targets)?.to_vec1::<f32>()?;
        for (w, row) in chunk.iter().zip(nll.chunks(seq_len)) {
            let last = docs[w.doc].len();
            for (i, &x) in row.iter().enumerate() {
                let pos = w.start + i + 1; // the target's position in the sequence
                if pos >= w.from && pos <= last {
                    bits[w.doc] += x as f64 / std::f64::consts::LN_2;
                }
            }
        }
    }
    Ok(crate::stats::DocScores { bits, bytes })
}
