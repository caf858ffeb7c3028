//! Evaluation. Perplexity and bits per byte on held-out token shards (this issue); diversity,
//! proxy tasks, behavioural tests and judges join them with the later experiments.

pub mod contamination;
pub mod diversity;
pub mod ngram;
pub mod perplexity;
