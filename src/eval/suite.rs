//! The evaluation suite: every metric on one model, each with its value, an interval that says
//! what it is, its chance level, its cost, and its per-item values kept.
//!
//! | metric | items | per item | interval | chance |
//! |---|---|---|---|---|
//! | `neutral_bpb` | the neutral held-out documents | bits per byte of the document | 95% bootstrap over documents | - |
//! | `minimal_pairs_acc` | 300 pairs per phenomenon, of which those with token-matched members, frames balanced | 1 if the good sentence is likelier (ties 1/2) | 95% Wilson | 0.5 |
//! | `proxy_acc`, `proxy_acc_norm` | 200+ items per task | 1 if the right choice wins (by summed log-likelihood; per byte) | 95% Wilson | 1/choices |
//! | `gen_distinct2` | 50 samples | distinct-2 of the sample's first 40 words | 95% bootstrap over samples | - |
//! | `gen_longest_repeat` | 50 samples | longest repeated word n-gram | 95% bootstrap over samples | - |
//! | `gen_teacher_nll` | 50 samples | the teacher's NLL per token of the sample | 95% bootstrap over samples | - |
//! | `gen_required_words` | 30 story samples | 1 if it keeps using the story's characters and objects | 95% Wilson | - |
//!
//! Every metric takes the same inputs (a [`Scorer`], its fixed items) and returns [`MetricRow`]s.
//! Costs are core-seconds per model: wall seconds x the threads of this process (an upper bound
//! on CPU time), shared by items among the metrics one pass computes (`acc` and `acc_norm` of a
//! task come from the same pass, and both show that share).

use crate::data::pack::TokenShards;
use crate::eval::grammar::{Pair, PHENOMENA};
use crate::eval::items::Prompt;
use crate::eval::proxy::{Choice, TASKS};
use crate::eval::quality::Sampled;
use crate::eval::scorer::Scorer;
use crate::stats::{self, DocScores};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One metric's result on one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub metric: String,
    /// The part of the suite (a phenomenon, a task, `all`).
    pub eval_set: String,
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    pub interval: String,
    pub chance: Option<f64>,
    /// Core-seconds (wall x threads) this metric cost on this model.
    pub cost_cpu_s: f64,
    pub items: usize,
    /// Per-item values (what the value aggregates; paired across checkpoints).
    pub per_item: Vec<f64>,
    /// Bytes of each item, for metrics that aggregate per byte (`neutral_bpb`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bytes: Vec<u64>,
    /// Which items `per_item` holds, when a metric leaves some out (too-short samples): pairing
    /// across checkpoints is by these indices. Empty: all items, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_index: Vec<usize>,
}

/// 95% Wilson score interval of k successes in n (k may be fractional: ties count as shares).
pub fn wilson(k: f64, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (z, n, p) = (1.959_963_984_540_054, n as f64, k / n as f64);
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / d;
    ((c - h).max(0.0), (c + h).min(1.0))
}

/// 95% percentile bootstrap of the mean of `v`.
pub fn bootstrap_mean(v: &[f64], seed: u64) -> (f64, f64) {
    let ci = stats::bootstrap_mean_ci(v, 0.95, 4000, seed);
    (ci.lo, ci.hi)
}

fn cpu_s(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * rayon::current_num_threads() as f64
}

/// The credit of the right choice among scores `l` (higher is better): 1 if it alone scores
/// best, 1/m if it ties with m - 1 others for best (the expected accuracy of breaking ties at
/// random: a model that cannot tell the choices apart scores chance, not 0), else 0.
pub fn credit(l: &[f64], right: usize) -> f64 {
    let best = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tied = l.iter().filter(|&&x| x == best).count();
    if l[right] == best {
        1.0 / tied as f64
    } else {
        0.0
    }
}

fn accuracy(metric: &str, set: &str, hits: Vec<f64>, chance: Option<f64>, cost: f64) -> MetricRow {
    let k: f64 = hits.iter().sum();
    let (lo, hi) = wilson(k, hits.len());
    MetricRow {
        metric: metric.into(),
        eval_set: set.into(),
        value: k / hits.len().max(1) as f64,
        lo,
        hi,
        interval: format!("95% Wilson over {} items", hits.len()),
        chance,
        cost_cpu_s: cost,
        items: hits.len(),
        per_item: hits,
        bytes: vec![],
        item_index: vec![],
    }
}

/// Bits per byte on the neutral held-out documents (packed with the scorer's tokenizer).
pub fn neutral_bpb(s: &dyn Scorer, neutral: &TokenShards) -> Result<MetricRow> {
    let t = Instant::now();
    let d: DocScores = s.document_bits(neutral)?;
    Ok(neutral_row(d, cpu_s(t)))
}

/// The `neutral_bpb` row of per-document scores, with its 95% bootstrap interval.
pub fn neutral_row(d: DocScores, cost_cpu_s: f64) -> MetricRow {
    let (lo, hi) = stats::bpb_interval(&d, 0.95, 2000, 5);
    MetricRow {
        metric: "neutral_bpb".into(),
        eval_set: "neutral".into(),
        value: d.bpb(),
        lo,
        hi,
        interval: format!("95% bootstrap over {} documents", d.len()),
        chance: None,
        cost_cpu_s,
        items: d.len(),
        per_item: d.bits,
        bytes: d.bytes,
        item_index: vec![],
    }
}

/// A `neutral_bpb` row without the documents `excluded` (indices into the neutral set; other
/// rows unchanged). An index past the row's documents is an error: the row was scored on
/// another neutral set.
pub fn without_documents(m: &MetricRow, excluded: &[usize]) -> Result<MetricRow> {
    if m.metric != "neutral_bpb" || excluded.is_empty() {
        return Ok(m.clone());
    }
    if let Some(&i) = excluded.iter().find(|&&i| i >= m.per_item.len()) {
        anyhow::bail!(
            "neutral document {i} is to be left out, but the row scores {} documents",
            m.per_item.len()
        );
    }
    let gone: std::collections::HashSet<usize> = excluded.iter().copied().collect();
    fn kept<T: Copy>(v: &[T], gone: &std::collections::HashSet<usize>) -> Vec<T> {
        let all = v.iter().enumerate();
        all.filter(|(i, _)| !gone.contains(i))
            .map(|(_, x)| *x)
            .collect()
    }
    let d = DocScores {
        bits: kept(&m.per_item, &gone),
        bytes: kept(&m.bytes, &gone),
    };
    Ok(neutral_row(d, m.cost_cpu_s))
}

/// The pairs a scorer's tokenizer lets us score fairly: both members the same number of tokens,
/// and, per phenomenon, as many pairs of each frame (the first ones of the larger frame).
pub fn scorable_pairs(pairs: &[Pair], encoded: &[(Vec<u32>, Vec<u32>)]) -> Vec<usize> {
    let mut out = Vec::new();
    for ph in PHENOMENA {
        let frame = |f: u8| -> Vec<usize> {
            (0..pairs.len())
                .filter(|&i| {
                    pairs[i].phenomenon == ph
                        && pairs[i].frame == f
                        && encoded[i].0.len() == encoded[i].1.len()
                })
                .collect()
        };
        let (a, b) = (frame(0), frame(1));
        let k = a.len().min(b.len());
        let mut both: Vec<usize> = a[..k].iter().chain(&b[..k]).copied().collect();
        both.sort_unstable();
        out.extend(both);
    }
    out
}

/// Accuracy on the minimal pairs, per phenomenon and over all of them: on the pairs of
/// [`scorable_pairs`] (their indices kept in `item_index`), so that neither a token count nor a
/// preference for one word decides; chance is 0.5 exactly.
pub fn minimal_pairs(s: &dyn Scorer, pairs: &[Pair]) -> Result<Vec<MetricRow>> {
    let t = Instant::now();
    let tok = s.tokenizer();
    let encoded: Vec<(Vec<u32>, Vec<u32>)> = pairs
        .iter()
        .map(|p| Ok((tok.encode(&p.good)?, tok.encode(&p.bad)?)))
        .collect::<Result<_>>()?;
    let keep = scorable_pairs(pairs, &encoded);
    let items: Vec<(Vec<u32>, Vec<u32>)> = keep
        .iter()
        .flat_map(|&i| {
            [
                (vec![], encoded[i].0.clone()),
                (vec![], encoded[i].1.clone()),
            ]
        })
        .collect();
    let ll = s.loglik(&items)?;
    let hits: Vec<f64> = ll.chunks(2).map(|x| credit(x, 0)).collect();
    let cost = cpu_s(t);
    let row = |set: &str, at: Vec<usize>, h: Vec<f64>, of: usize| {
        let mut r = accuracy(
            "minimal_pairs_acc",
            set,
            h,
            Some(0.5),
            cost * at.len() as f64 / keep.len().max(1) as f64,
        );
        r.interval = format!(
            "{} ({} token-matched pairs of {of}, frames balanced)",
            r.interval,
            at.len()
        );
        r.item_index = at;
        r
    };
    let mut out = Vec::new();
    for ph in PHENOMENA {
        let (at, h): (Vec<usize>, Vec<f64>) = keep
            .iter()
            .zip(&hits)
            .filter(|(&i, _)| pairs[i].phenomenon == ph)
            .map(|(&i, &h)| (i, h))
            .unzip();
        if !at.is_empty() {
            out.push(row(
                ph,
                at,
                h,
                pairs.iter().filter(|p| p.phenomenon == ph).count(),
            ));
        }
    }
    out.push(row("all", keep.clone(), hits, pairs.len()));
    Ok(out)
}

/// `acc` and `acc_norm` on every proxy task.
pub fn proxy_tasks(s: &dyn Scorer, items: &[Choice]) -> Result<Vec<MetricRow>> {
    let t = Instant::now();
    let tok = s.tokenizer();
    let mut flat = Vec::new();
    for c in items {
        let ctx = tok.encode(&c.context)?;
        for ch in &c.choices {
            flat.push((ctx.clone(), tok.encode(ch)?));
        }
    }
    let ll = s.loglik(&flat)?;
    let cost = cpu_s(t);
    let (mut acc, mut norm) = (Vec::new(), Vec::new());
    let mut k = 0;
    for c in items {
        let l = &ll[k..k + c.choices.len()];
        k += c.choices.len();
        let per_byte: Vec<f64> = l
            .iter()
            .zip(&c.choices)
            .map(|(x, ch)| x / ch.len().max(1) as f64)
            .collect();
        acc.push(credit(l, c.answer));
        norm.push(credit(&per_byte, c.answer));
    }
    let mut out = Vec::new();
    for (task, chance) in TASKS {
        let pick = |v: &[f64]| {
            items
                .iter()
                .zip(v)
                .filter(|(c, _)| c.task == task)
                .map(|(_, x)| *x)
                .collect::<Vec<_>>()
        };
        let share = cost * pick(&acc).len() as f64 / items.len().max(1) as f64;
        out.push(accuracy("proxy_acc", task, pick(&acc), Some(chance), share));
        out.push(accuracy(
            "proxy_acc_norm",
            task,
            pick(&norm),
            Some(chance),
            share,
        ));
    }
    Ok(out)
}

/// Words of each sample that distinct-2 is measured on.
pub const D2_WORDS: usize = 40;

/// The generation metrics of measured samples (`cost`: what sampling and judging took).
pub fn generation(samples: &[Sampled], cost: f64) -> Vec<MetricRow> {
    let n = samples.len();
    // (index, value) of the samples a measure applies to.
    let kept = |f: &dyn Fn(&Sampled) -> Option<f64>| -> (Vec<usize>, Vec<f64>) {
        samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| f(s).map(|v| (i, v)))
            .unzip()
    };
    let row =
        |metric: &str, (at, v): (Vec<usize>, Vec<f64>), wilson_interval: bool, label: String| {
            let (value, (lo, hi)) = if wilson_interval {
                let k: f64 = v.iter().sum();
                (k / v.len().max(1) as f64, wilson(k, v.len()))
            } else {
                (stats::mean(&v), bootstrap_mean(&v, 3))
            };
            MetricRow {
                metric: metric.into(),
                eval_set: "prompts".into(),
                value,
                lo,
                hi,
                interval: label,
                chance: None,
                cost_cpu_s: cost / 4.0,
                items: v.len(),
                per_item: v,
                bytes: vec![],
                item_index: if at.len() == n { vec![] } else { at },
            }
        };
    // distinct-2 of each sample's first D2_WORDS words (distinct-n falls with length, so the
    // length is fixed; shorter samples are left out and counted), averaged over samples.
    let d2 = kept(&|s| crate::eval::diversity::distinct_n_at(&[s.text.as_str()], 2, D2_WORDS));
    let d2_label = format!(
        "95% bootstrap over the {} of {n} samples with {D2_WORDS}+ words (first {D2_WORDS} each)",
        d2.0.len()
    );
    let nll = kept(&|s| Some(s.teacher_nll).filter(|x| x.is_finite()));
    let nll_label = format!("95% bootstrap over {} samples", nll.0.len());
    let req = kept(&|s| s.uses_required.map(|u| f64::from(u8::from(u))));
    let req_label = format!("95% Wilson over {} story samples", req.0.len());
    let repeat = kept(&|s| Some(s.longest_repeat as f64));
    let measures = [
        ("gen_distinct2", d2, false, d2_label),
        (
            "gen_longest_repeat",
            repeat,
            false,
            format!("95% bootstrap over {n} samples"),
        ),
        ("gen_teacher_nll", nll, false, nll_label),
        ("gen_required_words", req, true, req_label),
    ];
    // A measure no sample allows (no sample of 40 words from an early checkpoint) has no row:
    // the table shows it missing rather than a number made of nothing.
    measures
        .into_iter()
        .filter(|m| !m.1 .1.is_empty())
        .map(|(m, v, w, l)| row(m, v, w, l))
        .collect()
}

/// Sample every prompt from a student (fixed seed, temperature 0.8, top-p 0.95, at most
/// `max_new` tokens) and measure the samples with the teacher.
pub fn sample_and_measure(
    model: &crate::model::Gpt,
    tok: &crate::data::tokenizer::TextTokenizer,
    prompts: &[Prompt],
    teacher: &crate::generate::Teacher,
    max_new: usize,
) -> Result<(Vec<Sampled>, f64)> {
    let t = Instant::now();
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| Ok([vec![tok.eot_id()], tok.encode(&p.prompt)?].concat()))
        .collect::<Result<_>>()?;
    let o = crate::model::sample::SampleOptions {
        max_new_tokens: max_new,
        temperature: 0.8,
        top_k: None,
        top_p: Some(0.95),
        stop_tokens: vec![tok.eot_id()],
        seed: 1234,
    };
    let gens = crate::model::sample::generate(model, &ids, &o)?;
    let mut out = Vec::new();
    for (p, g) in prompts.iter().zip(gens) {
        out.push(crate::eval::quality::measure(
            p,
            &tok.decode(&g.tokens)?,
            teacher,
        )?);
    }
    Ok((out, cpu_s(t)))
}

/// Whether a metric separates an early checkpoint from the final one: the paired per-item
/// differences (final - early) are tested with an exact sign test, Holm-corrected over every
/// metric compared ([`separations`]); the 95% bootstrap interval of the mean difference
/// describes its size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Separation {
    pub metric: String,
    pub eval_set: String,
    pub early: f64,
    pub fin: f64,
    pub diff_lo: f64,
    pub diff_hi: f64,
    /// Items that differ between the two checkpoints, of those paired.
    pub discordant: usize,
    pub paired: usize,
    /// Sign-test p-value, and after Holm's correction over the metrics compared.
    pub p: f64,
    pub p_holm: f64,
    /// Holm-corrected p < 0.05.
    pub informative: bool,
    /// When informative and the metric has a better direction: whether the final checkpoint is
    /// the better one (lower bits and teacher NLL; higher accuracy). Repetition and diversity
    /// have none: word salad is diverse and never repeats.
    pub improved: Option<bool>,
}

/// The paired per-item differences (final - early) of a metric.
fn paired_differences(early: &MetricRow, fin: &MetricRow) -> Vec<f64> {
    if !fin.bytes.is_empty() && fin.bytes == early.bytes {
        // bits per byte of each document
        let bpb = |r: &MetricRow| -> Vec<f64> {
            r.per_item
                .iter()
                .zip(&r.bytes)
                .map(|(b, n)| b / (*n).max(1) as f64)
                .collect()
        };
        return bpb(fin)
            .iter()
            .zip(bpb(early))
            .map(|(a, b)| a - b)
            .collect();
    }
    let idx = |r: &MetricRow| -> Vec<usize> {
        if r.item_index.is_empty() {
            (0..r.per_item.len()).collect()
        } else {
            r.item_index.clone()
        }
    };
    let e: std::collections::BTreeMap<usize, f64> = idx(early)
        .into_iter()
        .zip(early.per_item.iter().copied())
        .collect();
    idx(fin)
        .into_iter()
        .zip(&fin.per_item)
        .filter_map(|(i, a)| e.get(&i).map(|b| a - b))
        .collect()
}

/// Every metric of the early checkpoint against the same metric of the final one.
pub fn separations(early: &[MetricRow], fin: &[MetricRow]) -> Vec<Separation> {
    let mut out: Vec<Separation> = Vec::new();
    for f in fin {
        let Some(e) = early
            .iter()
            .find(|e| e.metric == f.metric && e.eval_set == f.eval_set)
        else {
            continue;
        };
        let d = paired_differences(e, f);
        let (lo, hi) = if f.bytes.is_empty() {
            if d.is_empty() {
                (0.0, 0.0)
            } else {
                bootstrap_mean(&d, 9)
            }
        } else {
            let a = DocScores {
                bits: f.per_item.clone(),
                bytes: f.bytes.clone(),
            };
            let b = DocScores {
                bits: e.per_item.clone(),
                bytes: e.bytes.clone(),
            };
            let t = stats::paired_docs(&a, &b, 0.95, 2000, 9);
            (t.diff.lo, t.diff.hi)
        };
        out.push(Separation {
            metric: f.metric.clone(),
            eval_set: f.eval_set.clone(),
            early: e.value,
            fin: f.value,
            diff_lo: lo,
            diff_hi: hi,
            discordant: d.iter().filter(|&&x| x != 0.0).count(),
            paired: d.len(),
            p: stats::sign_test(&d),
            p_holm: 1.0,
            informative: false,
            improved: None,
        });
    }
    let adjusted = stats::holm(&out.iter().map(|s| s.p).collect::<Vec<_>>());
    for (s, p) in out.iter_mut().zip(adjusted) {
        s.p_holm = p;
        s.informative = p < 0.05;
        let lower_is_better = s.metric.ends_with("_bpb") || s.metric.ends_with("_nll");
        let directed =
            s.metric.contains("acc") || lower_is_better || s.metric == "gen_required_words";
        s.improved = (s.informative && directed).then_some((s.fin > s.early) != lower_is_better);
    }
    out
}

/// The fixed inputs of the suite.
pub struct SuiteItems {
    pub pairs: Vec<Pair>,
    pub proxy: Vec<Choice>,
    pub prompts: Vec<Prompt>,
    pub neutral: Vec<crate::data::document::Document>,
}

impl SuiteItems {
    /// Load and check the committed items (`data/eval`), and extract the neutral documents.
    pub fn load(dir: &std::path::Path) -> Result<SuiteItems> {
        Ok(SuiteItems {
            pairs: crate::eval::items::load_pairs(dir)?,
            proxy: crate::eval::items::load_proxy(dir)?,
            prompts: crate::eval::items::load_prompts(dir)?,
            neutral: crate::eval::neutral::load(&dir.join(crate::eval::items::NEUTRAL))?,
        })
    }

    /// The neutral documents packed with `tok` under `work` (reused while the same).
    pub fn neutral_shards(
        &self,
        tok: &crate::data::tokenizer::TextTokenizer,
        work: &std::path::Path,
    ) -> Result<TokenShards> {
        let dir = work.join(format!("neutral-{}", &tok.sha256()[..16]));
        let inputs = serde_json::json!({"set": "neutral", "documents_sha256": crate::experiments::prepare::fingerprint(&self.neutral)});
        let fresh = TokenShards::open(&dir).is_ok_and(|s| s.manifest.inputs == inputs);
        if !fresh {
            let docs = self
                .neutral
                .iter()
                .cloned()
                .map(Ok::<_, crate::data::read::DataError>);
            crate::data::pack::pack_documents(docs, tok, &dir, &Default::default(), inputs, None)?;
        }
        TokenShards::open(&dir)
    }
}

/// Every metric that scores text (all but generation) on one scorer.
pub fn score_all(
    s: &dyn Scorer,
    items: &SuiteItems,
    neutral: &TokenShards,
) -> Result<Vec<MetricRow>> {
    let mut rows = vec![neutral_bpb(s, neutral)?];
    rows.extend(minimal_pairs(s, &items.pairs)?);
    rows.extend(proxy_tasks(s, &items.proxy)?);
    Ok(rows)
}

/// The whole suite on a student, with a progress bar over its parts.
pub fn run_student(
    student: &crate::model::student::Student,
    items: &SuiteItems,
    teacher: &crate::generate::Teacher,
    work: &std::path::Path,
    progress: bool,
) -> Result<Vec<MetricRow>> {
    let pb = if progress {
        crate::progress::bar(2, "parts", "suite")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let scorer = crate::eval::scorer::StudentScorer {
        model: &student.model,
        tokenizer: &student.tokenizer,
        batch: 16,
    };
    pb.set_message("neutral documents, minimal pairs, proxy tasks");
    let shards = items.neutral_shards(&student.tokenizer, work)?;
    let mut rows = score_all(&scorer, items, &shards)?;
    pb.inc(1);
    pb.set_message("samples, judged by the teacher");
    let (samples, cost) = sample_and_measure(
        &student.model,
        &student.tokenizer,
        &items.prompts,
        teacher,
        96,
    )?;
    rows.extend(generation(&samples, cost));
    pb.inc(1);
    pb.finish_and_clear();
    Ok(rows)
}

/// Suite rows as headline rows of the shared results schema.
pub fn headline(
    rows: &[MetricRow],
    experiment: &str,
    student: &str,
    condition: &str,
) -> Vec<crate::experiments::results::HeadlineRow> {
    rows.iter()
        .map(|r| crate::experiments::results::HeadlineRow {
            experiment: experiment.into(),
            student: student.into(),
            condition: condition.into(),
            eval_set: r.eval_set.clone(),
            metric: r.metric.clone(),
            mean: r.value,
            lo: r.lo,
            hi: r.hi,
            interval: r.interval.clone(),
            n_seeds: 1,
            chance: r.chance,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_rows_leave_out_the_excluded_documents_only() {
        let d = DocScores {
            bits: vec![10.0, 1000.0, 30.0],
            bytes: vec![10, 100, 10],
        };
        let row = neutral_row(d, 1.5);
        assert_eq!(row.items, 3);
        let kept = without_documents(&row, &[1]).unwrap();
        assert_eq!((kept.items, kept.per_item.clone()), (2, vec![10.0, 30.0]));
        assert_eq!(kept.bytes, [10, 10]);
        assert!((kept.value - 40.0 / 20.0).abs() < 1e-12, "{}", kept.value);
        assert_eq!(kept.cost_cpu_s, 1.5);
        // Other metrics and empty exclusions are untouched; an index past the row is an error.
        assert_eq!(without_documents(&row, &[]).unwrap(), row);
        let mut acc = row.clone();
        acc.metric = "minimal_pairs_acc".into();
        assert_eq!(without_documents(&acc, &[0]).unwrap(), acc);
        let e = without_documents(&row, &[3]).unwrap_err().to_string();
        assert!(e.contains("document 3") && e.contains("3 documents"), "{e}");
    }
}
