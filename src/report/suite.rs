//! The evaluation suite's results of an experiment's students (mean over seeds [min, max]),
//! beside the n-gram models counted on the same tokens and the chance level: the accuracy
//! metrics (minimal pairs, proxy tasks) in one table, the generation metrics in another. The
//! neutral set's bits per byte is in the bar's table ([`crate::report::bar`]).

use crate::experiments::exp1::{FrameRow, SUITE_COMPARED};
use crate::experiments::results::Results;
use crate::report::tables::{col, mean_ci, num, pval};
use crate::report::Block;
use anyhow::Result;
use polars::prelude::*;

/// The accuracy metrics, with what they are.
const ACCURACY: [(&str, &str); 3] = [
    ("minimal_pairs_acc", "minimal pairs"),
    ("proxy_acc", "proxy task"),
    ("proxy_acc_norm", "proxy task, per byte"),
];

/// The generation metrics, with what they are.
const GENERATION: [(&str, &str); 4] = [
    (
        "gen_distinct2",
        "distinct-2 of the first 40 words (higher: less repetitive)",
    ),
    (
        "gen_longest_repeat",
        "longest repeated word n-gram (lower: fewer loops)",
    ),
    (
        "gen_teacher_nll",
        "the teacher's NLL per token (lower: more fluent to the teacher)",
    ),
    (
        "gen_required_words",
        "story samples that keep using their characters and objects",
    ),
];

/// The parts (phenomena, tasks) a metric has, in first-seen order.
fn parts(r: &Results, metric: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in r.headline.iter().filter(|h| h.metric == metric) {
        if !out.contains(&h.eval_set) {
            out.push(h.eval_set.clone());
        }
    }
    out
}

/// The best n-gram model's value of a condition on a metric's part (highest accuracy).
fn best_ngram(r: &Results, condition: &str, part: &str, metric: &str) -> Option<(String, f64)> {
    r.baselines
        .iter()
        .filter(|b| b.trained_on == condition && b.eval_set == part && b.metric == metric)
        .max_by(|a, b| a.value.total_cmp(&b.value))
        .map(|b| (b.name.clone(), b.value))
}

fn accuracy_table(r: &Results, conditions: &[&str]) -> Result<DataFrame> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for (m, _) in ACCURACY {
        rows.extend(parts(r, m).into_iter().map(|p| (m.to_string(), p)));
    }
    let name = |m: &str| {
        ACCURACY
            .iter()
            .find(|x| x.0 == m)
            .map_or(m.to_string(), |x| x.1.to_string())
    };
    let mut cols = vec![
        col("metric", rows.iter().map(|x| name(&x.0))),
        col("part", rows.iter().map(|x| x.1.clone())),
        col(
            "chance",
            rows.iter().map(|(m, p)| {
                let h = r
                    .headline
                    .iter()
                    .find(|h| &h.metric == m && &h.eval_set == p);
                h.and_then(|h| h.chance).map_or("-".into(), num)
            }),
        ),
    ];
    for st in &r.scale.students {
        for c in conditions {
            cols.push(col(
                &format!("{} on {c}", st.name),
                rows.iter().map(|(m, p)| {
                    r.cell(&st.name, c, p, m)
                        .map_or("-".into(), |h| mean_ci(h.mean, h.lo, h.hi))
                }),
            ));
        }
    }
    for c in conditions {
        cols.push(col(
            &format!("best n-gram on {c}"),
            rows.iter().map(|(m, p)| {
                best_ngram(r, c, p, m).map_or("-".into(), |(n, v)| format!("{} ({n})", num(v)))
            }),
        ));
    }
    Ok(DataFrame::new(cols)?)
}

fn generation_table(r: &Results, conditions: &[&str]) -> Result<DataFrame> {
    let present: Vec<(&str, &str)> = GENERATION
        .into_iter()
        .filter(|(m, _)| r.headline.iter().any(|h| h.metric == *m))
        .collect();
    let mut cols = vec![col("metric", present.iter().map(|x| x.1.to_string()))];
    for st in &r.scale.students {
        for c in conditions {
            cols.push(col(
                &format!("{} on {c}", st.name),
                present.iter().map(|(m, _)| {
                    r.cell(&st.name, c, "prompts", m)
                        .map_or("-".into(), |h| mean_ci(h.mean, h.lo, h.hi))
                }),
            ));
        }
    }
    Ok(DataFrame::new(cols)?)
}

/// The training sets compared on the accuracy metrics (paired over items), per part.
fn comparison_table(r: &Results) -> Result<DataFrame> {
    let c: Vec<_> = SUITE_COMPARED
        .iter()
        .flat_map(|m| r.comparisons.iter().filter(move |x| x.metric == *m))
        .collect();
    let name = |m: &str| {
        let known = ACCURACY.iter().find(|x| x.0 == m);
        known.map_or(m.to_string(), |x| x.1.to_string())
    };
    Ok(DataFrame::new(vec![
        col("comparison (a - b)", c.iter().map(|x| x.label.clone())),
        col("metric", c.iter().map(|x| name(&x.metric))),
        col("part", c.iter().map(|x| x.eval_set.clone())),
        col(
            "difference, accuracy [interval]",
            c.iter().map(|x| mean_ci(x.diff, x.lo, x.hi)),
        ),
        col("p", c.iter().map(|x| pval(x.p_value))),
        col("p (Holm)", c.iter().map(|x| pval(x.p_holm))),
    ])?)
}

/// Minimal-pair accuracy per phenomenon and frame: a column per model (each student on each
/// training set, then the unigram model of each training set).
fn frame_table(frames: &[FrameRow], conditions: &[&str]) -> Result<DataFrame> {
    let mut keys: Vec<(String, u8)> = Vec::new();
    for f in frames {
        if !keys.contains(&(f.phenomenon.clone(), f.frame)) {
            keys.push((f.phenomenon.clone(), f.frame));
        }
    }
    let mut models: Vec<(String, String, String)> = Vec::new();
    for ngram in [false, true] {
        for c in conditions {
            for f in frames.iter().filter(|f| f.condition == *c) {
                let key = (f.student.clone(), c.to_string(), f.model.clone());
                if (f.model != f.student) == ngram && !models.contains(&key) {
                    models.push(key);
                }
            }
        }
    }
    let mut cols = vec![
        col("phenomenon", keys.iter().map(|k| k.0.clone())),
        col("frame", keys.iter().map(|k| k.1.to_string())),
        col(
            "pairs",
            keys.iter().map(|k| {
                let f = frames
                    .iter()
                    .find(|f| (&f.phenomenon, f.frame) == (&k.0, k.1));
                f.map_or("-".into(), |f| f.pairs.to_string())
            }),
        ),
    ];
    for (student, c, model) in &models {
        let head = match model == student {
            true => format!("{student} on {c}"),
            false => format!("{model} on {c}"),
        };
        cols.push(col(
            &head,
            keys.iter().map(|k| {
                let at = |f: &&FrameRow| {
                    (&f.student, &f.condition, &f.model) == (student, &c.to_string(), model)
                        && (&f.phenomenon, f.frame) == (&k.0, k.1)
                };
                frames
                    .iter()
                    .find(at)
                    .map_or("-".into(), |f| num(f.accuracy))
            }),
        ));
    }
    Ok(DataFrame::new(cols)?)
}

/// The suite's section, or nothing when the results hold no suite metrics. `frames`: the
/// minimal pairs per frame (empty: no frame table).
pub fn blocks(r: &Results, conditions: &[&str], frames: &[FrameRow]) -> Result<Vec<Block>> {
    let t = tables(r, conditions, frames, "")?;
    if t.is_empty() {
        return Ok(t);
    }
    let mut b = vec![
        Block::Heading(3, "The evaluation suite".into()),
        Block::Text("Minimal pairs (the grammatical sentence of each pair is to be the likelier one) and proxy tasks (the right choice is to win by log-likelihood, summed or per byte), scored on the final weights of every run; items are fixed and committed (`data/eval`). The n-gram column is the best of the six n-gram models counted on the same tokens, for each part separately: a choice after the fact that favours the n-grams. Chance is one over the number of choices, but some items can be won or lost on surface features (a choice that repeats the context, a frequent word): where the n-gram models of the same tokens sit above chance, they are the floor to read a student against, and a student at or below them has shown nothing the counts do not. The generation metrics are measured on samples from fixed prompts; n-grams do not generate here.".into()),
    ];
    b.extend(t);
    Ok(b)
}

/// The suite's tables (accuracy, generation, the training sets compared, minimal pairs per
/// frame), named with `prefix` so that a second results file (a probe) can sit beside the
/// first; nothing when the results hold no suite metrics.
pub fn tables(
    r: &Results,
    conditions: &[&str],
    frames: &[FrameRow],
    prefix: &str,
) -> Result<Vec<Block>> {
    let Some(interval) = r
        .headline
        .iter()
        .find(|h| h.metric == "minimal_pairs_acc")
        .map(|h| h.interval.clone())
    else {
        return Ok(vec![]);
    };
    let mut b = vec![
        Block::Table {
            name: format!("{prefix}suite-accuracy"),
            caption: format!("Accuracy on the suite's minimal pairs and proxy tasks: students as mean [min, max] over seeds ({interval}), the best n-gram of each training set, and chance."),
            frame: accuracy_table(r, conditions)?,
        },
        Block::Table {
            name: format!("{prefix}suite-generation"),
            caption: "Generation quality of samples from fixed prompts (mean [min, max] over seeds). These metrics are in the synthetic corpora's domain, not neutral: the prompts are stories, explanations and ChatML chats (the genres of the synthetic families), and the teacher that scores fluency wrote the synthetic corpora. A student trained on synthetic text is favoured by construction; read them as how well each student continues synthetic-style text.".into(),
            frame: generation_table(r, conditions)?,
        },
    ];
    let floor = r
        .comparisons
        .iter()
        .find(|x| SUITE_COMPARED.contains(&x.metric.as_str()));
    if let Some(floor) = floor.map(|x| x.p_floor) {
        b.push(Block::Table {
            name: format!("{prefix}suite-comparisons"),
            caption: format!("The training sets compared on the suite: differences in accuracy (a - b; positive: a is better), each item's accuracy averaged over seeds, paired over items (95% bootstrap interval; sign-flip test over items, smallest attainable p {}), Holm-adjusted within each metric.", pval(floor)),
            frame: comparison_table(r)?,
        });
    }
    if !frames.is_empty() {
        b.push(Block::Table {
            name: format!("{prefix}suite-frames"),
            caption: "Minimal-pair accuracy per phenomenon and frame (mean over seeds). Each phenomenon's two frames hold half its pairs, built so that a model preferring one of the two contrasted words scores 1 on one frame and 0 on the other: a phenomenon is learned only where both frames are above 0.5. The unigram model of each training set shows what a word preference alone scores.".into(),
            frame: frame_table(frames, conditions)?,
        });
    }
    Ok(b)
}
