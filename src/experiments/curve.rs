//! Learning curves: does more of the same data still help? The grid's student, condition and
//! first seed are trained again for multiples of the scale's token budget (`curve = [0.25,
//! 0.5, 2.0]` in a scale), each with its own warmup and cosine schedule over its own length, so
//! every point is a finished, annealed run and not a snapshot taken while the learning rate was
//! still high (a mid-run snapshot overstates the loss a run of that length would reach). Each
//! point carries the n-gram baselines counted on exactly the tokens that run saw.
//!
//! "Trained enough" is a rule stated before the runs: the run on twice the budget gains less
//! than [`ENOUGH`] bits per byte over the run on the budget; otherwise the students were still
//! learning and the book says so. Curve runs live under `RESULTS/curve/` and never enter the
//! grid's headline rows or comparisons.

use crate::experiments::baselines::{baselines, BaselineScores};
use crate::experiments::grid::{self, RunData, RunKey, RunOutcome, SuiteInputs};
use crate::experiments::prepare::Prepared;
use crate::experiments::results::suite_neutral;
use crate::experiments::scale::Scale;
use crate::experiments::Paths;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bits per byte under which the 2x run's gain counts as "trained enough".
pub const ENOUGH: f64 = 0.02;

/// One point of a learning curve: a finished run on one held-out set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub student: String,
    pub condition: String,
    pub seed: u64,
    /// Multiple of the scale's token budget (1 is the grid's own run of this seed).
    pub multiple: f64,
    pub steps: u64,
    pub tokens: u64,
    pub eval_set: String,
    /// The student's bits per byte on the whole held-out set.
    pub bpb: f64,
    /// Each n-gram baseline counted on this run's tokens (`unigram`, `bigram`, `kn-2` ..).
    pub baselines: BTreeMap<String, f64>,
}

/// The scale of a run `multiple` times as long, of the first seed only.
pub fn scaled(s: &Scale, multiple: f64) -> Scale {
    Scale {
        steps: ((s.steps as f64 * multiple).round() as u64).max(1),
        seeds: vec![s.seeds[0]],
        ..s.clone()
    }
}

/// A curve run's folder, relative to the results folder.
pub fn run_dir(student: &str, condition: &str, seed: u64, steps: u64) -> String {
    format!("curve/{student}-{condition}-s{seed}-{steps}steps")
}

/// The curve's multiples: the scale's, and 1 (the grid's run), in order.
fn multiples(s: &Scale) -> Vec<f64> {
    let mut m = s.curve.clone();
    m.push(1.0);
    m.sort_by(f64::total_cmp);
    m.dedup();
    m
}

/// Train (or reuse) every curve run and score it with its baselines; empty when the scale asks
/// for no curve. `main` holds the grid's runs, whose first seed is the curve's 1x point. With
/// `curve_suite`, every curve run also goes through the evaluation suite and each point gains
/// its neutral-domain score (without the documents `neutral_excluded`) beside the suite's
/// n-gram models, which are counted on the same positions the run saw.
pub fn run_curve(
    s: &Scale,
    p: &Prepared,
    paths: &Paths,
    prompts: &[&str],
    main: &[RunOutcome],
    neutral_excluded: &[usize],
    progress: bool,
) -> Result<Vec<CurvePoint>> {
    if s.curve.is_empty() {
        return Ok(vec![]);
    }
    let n = s.curve.len() * s.students.len() * p.train.len();
    let pb = if progress {
        crate::progress::bar(n as u64, "runs", "learning curve")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let seed = s.seeds[0];
    let mut suite = SuiteInputs::default();
    let mut out = Vec::new();
    for m in multiples(s) {
        let sm = scaled(s, m);
        let base = baselines(&sm, p, &paths.work, false)?;
        for st in &s.students {
            for c in &p.train {
                let key = RunKey {
                    student: st.name.clone(),
                    condition: c.name.clone(),
                    seed,
                };
                let run = if m == 1.0 {
                    main.iter()
                        .find(|r| r.key == key)
                        .cloned()
                        .context("the grid's run of the curve's seed")?
                } else {
                    let dir = paths
                        .results
                        .join(run_dir(&st.name, &c.name, seed, sm.steps));
                    let cfg =
                        grid::run_config(&sm, st, RunData::of(p, &c.name), seed, dir.clone())?;
                    let what = || format!("the learning curve's run {}", dir.display());
                    grid::train_if_needed(&cfg, &dir, s.ranks, progress).with_context(what)?;
                    grid::measure_if_needed(&key, &sm, p, &dir, prompts).with_context(what)?;
                    if s.curve_suite {
                        suite
                            .evaluate_if_needed(&dir, &paths.work, progress)
                            .with_context(what)?;
                    }
                    pb.inc(1);
                    grid::outcome(key, dir.clone(), s.eval_windows)?
                };
                let neutral = s.curve_suite.then_some(neutral_excluded);
                out.extend(points(&run, (m, sm.steps), &base, neutral)?);
            }
        }
    }
    pb.finish_and_clear();
    Ok(out)
}

/// What twice the tokens did to one cell (student, condition, held-out set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Gained at least [`ENOUGH`] bits per byte.
    StillLearning,
    /// Gained less than [`ENOUGH`], and not less than 0: the flattening the rule detects.
    Enough,
    /// Gained less than 0: worse at 2x. Not counted as trained enough: a curve that turns up
    /// on a set has not flattened there (and one seed may be seed noise; the report gives the
    /// budget's seed range beside it).
    Worse,
}

/// One cell's 2x verdict: student, condition, held-out set, the bits per byte the 2x run
/// gained over the 1x run, and the verdict.
pub type Gain = (String, String, String, f64, Verdict);

/// A finished curve run's points: one per held-out set it was scored on, each with the n-gram
/// models of its training set counted on the run's tokens (`base`), and, when `neutral` gives
/// the documents to leave out, its neutral-domain point from the suite with the suite's own
/// n-gram models of the same tokens.
fn points(
    run: &RunOutcome,
    (multiple, steps): (f64, u64),
    base: &[BaselineScores],
    neutral: Option<&[usize]>,
) -> Result<Vec<CurvePoint>> {
    let k = &run.key;
    let point = |eval_set: &str, bpb: f64, baselines| CurvePoint {
        student: k.student.clone(),
        condition: k.condition.clone(),
        seed: k.seed,
        multiple,
        steps,
        tokens: run.summary.tokens_seen,
        eval_set: eval_set.into(),
        bpb,
        baselines,
    };
    let mut out: Vec<CurvePoint> = run
        .scores
        .iter()
        .map(|(eval_set, score)| {
            let baselines = base
                .iter()
                .filter(|b| b.trained_on == k.condition && &b.eval_set == eval_set)
                .map(|b| (b.name.clone(), b.scores.bpb()))
                .collect();
            point(eval_set, score.bpb(), baselines)
        })
        .collect();
    if let Some(excluded) = neutral {
        let (own, base) = suite_neutral(&run.dir, excluded)?
            .with_context(|| format!("{}: no neutral score", run.dir.display()))?;
        let base = base.into_iter().map(|(k, v)| (k, v.bpb())).collect();
        out.push(point("neutral", own.bpb(), base));
    }
    Ok(out)
}

/// Whether a student was still learning: per (student, condition, held-out set), the bits per
/// byte the 2x run gained over the 1x run and its [`Verdict`]. Empty when the curve has no 2x
/// point.
pub fn trained_enough(points: &[CurvePoint]) -> Vec<Gain> {
    let at = |m: f64| {
        points
            .iter()
            .filter(move |x| x.multiple == m)
            .map(|x| ((&x.student, &x.condition, &x.eval_set), x.bpb))
    };
    let once: BTreeMap<_, f64> = at(1.0).collect();
    at(2.0)
        .filter_map(|(k, twice)| {
            let gain = once.get(&k)? - twice;
            let v = match gain {
                g if g < 0.0 => Verdict::Worse,
                g if g < ENOUGH => Verdict::Enough,
                _ => Verdict::StillLearning,
            };
            Some((k.0.clone(), k.1.clone(), k.2.clone(), gain, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(multiple: f64, eval_set: &str, bpb: f64) -> CurvePoint {
        CurvePoint {
            student: "s".into(),
            condition: "c".into(),
            seed: 0,
            multiple,
            steps: 0,
            tokens: 0,
            eval_set: eval_set.into(),
            bpb,
            baselines: BTreeMap::new(),
        }
    }

    #[test]
    fn trained_enough_compares_the_2x_run_with_the_1x_run_per_set() {
        let p = [
            point(0.5, "a", 2.0),
            point(1.0, "a", 1.80),
            point(2.0, "a", 1.79),
            point(1.0, "b", 1.80),
            point(2.0, "b", 1.70),
        ];
        let t = trained_enough(&p);
        assert_eq!(t.len(), 2);
        assert!(t[0].2 == "a" && (t[0].3 - 0.01).abs() < 1e-12 && t[0].4 == Verdict::Enough);
        assert!(t[1].2 == "b" && (t[1].3 - 0.10).abs() < 1e-12);
        assert_eq!(t[1].4, Verdict::StillLearning);
        assert!(trained_enough(&p[..2]).is_empty());
        // worse at 2x is its own verdict, not "trained enough"
        let worse = [point(1.0, "a", 1.80), point(2.0, "a", 1.81)];
        assert_eq!(trained_enough(&worse)[0].4, Verdict::Worse);
    }
}
