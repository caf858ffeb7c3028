//! Proxy tasks as multiple choice scored by log-likelihood, the lm-evaluation-harness way: the
//! model's choice is the continuation with the highest summed log-likelihood given the context
//! (`acc`), or the highest log-likelihood per byte of the continuation (`acc_norm`). Items are
//! generated with exact answers (checked by recomputing them) and fixed before use.
//!
//! | task | context | choices | chance |
//! |---|---|---|---|
//! | `arithmetic` | `7 + 5 =` | ` 12`, ` 11`, ` 13`, ` 10` | 1/4 |
//! | `sequence` | `3, 6, 9, 12,` / `a, c, e, g,` | the next term and three near misses | 1/4 |
//! | `copying` | `apple, river, stone, apple, river,` | ` stone` and three other words of the list | 1/4 |
//! | `brackets` | `( [ ( ) ] ( [` | ` ]`, ` )`, ` }` | 1/3 |
//! | `cloze` | a held-out sentence up to a word | the word and three others of similar frequency | 1/4 |

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

fn distinct_near(rng: &mut ChaCha8Rng, answer: i64, count: usize) -> Vec<i64> {
    let mut set = BTreeSet::from([answer]);
    let mut out = vec![answer];
    while out.len() < count {
        let d = *[-2i64, -1, 1, 2, 3, -3].choose(rng).expect("offsets");
        let v = answer + d;
        if v >= 0 && set.insert(v) {
            out.push(v);
        }
    }
    out
}

pub fn arithmetic(n: usize, rng: &mut ChaCha8Rng) -> Vec<Choice> {
    (0..n)
        .map(|i| {
            let (a, b) = (rng.gen_range(0..20i64), rng.gen_range(0..20i64));
            let (ctx, ans) = if i % 2 == 0 {
                (format!("{a} + {b} ="), a + b)
            } else {
                (format!("{} - {b} =", a + b), a)
            };
            let choices = distinct_near(rng, ans, 4)
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
                let choices = distinct_near(rng, next, 4)
                    .into_iter()
                    .map(|v| format!(" {v}"))
                    .collect();
                item("sequence", format!("{},", terms.join(", ")), choices, rng)
            } else {
                let (start, step) = (rng.gen_range(0..8u8), rng.gen_range(1..3u8));
                let letter = |k: u8| ((b'a' + start + k * step) as char).to_string();
                let terms: Vec<String> = (0..4).map(letter).collect();
                let next = start + 4 * step;
                let mut choices = vec![letter(4)];
                for d in [1u8, 2, 3, 4] {
                    if choices.len() < 4 && next + d < 26 {
                        choices.push(((b'a' + next + d) as char).to_string());
                    }
                }
                let choices = choices.into_iter().map(|c| format!(" {c}")).collect();
                item("sequence", format!("{},", terms.join(", ")), choices, rng)
            }
        })
        .collect()
}

pub fn copying(n: usize, words: &[String], rng: &mut ChaCha8Rng) -> Vec<Choice> {
    (0..n)
        .map(|_| {
            let list: Vec<String> = words.choose_multiple(rng, 4).cloned().collect();
            // The list, then its first three again: the fourth comes next.
            let ctx = format!("{}, {},", list.join(", "), list[..3].join(", "));
            let mut choices = vec![format!(" {}", list[3])];
            choices.extend(list[..3].iter().map(|w| format!(" {w}")));
            item("copying", ctx, choices, rng)
        })
        .collect()
}

pub fn brackets(n: usize, rng: &mut ChaCha8Rng) -> Vec<Choice> {
    let pairs = [('(', ')'), ('[', ']'), ('{', '}')];
    (0..n)
        .map(|i| {
            // A random walk of opens and closes of abstract kinds 0..3, ending with at least one
            // bracket open: (kind, is_open).
            let (mut stack, mut walk): (Vec<usize>, Vec<(usize, bool)>) = (Vec::new(), Vec::new());
            let len = rng.gen_range(3..10);
            while walk.len() < len || stack.is_empty() {
                if !stack.is_empty() && rng.gen_bool(0.4) {
                    walk.push((stack.pop().expect("open"), false));
                } else {
                    let k = rng.gen_range(0..3);
                    stack.push(k);
                    walk.push((k, true));
                }
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

/// The content words of a text, as written.
fn word_list(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| content_word(w))
        .map(str::to_string)
        .collect()
}

/// Cloze items from held-out documents: a sentence up to a content word (a lower-case word of
/// 5+ letters, not a function word; at least 8 words of the sentence before it), the word, and
/// three other content words of the documents within a factor of two of its frequency.
pub fn cloze(n: usize, docs: &[String], rng: &mut ChaCha8Rng) -> Vec<Choice> {
    let mut freq: BTreeMap<String, usize> = BTreeMap::new();
    for d in docs {
        for w in word_list(d) {
            *freq.entry(w).or_default() += 1;
        }
    }
    let vocab: Vec<(&String, &usize)> = freq.iter().filter(|(_, c)| **c >= 2).collect();
    let mut candidates = Vec::new();
    for d in docs {
        for sentence in d.split_inclusive(['.', '!', '?']) {
            let ws: Vec<&str> = sentence.split_whitespace().collect();
            for k in 8..ws.len() {
                let w = ws[k];
                if content_word(w) {
                    candidates.push((ws[..k].join(" "), w.to_string()));
                }
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
        let f = freq.get(&w).copied().unwrap_or(0);
        let similar: Vec<&String> = vocab
            .iter()
            .filter(|(x, c)| **x != w && **c * 2 >= f && **c <= f * 2)
            .map(|(x, _)| *x)
            .collect();
        if similar.len() < 3 || !used.insert(ctx.clone()) {
            continue;
        }
        let mut choices = vec![format!(" {w}")];
        choices.extend(similar.choose_multiple(rng, 3).map(|x| format!(" {x}")));
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
