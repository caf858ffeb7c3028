//! Experiment 1 — can purely synthetic data match real data?
//!
//! Design: students trained at equal token budgets on (a) the synthetic mix (the generated
//! families, or the synthetic seed datasets at the paper scale), (b) the real corpus, (c) a
//! blend by text bytes (half and half unless the scale's `[design] blend_synthetic_share` says
//! otherwise); all evaluated on held-out synthetic and held-out real text. Analysis: synthetic
//! against real per student and held-out set, each student against the best Kneser-Ney
//! baseline of its own training tokens, 13-gram contamination of every training set with every
//! held-out set, a first look at the training data and one held-out example per source.

use crate::data::document::Document;
use crate::data::read::LoadOptions;
use crate::eval::contamination::{contamination, ngram_set, Contamination};
use crate::eval::grammar::{Pair, PHENOMENA};
use crate::eval::items::load_pairs;
use crate::eval::suite::MetricRow;
use crate::eval::suite_run::SuiteReport;
use crate::experiments::corpora;
use crate::experiments::grid::SetScore;
use crate::experiments::prepare::Design;
use crate::experiments::provenance::{local_inputs, InputRecord};
use crate::experiments::results::{
    between_label, compare, compare_items, load_suite, seed_scores, suite_neutral, vs_ngram_label,
    ComparisonRow, Pairing, Results,
};
use crate::experiments::scale::{Corpora, Scale};
use crate::experiments::{Analysis, Experiment, Paths};
use crate::generate::jobs::Generator;
use crate::generate::stats::{first_look_rows, FirstLook};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Fixed prompts for samples (plain text, or a chat turn for the assistant to answer).
pub const PROMPTS: [&str; 4] = [
    "Once upon a time, there was a little",
    "<|im_start|>user\nWhy do leaves change colour in autumn?<|im_end|>\n<|im_start|>assistant\n",
    "To install a package on Debian, you",
    "The water cycle is",
];

/// The training conditions, and the held-out sets.
pub const CONDITIONS: [&str; 3] = ["synthetic", "real", "blend"];
pub const EVAL_SETS: [&str; 2] = ["synthetic", "real"];

/// What Experiment 1's scales may set in `[design]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Exp1Design {
    /// Share of the blend's text bytes that is synthetic.
    #[serde(default = "half")]
    blend_synthetic_share: f64,
}

fn half() -> f64 {
    0.5
}

/// Experiment 1's own analysis (in `results.json` under `analysis`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exp1Analysis {
    pub contamination: Vec<Contamination>,
    /// Minimal-pair accuracy per phenomenon and frame (students and the unigram model), when
    /// the scale runs the suite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<FrameRow>,
    /// Per source, training splits (at most 20,000 documents each).
    pub first_look: Vec<FirstLook>,
    pub examples: Vec<Example>,
    /// Bits per byte per source of each held-out set (students and the n-grams of the bar),
    /// so a set whose bytes sit in one source can be read with every source weighing the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceRow>,
}

/// One model's bits per byte on the documents of one source of a held-out set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRow {
    pub set: String,
    pub source: String,
    pub documents: usize,
    pub bytes: u64,
    pub student: String,
    pub condition: String,
    /// The student's name, `bigram`, or the best Kneser-Ney model of the condition on the set
    /// (lowest whole-set bits per byte, as in the bar).
    pub model: String,
    /// Mean over seeds (students) or over the seeds' token counts (n-grams).
    pub bpb: f64,
}

/// One model's minimal-pair accuracy on one frame of one phenomenon. Each phenomenon has two
/// frames (half its pairs each) built so that a model preferring one of the two words always
/// scores 1 on one frame and 0 on the other: a phenomenon learned shows on both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameRow {
    pub student: String,
    pub condition: String,
    /// The student's name, or the n-gram model's (counted on the student's tokens).
    pub model: String,
    pub phenomenon: String,
    pub frame: u8,
    /// Mean over the runs (seeds) of the accuracy on the frame's pairs.
    pub accuracy: f64,
    pub pairs: usize,
}

/// The start of a held-out document, for the data chapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub source: String,
    pub id: String,
    pub excerpt: String,
}

pub struct Exp1;

impl Experiment for Exp1 {
    fn number(&self) -> u32 {
        1
    }
    fn title(&self) -> &'static str {
        "Can purely synthetic data match real data?"
    }
    fn conditions(&self, _: &Scale) -> Result<Vec<String>> {
        Ok(CONDITIONS.iter().map(|c| c.to_string()).collect())
    }
    fn prompts(&self) -> Vec<&'static str> {
        PROMPTS.to_vec()
    }
    fn design(&self, s: &Scale, paths: &Paths) -> Result<Design> {
        design(s, paths)
    }
    fn analyse(&self, a: &Analysis) -> Result<(Vec<ComparisonRow>, serde_json::Value)> {
        analyse(a)
    }
    fn report(&self, r: &Results, results_dir: &Path) -> Result<crate::report::Report> {
        crate::report::exp1::report(r, results_dir)
    }
}

/// The synthetic and real documents of a scale, and the inputs they come from.
fn load_corpora(
    s: &Scale,
    paths: &Paths,
) -> Result<(Vec<Document>, Vec<Document>, Vec<InputRecord>)> {
    match &s.corpora {
        Corpora::Local { generated } => {
            if !paths.real.exists() {
                let (_, manifest) = crate::data::real::extract(&paths.real)?;
                crate::io::write_json(&paths.real_manifest, &manifest)?;
            }
            let gen_dir = paths.root.join(generated);
            let mut synthetic = Vec::new();
            for g in Generator::ALL {
                synthetic.extend(corpora::generated(&gen_dir, g)?);
            }
            let inputs = local_inputs(&paths.root, generated, &paths.real, &paths.real_manifest)?;
            Ok((synthetic, corpora::real(&paths.real)?, inputs))
        }
        Corpora::Hub {
            synthetic,
            real,
            docs_per_source,
        } => {
            let load = |specs: &[String]| -> Result<Vec<Document>> {
                let mut docs = Vec::new();
                for spec in specs {
                    let opts = LoadOptions {
                        limit: Some(*docs_per_source),
                        ..Default::default()
                    };
                    for d in crate::data::input::open(spec, None, &paths.hub, opts)? {
                        docs.push(d?);
                    }
                }
                Ok(docs)
            };
            let inputs = synthetic
                .iter()
                .chain(real)
                .map(|spec| InputRecord {
                    name: spec.clone(),
                    detail: "Hugging Face dataset (revision in the spec; main if none)".into(),
                    sha256: String::new(),
                })
                .collect();
            Ok((load(synthetic)?, load(real)?, inputs))
        }
    }
}

fn design(s: &Scale, paths: &Paths) -> Result<Design> {
    let d: Exp1Design = s.design()?;
    let (synthetic, real, inputs) = load_corpora(s, paths)?;
    let (syn_train, syn_eval) = corpora::split(synthetic);
    let (real_train, real_eval) = corpora::split(real);
    let cap = |docs: Vec<Document>| match s.max_train_bytes {
        0 => docs,
        b => corpora::take_bytes(&docs, b),
    };
    let (syn_train, real_train) = (cap(syn_train), cap(real_train));
    // The blend: its share of the smaller set's bytes from each side.
    let bytes = |docs: &[Document]| docs.iter().map(|x| x.text.len() as u64).sum::<u64>();
    let total = bytes(&syn_train).min(bytes(&real_train));
    let syn_part = (total as f64 * d.blend_synthetic_share) as u64;
    let mut blend = corpora::take_bytes(&syn_train, syn_part);
    blend.extend(corpora::take_bytes(&real_train, total - syn_part));
    Ok(Design {
        conditions: vec![
            ("synthetic".into(), syn_train),
            ("real".into(), real_train),
            ("blend".into(), blend),
        ],
        eval_sets: vec![
            (
                "synthetic".into(),
                corpora::take_bytes(&syn_eval, s.max_eval_bytes),
            ),
            (
                "real".into(),
                corpora::take_bytes(&real_eval, s.max_eval_bytes),
            ),
        ],
        inputs,
    })
}

/// Synthetic against real per student and held-out set; each student against the best
/// Kneser-Ney baseline of its own training tokens (when its scores cover whole documents).
/// The sets every student is held to the bar on: the two held-out sets of the design and the
/// evaluation suite's neutral third domain (read from each run's `suite.json`).
pub const BAR_SETS: [&str; 3] = ["synthetic", "real", "neutral"];

/// The condition pairs compared (a - b) on every set.
pub const CONDITION_PAIRS: [(&str, &str); 3] = [
    ("synthetic", "real"),
    ("blend", "real"),
    ("blend", "synthetic"),
];

/// One (student, condition, set): the student's scores per seed, and each n-gram model's per
/// seed (each counted on the positions that seed's run saw).
struct Cell {
    student: Vec<SetScore>,
    ngrams: BTreeMap<String, Vec<SetScore>>,
}

fn cell(a: &Analysis, student: &str, c: &str, e: &str) -> Result<Option<Cell>> {
    let mut ngrams: BTreeMap<String, Vec<SetScore>> = BTreeMap::new();
    if e != "neutral" {
        let student: Vec<SetScore> = seed_scores(a.runs, student, c, e)
            .into_iter()
            .cloned()
            .collect();
        for b in a
            .baselines
            .iter()
            .filter(|b| b.trained_on == c && b.eval_set == e)
        {
            let v = ngrams.entry(b.name.clone()).or_default();
            v.push(SetScore::Documents(b.scores.clone()));
        }
        return Ok((!student.is_empty()).then_some(Cell { student, ngrams }));
    }
    let mut scores = Vec::new();
    for r in a
        .runs
        .iter()
        .filter(|r| r.key.student == student && r.key.condition == c)
    {
        let Some((own, base)) = suite_neutral(&r.dir, a.neutral_excluded)? else {
            return Ok(None);
        };
        scores.push(SetScore::Documents(own));
        for (name, d) in base {
            ngrams.entry(name).or_default().push(SetScore::Documents(d));
        }
    }
    Ok((!scores.is_empty()).then_some(Cell {
        student: scores,
        ngrams,
    }))
}

/// The Kneser-Ney model of a cell with the lowest mean whole-set bits per byte over seeds.
fn best_kn(ngrams: &BTreeMap<String, Vec<SetScore>>) -> Option<(&String, &Vec<SetScore>)> {
    let mean = |v: &[SetScore]| v.iter().map(|s| s.bpb()).sum::<f64>() / v.len() as f64;
    ngrams
        .iter()
        .filter(|(n, _)| n.starts_with("kn-"))
        .min_by(|p, q| mean(p.1).total_cmp(&mean(q.1)))
}

/// Paired comparisons over documents: the conditions against each other on every set, and
/// every student against the bigram and the best Kneser-Ney model (lowest mean bits per byte)
/// of its own training tokens: the bar of the design.
fn comparisons(a: &Analysis) -> Result<Vec<ComparisonRow>> {
    fn refs(v: &[SetScore]) -> Vec<&SetScore> {
        v.iter().collect()
    }
    let mut out = Vec::new();
    for st in &a.scale.students {
        for e in BAR_SETS {
            let mut cells = BTreeMap::new();
            for c in CONDITIONS {
                if let Some(x) = cell(a, &st.name, c, e)? {
                    cells.insert(c, x);
                }
            }
            for (x, y) in CONDITION_PAIRS {
                if let (Some(cx), Some(cy)) = (cells.get(x), cells.get(y)) {
                    if cx.student.len() == cy.student.len() {
                        let label = between_label(&st.name, x, y);
                        out.push(compare(
                            "exp1",
                            &label,
                            e,
                            (&refs(&cx.student), &refs(&cy.student)),
                            Pairing::Every,
                        ));
                    }
                }
            }
            for (c, x) in &cells {
                let best = best_kn(&x.ngrams);
                let bigram = x.ngrams.get_key_value("bigram");
                for (name, base) in bigram.into_iter().chain(best) {
                    let label = vs_ngram_label(&st.name, c, name);
                    out.push(compare(
                        "exp1",
                        &label,
                        e,
                        (&refs(&x.student), &refs(base)),
                        Pairing::BySeed,
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The suite metrics compared between training sets, paired over items.
pub const SUITE_COMPARED: [&str; 3] = ["minimal_pairs_acc", "proxy_acc", "proxy_acc_norm"];

/// Every run's suite report (final weights and baselines, neutral near-copies left out), by
/// (student, condition), in seed order; empty when the scale runs no suite.
type Reports = BTreeMap<(String, String), Vec<SuiteReport>>;

fn suite_reports(a: &Analysis) -> Result<Reports> {
    let mut out = Reports::new();
    if !a.scale.suite {
        return Ok(out);
    }
    for r in a.runs {
        let rep = load_suite(&r.dir, a.neutral_excluded)?;
        let key = (r.key.student.clone(), r.key.condition.clone());
        out.entry(key).or_default().push(rep);
    }
    Ok(out)
}

/// The items a metric's part covers (indices into the suite's items) and each item's score
/// averaged over `rows` (one per seed); `None` unless every row is there, on the same items.
fn item_means(rows: &[Option<&MetricRow>]) -> Option<(Vec<usize>, Vec<f64>)> {
    let rows: Vec<&MetricRow> = rows.iter().copied().collect::<Option<_>>()?;
    let first = rows.first()?;
    let n = first.per_item.len();
    let same = |r: &&MetricRow| r.item_index == first.item_index && r.per_item.len() == n;
    if !rows.iter().all(same) {
        return None;
    }
    let k = rows.len() as f64;
    let mean = (0..n)
        .map(|i| rows.iter().map(|r| r.per_item[i]).sum::<f64>() / k)
        .collect();
    let index = match first.item_index.is_empty() {
        true => (0..n).collect(),
        false => first.item_index.clone(),
    };
    Some((index, mean))
}

/// A metric's part in each report's final rows, or in its n-gram model `ngram`'s rows.
fn rows_of<'a>(
    reps: &'a [SuiteReport],
    ngram: Option<&str>,
    metric: &str,
    part: &str,
) -> Vec<Option<&'a MetricRow>> {
    reps.iter()
        .map(|rep| {
            let rows = match ngram {
                None => rep.last(),
                Some(n) => rep
                    .baselines
                    .iter()
                    .find(|(name, _)| name == n)
                    .map_or(&[][..], |(_, r)| r.as_slice()),
            };
            rows.iter()
                .find(|m| m.metric == metric && m.eval_set == part)
        })
        .collect()
}

/// The conditions compared on the suite's accuracy metrics, per student, metric and part
/// (phenomenon, task, `all`): each item's score averaged over seeds, paired over items.
fn suite_comparisons(students: &[String], reports: &Reports) -> Vec<ComparisonRow> {
    let mut out = Vec::new();
    for st in students {
        let reps = |c: &str| reports.get(&(st.clone(), c.to_string()));
        let Some(first) = CONDITIONS.iter().find_map(|c| reps(c)) else {
            continue;
        };
        for metric in SUITE_COMPARED {
            let parts = first[0].last().iter().filter(|m| m.metric == metric);
            for part in parts.map(|m| m.eval_set.as_str()) {
                for (x, y) in CONDITION_PAIRS {
                    let means =
                        |c: &str| reps(c).and_then(|r| item_means(&rows_of(r, None, metric, part)));
                    let (Some(ix), Some(iy)) = (means(x), means(y)) else {
                        continue;
                    };
                    if ix.0 == iy.0 {
                        let label = between_label(st, x, y);
                        out.push(compare_items("exp1", &label, (part, metric), &ix.1, &iy.1));
                    }
                }
            }
        }
    }
    out
}

/// The model whose frames the table sets beside the students': the unigram model prefers the
/// more frequent word, which is what a phenomenon decided by a word preference looks like.
const FRAME_NGRAM: &str = "unigram";

/// Minimal-pair accuracy per phenomenon and frame of every student and condition, and of the
/// unigram model counted on the same tokens.
fn frames(reports: &Reports, pairs: &[Pair]) -> Vec<FrameRow> {
    let mut out = Vec::new();
    for ((student, condition), reps) in reports {
        for model in [None, Some(FRAME_NGRAM)] {
            for ph in PHENOMENA {
                let rows = rows_of(reps, model, "minimal_pairs_acc", ph);
                let Some((index, mean)) = item_means(&rows) else {
                    continue;
                };
                for frame in [0, 1] {
                    let at: Vec<f64> = (0..index.len())
                        .filter(|&k| pairs.get(index[k]).is_some_and(|p| p.frame == frame))
                        .map(|k| mean[k])
                        .collect();
                    out.push(FrameRow {
                        student: student.clone(),
                        condition: condition.clone(),
                        model: model.unwrap_or(student).to_string(),
                        phenomenon: ph.to_string(),
                        frame,
                        accuracy: crate::stats::mean(&at),
                        pairs: at.len(),
                    });
                }
            }
        }
    }
    out
}

/// The first `chars` characters of a text, cut at a word boundary, whitespace collapsed.
fn excerpt(text: &str, chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= chars {
        return flat;
    }
    let cut: String = flat.chars().take(chars).collect();
    match cut.rfind(' ') {
        Some(i) => format!("{} ...", &cut[..i]),
        None => format!("{cut} ..."),
    }
}

/// Each source's (name, documents, bytes, bits per byte averaged over `scores`), sources in
/// name order; `sources[i]` is document i's source.
fn source_bpb<'a>(
    sources: &[&'a str],
    scores: &[&crate::stats::DocScores],
) -> Result<Vec<(&'a str, usize, u64, f64)>> {
    for d in scores {
        anyhow::ensure!(
            d.len() == sources.len(),
            "{} scores for {} documents",
            d.len(),
            sources.len()
        );
    }
    let names: std::collections::BTreeSet<&str> = sources.iter().copied().collect();
    Ok(names
        .into_iter()
        .map(|name| {
            let idx: Vec<usize> = (0..sources.len()).filter(|&i| sources[i] == name).collect();
            let bytes: u64 = idx.iter().map(|&i| scores[0].bytes[i]).sum();
            let bpb = scores
                .iter()
                .map(|d| idx.iter().map(|&i| d.bits[i]).sum::<f64>() / bytes.max(1) as f64)
                .sum::<f64>()
                / scores.len() as f64;
            (name, idx.len(), bytes, bpb)
        })
        .collect())
}

/// [`SourceRow`]s of every design held-out set (whole-document scores only), for every
/// student and condition, and the bigram and best Kneser-Ney model of the condition (the
/// models of the bar, from the same [`cell`]).
fn per_source(a: &Analysis) -> Result<Vec<SourceRow>> {
    let mut out = Vec::new();
    for e in &a.prepared.eval {
        let sources: Vec<&str> = e.docs.iter().map(|d| d.source.as_str()).collect();
        for st in &a.scale.students {
            for c in CONDITIONS {
                let Some(x) = cell(a, &st.name, c, &e.name)? else {
                    continue;
                };
                let models = [(st.name.as_str(), &x.student)].into_iter().chain(
                    x.ngrams
                        .get_key_value("bigram")
                        .into_iter()
                        .chain(best_kn(&x.ngrams))
                        .map(|(n, v)| (n.as_str(), v)),
                );
                for (model, scores) in models {
                    let Some(docs) = scores
                        .iter()
                        .map(|s| match s {
                            SetScore::Documents(d) => Some(d),
                            SetScore::Windows { .. } => None,
                        })
                        .collect::<Option<Vec<_>>>()
                    else {
                        continue;
                    };
                    let rows = source_bpb(&sources, &docs)
                        .with_context(|| format!("held-out {}, {model} on {c}", e.name))?;
                    out.extend(
                        rows.into_iter()
                            .map(|(source, documents, bytes, bpb)| SourceRow {
                                set: e.name.clone(),
                                source: source.into(),
                                documents,
                                bytes,
                                student: st.name.clone(),
                                condition: c.into(),
                                model: model.into(),
                                bpb,
                            }),
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Documents grouped by source, sources sorted.
fn by_source<'a>(docs: impl IntoIterator<Item = &'a Document>) -> Vec<(String, Vec<Document>)> {
    let mut groups: std::collections::BTreeMap<String, Vec<Document>> = Default::default();
    for d in docs {
        groups.entry(d.source.clone()).or_default().push(d.clone());
    }
    groups.into_iter().collect()
}

fn analyse(a: &Analysis) -> Result<(Vec<ComparisonRow>, serde_json::Value)> {
    let p = a.prepared;
    let mut contam = Vec::new();
    for t in &p.train {
        let set = ngram_set(&t.docs);
        for e in &p.eval {
            contam.push(contamination(&t.name, &set, &e.name, &e.docs));
        }
    }
    // The data as the runs saw it: the training splits per source (at most 20,000 documents
    // each, in mix order: bounded at the paper scale), one held-out example per source.
    let mut groups = by_source(
        p.train_set("synthetic")
            .docs
            .iter()
            .chain(&p.train_set("real").docs),
    );
    for g in &mut groups {
        g.1.truncate(20_000);
    }
    let examples = by_source(p.eval.iter().flat_map(|s| &s.docs))
        .into_iter()
        .map(|(source, docs)| Example {
            source,
            id: docs[0].id.clone(),
            excerpt: excerpt(&docs[0].text, 400),
        })
        .collect();
    let reports = suite_reports(a)?;
    let pairs = match reports.is_empty() {
        true => vec![],
        false => load_pairs(&crate::experiments::provenance::project_root().join("data/eval"))?,
    };
    let analysis = Exp1Analysis {
        contamination: contam,
        frames: frames(&reports, &pairs),
        first_look: first_look_rows(&groups),
        examples,
        sources: per_source(a)?,
    };
    let mut rows = comparisons(a)?;
    let students: Vec<String> = a.scale.students.iter().map(|s| s.name.clone()).collect();
    rows.extend(suite_comparisons(&students, &reports));
    Ok((rows, serde_json::to_value(analysis)?))
}

/// Experiment 1's analysis out of a results file.
pub fn analysis(r: &Results) -> Result<Exp1Analysis> {
    Ok(serde_json::from_value(r.analysis.clone())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(part: &str, per_item: Vec<f64>, item_index: Vec<usize>) -> MetricRow {
        MetricRow {
            metric: "minimal_pairs_acc".into(),
            eval_set: part.into(),
            value: crate::stats::mean(&per_item),
            lo: 0.0,
            hi: 1.0,
            interval: String::new(),
            chance: Some(0.5),
            cost_cpu_s: 0.0,
            items: per_item.len(),
            per_item,
            bytes: vec![],
            item_index,
        }
    }

    fn report(own: Vec<f64>, unigram: Vec<f64>) -> SuiteReport {
        let index: Vec<usize> = (10..10 + own.len()).collect();
        SuiteReport {
            run: String::new(),
            evaluated: vec![(1, vec![acc("anaphor_agreement", own, index.clone())])],
            separation: vec![],
            headline: vec![],
            baselines: vec![(
                "unigram".into(),
                vec![acc("anaphor_agreement", unigram, index)],
            )],
            baseline_rows: vec![],
        }
    }

    fn pair(frame: u8) -> Pair {
        Pair {
            phenomenon: "anaphor_agreement".into(),
            good: String::new(),
            bad: String::new(),
            frame,
        }
    }

    #[test]
    fn suite_comparisons_pair_items_averaged_over_seeds_and_frames_split_them() {
        // 40 items, pairs 10..50: even items frame 0, odd frame 1. Synthetic-trained students
        // get every item right on both seeds; real-trained ones only frame 0 (a word
        // preference), like their unigram.
        let n = 40;
        let frame_only = |f: usize| (0..n).map(|i| f64::from(u8::from(i % 2 == f))).collect();
        let mut reports = Reports::new();
        let key = |c: &str| ("s".to_string(), c.to_string());
        reports.insert(
            key("synthetic"),
            vec![
                report(vec![1.0; n], frame_only(0)),
                report(vec![1.0; n], frame_only(0)),
            ],
        );
        reports.insert(
            key("real"),
            vec![
                report(frame_only(0), frame_only(0)),
                report(frame_only(0), frame_only(0)),
            ],
        );
        let rows = suite_comparisons(&["s".to_string()], &reports);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!(r.label, "s: synthetic - real");
        assert_eq!(
            (r.eval_set.as_str(), r.metric.as_str()),
            ("anaphor_agreement", "minimal_pairs_acc")
        );
        assert!(
            (r.diff - 0.5).abs() < 1e-12 && r.lo > 0.0 && r.p_value < 0.001,
            "{r:?}"
        );
        let pairs: Vec<Pair> = (0..60).map(|i| pair((i % 2) as u8)).collect();
        let f = frames(&reports, &pairs);
        let get = |c: &str, model: &str, frame: u8| {
            f.iter()
                .find(|x| x.condition == c && x.model == model && x.frame == frame)
                .map(|x| (x.accuracy, x.pairs))
                .unwrap()
        };
        assert_eq!(get("synthetic", "s", 0), (1.0, 20));
        assert_eq!(get("synthetic", "s", 1), (1.0, 20));
        assert_eq!(get("real", "s", 0), (1.0, 20));
        assert_eq!(get("real", "s", 1), (0.0, 20));
        assert_eq!(get("real", "unigram", 1), (0.0, 20));
        // Seeds scored on other items are not paired.
        reports.get_mut(&key("real")).unwrap()[1].evaluated[0].1[0].item_index[0] = 99;
        assert!(suite_comparisons(&["s".to_string()], &reports).is_empty());
    }
}
