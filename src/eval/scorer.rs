//! What the evaluation suite scores: anything that gives log-likelihoods of text, a student or an
//! n-gram baseline, behind one trait, so every metric runs on both alike.

use crate::data::pack::TokenShards;
use crate::data::tokenizer::TextTokenizer;
use crate::eval::ngram::{Ngram, NgramCounts};
use crate::model::gpt::Dropout;
use crate::model::{kernels, Gpt};
use crate::stats::DocScores;
use anyhow::Result;
use candle_core::Tensor;

/// A language model, as the metrics see it.
pub trait Scorer {
    /// The tokenizer its token ids are in.
    fn tokenizer(&self) -> &TextTokenizer;
    /// For each (context, continuation), the summed natural-log probability of the
    /// continuation's tokens after an end-of-text token and the context.
    fn loglik(&self, items: &[(Vec<u32>, Vec<u32>)]) -> Result<Vec<f64>>;
    /// Bits of every document of a packed set (packed with [`Scorer::tokenizer`]).
    fn document_bits(&self, shards: &TokenShards) -> Result<DocScores>;
}

/// What every scorer reads for an item: an end-of-text token, the context, the continuation.
fn sequence(eot: u32, context: &[u32], continuation: &[u32]) -> Vec<u32> {
    std::iter::once(eot)
        .chain(context.iter().copied())
        .chain(continuation.iter().copied())
        .collect()
}

/// A student (a trained GPT) and its tokenizer.
pub struct StudentScorer<'a> {
    pub model: &'a Gpt,
    pub tokenizer: &'a TextTokenizer,
    /// Sequences per forward pass.
    pub batch: usize,
}

impl Scorer for StudentScorer<'_> {
    fn tokenizer(&self) -> &TextTokenizer {
        self.tokenizer
    }

    fn loglik(&self, items: &[(Vec<u32>, Vec<u32>)]) -> Result<Vec<f64>> {
        let ctx = self.model.config.context;
        let eot = self.tokenizer.eot_id();
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(self.batch.max(1)) {
            // EOT + context + continuation, cut from the left to fit the model's context.
            let seqs: Vec<Vec<u32>> = chunk
                .iter()
                .map(|(c, k)| {
                    let s = sequence(eot, c, k);
                    s[s.len().saturating_sub(ctx + 1)..].to_vec()
                })
                .collect();
            let width = seqs.iter().map(|s| s.len()).max().unwrap_or(2).max(2);
            let mut data = Vec::with_capacity(seqs.len() * width);
            for s in &seqs {
                data.extend(s.iter().copied().chain(std::iter::repeat(eot)).take(width));
            }
            let t = Tensor::from_vec(data, (seqs.len(), width), &self.model.device)?;
            let inputs = t.narrow(1, 0, width - 1)?.contiguous()?;
            let targets = t.narrow(1, 1, width - 1)?.flatten_all()?.contiguous()?;
            let logits = self.model.forward(&inputs, Dropout::default())?;
            let nll = kernels::per_row_nll(&logits, &targets)?.to_vec1::<f32>()?;
            for ((s, (_, k)), row) in seqs.iter().zip(chunk).zip(nll.chunks(width - 1)) {
                // Targets at positions len-|k| .. len-1 of the sequence are row[len-|k|-1 ..].
                let (end, n) = (s.len() - 1, k.len().min(s.len() - 1));
                out.push(-row[end - n..end].iter().map(|&x| x as f64).sum::<f64>());
            }
        }
        Ok(out)
    }

    fn document_bits(&self, shards: &TokenShards) -> Result<DocScores> {
        let seq = self.model.config.context;
        crate::eval::perplexity::score_documents(self.model, shards, seq, self.batch)
    }
}

/// An n-gram baseline with its counts and the tokenizer its tokens are in.
pub struct NgramScorer<'a> {
    pub counts: &'a NgramCounts,
    pub model: &'a Ngram,
    pub tokenizer: &'a TextTokenizer,
}

impl Scorer for NgramScorer<'_> {
    fn tokenizer(&self) -> &TextTokenizer {
        self.tokenizer
    }

    fn loglik(&self, items: &[(Vec<u32>, Vec<u32>)]) -> Result<Vec<f64>> {
        let eot = self.tokenizer.eot_id();
        Ok(items
            .iter()
            .map(|(c, k)| {
                let s = sequence(eot, c, k);
                let start = s.len() - k.len();
                (start..s.len())
                    .map(|i| self.model.prob(self.counts, &s[..i], s[i]).ln())
                    .sum()
            })
            .collect())
    }

    fn document_bits(&self, shards: &TokenShards) -> Result<DocScores> {
        let (docs, bytes) = shards.documents()?;
        Ok(self.model.score(
            self.counts,
            &shards.all_tokens(),
            &docs,
            &bytes,
            shards.manifest.eot_id,
        ))
    }
}
