//! Train/eval contamination: how much of an evaluation set already appears in a training set,
//! measured as the fraction of the evaluation set's word 13-grams that occur in the training
//! set (the n-gram size of GPT-3's and PaLM's contamination studies), and the fraction of
//! evaluation documents with at least one such 13-gram.

use crate::data::document::Document;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

pub const NGRAM: usize = 13;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contamination {
    pub train: String,
    pub eval: String,
    /// Evaluation 13-grams (with repeats) that also occur in the training set, as a fraction.
    pub ngram_overlap: f64,
    /// Evaluation documents that share at least one 13-gram with the training set.
    pub docs_flagged: f64,
    pub eval_ngrams: u64,
}

fn hashes(text: &str) -> Vec<u64> {
    let words: Vec<String> = text.split_whitespace().map(|w| w.to_lowercase()).collect();
    words
        .windows(NGRAM)
        .map(|w| crate::hash::fnv1a(w.join(" ").into_bytes()))
        .collect()
}

/// The set of a training corpus's 13-gram hashes.
pub fn ngram_set(train: &[Document]) -> HashSet<u64> {
    train.iter().flat_map(|d| hashes(&d.text)).collect()
}

/// Overlap of `eval` with a training set's 13-grams.
pub fn contamination(
    train_name: &str,
    train: &HashSet<u64>,
    eval_name: &str,
    eval: &[Document],
) -> Contamination {
    let (mut total, mut hit, mut flagged) = (0u64, 0u64, 0usize);
    for d in eval {
        let h = hashes(&d.text);
        let k = h.iter().filter(|x| train.contains(x)).count() as u64;
        total += h.len() as u64;
        hit += k;
        flagged += usize::from(k > 0);
    }
    Contamination {
        train: train_name.into(),
        eval: eval_name.into(),
        ngram_overlap: hit as f64 / total.max(1) as f64,
        docs_flagged: flagged as f64 / eval.len().max(1) as f64,
        eval_ngrams: total,
    }
}
