//! n-gram baselines beside every student: for each training condition and seed, the unigram,
//! bigram and Kneser-Ney 2-5 models of [`crate::eval::ngram`], counted on exactly the token
//! positions that seed's student saw (the union of its training windows, each position once)
//! and scored on every held-out document. Cached under the work folder by the coverage's hash:
//! seeds whose students saw the same positions (every run that passes over its whole training
//! set) share one fit.

use crate::config::{RunConfig, TrainConfig};
use crate::data::pack::TokenShards;
use crate::data::tokenizer::TextTokenizer;
use crate::eval::ngram::{fit_baselines, merge_ranges};
use crate::eval::scorer::NgramScorer;
use crate::eval::suite::{score_all, MetricRow, SuiteItems};
use crate::experiments::prepare::Prepared;
use crate::experiments::scale::Scale;
use crate::stats::DocScores;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

/// One n-gram model's scores on one held-out set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineScores {
    /// `unigram`, `bigram`, `kn-2` .. `kn-5`.
    pub name: String,
    /// The condition whose tokens it counted, and the seed whose windows.
    pub trained_on: String,
    pub seed: u64,
    pub eval_set: String,
    /// Tokens counted (distinct positions).
    pub tokens: u64,
    pub scores: DocScores,
}

/// The positions a run with training schedule `t` saw: its training windows (`seq_len + 1`
/// tokens each, drawn as the trainer draws them), merged.
pub fn coverage(train: &TokenShards, t: &TrainConfig) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    for step in 0..t.max_steps {
        for micro in 0..t.grad_accum as u64 {
            let stream = step * t.grad_accum as u64 + micro;
            for start in train.window_starts(t.seed, stream, t.batch_size, t.seq_len) {
                ranges.push(start as usize..start as usize + t.seq_len + 1);
            }
        }
    }
    merge_ranges(ranges)
}

/// The training schedule of a scale's run of `seed` (what [`coverage`] needs of it).
fn schedule(s: &Scale, seed: u64) -> TrainConfig {
    let mut t = crate::config::profile("mini")
        .expect("the built-in mini profile")
        .train;
    (t.seed, t.max_steps, t.grad_accum, t.batch_size, t.seq_len) =
        (seed, s.steps, s.grad_accum, s.batch_size, s.seq_len);
    t
}

/// The dev split the Kneser-Ney discounts are tuned on: every 50th training document.
fn dev_documents(docs: &[Range<usize>]) -> Vec<Range<usize>> {
    docs.iter().skip(49).step_by(50).cloned().collect()
}

fn cache_key(cov: &[Range<usize>], train: &TokenShards, evals: &[(String, TokenShards)]) -> String {
    let mut bytes = Vec::with_capacity(cov.len() * 16 + 256);
    for r in cov {
        bytes.extend((r.start as u64).to_le_bytes());
        bytes.extend((r.end as u64).to_le_bytes());
    }
    bytes.extend(train.manifest.content_sha256.bytes());
    for (_, e) in evals {
        bytes.extend(e.manifest.content_sha256.bytes());
    }
    format!("{:016x}", crate::hash::fnv1a(bytes))
}

/// Fit and score one coverage of one training set (or read the cached result).
fn fit_one(
    train: &TokenShards,
    cov: Vec<Range<usize>>,
    evals: &[(String, TokenShards)],
    cache: &Path,
) -> Result<Vec<(String, String, u64, DocScores)>> {
    if let Ok(c) = crate::io::read_json(cache) {
        return Ok(c);
    }
    let tokens = train.all_tokens();
    let (docs, _) = train.documents()?;
    let (vocab, eot) = (train.manifest.vocab_size, train.manifest.eot_id);
    let (counts, models) = fit_baselines(&tokens, cov, &dev_documents(&docs), vocab, eot);
    let mut out = Vec::new();
    for (name, e) in evals {
        let etoks = e.all_tokens();
        let (edocs, ebytes) = e.documents()?;
        for m in &models {
            let sc = m.score(&counts, &etoks, &edocs, &ebytes, eot);
            out.push((m.name(), name.clone(), counts.tokens(), sc));
        }
    }
    crate::io::write_json(cache, &out)?;
    Ok(out)
}

/// Every baseline of the grid: per training condition and seed, per model and held-out set.
pub fn baselines(
    s: &Scale,
    p: &Prepared,
    work: &Path,
    progress: bool,
) -> Result<Vec<BaselineScores>> {
    let evals: Vec<(String, TokenShards)> = p
        .eval
        .iter()
        .map(|e| Ok((e.name.clone(), TokenShards::open(&e.dir)?)))
        .collect::<Result<_>>()?;
    let dir = work.join("baselines");
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    let pb = if progress {
        let fits = (p.train.len() * s.seeds.len()) as u64;
        crate::progress::bar(fits, "fits", "n-grams")
    } else {
        indicatif::ProgressBar::hidden()
    };
    for t in &p.train {
        let train = TokenShards::open(&t.dir)?;
        let mut fitted: BTreeMap<String, Vec<(String, String, u64, DocScores)>> = BTreeMap::new();
        for &seed in &s.seeds {
            let cov = coverage(&train, &schedule(s, seed));
            let key = cache_key(&cov, &train, &evals);
            if !fitted.contains_key(&key) {
                let cache = dir.join(format!("{}-{key}.json", t.name));
                fitted.insert(key.clone(), fit_one(&train, cov, &evals, &cache)?);
            }
            pb.inc(1);
            for (name, eval_set, tokens, scores) in &fitted[&key] {
                out.push(BaselineScores {
                    name: name.clone(),
                    trained_on: t.name.clone(),
                    seed,
                    eval_set: eval_set.clone(),
                    tokens: *tokens,
                    scores: scores.clone(),
                });
            }
        }
    }
    pb.finish_and_clear();
    Ok(out)
}

/// The n-gram baselines of one run for the evaluation suite: counted on exactly the positions
/// the run saw (read from its config), each scored on the suite's text metrics (neutral bits per
/// byte, minimal pairs, proxy tasks) as the student is.
pub fn suite_baselines(
    cfg: &RunConfig,
    tok: &TextTokenizer,
    items: &SuiteItems,
    work: &Path,
) -> Result<Vec<(String, Vec<MetricRow>)>> {
    let train = TokenShards::open(&cfg.data.train)?;
    let tokens = train.all_tokens();
    let (docs, _) = train.documents()?;
    let (vocab, eot) = (train.manifest.vocab_size, train.manifest.eot_id);
    let (counts, models) = fit_baselines(
        &tokens,
        coverage(&train, &cfg.train),
        &dev_documents(&docs),
        vocab,
        eot,
    );
    let neutral = items.neutral_shards(tok, work)?;
    models
        .iter()
        .map(|m| {
            let s = NgramScorer {
                counts: &counts,
                model: m,
                tokenizer: tok,
            };
            Ok((m.name(), score_all(&s, items, &neutral)?))
        })
        .collect()
}
