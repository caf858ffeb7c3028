//! The quality signals of a pool of records, kept in one file per pool: every heuristic rule's
//! values and verdicts ([`crate::filter::heuristics`]) and the teacher's own negative
//! log-likelihood per token of the text it wrote (recorded at generation, so free; v1 records
//! lack it). The file carries the pool's fingerprint: a file scored on other records is an
//! error, never silently applied.

use crate::data::document::Document;
use crate::filter::heuristics::{signals, Signals, Thresholds};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One record's signals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordSignals {
    pub id: String,
    /// The teacher's mean NLL per token of the record's main text, given its prompt.
    pub teacher_nll: Option<f64>,
    pub signals: Signals,
}

/// The signals of every record of a pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityFile {
    /// What was scored, e.g. `data/generated/v2/stories`.
    pub pool: String,
    /// [`crate::experiments::prepare::fingerprint`] of the pool's records, in order.
    pub pool_sha256: String,
    pub thresholds: Thresholds,
    pub records: Vec<RecordSignals>,
}

/// The teacher's NLL per token recorded in a generated record's provenance.
fn teacher_nll(d: &Document) -> Option<f64> {
    let p = d.meta.get("synthlm")?;
    let parsed;
    let p = match p.as_str() {
        Some(s) => {
            parsed = serde_json::from_str::<serde_json::Value>(s).ok()?;
            &parsed
        }
        None => p,
    };
    let (lp, n) = (
        p.get("teacher_logprob")?.as_f64()?,
        p.get("teacher_text_tokens")?.as_f64()?,
    );
    (n > 0.0).then(|| -lp / n)
}

/// The text the rules judge: a conversation's last assistant turn (the rules are about prose,
/// and the ChatML rendering would end every record in a tag), else the record's text.
pub fn judged_text(d: &Document) -> &str {
    d.chat
        .as_ref()
        .and_then(|c| {
            c.iter()
                .rev()
                .find(|m| m.role == crate::data::document::Role::Assistant)
        })
        .map_or(d.text.as_str(), |m| m.content.as_str())
}

/// Score every record of a pool (in parallel; ~20 us per record per core).
pub fn score(docs: &[Document], pool: &str, t: &Thresholds) -> QualityFile {
    use rayon::prelude::*;
    let records = docs
        .par_iter()
        .map(|d| RecordSignals {
            id: d.id.clone(),
            teacher_nll: teacher_nll(d),
            signals: signals(judged_text(d), t),
        })
        .collect();
    QualityFile {
        pool: pool.into(),
        pool_sha256: crate::experiments::prepare::fingerprint(docs),
        thresholds: t.clone(),
        records,
    }
}

/// Read a quality file and check that it was scored on exactly `docs`.
pub fn load_for(path: &Path, docs: &[Document]) -> Result<QualityFile> {
    let q: QualityFile =
        crate::io::read_json(path).with_context(|| format!("quality file {}", path.display()))?;
    let sha = crate::experiments::prepare::fingerprint(docs);
    if q.pool_sha256 != sha || q.records.len() != docs.len() {
        bail!(
            "{}: scored on another pool ({} records, fingerprint {}…) than the one given ({} records, {}…); score it again with `synthlm quality`",
            path.display(),
            q.records.len(),
            &q.pool_sha256[..q.pool_sha256.len().min(12)],
            docs.len(),
            &sha[..12]
        );
    }
    Ok(q)
}

/// Indices of the records that fail none of `rules` (all rules if empty); an error naming the
/// pool if none is left.
pub fn passing(q: &QualityFile, rules: &[&str]) -> Result<Vec<usize>> {
    let keep: Vec<usize> = (0..q.records.len())
        .filter(|&i| {
            !q.records[i]
                .signals
                .fails
                .iter()
                .any(|f| rules.is_empty() || rules.contains(&f.as_str()))
        })
        .collect();
    if keep.is_empty() {
        bail!(
            "no record of {} ({} records) passes {}",
            q.pool,
            q.records.len(),
            if rules.is_empty() {
                "every rule".to_string()
            } else {
                rules.join(", ")
            }
        );
    }
    Ok(keep)
}

/// Share of records each rule rejects (a record may fail several), and `any`.
pub fn rule_shares(q: &QualityFile) -> BTreeMap<String, f64> {
    let n = q.records.len().max(1) as f64;
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for r in &q.records {
        for f in &r.signals.fails {
            *out.entry(f.clone()).or_default() += 1.0 / n;
        }
    }
    out.insert(
        "any".into(),
        q.records
            .iter()
            .filter(|r| !r.signals.fails.is_empty())
            .count() as f64
            / n,
    );
    out
}
