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
use crate::experiments::corpora;
use crate::experiments::grid::SetScore;
use crate::experiments::prepare::Design;
use crate::experiments::provenance::{local_inputs, InputRecord};
use crate::experiments::results::{
    compare, seed_scores, suite_neutral, vs_ngram_label, ComparisonRow, Results,
};
use crate::experiments::scale::{Corpora, Scale};
use crate::experiments::{Analysis, Experiment, Paths};
use crate::generate::jobs::Generator;
use crate::generate::stats::{first_look_rows, FirstLook};
use anyhow::Result;
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
    /// Per source, training splits (at most 20,000 documents each).
    pub first_look: Vec<FirstLook>,
    pub examples: Vec<Example>,
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
                        let label = format!("{}: {x} - {y}", st.name);
                        out.push(compare(
                            "exp1",
                            &label,
                            e,
                            &refs(&cx.student),
                            &refs(&cy.student),
                        ));
                    }
                }
            }
            for (c, x) in &cells {
                let mean = |v: &[SetScore]| v.iter().map(|s| s.bpb()).sum::<f64>() / v.len() as f64;
                let best = x
                    .ngrams
                    .iter()
                    .filter(|(n, _)| n.starts_with("kn-"))
                    .min_by(|p, q| mean(p.1).total_cmp(&mean(q.1)));
                let bigram = x.ngrams.get_key_value("bigram");
                for (name, base) in bigram.into_iter().chain(best) {
                    let label = vs_ngram_label(&st.name, c, name);
                    out.push(compare("exp1", &label, e, &refs(&x.student), &refs(base)));
                }
            }
        }
    }
    Ok(out)
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
    let analysis = Exp1Analysis {
        contamination: contam,
        first_look: first_look_rows(&groups),
        examples,
    };
    Ok((comparisons(a)?, serde_json::to_value(analysis)?))
}

/// Experiment 1's analysis out of a results file.
pub fn analysis(r: &Results) -> Result<Exp1Analysis> {
    Ok(serde_json::from_value(r.analysis.clone())?)
}
