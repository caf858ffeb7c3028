//! A first look at generated (or any) corpora: size, length, duplication and diversity, one row
//! per corpus, as a polars table. The quality experiments start from these numbers.

use crate::data::document::Document;
use crate::eval::diversity::distinct_n_at;
use crate::filter::dedup::{exact_duplicate_rate, near_duplicate_rate};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The first-look numbers of one corpus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FirstLook {
    pub corpus: String,
    pub documents: u64,
    pub mean_words: f64,
    pub p50_words: f64,
    pub p90_words: f64,
    pub exact_dup_rate: f64,
    /// MinHash, Jaccard >= 0.8.
    pub near_dup_rate: f64,
    /// distinct-n over the first [`DISTINCT_SAMPLE_WORDS`] words (in the corpus's order), so
    /// that corpora of different sizes compare; `None` for a corpus with fewer words.
    pub distinct_1: Option<f64>,
    pub distinct_2: Option<f64>,
    pub distinct_3: Option<f64>,
}

/// Documents, words (mean, p50, p90), exact and near-duplicate rates (MinHash, Jaccard >= 0.8),
/// distinct-1/2/3 of each named corpus.
pub fn first_look_rows(corpora: &[(String, Vec<Document>)]) -> Vec<FirstLook> {
    corpora
        .iter()
        .map(|(name, docs)| {
            let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
            let mut lens: Vec<f64> = texts
                .iter()
                .map(|t| t.split_whitespace().count() as f64)
                .collect();
            lens.sort_by(f64::total_cmp);
            let q = |p: f64| {
                if lens.is_empty() {
                    0.0
                } else {
                    lens[((lens.len() - 1) as f64 * p).round() as usize]
                }
            };
            FirstLook {
                corpus: name.clone(),
                documents: docs.len() as u64,
                mean_words: lens.iter().sum::<f64>() / lens.len().max(1) as f64,
                p50_words: q(0.5),
                p90_words: q(0.9),
                exact_dup_rate: exact_duplicate_rate(&texts),
                near_dup_rate: near_duplicate_rate(&texts, 0.8),
                distinct_1: distinct_n_at(&texts, 1, DISTINCT_SAMPLE_WORDS),
                distinct_2: distinct_n_at(&texts, 2, DISTINCT_SAMPLE_WORDS),
                distinct_3: distinct_n_at(&texts, 3, DISTINCT_SAMPLE_WORDS),
            }
        })
        .collect()
}

/// The first look as a polars table, one row per corpus.
pub fn first_look_frame(rows: &[FirstLook]) -> Result<DataFrame> {
    let f = |get: fn(&FirstLook) -> f64| rows.iter().map(get).collect::<Vec<f64>>();
    Ok(DataFrame::new(vec![
        Column::new(
            "corpus".into(),
            rows.iter().map(|r| r.corpus.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "documents".into(),
            rows.iter().map(|r| r.documents).collect::<Vec<_>>(),
        ),
        Column::new("mean_words".into(), f(|r| r.mean_words)),
        Column::new("p50_words".into(), f(|r| r.p50_words)),
        Column::new("p90_words".into(), f(|r| r.p90_words)),
        Column::new("exact_dup_rate".into(), f(|r| r.exact_dup_rate)),
        Column::new("near_dup_rate".into(), f(|r| r.near_dup_rate)),
        Column::new(
            "distinct_1".into(),
            rows.iter().map(|r| r.distinct_1).collect::<Vec<_>>(),
        ),
        Column::new(
            "distinct_2".into(),
            rows.iter().map(|r| r.distinct_2).collect::<Vec<_>>(),
        ),
        Column::new(
            "distinct_3".into(),
            rows.iter().map(|r| r.distinct_3).collect::<Vec<_>>(),
        ),
    ])?)
}

/// One row per named corpus (see [`first_look_rows`]), as a polars table.
pub fn first_look(corpora: &[(String, Vec<Document>)]) -> Result<DataFrame> {
    first_look_frame(&first_look_rows(corpora))
}

/// What the record-level checks of [`crate::filter::checks`] find in a corpus: the failures we
/// found by reading the v1 corpora, as shares of its documents. For conversations the answer
/// (last turn) is checked for endings and preambles and the instruction (first turn) for
/// meta-text. Diversity at a fixed sample size: distinct-2 over the first
/// [`DISTINCT_SAMPLE_WORDS`] words, and the share of texts that open with the corpus's most
/// common first three words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecipeChecks {
    pub corpus: String,
    pub documents: u64,
    pub mid_sentence: f64,
    pub preamble: f64,
    pub title: f64,
    /// Stories: all three required words used; and each on its own.
    pub required_words: Option<f64>,
    /// Stories whose opening we wrote (recipe 2 seeds the three words into it): all three used
    /// again in the teacher's own continuation, after the opening. The share above is then
    /// 1 by construction; this one says whether the teacher follows the words.
    #[serde(default)]
    pub required_words_in_continuation: Option<f64>,
    pub noun: Option<f64>,
    pub verb: Option<f64>,
    pub adjective: Option<f64>,
    /// Instructions containing meta-text about a rewrite.
    pub meta_text: Option<f64>,
    /// Conversations whose answer takes over half of its word trigrams from the user's turn
    /// (a "summarise this passage" answered with the passage).
    #[serde(default)]
    pub answer_copies_task: Option<f64>,
    pub not_english: f64,
    pub top_opening: String,
    pub top_opening_share: f64,
    pub distinct_2_sample: Option<f64>,
    /// The same over the texts of at least [`LENGTH_MATCHED_WORDS`] words, each cut to that
    /// many, so that a corpus of shorter texts is not scored as less diverse for its length
    /// alone (a conversation's answer only, as every check here).
    #[serde(default)]
    pub distinct_2_length_matched: Option<f64>,
}

/// Words per text for the length-matched distinct-2 (under v2 stories' median of 88).
pub const LENGTH_MATCHED_WORDS: usize = 80;

/// Words of the fixed sample that distinct-n is measured on (first look and recipe checks).
pub const DISTINCT_SAMPLE_WORDS: usize = 50_000;

/// The checks of one corpus (documents as the loaders read them).
pub fn recipe_checks(corpus: &str, docs: &[Document]) -> RecipeChecks {
    use crate::filter::checks::{self as c, Pos};
    let n = docs.len().max(1) as f64;
    let share = |f: &dyn Fn(&Document) -> bool| docs.iter().filter(|d| f(d)).count() as f64 / n;
    let body = |d: &Document| -> String {
        match &d.chat {
            Some(turns) => turns.last().map(|m| m.content.clone()).unwrap_or_default(),
            None => d.text.clone(),
        }
    };
    let attr = |d: &Document, k: &str| -> Option<String> {
        d.meta.get("synthlm")?["attributes"][k]
            .as_str()
            .map(str::to_string)
    };
    let uses_all = |d: &Document, text: &str| {
        [
            ("noun", Pos::Noun),
            ("verb", Pos::Verb),
            ("adjective", Pos::Adjective),
        ]
        .iter()
        .all(|(k, p)| attr(d, k).is_some_and(|w| c::uses_word(text, &w, *p)))
    };
    let is_story = docs.iter().any(|d| attr(d, "verb").is_some());
    let word_share = |k: &str, pos: Pos| -> f64 {
        share(&|d| attr(d, k).is_some_and(|w| c::uses_word(&body(d), &w, pos)))
    };
    let chats = docs.iter().any(|d| d.chat.is_some());
    let mut openings: HashMap<String, usize> = HashMap::new();
    for d in docs {
        let first: Vec<&str> = d.text.split_whitespace().take(3).collect();
        *openings.entry(first.join(" ")).or_default() += 1;
    }
    let (top_opening, top) = openings
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .unwrap_or_default();
    let bodies: Vec<String> = docs.iter().map(body).collect();
    let texts: Vec<&str> = bodies.iter().map(String::as_str).collect();
    RecipeChecks {
        corpus: corpus.to_string(),
        documents: docs.len() as u64,
        mid_sentence: share(&|d| c::ends_mid_sentence(&body(d))),
        preamble: share(&|d| c::preamble(&body(d)).is_some()),
        title: share(&|d| c::title(&body(d)).is_some()),
        required_words: is_story.then(|| share(&|d| uses_all(d, &body(d)))),
        required_words_in_continuation: docs.iter().any(|d| attr(d, "opening").is_some()).then(
            || {
                share(&|d| {
                    let (Some(open), text) = (attr(d, "opening"), body(d)) else {
                        return false;
                    };
                    uses_all(d, text.strip_prefix(open.as_str()).unwrap_or(&text))
                })
            },
        ),
        noun: is_story.then(|| word_share("noun", Pos::Noun)),
        verb: is_story.then(|| word_share("verb", Pos::Verb)),
        adjective: is_story.then(|| word_share("adjective", Pos::Adjective)),
        meta_text: chats.then(|| {
            share(&|d| {
                d.chat
                    .as_ref()
                    .and_then(|t| t.first())
                    .is_some_and(|m| c::has_meta_text(&m.content))
            })
        }),
        answer_copies_task: chats.then(|| {
            share(&|d| {
                let turns = d.chat.as_deref().unwrap_or_default();
                match (turns.first(), turns.last()) {
                    (Some(q), Some(a)) if turns.len() > 1 => {
                        copied_share(&q.content, &a.content) > 0.5
                    }
                    _ => false,
                }
            })
        }),
        not_english: share(&|d| !c::looks_english(&body(d))),
        top_opening,
        top_opening_share: top as f64 / n,
        distinct_2_sample: crate::eval::diversity::distinct_n_at(&texts, 2, DISTINCT_SAMPLE_WORDS),
        distinct_2_length_matched: {
            let cut: Vec<String> = texts
                .iter()
                .filter(|t| t.split_whitespace().count() >= LENGTH_MATCHED_WORDS)
                .map(|t| {
                    t.split_whitespace()
                        .take(LENGTH_MATCHED_WORDS)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            let cut: Vec<&str> = cut.iter().map(String::as_str).collect();
            crate::eval::diversity::distinct_n_at(&cut, 2, DISTINCT_SAMPLE_WORDS)
        },
    }
}

/// Share of `answer`'s word trigrams (lowercased) that occur in `task`; 0 for answers under
/// three words.
pub fn copied_share(task: &str, answer: &str) -> f64 {
    let words = |t: &str| -> Vec<String> { t.split_whitespace().map(str::to_lowercase).collect() };
    let (q, a) = (words(task), words(answer));
    let grams: std::collections::HashSet<&[String]> = q.windows(3).collect();
    let n = a.windows(3).count();
    if n == 0 {
        return 0.0;
    }
    a.windows(3).filter(|g| grams.contains(g)).count() as f64 / n as f64
}

/// The checks as a polars table, one row per corpus (empty cells where a check does not apply).
pub fn recipe_checks_frame(rows: &[RecipeChecks]) -> Result<DataFrame> {
    let f = |get: fn(&RecipeChecks) -> f64| rows.iter().map(get).collect::<Vec<f64>>();
    let o = |get: fn(&RecipeChecks) -> Option<f64>| rows.iter().map(get).collect::<Vec<_>>();
    Ok(DataFrame::new(vec![
        Column::new(
            "corpus".into(),
            rows.iter().map(|r| r.corpus.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "documents".into(),
            rows.iter().map(|r| r.documents).collect::<Vec<_>>(),
        ),
        Column::new("mid_sentence".into(), f(|r| r.mid_sentence)),
        Column::new("preamble".into(), f(|r| r.preamble)),
        Column::new("title".into(), f(|r| r.title)),
        Column::new("required_words".into(), o(|r| r.required_words)),
        Column::new(
            "required_words_in_continuation".into(),
            o(|r| r.required_words_in_continuation),
        ),
        Column::new("noun".into(), o(|r| r.noun)),
        Column::new("verb".into(), o(|r| r.verb)),
        Column::new("adjective".into(), o(|r| r.adjective)),
        Column::new("meta_text".into(), o(|r| r.meta_text)),
        Column::new("answer_copies_task".into(), o(|r| r.answer_copies_task)),
        Column::new("not_english".into(), f(|r| r.not_english)),
        Column::new("top_opening_share".into(), f(|r| r.top_opening_share)),
        Column::new("distinct_2_50k_words".into(), o(|r| r.distinct_2_sample)),
        Column::new(
            "distinct_2_length_matched".into(),
            o(|r| r.distinct_2_length_matched),
        ),
    ])?)
}

/// The generated families under `dir`: `dir` itself if it holds a manifest (named by its
/// folder), else its subfolders named after generators, named `VERSION/FAMILY` (the folder's
/// own name, e.g. `v2/stories`).
pub fn family_dirs(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    let name = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    if dir.join(crate::generate::shards::MANIFEST).exists() {
        return vec![(name(dir), dir.to_path_buf())];
    }
    crate::generate::Generator::ALL
        .iter()
        .map(|g| (format!("{}/{}", name(dir), g.name()), dir.join(g.name())))
        .filter(|(_, d)| d.join(crate::generate::shards::MANIFEST).exists())
        .collect()
}

/// The documents of every family under `dirs` (see [`family_dirs`]).
pub fn load_families(dirs: &[std::path::PathBuf]) -> Result<Vec<(String, Vec<Document>)>> {
    let mut out = Vec::new();
    for dir in dirs {
        for (name, d) in family_dirs(dir) {
            let folder = d
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let g = crate::generate::Generator::from_name(&folder).ok_or_else(|| {
                anyhow::anyhow!("{}: folder name is not a generator", d.display())
            })?;
            out.push((
                name,
                crate::experiments::corpora::generated(d.parent().unwrap_or(&d), g)?,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::copied_share;

    #[test]
    fn an_answer_that_repeats_the_task_is_measured_as_copied() {
        let task = "Summarise the passage: the river rose in spring and flooded the low fields";
        let copy = "The river rose in spring and flooded the low fields.";
        let own = "Spring floods covered the farmland near the river.";
        assert!(copied_share(task, copy) > 0.8);
        assert_eq!(copied_share(task, own), 0.0);
        assert_eq!(copied_share(task, "Yes."), 0.0);
    }
}
