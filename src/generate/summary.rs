//! The data chapter's numbers: what generation kept and dropped, what the record checks and the
//! quality rules find in each version of the generated corpora, examples of kept and removed
//! records, what each quality signal costs, and how far the LLM annotator and the learned
//! classifier can be trusted. `synthlm corpora` computes them from committed inputs (the
//! corpora, the labelling sheet, the annotations, the classifier file) plus the quality files
//! of `synthlm quality` / `synthlm classify`, into `data/results/corpora/summary.json`; the
//! book's data page and the paper's corpora subsection are rendered from that file alone.

use crate::data::document::Document;
use crate::filter::agreement::Agreement;
use crate::filter::signals::{self, QualityFile};
use crate::generate::shards::GenManifest;
use crate::generate::stats::{FirstLook, RecipeChecks};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A corpus (`VERSION/FAMILY`), its records and their quality file.
pub type ScoredPool = (String, Vec<Document>, QualityFile);

/// The version of a corpus named `VERSION/FAMILY` (`v2` of `v2/stories`).
pub fn version(corpus: &str) -> &str {
    corpus.split('/').next().unwrap_or("")
}

/// The family of a corpus named `VERSION/FAMILY` (`stories` of `v2/stories`).
pub fn family(corpus: &str) -> &str {
    corpus.rsplit('/').next().unwrap_or(corpus)
}

/// Items of the latest version with their family's item in the first version, by family:
/// (first version, latest version, [(family, first, latest)]); empty with a single version.
pub fn first_and_latest<T>(
    items: &[T],
    corpus: impl Fn(&T) -> &str,
) -> (String, String, Vec<(String, &T, &T)>) {
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Default::default();
    };
    let (v0, v1) = (
        version(corpus(first)).to_string(),
        version(corpus(last)).to_string(),
    );
    if v0 == v1 {
        return (v0, v1, vec![]);
    }
    let pairs = items
        .iter()
        .filter(|x| version(corpus(x)) == v1)
        .filter_map(|x| {
            let fam = family(corpus(x));
            let old = items.iter().find(|y| corpus(y) == format!("{v0}/{fam}"))?;
            Some((fam.to_string(), old, x))
        })
        .collect();
    (v0, v1, pairs)
}

/// Appended to a quality file's path in [`CorporaSummary::inputs`]: its hash covers the scores,
/// not the timings.
pub const SCORES_KEY: &str = "#scores";

/// Where the summary lives, under the project root.
pub const SUMMARY: &str = "data/results/corpora/summary.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorporaSummary {
    /// Every input file by path, with its SHA-256; a quality file's key is its path with
    /// [`SCORES_KEY`] appended, and its hash [`QualityFile::scores_sha256`] (timings left out).
    pub inputs: BTreeMap<String, String>,
    pub generation: Vec<GenerationFacts>,
    pub first_look: Vec<FirstLook>,
    pub checks: Vec<RecipeChecks>,
    pub rules: Vec<RuleFacts>,
    pub examples: Vec<ExampleRecord>,
    pub costs: Vec<SignalCost>,
    /// The LLM annotator on the labelling sheet.
    pub annotator: Option<GraderFacts>,
    /// SHA-256 of the prompt the annotations were scored with (empty: the first prompt, a
    /// summary of the rubric, from before prompts were recorded).
    #[serde(default)]
    pub annotator_prompt: String,
    /// The learned classifier (its held-out agreement from the classifier file).
    pub classifier: Option<GraderFacts>,
    /// The hand labels the two are validated against.
    #[serde(default)]
    pub hand_labels: Option<HandLabelFacts>,
}

/// What a family's generation manifest says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationFacts {
    /// `VERSION/FAMILY`.
    pub corpus: String,
    pub records: u64,
    /// Teacher tokens of the kept records (every stage); and of their text alone.
    pub teacher_tokens: u64,
    pub kept_tokens: Option<u64>,
    pub dropped: u64,
    pub dropped_by: BTreeMap<String, u64>,
    /// Teacher tokens spent on dropped records (recipe 2).
    #[serde(default)]
    pub dropped_tokens: Option<u64>,
    /// Kept records by what generation did to them (`preamble`, `title`: stripped;
    /// `continued`: cut off at the cap and continued once) (recipe 2).
    #[serde(default)]
    pub flagged: BTreeMap<String, u64>,
    /// Wall seconds generation took over all sessions (on 2 cores).
    #[serde(default)]
    pub seconds: f64,
    /// Recorded by recipe 2 (v2) only; v1's manifests predate the checks.
    pub truncated_share: Option<f64>,
    pub required_words_share: Option<f64>,
}

/// What the quality rules and scores find in one corpus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleFacts {
    pub corpus: String,
    pub records: usize,
    /// Share of records each rule rejects, and `any`.
    pub shares: BTreeMap<String, f64>,
    /// Share of records that fail this rule and no other: what it alone removes.
    #[serde(default)]
    pub sole: BTreeMap<String, f64>,
    /// Share failing a rule that v2's generation did not apply to this family
    /// ([`generation_rules`]), so that v1 and v2 compare on what v2 did not filter by
    /// construction.
    #[serde(default)]
    pub any_beyond_generation: f64,
    /// Teacher tokens of the records' text, and of those that pass every rule (v2 only).
    #[serde(default)]
    pub tokens: Option<u64>,
    #[serde(default)]
    pub tokens_passing: Option<u64>,
    pub teacher_nll: Option<f64>,
    pub real_kn_bpb: Option<f64>,
    /// The classifier's mean score, where it scored the pool.
    pub classifier_mean: Option<f64>,
}

/// A record shown in the chapter: kept by every rule, or failing one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExampleRecord {
    pub corpus: String,
    /// `kept`, or the rule it fails.
    pub verdict: String,
    pub id: String,
    pub excerpt: String,
}

/// What a signal costs per record, measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalCost {
    pub signal: String,
    /// The 1-minute load average when it was timed (2 cores: above 2, other work shared them).
    #[serde(default)]
    pub load_average: Option<f64>,
    /// Microseconds of wall time per record (`None`: not measured here), on `threads`.
    pub us_per_record: Option<f64>,
    pub threads: usize,
    pub records: usize,
    pub note: String,
    /// The records timed (`FAMILY/ID` on the sheet), where a few were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<String>,
}

/// A model signal timed on a few sheet records: microseconds of wall time per record (model
/// loading excluded), and the records (`FAMILY/ID`).
#[derive(Clone, Debug, PartialEq)]
pub struct Timed {
    pub us: f64,
    pub sample: Vec<String>,
}

/// A grader of record quality (annotator or classifier) and what it agrees with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraderFacts {
    pub records: usize,
    /// Mean score per family on the sheet.
    pub mean_by_family: BTreeMap<String, f64>,
    /// How many sheet records got each grade 0-5.
    pub grades: [usize; 6],
    /// Spearman of the score with the word count of the text shown.
    pub length_spearman: f64,
    /// Mean score of the sheet's records that fail any quality rule, and of those that pass.
    #[serde(default)]
    pub failing_vs_passing: Option<(f64, f64)>,
    /// The classifier's 5-fold held-out agreement with the annotator.
    pub held_out_vs_annotator: Option<Agreement>,
    /// Agreement with the hand labels (none until the sheet is labelled).
    pub vs_hand_labels: Option<Agreement>,
}

/// The sheet's hand labels: who gave them, their grades, how repeatable they are, and what
/// graders that cost nothing reach against them (the bar the annotator has to clear).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandLabelFacts {
    pub labellers: Vec<String>,
    pub labelled: usize,
    /// How many labelled records of each family got each grade 0-5.
    pub grades_by_family: BTreeMap<String, [usize; 6]>,
    /// Labelled records the annotator had not scored yet when they were labelled, and those
    /// whose annotator scores had been computed (and summarised in the chapter) before.
    pub blind: usize,
    pub not_blind: usize,
    /// An independent second pass over part of the sheet, graded against the first.
    pub second_pass: Option<Agreement>,
    /// Every signal against the labels, per family and pooled (`all`), with each model
    /// grader's paired difference from every free signal.
    pub signals: Vec<crate::filter::vs_labels::VsLabels>,
    /// The model graders against the labels on the blind rows and on the others (as families
    /// `blind` and `scores existed`).
    pub by_blindness: Vec<crate::filter::vs_labels::VsLabels>,
}

/// The model graders compared with every other signal.
pub const MODEL_GRADERS: [&str; 2] = ["annotator", "classifier"];

/// The hand-label facts of a sheet (none when nothing on it is labelled). `scored` holds every
/// labelled row's signals ([`crate::filter::vs_labels::Scored`]) with whether it was labelled
/// blind; `second` is an independent relabelling of some rows, every one of which must be on
/// the sheet and labelled.
pub fn hand_label_facts(
    rows: &[crate::filter::labels::LabelRow],
    second: &[crate::filter::labels::LabelRow],
    scored: &[(crate::filter::vs_labels::Scored, Option<bool>)],
) -> anyhow::Result<Option<HandLabelFacts>> {
    use crate::filter::agreement::{agreement, Graded};
    use crate::filter::vs_labels::{vs_labels, Scored};
    let labelled: Vec<(&crate::filter::labels::LabelRow, u8)> =
        rows.iter().filter_map(|r| Some((r, r.label?))).collect();
    if labelled.is_empty() {
        return Ok(None);
    }
    let mut grades_by_family: BTreeMap<String, [usize; 6]> = BTreeMap::new();
    let mut labellers = std::collections::BTreeSet::new();
    for (r, l) in &labelled {
        grades_by_family.entry(r.family.clone()).or_default()[(*l).min(5) as usize] += 1;
        labellers.extend(r.labeller.clone());
    }
    let mut repeat = Vec::new();
    for s in second {
        let Some((_, first)) = labelled
            .iter()
            .find(|(r, _)| r.id == s.id && r.family == s.family)
        else {
            anyhow::bail!(
                "second pass: record {} ({}) is not labelled on the sheet",
                s.id,
                s.family
            );
        };
        let Some(again) = s.label else {
            anyhow::bail!("second pass: record {} ({}) has no label", s.id, s.family);
        };
        repeat.push((Graded::label(*first), Graded::label(again)));
    }
    let records: Vec<Scored> = scored.iter().map(|(s, _)| s.clone()).collect();
    let halves: Vec<Scored> = scored
        .iter()
        .filter_map(|(s, blind)| {
            let family = if (*blind)? { "blind" } else { "scores existed" };
            let scores = s
                .scores
                .iter()
                .filter(|(k, _)| MODEL_GRADERS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            Some(Scored {
                family: family.into(),
                label: s.label,
                scores,
            })
        })
        .collect();
    Ok(Some(HandLabelFacts {
        labellers: labellers.into_iter().collect(),
        labelled: labelled.len(),
        grades_by_family,
        blind: scored.iter().filter(|(_, b)| *b == Some(true)).count(),
        not_blind: scored.iter().filter(|(_, b)| *b == Some(false)).count(),
        second_pass: agreement(&repeat),
        signals: vs_labels(&records, &MODEL_GRADERS),
        by_blindness: vs_labels(&halves, &[])
            .into_iter()
            .filter(|r| r.family != "all")
            .collect(),
    }))
}

/// Characters of an example's excerpt.
const EXCERPT: usize = 280;

/// The start of a text, cut at a character boundary, whitespace folded.
pub fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{} ...", &flat[..i]),
        None => flat,
    }
}

/// The manifest facts of one family folder.
pub fn generation_facts(corpus: &str, m: &GenManifest) -> GenerationFacts {
    let recipe2 = !m.flagged.is_empty();
    GenerationFacts {
        corpus: corpus.into(),
        records: m.records,
        teacher_tokens: m.teacher_tokens,
        kept_tokens: recipe2.then_some(m.kept_tokens),
        dropped: m.dropped.len() as u64,
        dropped_by: m.dropped_by.clone(),
        dropped_tokens: recipe2.then_some(m.dropped_tokens),
        seconds: m.seconds,
        flagged: m.flagged.clone(),
        truncated_share: recipe2.then_some(m.truncated_share),
        required_words_share: m.required_words_share.filter(|_| recipe2),
    }
}

/// Rules whose failures v2's generation already dropped or stripped in a family (every
/// family: truncation and not English; textbook texts also their preamble and texts under 50
/// words; stories are dropped under 40 words, which Gopher's 50-word rule does not match): on
/// these v2's near 0% holds by construction.
pub fn generation_rules(family: &str) -> &'static [&'static str] {
    match family {
        "cosmo" => &[
            "ends_mid_sentence",
            "not_english",
            "assistant_preamble",
            "gopher_short_doc",
        ],
        _ => &["ends_mid_sentence", "not_english"],
    }
}

/// The rule facts of one scored pool.
pub fn rule_facts(corpus: &str, q: &QualityFile) -> RuleFacts {
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| crate::stats::mean(&v));
    let scores: Vec<f64> = q.records.iter().filter_map(|r| r.classifier).collect();
    let n = q.records.len().max(1) as f64;
    let mut sole_counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in q.records.iter().filter(|r| r.signals.fails.len() == 1) {
        *sole_counts.entry(r.signals.fails[0].clone()).or_default() += 1;
    }
    let sole = sole_counts
        .into_iter()
        .map(|(k, c)| (k, c as f64 / n))
        .collect();
    let applied = generation_rules(family(corpus));
    let beyond = q
        .records
        .iter()
        .filter(|r| {
            r.signals
                .fails
                .iter()
                .any(|f| !applied.contains(&f.as_str()))
        })
        .count() as f64
        / n;
    let tokens = |keep: &dyn Fn(&signals::RecordSignals) -> bool| -> Option<u64> {
        let t: Vec<u64> = q
            .records
            .iter()
            .filter(|r| keep(r))
            .filter_map(|r| r.teacher_tokens)
            .collect();
        (q.records.iter().any(|r| r.teacher_tokens.is_some())).then(|| t.iter().sum())
    };
    RuleFacts {
        corpus: corpus.into(),
        records: q.records.len(),
        sole,
        any_beyond_generation: beyond,
        tokens: tokens(&|_| true),
        tokens_passing: tokens(&|r| r.signals.fails.is_empty()),
        shares: signals::rule_shares(q),
        teacher_nll: mean(q.records.iter().filter_map(|r| r.teacher_nll).collect()),
        real_kn_bpb: mean(q.records.iter().filter_map(|r| r.real_kn_bpb).collect()),
        classifier_mean: mean(scores),
    }
}

/// Examples of a pool: two records every rule keeps, and one record failing each rule that
/// fails any (the first by a hash of the id, so the choice is stable as the pool grows).
pub fn examples(corpus: &str, docs: &[Document], q: &QualityFile) -> Vec<ExampleRecord> {
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by_key(|&i| {
        (
            crate::hash::avalanche(crate::hash::fnv1a(docs[i].id.bytes())),
            i,
        )
    });
    let show = |i: usize, verdict: &str| ExampleRecord {
        corpus: corpus.into(),
        verdict: verdict.into(),
        id: docs[i].id.clone(),
        excerpt: excerpt(signals::judged_text(&docs[i])),
    };
    let mut out: Vec<ExampleRecord> = order
        .iter()
        .filter(|&&i| q.records[i].signals.fails.is_empty())
        .take(2)
        .map(|&i| show(i, "kept"))
        .collect();
    let rules: std::collections::BTreeSet<&String> =
        q.records.iter().flat_map(|r| &r.signals.fails).collect();
    for rule in rules {
        if let Some(&i) = order
            .iter()
            .find(|&&i| q.records[i].signals.fails.contains(rule))
        {
            out.push(show(i, rule));
        }
    }
    out
}

/// The costs of the signals: the rules and the reference n-gram as timed when the pools were
/// scored; MinHash near-duplicates and the classifier's dot products timed here over `pools`;
/// the teacher's NLL (a forward pass over text it did not write) and the annotator as timed by
/// the caller on a few sheet records (`None`: not timed in this run, said in the row).
pub fn costs(
    scored: &[ScoredPool],
    classifier: Option<&crate::filter::classifier::Classifier>,
    teacher: Option<&Timed>,
    annotator: Option<&Timed>,
) -> Vec<SignalCost> {
    let records: usize = scored.iter().map(|p| p.2.records.len()).sum();
    let threads = rayon::current_num_threads();
    let load_now = crate::cpu::load_average();
    let per = |secs: f64| 1e6 * secs / records.max(1) as f64;
    // the rules and the n-gram were timed when the pools were scored, on their threads
    let at_scoring = |signal: &str, key: &str, note: &str| {
        let s: Vec<f64> = scored
            .iter()
            .filter_map(|p| p.2.seconds.get(key).copied())
            .collect();
        SignalCost {
            signal: signal.into(),
            load_average: scored
                .iter()
                .filter_map(|p| p.2.load_average)
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
            us_per_record: (s.len() == scored.len()).then(|| per(s.iter().sum())),
            threads: scored.first().map_or(threads, |p| p.2.threads),
            records,
            note: note.into(),
            sample: vec![],
        }
    };
    let here = |signal: &str, us: Option<f64>, threads: usize, note: String| SignalCost {
        signal: signal.into(),
        load_average: load_now,
        us_per_record: us,
        threads,
        records,
        note,
        sample: vec![],
    };
    let rules = at_scoring("heuristic rules", "rules", "rules computed from the text");
    let ngram = at_scoring(
        "real-text reference n-gram",
        "reference",
        "KN 3-gram of the real text (fitting excluded)",
    );
    let (minhash, classifier_secs) = wall_times(scored, classifier);
    let mut rows = vec![
        rules.clone(),
        model_cost("teacher NLL", teacher, teacher_note(scored), load_now),
        ngram.clone(),
        here(
            "MinHash near-duplicates",
            Some(per(minhash)),
            threads,
            "within each pool, Jaccard >= 0.8".into(),
        ),
    ];
    if let Some(secs) = classifier_secs {
        let inputs = rules.us_per_record.zip(ngram.us_per_record);
        rows.push(here(
            "learned classifier",
            Some(per(secs)),
            1,
            classifier_note(inputs.map(|(a, b)| a + b + per(secs))),
        ));
    }
    let note = format!(
        "a one-line rubric and {} graded examples in the prompt, then the record; one forward pass",
        crate::filter::annotator::EXAMPLES.len()
    );
    rows.push(model_cost(
        "LLM annotator (Gemma 3 270M)",
        annotator,
        note,
        load_now,
    ));
    rows
}

/// What the teacher-NLL row says: a forward pass is what other text costs, and how many
/// records carry the NLL their generation recorded for nothing.
fn teacher_note(scored: &[ScoredPool]) -> String {
    let free = scored
        .iter()
        .flat_map(|p| &p.2.records)
        .filter(|r| r.teacher_nll.is_some())
        .count();
    format!("a teacher (SmolLM2-135M) forward pass over a record's text, tokenising included: what text it did not write costs; the {} records it wrote in recipe 2 carry the NLL generation recorded, at no extra cost", crate::report::tables::int(free as u64))
}

/// What the classifier row says: the time is its dot product alone; `with_inputs` adds the
/// rules' and the n-gram's time per record, which compute most of its inputs.
fn classifier_note(with_inputs: Option<f64>) -> String {
    let base = "a dot product over the signals above, timed alone (computing them excluded)";
    match with_inputs {
        Some(us) => format!("{base}; with the rules and the n-gram that compute its inputs, {us:.1} us per record (its teacher NLL input free on v2 records, a forward pass on others)"),
        None => base.into(),
    }
}

/// A model signal's row: timed on `t`'s sample records, or said not to be timed in this run.
fn model_cost(signal: &str, t: Option<&Timed>, note: String, load: Option<f64>) -> SignalCost {
    SignalCost {
        signal: signal.into(),
        load_average: t.and(load),
        us_per_record: t.map(|t| t.us),
        threads: rayon::current_num_threads(),
        records: t.map_or(0, |t| t.sample.len()),
        note: match t {
            Some(_) => note,
            None => format!("not timed in this run ({note})"),
        },
        sample: t.map_or(vec![], |t| t.sample.clone()),
    }
}

/// Wall seconds of MinHash near-duplicate detection over every pool, and of the classifier
/// scoring every record (single-threaded), timed here.
fn wall_times(
    scored: &[ScoredPool],
    classifier: Option<&crate::filter::classifier::Classifier>,
) -> (f64, Option<f64>) {
    let started = std::time::Instant::now();
    for (_, docs, _) in scored {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        crate::filter::dedup::near_duplicate_rate(&texts, 0.8);
    }
    let minhash = started.elapsed().as_secs_f64();
    let classifier = classifier.map(|c| {
        let started = std::time::Instant::now();
        let s: f64 = scored
            .iter()
            .flat_map(|p| &p.2.records)
            .map(|r| c.score(r))
            .sum();
        std::hint::black_box(s);
        started.elapsed().as_secs_f64()
    });
    (minhash, classifier)
}

/// Where `synthlm quality --out QUALITY` writes the quality file of `corpus` (`VERSION/FAMILY`).
pub fn quality_path(quality: &Path, corpus: &str) -> PathBuf {
    quality.join(format!("{corpus}.json"))
}

/// Read a quality file written by `synthlm quality` for `corpus` (`VERSION/FAMILY`) under
/// `quality`, checked against the pool's records.
pub fn load_quality(quality: &Path, corpus: &str, docs: &[Document]) -> Result<QualityFile> {
    signals::load_for(&quality_path(quality, corpus), docs)
        .with_context(|| format!("the quality file of {corpus}"))
}

/// A grader's verdict on one sheet record, with what the grader facts relate it to.
pub struct SheetScore {
    pub family: String,
    pub score: f64,
    pub grade: u8,
    /// Words of the text shown to the labellers.
    pub words: f64,
    /// Whether the record fails any quality rule (when its pool was scored).
    pub fails_a_rule: Option<bool>,
}

/// The annotator's facts on the sheet: its grades, its mean by family, its correlation with
/// length and with the rules, and its agreement with the hand labels. `fails` says whether a
/// (family, id) fails any quality rule (an error, e.g. a record missing from its quality
/// file, is passed on).
pub fn annotator_facts(
    rows: &[crate::filter::labels::LabelRow],
    ann: &[crate::filter::annotator::SheetAnnotation],
    fails: &dyn Fn(&str, &str) -> Result<bool>,
) -> Result<Option<GraderFacts>> {
    let mut scored = Vec::new();
    for a in ann {
        let Some(r) = rows.iter().find(|r| r.id == a.id && r.family == a.family) else {
            continue;
        };
        scored.push(SheetScore {
            family: a.family.clone(),
            score: a.annotation.expected,
            grade: a.annotation.label,
            words: r.text.split_whitespace().count() as f64,
            fails_a_rule: Some(fails(&a.family, &a.id)?),
        });
    }
    Ok(grader_facts(
        &scored,
        crate::filter::annotator::agreement(rows, ann),
        None,
    ))
}

/// Facts of a grader from its verdicts on the sheet's records.
pub fn grader_facts(
    scored: &[SheetScore],
    vs_hand_labels: Option<Agreement>,
    held_out_vs_annotator: Option<Agreement>,
) -> Option<GraderFacts> {
    if scored.is_empty() {
        return None;
    }
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut grades = [0usize; 6];
    for x in scored {
        by.entry(x.family.clone()).or_default().push(x.score);
        grades[x.grade.min(5) as usize] += 1;
    }
    let (s, w): (Vec<f64>, Vec<f64>) = scored.iter().map(|x| (x.score, x.words)).unzip();
    let mean_where = |fail: bool| -> Option<f64> {
        let v: Vec<f64> = scored
            .iter()
            .filter(|x| x.fails_a_rule == Some(fail))
            .map(|x| x.score)
            .collect();
        (!v.is_empty()).then(|| crate::stats::mean(&v))
    };
    Some(GraderFacts {
        records: scored.len(),
        mean_by_family: by
            .into_iter()
            .map(|(f, v)| (f, crate::stats::mean(&v)))
            .collect(),
        grades,
        length_spearman: crate::stats::spearman(&s, &w),
        failing_vs_passing: mean_where(true).zip(mean_where(false)),
        held_out_vs_annotator,
        vs_hand_labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::labels::LabelRow;

    fn row(id: usize, label: Option<u8>, words: usize) -> LabelRow {
        LabelRow {
            id: format!("r{id}"),
            family: if id.is_multiple_of(2) {
                "stories"
            } else {
                "magpie"
            }
            .into(),
            text: vec!["w"; words].join(" "),
            label,
            labeller: label.map(|_| "ab".to_string()),
            note: None,
            blind: None,
        }
    }

    /// A second pass is graded against the first; a second-pass row not on the sheet is an
    /// error; the blind and non-blind rows are counted and compared apart.
    #[test]
    fn hand_label_facts_count_grades_check_the_second_pass_and_split_by_blindness() {
        use crate::filter::vs_labels::Scored;
        let rows: Vec<LabelRow> = (0..40)
            .map(|i| row(i, Some((i % 4) as u8), 100 - 2 * (i % 4)))
            .chain([row(99, None, 5)])
            .collect();
        let scored: Vec<(Scored, Option<bool>)> = rows
            .iter()
            .filter(|r| r.label.is_some())
            .enumerate()
            .map(|(i, r)| {
                let l = r.label.unwrap() as f64;
                let scores = [
                    ("annotator".to_string(), l),
                    ("fewer words".to_string(), -(i as f64)),
                ]
                .into_iter()
                .collect();
                (
                    Scored {
                        family: r.family.clone(),
                        label: l,
                        scores,
                    },
                    Some(i < 20),
                )
            })
            .collect();
        let h = hand_label_facts(&rows, &rows[..10], &scored)
            .unwrap()
            .unwrap();
        assert_eq!((h.labelled, h.blind, h.not_blind), (40, 20, 20));
        assert_eq!(h.labellers, vec!["ab".to_string()]);
        assert_eq!(h.grades_by_family["stories"], [10, 0, 10, 0, 0, 0]);
        assert_eq!(h.grades_by_family["magpie"], [0, 10, 0, 10, 0, 0]);
        let again = h.second_pass.as_ref().unwrap();
        assert_eq!((again.n, again.exact), (10, 1.0));
        let families: Vec<&str> = h.by_blindness.iter().map(|r| r.family.as_str()).collect();
        assert_eq!(families, ["blind", "scores existed"]);
        assert!(h
            .signals
            .iter()
            .any(|r| r.signal == "annotator" && r.family == "all"));
        let stranger = row(77, Some(1), 3);
        let e = hand_label_facts(&rows, &[stranger], &scored)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r77") && e.contains("not labelled"), "{e}");
        assert!(hand_label_facts(&[row(1, None, 3)], &[], &[])
            .unwrap()
            .is_none());
    }
}
