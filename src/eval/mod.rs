//! Evaluation: bits per byte on held-out sets (whole documents), n-gram baselines, and the
//! suite of cheap metrics every experiment uses (a neutral held-out domain, grammar minimal
//! pairs, proxy tasks, generation quality), with fixed, hashed items.

pub mod contamination;
pub mod diversity;
pub mod grammar;
pub mod items;
pub mod neutral;
pub mod ngram;
pub mod perplexity;
pub mod proxy;
pub mod quality;
pub mod scorer;
pub mod suite;
pub mod suite_run;
