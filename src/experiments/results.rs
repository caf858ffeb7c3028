//! The one results schema, `data/results/expN/PROFILE/results.json`, written by every
//! experiment and read by notebooks, book and paper alike:
//!
//! - `headline`: `{experiment, student, condition, eval_set, metric, mean, lo, hi, interval,
//!   n_seeds}`, `interval` naming what `lo`/`hi` are (min-max over few seeds, or a bootstrap);
//! - `baselines`: `{name, trained_on, eval_set, metric, value}`, the n-grams beside the
//!   students (`unigram`, `bigram`, `kn-2` .. `kn-5`, counted on the tokens the students of
//!   condition `trained_on` saw);
//! - `comparisons`: paired differences with their test, p-value and Holm-adjusted p-value over
//!   all comparisons of the experiment;
//! - the runs with their training-time provenance, the sets' sizes, samples, inputs by hash,
//!   and the experiment's own analysis (`analysis`, free-form).

use crate::experiments::baselines::BaselineScores;
use crate::experiments::grid::{RunOutcome, RunProvenance, Sample, SetScore};
use crate::experiments::prepare::CorpusSize;
use crate::experiments::provenance::{Environment, InputRecord};
use crate::experiments::scale::Scale;
use crate::stats::{self, DocScores, Estimate};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const SCHEMA: &str = "synthlm-results/2";
pub const RESULTS: &str = "results.json";
/// Confidence level of every bootstrap interval.
pub const LEVEL: f64 = 0.95;
const RESAMPLES: usize = 4000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadlineRow {
    pub experiment: String,
    pub student: String,
    pub condition: String,
    pub eval_set: String,
    /// `bpb` (bits per byte), `loss` (nats per token), `minimal_pairs_acc`, ...
    pub metric: String,
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    /// What lo and hi are.
    pub interval: String,
    pub n_seeds: usize,
    /// What guessing scores on this metric (suite metrics with a chance level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chance: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineRow {
    pub name: String,
    pub trained_on: String,
    pub eval_set: String,
    pub metric: String,
    /// Mean over the seeds whose coverage it was counted on.
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    pub experiment: String,
    /// What is compared, e.g. `mini-3m: synthetic - real`.
    pub label: String,
    pub eval_set: String,
    pub metric: String,
    /// a - b (negative: a is lower, i.e. better for bits per byte).
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
    pub interval: String,
    /// The test and its smallest attainable p-value.
    pub test: String,
    pub p_floor: f64,
    pub p_value: f64,
    /// Holm-adjusted over every comparison of the experiment.
    pub p_holm: f64,
    /// The whole-set difference a - b for each pairing of the two sides' seeds. The interval
    /// and test above resample documents with the trained weights held fixed, so they do not
    /// see how much a difference moves between training seeds; this range does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<SeedSpread>,
}

/// The smallest and largest whole-set difference over seed pairings ([`Pairing`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedSpread {
    pub lo: f64,
    pub hi: f64,
    pub pairs: usize,
}

/// Which seeds of two sides a comparison pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// Seed i with seed i: a student and an n-gram model counted on the tokens that seed saw, or
    /// two students trained on the same seed's token windows (a design and its probe).
    BySeed,
    /// Every seed of one side with every seed of the other: students of two training sets,
    /// whose seeds have nothing in common but the number.
    Every,
}

impl ComparisonRow {
    /// Whether a and b are apart: the interval excludes 0, the Holm-adjusted p-value is below
    /// `alpha`, and every seed pairing (when recorded) has the sign of the difference, so the
    /// verdict does not hang on which training seeds were drawn.
    pub fn separated(&self, alpha: f64) -> bool {
        let seeds_agree = self
            .seeds
            .as_ref()
            .is_none_or(|s| (s.hi < 0.0 && self.diff < 0.0) || (s.lo > 0.0 && self.diff > 0.0));
        (self.hi < 0.0 || self.lo > 0.0) && self.p_holm < alpha && seeds_agree
    }

    /// Whether a is below b (bits per byte: better) in the sense of [`Self::separated`].
    pub fn below(&self, alpha: f64) -> bool {
        self.diff < 0.0 && self.separated(alpha)
    }
}

/// [`SeedSpread`] of whole-set bits per byte (None when a side has no seeds, or
/// [`Pairing::BySeed`] meets sides of different lengths).
pub fn seed_spread(a: &[&SetScore], b: &[&SetScore], pairing: Pairing) -> Option<SeedSpread> {
    let d: Vec<f64> = match pairing {
        Pairing::BySeed if a.len() != b.len() => return None,
        Pairing::BySeed => a.iter().zip(b).map(|(x, y)| x.bpb() - y.bpb()).collect(),
        Pairing::Every => a
            .iter()
            .flat_map(|x| b.iter().map(move |y| x.bpb() - y.bpb()))
            .collect(),
    };
    let lo = d.iter().copied().reduce(f64::min)?;
    let hi = d.iter().copied().reduce(f64::max)?;
    Some(SeedSpread {
        lo,
        hi,
        pairs: d.len(),
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub student: String,
    pub condition: String,
    pub seed: u64,
    /// Relative to the results folder.
    pub dir: String,
    pub params: usize,
    pub tokens_seen: u64,
    pub provenance: RunProvenance,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetRecord {
    /// `train` or `eval`.
    pub role: String,
    pub name: String,
    pub size: CorpusSize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub schema: String,
    /// `exp1`, ...
    pub experiment: String,
    pub title: String,
    pub scale: Scale,
    pub headline: Vec<HeadlineRow>,
    pub baselines: Vec<BaselineRow>,
    pub comparisons: Vec<ComparisonRow>,
    pub runs: Vec<RunRecord>,
    pub sets: Vec<SetRecord>,
    pub samples: Vec<Sample>,
    pub tokenizer_sha256: String,
    pub inputs: Vec<InputRecord>,
    /// What the harness's decontamination removed, per set.
    #[serde(default)]
    pub decontamination: Vec<crate::eval::contamination::Removed>,
    /// Neutral documents (indices into the fixed neutral set) left out of every neutral score:
    /// near-copies of training text ([`crate::eval::contamination::near_copies`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neutral_excluded: Vec<usize>,
    /// The learning curve's points, when the scale asks for one ([`super::curve`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<super::curve::CurvePoint>,
    /// The learning-rate sweep that chose each student's rate ([`super::sweep`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<super::sweep::SweepPoint>,
    /// The call that aggregated the runs (each run's own training is in `runs[].provenance`).
    pub aggregated_by: Environment,
    /// The experiment's own analysis.
    pub analysis: serde_json::Value,
}

impl SetRecord {
    /// How tables name the set: `train: real`, `held-out: neutral`, `sweep dev: blend`.
    pub fn label(&self) -> String {
        let role = match self.role.as_str() {
            "train" => "train",
            "dev" => "sweep dev",
            _ => "held-out",
        };
        format!("{role}: {}", self.name)
    }
}

impl Results {
    pub fn set(&self, role: &str, name: &str) -> Option<&CorpusSize> {
        self.sets
            .iter()
            .find(|s| s.role == role && s.name == name)
            .map(|s| &s.size)
    }
    pub fn cell(
        &self,
        student: &str,
        condition: &str,
        eval_set: &str,
        metric: &str,
    ) -> Option<&HeadlineRow> {
        self.headline.iter().find(|h| {
            h.student == student
                && h.condition == condition
                && h.eval_set == eval_set
                && h.metric == metric
        })
    }
    pub fn baseline(&self, name: &str, trained_on: &str, eval_set: &str) -> Option<f64> {
        self.baselines
            .iter()
            .find(|b| b.name == name && b.trained_on == trained_on && b.eval_set == eval_set)
            .map(|b| b.value)
    }
    /// Distinct values of a headline field, in first-seen order.
    pub fn distinct(&self, f: fn(&HeadlineRow) -> &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for h in &self.headline {
            if !out.iter().any(|x| x == f(h)) {
                out.push(f(h).to_string());
            }
        }
        out
    }
}

/// The per-seed scores of one (student, condition) on one set, in seed order.
pub fn seed_scores<'a>(
    runs: &'a [RunOutcome],
    student: &str,
    condition: &str,
    set: &str,
) -> Vec<&'a SetScore> {
    runs.iter()
        .filter(|r| r.key.student == student && r.key.condition == condition)
        .filter_map(|r| r.scores.get(set))
        .collect()
}

/// All per-document scores, if every seed has them.
fn documents(scores: &[&SetScore]) -> Option<Vec<DocScores>> {
    scores
        .iter()
        .map(|s| match s {
            SetScore::Documents(d) => Some(d.clone()),
            SetScore::Windows { .. } => None,
        })
        .collect()
}

fn row(
    exp: &str,
    key: (&str, &str, &str),
    metric: &str,
    e: Estimate,
    n: usize,
    extra: &str,
) -> HeadlineRow {
    HeadlineRow {
        experiment: exp.into(),
        student: key.0.into(),
        condition: key.1.into(),
        eval_set: key.2.into(),
        metric: metric.into(),
        mean: e.mean,
        lo: e.lo,
        hi: e.hi,
        interval: format!("{}{extra}", e.interval.label()),
        n_seeds: n,
        chance: None,
    }
}

/// Headline rows of one (student, condition, set): bits per byte over the whole set with a
/// seed-and-document interval; or, for runs scored only on training-time windows, bits per
/// byte and loss with min-max over seeds, labelled with the windows they cover.
pub fn headline_rows(exp: &str, runs: &[RunOutcome], key: (&str, &str, &str)) -> Vec<HeadlineRow> {
    let scores = seed_scores(runs, key.0, key.1, key.2);
    let n = scores.len();
    if n == 0 {
        return vec![];
    }
    if let Some(docs) = documents(&scores) {
        let e = stats::seed_doc_interval(&docs, LEVEL, RESAMPLES, 7);
        let extra = format!("; whole set, {} documents", docs[0].len());
        return vec![row(exp, key, "bpb", e, n, &extra)];
    }
    let (mut bpb, mut loss, mut windows, mut tokens) = (vec![], vec![], 0, 0);
    for s in &scores {
        if let SetScore::Windows {
            bpb: b,
            loss: l,
            windows: w,
            tokens: t,
        } = s
        {
            bpb.push(*b);
            loss.push(*l);
            (windows, tokens) = (*w, *t);
        }
    }
    let minmax = |v: &[f64]| Estimate {
        mean: stats::mean(v),
        lo: v.iter().copied().fold(f64::MAX, f64::min),
        hi: v.iter().copied().fold(f64::MIN, f64::max),
        interval: stats::IntervalKind::MinMax { n: v.len() },
    };
    let extra = format!(
        "; {windows} windows ({} tokens) of the set",
        crate::report::tables::int(tokens)
    );
    vec![
        row(exp, key, "bpb", minmax(&bpb), n, &extra),
        row(exp, key, "loss", minmax(&loss), n, &extra),
    ]
}

/// One row per (model, condition, set): bits per byte, mean over seeds.
pub fn baseline_rows(b: &[BaselineScores]) -> Vec<BaselineRow> {
    let mut acc: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    let mut order = Vec::new();
    for x in b {
        let k = (x.name.clone(), x.trained_on.clone(), x.eval_set.clone());
        if !acc.contains_key(&k) {
            order.push(k.clone());
        }
        acc.entry(k).or_default().push(x.scores.bpb());
    }
    order
        .into_iter()
        .map(|k| {
            let v = &acc[&k];
            BaselineRow {
                name: k.0,
                trained_on: k.1,
                eval_set: k.2,
                metric: "bpb".into(),
                value: stats::mean(v),
            }
        })
        .collect()
}

/// Compare two models on one set: over documents when both have per-document scores (bits
/// averaged over each one's seeds; sign-flip test, 20,000 flips), else over seeds paired by
/// seed (exact sign-flip test, whose floor is 2 / 2^seeds). Either way the row records the
/// spread of the whole-set difference over the seeds `pairing` pairs.
pub fn compare(
    exp: &str,
    label: &str,
    set: &str,
    (a, b): (&[&SetScore], &[&SetScore]),
    pairing: Pairing,
) -> ComparisonRow {
    let row = |diff: f64, lo: f64, hi: f64, interval: String, test: &str, floor: f64, p: f64| {
        ComparisonRow {
            experiment: exp.into(),
            label: label.into(),
            eval_set: set.into(),
            metric: "bpb".into(),
            diff,
            lo,
            hi,
            interval,
            test: test.into(),
            p_floor: floor,
            p_value: p,
            p_holm: p,
            seeds: seed_spread(a, b, pairing),
        }
    };
    if let (Some(da), Some(db)) = (documents(a), documents(b)) {
        let t = stats::paired_docs(
            &stats::mean_over_seeds(&da),
            &stats::mean_over_seeds(&db),
            LEVEL,
            TRIALS,
            11,
        );
        let (d, floor) = (&t.diff, 1.0 / (TRIALS + 1) as f64);
        let test = "paired sign-flip over documents";
        return row(
            d.mean,
            d.lo,
            d.hi,
            d.interval.label(),
            test,
            floor,
            t.p_value,
        );
    }
    let va: Vec<f64> = a.iter().map(|s| s.bpb()).collect();
    let vb: Vec<f64> = b.iter().map(|s| s.bpb()).collect();
    let t = stats::paired_test(&va, &vb, 11);
    let d: Vec<f64> = va.iter().zip(&vb).map(|(x, y)| x - y).collect();
    let (lo, hi) = d
        .iter()
        .fold((f64::MAX, f64::MIN), |m, &x| (m.0.min(x), m.1.max(x)));
    row(
        t.mean_diff,
        lo,
        hi,
        format!("min-max of the {} per-seed differences", d.len()),
        &format!("exact sign-flip over {} seeds", d.len()),
        2.0 / 2f64.powi(d.len() as i32),
        t.p_value,
    )
}

/// Sign flips of every paired test over documents or items.
const TRIALS: usize = 20_000;

/// Compare two models on the items of a suite metric (`a[i]`, `b[i]`: each one's score on item
/// `i`, averaged over its seeds): the mean difference a - b with a 95% bootstrap interval over
/// items and a paired sign-flip test over items (the test of [`compare`] over documents, with
/// every item weighing the same).
pub fn compare_items(
    exp: &str,
    label: &str,
    (set, metric): (&str, &str),
    a: &[f64],
    b: &[f64],
) -> ComparisonRow {
    let ones = vec![1; a.len()];
    let (da, db) = (
        DocScores {
            bits: a.to_vec(),
            bytes: ones.clone(),
        },
        DocScores {
            bits: b.to_vec(),
            bytes: ones,
        },
    );
    let t = stats::paired_docs(&da, &db, LEVEL, TRIALS, 11);
    ComparisonRow {
        experiment: exp.into(),
        label: label.into(),
        eval_set: set.into(),
        metric: metric.into(),
        diff: t.diff.mean,
        lo: t.diff.lo,
        hi: t.diff.hi,
        interval: format!("{:.0}% bootstrap over {} items", LEVEL * 100.0, a.len()),
        test: "paired sign-flip over items".into(),
        p_floor: 1.0 / (TRIALS + 1) as f64,
        p_value: t.p_value,
        p_holm: t.p_value,
        seeds: None,
    }
}

/// A run's `suite.json`, its neutral rows (every step's and every baseline's) without the
/// neutral documents `excluded` (near-copies of training text: [`Results::neutral_excluded`]).
pub fn load_suite(
    dir: &Path,
    excluded: &[usize],
) -> anyhow::Result<crate::eval::suite_run::SuiteReport> {
    use crate::eval::suite::without_documents;
    let path = dir.join(crate::eval::suite_run::SUITE);
    let mut rep: crate::eval::suite_run::SuiteReport =
        crate::io::read_json(&path).with_context(|| {
            format!(
                "the suite's results of {} (run the experiment again to make them)",
                dir.display()
            )
        })?;
    let rows = rep.evaluated.iter_mut().map(|(_, r)| r);
    for r in rows.chain(rep.baselines.iter_mut().map(|(_, r)| r)) {
        *r = r
            .iter()
            .map(|m| without_documents(m, excluded))
            .collect::<anyhow::Result<_>>()
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(rep)
}

/// A run's per-document scores on the suite's neutral set (its final weights) and those of the
/// n-gram models counted on the positions it saw, from `RUN/suite.json`, without the documents
/// `excluded`; `None` when the run has no suite results.
pub fn suite_neutral(
    dir: &Path,
    excluded: &[usize],
) -> anyhow::Result<Option<(DocScores, BTreeMap<String, DocScores>)>> {
    if !dir.join(crate::eval::suite_run::SUITE).exists() {
        return Ok(None);
    }
    let rep = load_suite(dir, excluded)?;
    let neutral = |rows: &[crate::eval::suite::MetricRow]| {
        rows.iter()
            .find(|m| m.metric == "neutral_bpb")
            .map(|m| DocScores {
                bits: m.per_item.clone(),
                bytes: m.bytes.clone(),
            })
    };
    let Some(own) = neutral(rep.last()) else {
        return Ok(None);
    };
    let base = rep
        .baselines
        .iter()
        .filter_map(|(name, rows)| neutral(rows).map(|d| (name.clone(), d)))
        .collect();
    Ok(Some((own, base)))
}

/// A finished run's per-document scores on every held-out set it was scored on: the
/// experiment's sets from `RUN/scores.json`, and `neutral` from its suite results (without the
/// documents `excluded`) when it has them.
pub fn held_out_scores(
    dir: &Path,
    excluded: &[usize],
) -> anyhow::Result<BTreeMap<String, DocScores>> {
    let path = dir.join(crate::experiments::grid::SCORES);
    let mut out: BTreeMap<String, DocScores> = if path.exists() {
        crate::io::read_json(&path)?
    } else {
        BTreeMap::new()
    };
    if let Some((own, _)) = suite_neutral(dir, excluded)? {
        out.insert("neutral".into(), own);
    }
    Ok(out)
}

/// The label of a comparison of two training sets of one student (`a - b`).
pub fn between_label(student: &str, a: &str, b: &str) -> String {
    format!("{student}: {a} - {b}")
}

/// The label of a student's comparison with an n-gram model of its own training tokens.
pub fn vs_ngram_label(student: &str, condition: &str, ngram: &str) -> String {
    format!("{student} on {condition} - {ngram} on {condition}")
}

/// Holm-adjust the p-values within each metric (a family of tests: bits per byte, or one suite
/// metric), so that adding comparisons of one kind does not move the verdicts of another.
pub fn holm_all(rows: &mut [ComparisonRow]) {
    let mut metrics: Vec<String> = rows.iter().map(|r| r.metric.clone()).collect();
    metrics.sort();
    metrics.dedup();
    for m in metrics {
        let at: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].metric == m).collect();
        let p: Vec<f64> = at.iter().map(|&i| rows[i].p_value).collect();
        for (&i, adj) in at.iter().zip(stats::holm(&p)) {
            rows[i].p_holm = adj;
        }
    }
}

/// The evaluation suite's rows of every student and condition (each seed's `RUN/suite.json`,
/// final weights, without the neutral documents `neutral_excluded`): the mean over seeds with the seeds' min-max (one seed: that run's own
/// interval over items), and the n-gram baselines of each condition (mean over its runs).
pub fn suite_rows(
    exp: &str,
    runs: &[RunOutcome],
    neutral_excluded: &[usize],
) -> anyhow::Result<(Vec<HeadlineRow>, Vec<BaselineRow>)> {
    use crate::eval::suite_run::SuiteReport;
    let mut per: BTreeMap<(String, String), Vec<SuiteReport>> = BTreeMap::new();
    for r in runs {
        let rep = load_suite(&r.dir, neutral_excluded)?;
        per.entry((r.key.student.clone(), r.key.condition.clone()))
            .or_default()
            .push(rep);
    }
    let (mut head, mut base_values) = (
        Vec::new(),
        BTreeMap::<(String, String, String, String), Vec<f64>>::new(),
    );
    for ((student, condition), reps) in &per {
        for m in reps[0].last() {
            let v: Vec<f64> = reps
                .iter()
                .filter_map(|r| {
                    r.last()
                        .iter()
                        .find(|x| x.metric == m.metric && x.eval_set == m.eval_set)
                        .map(|x| x.value)
                })
                .collect();
            let (lo, hi, interval) = if v.len() == 1 {
                (m.lo, m.hi, format!("{} (one seed)", m.interval))
            } else {
                let minmax = |f: fn(f64, f64) -> f64, init: f64| v.iter().copied().fold(init, f);
                (
                    minmax(f64::min, f64::MAX),
                    minmax(f64::max, f64::MIN),
                    stats::IntervalKind::MinMax { n: v.len() }.label(),
                )
            };
            head.push(HeadlineRow {
                experiment: exp.into(),
                student: student.clone(),
                condition: condition.clone(),
                eval_set: m.eval_set.clone(),
                metric: m.metric.clone(),
                mean: stats::mean(&v),
                lo,
                hi,
                interval,
                n_seeds: v.len(),
                chance: m.chance,
            });
        }
        for rep in reps {
            for (name, rows) in &rep.baselines {
                for x in rows {
                    base_values
                        .entry((
                            name.clone(),
                            condition.clone(),
                            x.eval_set.clone(),
                            x.metric.clone(),
                        ))
                        .or_default()
                        .push(x.value);
                }
            }
        }
    }
    let base = base_values
        .into_iter()
        .map(|((name, trained_on, eval_set, metric), v)| BaselineRow {
            name,
            trained_on,
            eval_set,
            metric,
            value: stats::mean(&v),
        })
        .collect();
    Ok((head, base))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(bits: &[f64]) -> SetScore {
        SetScore::Documents(DocScores {
            bits: bits.to_vec(),
            bytes: vec![10; bits.len()],
        })
    }

    /// Three seeds of a over 40 documents, each seed lower than b's on every document but one
    /// seed by far less: the document interval excludes 0 whatever the seeds do, so only the
    /// seed pairings tell a small, seed-bound difference from one every seed keeps.
    #[test]
    fn a_difference_is_separated_only_when_every_seed_pairing_has_its_sign() {
        let docs = |base: f64, k: f64| -> Vec<f64> {
            (0..40).map(|i| base + k * (i % 7) as f64).collect()
        };
        let b = [
            set(&docs(20.0, 0.3)),
            set(&docs(20.1, 0.3)),
            set(&docs(19.9, 0.3)),
        ];
        let keep = [
            set(&docs(15.0, 0.3)),
            set(&docs(15.2, 0.3)),
            set(&docs(14.9, 0.3)),
        ];
        let flip = [
            set(&docs(15.0, 0.3)),
            set(&docs(15.2, 0.3)),
            set(&docs(20.5, 0.3)),
        ];
        fn refs(v: &[SetScore]) -> Vec<&SetScore> {
            v.iter().collect()
        }
        let row = |a: &[SetScore], pairing| {
            let mut r = compare("t", "a - b", "held", (&refs(a), &refs(&b)), pairing);
            r.p_holm = r.p_value;
            r
        };
        let kept = row(&keep, Pairing::Every);
        let s = kept.seeds.clone().unwrap();
        assert_eq!(s.pairs, 9);
        // Seed pairings: 15.0-20.1 .. 15.2-19.9 in bits per 10 bytes.
        assert!((s.lo - (14.9 - 20.1) / 10.0).abs() < 1e-9, "{s:?}");
        assert!((s.hi - (15.2 - 19.9) / 10.0).abs() < 1e-9, "{s:?}");
        assert!(kept.separated(0.05) && kept.below(0.05));
        let flipped = row(&flip, Pairing::Every);
        assert!(flipped.hi < 0.0 && flipped.p_value < 0.05, "{flipped:?}");
        assert!(flipped.seeds.as_ref().unwrap().hi > 0.0);
        assert!(!flipped.separated(0.05) && !flipped.below(0.05));
        // Seed with seed: only 3 pairings, and the flipped seed's own is above 0.
        let by_seed = row(&flip, Pairing::BySeed);
        assert_eq!(by_seed.seeds.as_ref().unwrap().pairs, 3);
        assert!(!by_seed.separated(0.05));
        // A row from before seed pairings were recorded is judged on its interval and test.
        let old = ComparisonRow {
            seeds: None,
            ..flipped.clone()
        };
        assert!(old.separated(0.05));
        assert!(seed_spread(&refs(&keep[..2]), &refs(&b), Pairing::BySeed).is_none());
    }
}
