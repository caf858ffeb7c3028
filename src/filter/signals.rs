//! The quality signals of a pool of records, kept in one file per pool: every heuristic rule's
//! values and verdicts ([`crate::filter::heuristics`]) and the teacher's own negative
//! log-likelihood per token of the text it wrote (recorded at generation, so free; v1 records
//! lack it). The file carries the pool's fingerprint: a file scored on other records is an
//! error, never silently applied.

use crate::data::document::Document;
use crate::filter::heuristics::{signals, Signals, Thresholds};
use crate::filter::reference::Reference;
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
    /// Bits per byte of the judged text under the real-text reference n-gram
    /// ([`crate::filter::reference`]), when one was given.
    #[serde(default)]
    pub real_kn_bpb: Option<f64>,
    /// Teacher tokens of the record's main text (recorded at generation; v1 lacks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_tokens: Option<u64>,
    pub signals: Signals,
    /// The learned classifier's 0-5 score ([`crate::filter::classifier`]), once one has
    /// scored the pool (`synthlm classify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<f64>,
}

/// The signals of every record of a pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityFile {
    /// What was scored, e.g. `data/generated/v2/stories`.
    pub pool: String,
    /// [`crate::experiments::prepare::fingerprint`] of the pool's records, in order.
    pub pool_sha256: String,
    pub thresholds: Thresholds,
    /// Wall seconds each signal took over the whole pool (`rules`, `reference`), on `threads`.
    #[serde(default)]
    pub seconds: BTreeMap<String, f64>,
    #[serde(default)]
    pub threads: usize,
    /// The machine's 1-minute load average when scoring began (other work slows the timings).
    #[serde(default)]
    pub load_average: Option<f64>,
    /// SHA-256 of the classifier file that filled in `RecordSignals::classifier`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<String>,
    pub records: Vec<RecordSignals>,
}

impl QualityFile {
    /// SHA-256 of what the file says about its records (pool, thresholds, classifier and every
    /// record's signals), its timings left out: scoring the same pool again gives the same
    /// hash, which the file's bytes (wall seconds, threads, load average) would not.
    pub fn scores_sha256(&self) -> Result<String> {
        let scores = QualityFile {
            seconds: BTreeMap::new(),
            threads: 0,
            load_average: None,
            ..self.clone()
        };
        Ok(crate::io::sha256_hex(&serde_json::to_vec(&scores)?))
    }
}

/// The teacher's log-probability and token count of the record's main text, recorded in a
/// generated record's provenance.
fn teacher_record(d: &Document) -> Option<(f64, f64)> {
    let p = d.meta.get("synthlm")?;
    let parsed;
    let p = match p.as_str() {
        Some(s) => {
            parsed = serde_json::from_str::<serde_json::Value>(s).ok()?;
            &parsed
        }
        None => p,
    };
    Some((
        p.get("teacher_logprob")?.as_f64()?,
        p.get("teacher_text_tokens")?.as_f64()?,
    ))
}

/// The teacher's NLL per token of a generated record's text.
fn teacher_nll(d: &Document) -> Option<f64> {
    let (lp, n) = teacher_record(d)?;
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

/// Score every record of a pool (in parallel), timing each signal: the rules, then the
/// reference n-gram when one is given (the teacher's NLL is read from the record, free).
pub fn score(
    docs: &[Document],
    pool: &str,
    t: &Thresholds,
    reference: Option<&Reference>,
    progress: &indicatif::ProgressBar,
) -> QualityFile {
    use rayon::prelude::*;
    let load_average = crate::cpu::load_average();
    let started = std::time::Instant::now();
    let mut records: Vec<RecordSignals> = docs
        .par_iter()
        .inspect(|_| progress.inc(1))
        .map(|d| RecordSignals {
            id: d.id.clone(),
            teacher_nll: teacher_nll(d),
            real_kn_bpb: None,
            teacher_tokens: teacher_record(d).map(|(_, n)| n as u64),
            signals: signals(judged_text(d), t),
            classifier: None,
        })
        .collect();
    let mut seconds = BTreeMap::from([("rules".to_string(), started.elapsed().as_secs_f64())]);
    if let Some(r) = reference {
        let started = std::time::Instant::now();
        records
            .par_iter_mut()
            .zip(docs)
            .for_each(|(rec, d)| rec.real_kn_bpb = r.bpb(judged_text(d)).ok());
        seconds.insert("reference".into(), started.elapsed().as_secs_f64());
    }
    QualityFile {
        pool: pool.into(),
        pool_sha256: crate::experiments::prepare::fingerprint(docs),
        thresholds: t.clone(),
        classifier: None,
        seconds,
        threads: rayon::current_num_threads(),
        load_average,
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

/// Share of records each rule rejects (a record may fail several), and `any`.
pub fn rule_shares(q: &QualityFile) -> BTreeMap<String, f64> {
    let n = q.records.len().max(1) as f64;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &q.records {
        for f in &r.signals.fails {
            *counts.entry(f.clone()).or_default() += 1;
        }
    }
    // count / n, not a sum of 1/n: the same count prints the same share everywhere
    let mut out: BTreeMap<String, f64> =
        counts.into_iter().map(|(k, c)| (k, c as f64 / n)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, text: &str) -> Document {
        Document {
            id: id.into(),
            source: "gen/test".into(),
            text: text.into(),
            chat: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn a_quality_file_of_another_pool_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let good = "Water moves through the air, the land and the sea in a cycle that never ends. The sun warms lakes and oceans, and some of the water rises as vapour. High above the ground the vapour cools and gathers into clouds made of tiny droplets. When the droplets grow heavy they fall back as rain, snow or hail. Rivers carry much of that water to the sea, while some of it soaks into the soil and feeds plants and wells.";
        let pool = vec![doc("a", good), doc("b", "Too short and unfinished")];
        let q = score(
            &pool,
            "test-pool",
            &Thresholds::default(),
            None,
            &indicatif::ProgressBar::hidden(),
        );
        let path = dir.path().join("q.json");
        crate::io::write_json(&path, &q).unwrap();
        assert_eq!(load_for(&path, &pool).unwrap(), q);
        // the same ids with one text changed: another pool
        let other = vec![doc("a", good), doc("b", "Too short, but finished.")];
        let e = load_for(&path, &other).unwrap_err().to_string();
        assert!(e.contains("q.json") && e.contains("another pool"), "{e}");
        // a truncated file
        std::fs::write(&path, "{\"pool\": \"x\"").unwrap();
        assert!(format!("{:#}", load_for(&path, &pool).unwrap_err()).contains("q.json"));
    }
}
