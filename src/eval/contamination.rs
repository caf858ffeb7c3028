//! Train/eval contamination: how much of an evaluation set already appears in a training set,
//! measured as the fraction of the evaluation set's word 13-grams that occur in the training
//! set (the n-gram size of GPT-3's and PaLM's contamination studies), and the fraction of
//! evaluation documents with at least one such 13-gram.

use crate::data::document::Document;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

pub const NGRAM: usize = 13;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contamination {
    pub train: String,
    pub eval: String,
    /// Evaluation 13-grams (with repeats) that also occur in the training set, as a fraction.
    pub ngram_overlap: f64,
    /// Evaluation documents that share at least one 13-gram with the training set.
    pub docs_flagged: f64,
    pub eval_ngrams: u64,
}

fn hashes(text: &str) -> Vec<u64> {
    let words: Vec<String> = text.split_whitespace().map(|w| w.to_lowercase()).collect();
    words
        .windows(NGRAM)
        .map(|w| crate::hash::fnv1a(w.join(" ").into_bytes()))
        .collect()
}

/// The set of a training corpus's 13-gram hashes.
pub fn ngram_set(train: &[Document]) -> HashSet<u64> {
    train.iter().flat_map(|d| hashes(&d.text)).collect()
}

/// Overlap of `eval` with a training set's 13-grams.
pub fn contamination(
    train_name: &str,
    train: &HashSet<u64>,
    eval_name: &str,
    eval: &[Document],
) -> Contamination {
    let (mut total, mut hit, mut flagged) = (0u64, 0u64, 0usize);
    for d in eval {
        let h = hashes(&d.text);
        let k = h.iter().filter(|x| train.contains(x)).count() as u64;
        total += h.len() as u64;
        hit += k;
        flagged += usize::from(k > 0);
    }
    Contamination {
        train: train_name.into(),
        eval: eval_name.into(),
        ngram_overlap: hit as f64 / total.max(1) as f64,
        docs_flagged: flagged as f64 / eval.len().max(1) as f64,
        eval_ngrams: total,
    }
}

/// Share of a document's 13-grams that occur in `set` (0 for a document shorter than 13 words).
pub fn overlap_share(doc: &Document, set: &HashSet<u64>) -> f64 {
    let h = hashes(&doc.text);
    h.iter().filter(|x| set.contains(x)).count() as f64 / h.len().max(1) as f64
}

/// A held-out document is dropped when more than this share of its 13-grams occur in a training
/// set. Measured on the real corpus v2 (held-out 5% by document): after near-duplicate removal,
/// 8.7% of its held-out 13-grams were in its training split (Sphinx index pages repeating their
/// chapters, fortunes quoted in other fortunes); dropping the held-out documents over 5% (35 of
/// 634) leaves 0.5%, over 10% would leave 2.0%.
pub const MAX_HELD_OUT_OVERLAP: f64 = 0.05;

/// What decontamination removed from one set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Removed {
    /// `train` or `eval`.
    pub role: String,
    pub set: String,
    /// What it overlapped with: a fixed evaluation set, or `training sets`.
    pub against: String,
    pub documents: usize,
    pub text_bytes: u64,
    /// The rule, in words.
    pub rule: String,
}

/// Word n-gram length of the near-copy rule for the fixed neutral set. The 13-gram rule misses
/// short quoted definitions: the neutral domain (Bierce's Devil's Dictionary) is a genre the
/// fortunes in the real corpus quote, often a sentence or two with other punctuation. Measured on
/// the v2 corpora: 43 of 1,003 neutral documents (13 KB) share a normalised 8-gram with the
/// training sets that the 13-gram rule had already cleaned. Those documents stay in the fixed set
/// (every experiment scores the same items) and are left out of its scores.
pub const NEAR_NGRAM: usize = 8;

/// Hashes of a text's word `NEAR_NGRAM`-grams, case and punctuation ignored.
fn near_hashes(text: &str) -> Vec<u64> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect()
        })
        .filter(|w: &String| !w.is_empty())
        .collect();
    words
        .windows(NEAR_NGRAM)
        .map(|w| crate::hash::fnv1a(w.join(" ").into_bytes()))
        .collect()
}

/// Which `eval` documents have a near-copy in `train`: a shared word [`NEAR_NGRAM`]-gram, case
/// and punctuation ignored (documents shorter than that have none).
pub fn near_copies(eval: &[Document], train: &[&[Document]]) -> Vec<bool> {
    let set: HashSet<u64> = train
        .iter()
        .flat_map(|docs| docs.iter())
        .flat_map(|d| near_hashes(&d.text))
        .collect();
    eval.iter()
        .map(|d| near_hashes(&d.text).iter().any(|h| set.contains(h)))
        .collect()
}

/// Remove from `docs` the documents `drop` says; the record of what went.
fn remove(
    docs: &mut Vec<Document>,
    drop: impl Fn(&Document) -> bool,
    what: (&str, &str, &str, &str),
) -> Removed {
    let (role, set, against, rule) = what;
    let (mut documents, mut text_bytes) = (0, 0);
    docs.retain(|d| {
        let gone = drop(d);
        if gone {
            documents += 1;
            text_bytes += d.text.len() as u64;
        }
        !gone
    });
    Removed {
        role: role.into(),
        set: set.into(),
        against: against.into(),
        documents,
        text_bytes,
        rule: rule.into(),
    }
}

/// Decontaminate an experiment's sets, in two steps:
/// 1. every training document that shares a 13-gram with a `fixed` evaluation set (one that
///    is the same for every experiment, such as the neutral domain) leaves the training set;
/// 2. every held-out document with more than [`MAX_HELD_OUT_OVERLAP`] of its 13-grams in the
///    union of the (cleaned) training sets leaves its held-out set.
///
/// Fixed sets stay whole so that every experiment scores the same documents; an experiment's own
/// held-out splits give way instead, so its training sets keep equal footing.
pub fn decontaminate(
    train: &mut [(String, Vec<Document>)],
    held_out: &mut [(String, Vec<Document>)],
    fixed: &[(&str, &[Document])],
) -> Vec<Removed> {
    let mut out = Vec::new();
    for (name, docs) in fixed {
        let set = ngram_set(docs);
        for (t, tdocs) in train.iter_mut() {
            let what = ("train", t.as_str(), *name, "shares a 13-gram");
            out.push(remove(tdocs, |d| overlap_share(d, &set) > 0.0, what));
        }
    }
    let all: Vec<Document> = train.iter().flat_map(|(_, d)| d.iter().cloned()).collect();
    let set = ngram_set(&all);
    for (e, edocs) in held_out.iter_mut() {
        let what = (
            "eval",
            e.as_str(),
            "training sets",
            "over 5% of its 13-grams in them",
        );
        out.push(remove(
            edocs,
            |d| overlap_share(d, &set) > MAX_HELD_OUT_OVERLAP,
            what,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, text: &str) -> Document {
        Document::text(id, "x", text)
    }

    #[test]
    fn decontamination_cleans_training_of_fixed_sets_and_held_out_of_training() {
        let quote = "Cynic, n. A blackguard whose faulty vision sees things as they are, not as they ought to be.";
        let words = |k: usize| {
            (0..40)
                .map(|i| format!("w{k}x{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut train = vec![(
            "real".to_string(),
            vec![
                doc("a", &format!("{} {quote}", words(1))),
                doc("b", &words(2)),
            ],
        )];
        let copied = format!("{} {}", words(3), &words(2)[..120]);
        let mut held = vec![(
            "real".to_string(),
            vec![doc("c", &words(4)), doc("d", &copied)],
        )];
        let neutral = vec![doc("cynic", quote)];
        let removed = decontaminate(&mut train, &mut held, &[("neutral", &neutral)]);
        assert_eq!(
            train[0].1.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(
            held[0].1.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(
            (removed[0].role.as_str(), removed[0].documents),
            ("train", 1)
        );
        assert_eq!(
            (removed[1].role.as_str(), removed[1].documents),
            ("eval", 1)
        );
        // Afterwards the held-out set shares nothing with training.
        let c = contamination("real", &ngram_set(&train[0].1), "real", &held[0].1);
        assert_eq!(c.ngram_overlap, 0.0);
    }

    #[test]
    fn near_copies_ignore_case_and_punctuation_and_need_eight_words() {
        let train = vec![doc(
            "t",
            "As Bierce said: A CYNIC is a blackguard whose faulty vision sees things as they are!",
        )];
        let eval = vec![
            doc("copy", "Cynic, n. A blackguard whose faulty vision sees things as they are, not as they ought to be."),
            doc("other", "Abscond, v.i. To move in a mysterious way, commonly with the property of another."),
            doc("short", "a blackguard whose faulty vision"),
        ];
        assert_eq!(near_copies(&eval, &[&train]), [true, false, false]);
        // Seven shared words are not a near-copy.
        let seven = vec![doc(
            "t7",
            "zz a blackguard whose faulty vision sees things yy",
        )];
        assert_eq!(near_copies(&eval[..1], &[&seven]), [false]);
    }
}
