//! Proxy tasks as multiple choice scored by log-likelihood, the lm-evaluation-harness way: the
//! model's choice is the continuation with the highest summed log-likelihood given the context
//! (`acc`), or the highest log-likelihood per byte of the continuation (`acc_norm`). Items are
//! generated with exact answers (checked by recomputing them) and fixed before use.
//!
//! | task | context | choices | chance |
//! |---|---|---|---|
//! | `arithmetic` | `7 + 5 =` | ` 12` and its neighbours: four consecutive numbers | 1/4 |
//! | `sequence` | `3, 6, 9, 12,` / `a, c, e, g,` | the next term and its neighbours: four consecutive values | 1/4 |
//! | `copying` | `apple, river, stone, salt, ..., apple, river,` (8 words, then 1-4 again) | ` stone` and three other words seen once | 1/4 |
//! | `brackets` | `( [ ( ) ] ( { }` | ` )`, ` ]`, ` }` | 1/3 |
//! | `cloze` | 60 words of a held-out document before a word they already contain | the word and three other content words of the passage | 1/4 |
//!
//! Built so that the shortcuts a reviewer found in the first version do not work: the answer is
//! each place of its window equally often (not "the middle" or "the smallest"), copying
//! distractors appeared once as the answer did, the bracket to close is never the last token,
//! and each closer is the answer of a third of the items.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One multiple-choice item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub task: String,
    pub context: String,
    /// Continuations, each starting with the space that separates it from the context.
    pub choices: Vec<String>,
    /// Index of the correct continuation.
    pub answer: usize,
}

/// The tasks, in report order, and their chance levels.
pub const TASKS: [(&str, f64); 5] = [
    ("arithmetic", 0.25),
    ("sequence", 0.25),
    ("copying", 0.25),
    ("brackets", 1.0 / 3.0),
    ("cloze", 0.25),
];

/// Shuffle `choices` (the first is correct) into an item.
fn item(task: &str, context: String, mut choices: Vec<String>, rng: &mut ChaCha8Rng) -> Choice {
    let correct = choices[0].clone();
    choices.shuffle(rng);
    let answer = choices
        .iter()
        .position(|c| *c == correct)
        .expect("the answer is a choice");
    Choice {
        task: task.into(),
        context,
        choices,
        answer,
    }
}

/// Four consecutive values, `answer` first (the item shuffles them), the window placed so that
/// the answer is its 1st, 2nd, 3rd or 4th value equally often: neither "the middle choice" nor
/// "the smallest" finds the answer more often than chance. Values stay within `min..=max`.
fn window(rng: &mut ChaCha8Rng, answer: i64, min: i64, max: i64) -> Vec<i64> {
    let first = rng.gen_range((answer - 3).max(min)..=answer.min(max - 3));
    std::iter::once(answer)
        .chain((first..first + 4).filter(|&v| v != answer))
        .collect()
}

pub fn arithmetic(n: usize, rng: &mut ChaCha8Rng) -> Vec<Choice> {
    (0..n)
        .map(|i| {
            // Answers of 3 and more, so that every window fits above 0.
            let (a, b) = (rng.gen_range(3..20i64), rng.gen_range(1..20i64));
            let (ctx, ans) = if i % 2 == 0 {
                (format!("{a} + {b} ="), a + b)
            } else {
                (format!("{} - {b} =", a + b), a)
            };
            let choices = window(rng, ans, 0, i64::MAX)
                .into_iter()
                .map(|v| format!(" {v}"))
                .collect();
            item("arithmetic", ctx, choices, rng)
        })
        .collect()
}

pub fn sequence(n: usize, rng: &mut ChaCha8Rng) -> Vec<Choice> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                let (start, step) = (rng.gen_range(0..10i64), rng.gen_range(1..6i64));
                let terms: Vec<String> = (0..4).map(|k| (start + k * step).to_string()).collect();
                let next = start + 4 * step;
                let choices = window(rng, next, 0, i64::MAX)
                    .into_iter()
                    .map(|v| format!(" {v}"))
                    .collect();
                item("sequence", format!("{},", terms.join(", ")), choices, rng)
            } else {
                let (start, step) = (rng.gen_range(0..8u8), rng.gen_range(1..3u8));
                let letter = |k: u8| ((b'a' + start + k * step) as char).to_string();
                let terms: Vec<String> = (0..4).map(letter).collect();
                let next = start + 4 * step;
                let choices: Vec<String> = window(rng, next as i64, 0, 25)
                    .into_iter()
                    .map(|k| ((b'a' + k as u8) as char).to_string())
                    .collect();
                let choices = choices.into_iter().map(|c| format!(" {c}")).collect();
                item("sequence", format!("{},", terms.join(", ")), choices, rng)
            }
        })
        .collect()
}

pub fn copying(n: usize, words: &[String], rng: &mut ChaCha8Rng) -> Vec<Choice> {
    (0..n)
        .map(|_| {
            // A list of 8 words, then its first k (1-4) again: word k+1 comes next. The choices
            // are words of the list that appeared once so far, as the answer did, so "the word
            // not yet repeated" does not find it.
            let list: Vec<String> = words.choose_multiple(rng, 8).cloned().collect();
            let k = rng.gen_range(1..=4);
            let ctx = format!("{}, {},", list.join(", "), list[..k].join(", "));
            let mut choices = vec![format!(" {}", list[k])];
            choices.extend(
                list[k + 1..]
                    .choose_multiple(rng, 3)
                    .map(|w| format!(" {w}")),
            );
            item("copying", ctx, choices, rng)
        })
        .collect()
}

pub fn brackets(n: usize, rng: &mut ChaCha8Rng) -> Vec<Choice> {
    let pairs = [('(', ')'), ('[', ']'), ('{', '}')];
    (0..n)
        .map(|i| {
            // A random walk of opens and closes of abstract kinds 0..3 (0-4 steps), then the
            // opener to close, then 1-3 balanced pairs: the opener is never the last token, so
            // the answer needs the stack, not the previous token. (kind, is_open)
            let (mut stack, mut walk): (Vec<usize>, Vec<(usize, bool)>) = (Vec::new(), Vec::new());
            for _ in 0..rng.gen_range(0..5) {
                if !stack.is_empty() && rng.gen_bool(0.4) {
                    walk.push((stack.pop().expect("open"), false));
                } else {
                    let k = rng.gen_range(0..3);
                    stack.push(k);
                    walk.push((k, true));
                }
            }
            let target = rng.gen_range(0..3);
            stack.push(target);
            walk.push((target, true));
            let mut inner = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                if !inner.is_empty() && rng.gen_bool(0.4) {
                    walk.push((inner.pop().expect("open"), false));
                }
                let k = rng.gen_range(0..3);
                inner.push(k);
                walk.push((k, true));
            }
            while let Some(k) = inner.pop() {
                walk.push((k, false));
            }
            // Kinds are drawn as brackets so that item i must close pair i % 3: every closer is
            // the answer equally often (always preferring one closer scores 1/3 exactly).
            let mut shape = [0, 1, 2];
            shape.shuffle(rng);
            let top = *stack.last().expect("open");
            let at = shape.iter().position(|&p| p == i % 3).expect("a pair");
            shape.swap(top, at);
            let ctx: Vec<String> = walk
                .iter()
                .map(|&(k, open)| {
                    if open {
                        pairs[shape[k]].0
                    } else {
                        pairs[shape[k]].1
                    }
                    .to_string()
                })
                .collect();
            let want = pairs[i % 3].1;
            let mut choices = vec![format!(" {want}")];
            choices.extend(
                pairs
                    .iter()
                    .map(|p| p.1)
                    .filter(|c| *c != want)
                    .map(|c| format!(" {c}")),
            );
            item("brackets", ctx.join(" "), choices, rng)
        })
        .collect()
}

/// A content word written in lower case: 5+ ASCII letters, not a function word (names and
/// sentence starts, capitalised, are left out, and so are "their", "which", ...).
fn content_word(w: &str) -> bool {
    w.len() >= 5
        && w.chars().all(|c| c.is_ascii_lowercase())
        && !crate::filter::checks::STOP_WORDS.contains(&w)
}

/// Cloze items from held-out documents, recall from context: up to 60 words of a document
/// ending just before a content word (a lower-case word of 5+ letters, not a function word)
/// that already occurred in those words; the choices are that word and three other content
/// words of the same passage, so "a word seen in the passage" does not find it: the model has
/// to know which of the passage's words fits here.
pub fn cloze(n: usize, docs: &[String], rng: &mut ChaCha8Rng) -> Vec<Choice> {
    const WINDOW: usize = 60;
    let mut candidates = Vec::new();
    for d in docs {
        let ws: Vec<&str> = d.split_whitespace().collect();
        for k in 12..ws.len() {
            let ctx = &ws[k.saturating_sub(WINDOW)..k];
            let w = ws[k];
            if content_word(w) && ctx.contains(&w) {
                candidates.push((ctx.join(" "), w.to_string()));
            }
        }
    }
    candidates.shuffle(rng);
    let mut out = Vec::new();
    let mut used = BTreeSet::new();
    for (ctx, w) in candidates {
        if out.len() == n {
            break;
        }
        let others: BTreeSet<&str> = ctx
            .split_whitespace()
            .filter(|x| content_word(x) && *x != w)
            .collect();
        let others: Vec<&str> = others.into_iter().collect();
        if others.len() < 3 || !used.insert(ctx.clone()) {
            continue;
        }
        let mut choices = vec![format!(" {w}")];
        choices.extend(others.choose_multiple(rng, 3).map(|x| format!(" {x}")));
        out.push(item("cloze", ctx, choices, rng));
    }
    out
}

/// Every task's items, from a seed: `n` per task; `words` for copying, `docs` (held-out texts)
/// for the cloze.
pub fn all(n: usize, words: &[String], docs: &[String], seed: u64) -> Vec<Choice> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = arithmetic(n, &mut rng);
    out.extend(sequence(n, &mut rng));
    out.extend(copying(n, words, &mut rng));
    out.extend(brackets(n, &mut rng));
    out.extend(cloze(n, docs, &mut rng));
    out
}
