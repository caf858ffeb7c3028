//! The data chapter's report, from `data/results/corpora/summary.json` alone
//! ([`crate::generate::summary`]): generation, record checks, first look, quality rules and
//! scores, signal costs, the annotator and the classifier, and examples, every corpus version
//! side by side. Book page `corpora`; paper pieces `corpora-*.tex`.

use crate::generate::summary::{CorporaSummary, GraderFacts};
use crate::report::tables::{col, int, md_escape, num, pct};
use crate::report::{Block, Page, Report};
use anyhow::Result;
use polars::prelude::*;

/// Kept teacher tokens of text a v2 family must reach (issue: >= 2M after filtering).
pub const TARGET_TOKENS: u64 = 2_000_000;

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or("-".into(), f)
}

pub fn report(s: &CorporaSummary, source: &str) -> Result<Report> {
    let mut b = vec![Block::Heading(3, "Generation".into())];
    b.extend(generation(s)?);
    b.push(Block::Heading(3, "What the record checks find".into()));
    b.extend(checks(s)?);
    b.push(Block::Heading(3, "Quality rules and scores".into()));
    b.extend(rules(s)?);
    b.push(Block::Heading(3, "What each signal costs".into()));
    b.extend(costs(s)?);
    b.push(Block::Heading(
        3,
        "The LLM annotator and the learned classifier".into(),
    ));
    b.extend(graders(s));
    b.push(Block::Heading(
        3,
        "Examples of kept and removed records".into(),
    ));
    b.extend(examples(s));
    Ok(Report {
        experiment: "corpora".into(),
        source: source.into(),
        pages: vec![Page {
            name: "corpora".into(),
            blocks: b,
        }],
    })
}

/// The manifests side by side, and which families reach the token target.
fn generation(s: &CorporaSummary) -> Result<Vec<Block>> {
    let g = &s.generation;
    let dropped = |x: &crate::generate::summary::GenerationFacts| {
        let by: Vec<String> = x
            .dropped_by
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if by.is_empty() {
            int(x.dropped)
        } else {
            format!("{} ({})", int(x.dropped), by.join(", "))
        }
    };
    let frame = DataFrame::new(vec![
        col("corpus", g.iter().map(|x| x.corpus.clone())),
        col("records", g.iter().map(|x| int(x.records))),
        col(
            "teacher tokens (all stages)",
            g.iter().map(|x| int(x.teacher_tokens)),
        ),
        col(
            "teacher tokens of kept text",
            g.iter().map(|x| x.kept_tokens.map_or("-".into(), int)),
        ),
        col("dropped", g.iter().map(dropped)),
        col(
            "truncated share (manifest)",
            g.iter().map(|x| opt(x.truncated_share, pct)),
        ),
        col(
            "required words used (manifest)",
            g.iter().map(|x| opt(x.required_words_share, pct)),
        ),
    ])?;
    Ok(vec![
        Block::Text(target_text(s)),
        Block::Table { name: "generation".into(), caption: "What each corpus's generation manifest records. v1's manifests predate the record checks: its truncation and required-word shares are measured in the next table. Dropped records are counted by reason (v2 continues a cut-off text once, then drops it).".into(), frame },
    ])
}

/// Which families of the latest version reach [`TARGET_TOKENS`].
fn target_text(s: &CorporaSummary) -> String {
    let latest = s
        .generation
        .last()
        .map(|g| g.corpus.split('/').next().unwrap_or("").to_string());
    let fams: Vec<_> = s
        .generation
        .iter()
        .filter(|g| Some(g.corpus.split('/').next().unwrap_or("").to_string()) == latest)
        .collect();
    let short: Vec<String> = fams
        .iter()
        .filter(|g| g.kept_tokens.unwrap_or(0) < TARGET_TOKENS)
        .map(|g| format!("{} ({})", g.corpus, int(g.kept_tokens.unwrap_or(0))))
        .collect();
    if short.is_empty() {
        format!(
            "Every family of {} holds at least {} teacher tokens of kept text.",
            latest.unwrap_or_default(),
            int(TARGET_TOKENS)
        )
    } else {
        format!("Target: at least {} teacher tokens of kept text per family. Short of it so far: {}. Generation resumes where it stopped; the tables below describe the records generated so far.", int(TARGET_TOKENS), short.join(", "))
    }
}

/// The record checks and the first look, side by side.
fn checks(s: &CorporaSummary) -> Result<Vec<Block>> {
    let c = &s.checks;
    let f = &s.first_look;
    let frame = DataFrame::new(vec![
        col("corpus", c.iter().map(|x| x.corpus.clone())),
        col("ends mid-sentence", c.iter().map(|x| pct(x.mid_sentence))),
        col("assistant preamble", c.iter().map(|x| pct(x.preamble))),
        col("title", c.iter().map(|x| pct(x.title))),
        col(
            "required words used",
            c.iter().map(|x| opt(x.required_words, pct)),
        ),
        col(
            "... after our opening",
            c.iter().map(|x| opt(x.required_words_in_continuation, pct)),
        ),
        col(
            "meta-text in the task",
            c.iter().map(|x| opt(x.meta_text, pct)),
        ),
        col("not English", c.iter().map(|x| pct(x.not_english))),
        // ChatML's tags would break a Markdown table (`|`); the role word stays
        col(
            "most common opening",
            c.iter().map(|x| {
                format!(
                    "\"{}\" {}",
                    x.top_opening.replace("<|im_start|>", "").trim(),
                    pct(x.top_opening_share)
                )
            }),
        ),
    ])?;
    let look = DataFrame::new(vec![
        col("corpus", f.iter().map(|x| x.corpus.clone())),
        col("records", f.iter().map(|x| int(x.documents))),
        col(
            "words (mean)",
            f.iter().map(|x| format!("{:.0}", x.mean_words)),
        ),
        col(
            "words (p50 / p90)",
            f.iter()
                .map(|x| format!("{:.0} / {:.0}", x.p50_words, x.p90_words)),
        ),
        col(
            "exact / near duplicates",
            f.iter()
                .map(|x| format!("{} / {}", pct(x.exact_dup_rate), pct(x.near_dup_rate))),
        ),
        col(
            "distinct-1/2/3 (first 50k words)",
            f.iter().map(|x| {
                format!(
                    "{} / {} / {}",
                    opt(x.distinct_1, num),
                    opt(x.distinct_2, num),
                    opt(x.distinct_3, num)
                )
            }),
        ),
    ])?;
    let latest = c
        .last()
        .map(|x| x.corpus.split('/').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let preamble = |fam: &str| {
        c.iter()
            .find(|x| x.corpus == format!("{latest}/{fam}"))
            .map_or("-".to_string(), |x| pct(x.preamble))
    };
    let preambles = format!("In {latest}, an assistant preamble (\"Sure, here is ...\") opens {} of the textbook texts (cosmo) and {} of the conversations' answers (magpie), where a reply that opens \"Absolutely, I'd be happy to help\" is the chat genre's own; the rule counts it, and the quality experiment can filter by it.", preamble("cosmo"), preamble("magpie"));
    Ok(vec![
        Block::Text("The failures found by reading v1 (records cut off at the token cap, chat preambles in prose, titles asked not to be there, stories that skip their required words, rewritten tasks that talk about the rewrite), as shares of each corpus's records; for conversations the answer is checked for endings and preambles and the task for meta-text.".into()),
        Block::Table { name: "checks".into(), caption: "Record checks per corpus.".into(), frame },
        Block::Text(preambles),
        Block::Text("Size, length, duplication and diversity. Distinct-n (the share of word n-grams that are unique) is measured on each corpus's first 50,000 words, so that corpora of different sizes compare; it still falls when texts get shorter and simpler, so a lower distinct-2 is not by itself less varied content.".into()),
        Block::Table { name: "first-look".into(), caption: "First look per corpus.".into(), frame: look },
    ])
}

/// The share of records each quality rule rejects, rules as rows and corpora as columns.
fn rules(s: &CorporaSummary) -> Result<Vec<Block>> {
    let r = &s.rules;
    let names: std::collections::BTreeSet<&String> = r
        .iter()
        .flat_map(|x| x.shares.keys())
        .filter(|k| *k != "any")
        .collect();
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "records".into(),
            r.iter().map(|x| int(x.records as u64)).collect(),
        ),
        (
            "teacher NLL per token (mean)".into(),
            r.iter().map(|x| opt(x.teacher_nll, num)).collect(),
        ),
        (
            "real-text KN-3 bits per byte (mean)".into(),
            r.iter().map(|x| opt(x.real_kn_bpb, num)).collect(),
        ),
        (
            "classifier score (mean)".into(),
            r.iter().map(|x| opt(x.classifier_mean, num)).collect(),
        ),
        (
            "classifier grade >= 3".into(),
            r.iter().map(|x| opt(x.classifier_keeps, pct)).collect(),
        ),
    ];
    for n in names {
        rows.push((
            n.clone(),
            r.iter()
                .map(|x| pct(x.shares.get(n).copied().unwrap_or(0.0)))
                .collect(),
        ));
    }
    rows.push((
        "any rule".into(),
        r.iter()
            .map(|x| pct(x.shares.get("any").copied().unwrap_or(0.0)))
            .collect(),
    ));
    let mut cols = vec![col("", rows.iter().map(|x| x.0.clone()))];
    for (j, x) in r.iter().enumerate() {
        cols.push(col(&x.corpus, rows.iter().map(|row| row.1[j].clone())));
    }
    Ok(vec![
        Block::Text("Heuristic rules in the Gopher, C4 and FineWeb style (datatrove's default thresholds, in `src/filter/heuristics.rs`) and our own, applied to the judged text (a conversation's answer); a record may fail several. No rule removes anything from a training set yet: the quality-vs-quantity experiment filters by them, and never filters a held-out set.".into()),
        Block::Table { name: "rules".into(), caption: "Share of records each quality rule rejects, with the mean reference scores.".into(), frame: DataFrame::new(cols)? },
    ])
}

/// The signal costs.
fn costs(s: &CorporaSummary) -> Result<Vec<Block>> {
    let c = &s.costs;
    let time = |us: Option<f64>| match us {
        None => "not measured".to_string(),
        Some(us) if us >= 1e5 => format!("{:.2} s", us / 1e6),
        Some(us) => format!("{us:.1} us"),
    };
    let frame = DataFrame::new(vec![
        col("signal", c.iter().map(|x| x.signal.clone())),
        col(
            "wall time per record",
            c.iter().map(|x| time(x.us_per_record)),
        ),
        col("threads", c.iter().map(|x| x.threads.to_string())),
        col("records timed", c.iter().map(|x| int(x.records as u64))),
        col("what it does", c.iter().map(|x| x.note.clone())),
    ])?;
    Ok(vec![Block::Table { name: "costs".into(), caption: "What each quality signal costs on this machine (2 cores), measured when the summary was made.".into(), frame }])
}

/// One paragraph per grader.
fn grader_text(who: &str, g: &GraderFacts) -> String {
    let by: Vec<String> = g
        .mean_by_family
        .iter()
        .map(|(f, m)| format!("{f} {m:.2}"))
        .collect();
    let grades: Vec<String> = g
        .grades
        .iter()
        .enumerate()
        .map(|(grade, n)| format!("{grade}: {n}"))
        .collect();
    let mut t = format!(
        "{who}: of the {} records of the labelling sheet, how many get each grade ({}); mean score by family {}; Spearman correlation of its score with the record's length {:.2}.",
        g.records, grades.join(", "), by.join(", "), g.length_spearman
    );
    if let Some(a) = &g.held_out_vs_annotator {
        t += &format!(
            " Held out (5-fold) against the annotator it learns from, over {}.",
            a.line()
        );
    }
    t += &match &g.vs_hand_labels {
        Some(a) => format!(" Against the hand labels, over {}.", a.line()),
        None => " No hand labels yet: it is not validated, and no experiment uses it as a quality signal.".into(),
    };
    t
}

fn graders(s: &CorporaSummary) -> Vec<Block> {
    let mut b = vec![Block::Text("The annotator is Gemma 3 270M (the pretrained model: the PyPI GGUF is not the instruction-tuned one), prompted with the rubric of `data/labels/GUIDE.md` and six graded examples; its score is the expected digit under its next-token distribution. The classifier is a ridge regression from the signals above to the annotator's expected score (`src/filter/classifier.rs`), so it can be no better than the annotator. Both wait for the team's hand labels of the same 200 records before anyone trusts them.".into())];
    if let Some(a) = &s.annotator {
        b.push(Block::Text(grader_text("The annotator", a)));
    }
    if let Some(c) = &s.classifier {
        b.push(Block::Text(grader_text(
            "The classifier (its fitted scores of the sheet)",
            c,
        )));
    }
    b.extend(macros(s));
    b
}

/// Examples per corpus of the latest version: kept ones, then one per rule that fails any.
fn examples(s: &CorporaSummary) -> Vec<Block> {
    let mut b = vec![Block::Text("The first records (by a hash of their id) that every rule keeps, and for each rule the first record it rejects; the judged text's first 280 characters.".into())];
    let corpora: std::collections::BTreeSet<&String> =
        s.examples.iter().map(|e| &e.corpus).collect();
    for c in corpora {
        b.push(Block::Text(format!("**{c}**")));
        b.push(Block::List(
            s.examples
                .iter()
                .filter(|e| &e.corpus == c)
                .map(|e| format!("*{}* (`{}`): {}", e.verdict, e.id, md_escape(&e.excerpt)))
                .collect(),
        ));
    }
    b
}

fn macros(s: &CorporaSummary) -> Vec<Block> {
    let m = |name: &str, value: String| Block::Macro {
        name: name.into(),
        value,
    };
    let mut out = vec![m("CorporaTargetText", target_text(s))];
    if let Some(a) = &s.annotator {
        out.push(m("CorporaAnnotatorText", grader_text("The annotator", a)));
    }
    if let Some(c) = &s.classifier {
        out.push(m(
            "CorporaClassifierText",
            grader_text("The classifier (its fitted scores of the sheet)", c),
        ));
    }
    out
}
