//! The learning-rate sweep: each student's peak learning rate is chosen on a dev split carved
//! out of one training condition ([`super::corpora::is_dev`], 5% of its documents by hash),
//! never on a held-out set, and before the grid trains anything. Each rate trains the student
//! on the rest of that condition for the scale's full token budget (the best rate depends on
//! the run's length, so a shortened sweep would pick for the wrong run), first seed only.
//! The lowest dev bits per byte wins; the grid then runs at that rate, and the results record
//! every point of the sweep.
//!
//! The sweep packs its own sets, so its tokenizer is trained on the sweep's training split,
//! not on the grid's union of conditions: the rates compare with one another, not with the
//! grid's numbers.

use crate::data::document::Document;
use crate::experiments::corpora::is_dev;
use crate::experiments::grid;
use crate::experiments::prepare::{self, Design};
use crate::experiments::scale::{Scale, Student};
use crate::experiments::Paths;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// One trained rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub student: String,
    pub lr: f64,
    pub condition: String,
    /// Bits per byte on the whole dev split.
    pub dev_bpb: f64,
    pub tokens: u64,
}

/// The dev split a sweep chose its rate on: its condition's name and documents.
pub type DevSplit = (String, Vec<Document>);

/// Train every student at every rate of `s.sweep` (or reuse the runs) and score the dev split;
/// empty when the scale has no sweep. `design` is the experiment's decontaminated design.
/// Also gives the dev split (its condition's name and documents): the rate is chosen on it,
/// so the results say what it is made of (sized with the experiment's tokenizer, not the
/// sweep's own, so that its row compares with the others).
pub fn run_sweep(
    name: &str,
    design: &Design,
    s: &Scale,
    paths: &Paths,
    prompts: &[&str],
    progress: bool,
) -> Result<(Vec<SweepPoint>, Option<DevSplit>)> {
    let Some(w) = &s.sweep else {
        return Ok((vec![], None));
    };
    let Some((_, docs)) = design.conditions.iter().find(|(c, _)| c == &w.condition) else {
        bail!(
            "key `sweep.condition`: no training condition `{}` (the design has {})",
            w.condition,
            design
                .conditions
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let (dev, train): (Vec<Document>, Vec<Document>) = docs.iter().cloned().partition(is_dev);
    if dev.is_empty() || train.is_empty() {
        bail!(
            "sweep: condition `{}` is too small for a dev split",
            w.condition
        );
    }
    let d = Design {
        conditions: vec![(w.condition.clone(), train)],
        eval_sets: vec![("dev".into(), dev.clone())],
        inputs: vec![],
    };
    let p = prepare::prepare(&format!("{name}-sweep"), &d, s.vocab_size, &paths.work)?;
    let mut out = Vec::new();
    for &lr in &w.lrs {
        let at = Scale {
            lr,
            seeds: vec![s.seeds[0]],
            curve: vec![],
            curve_suite: false,
            sweep: None,
            suite: false,
            students: s
                .students
                .iter()
                .map(|st| Student {
                    lr: None,
                    ..st.clone()
                })
                .collect(),
            ..s.clone()
        };
        let dir = paths.results.join(format!("sweep/lr-{lr:e}"));
        let runs = grid::run_grid(&at, &p, &dir, &paths.work, prompts, progress)
            .with_context(|| format!("the learning-rate sweep at {lr:e}"))?;
        for r in runs {
            out.push(SweepPoint {
                student: r.key.student.clone(),
                lr,
                condition: w.condition.clone(),
                dev_bpb: r.scores.get("dev").context("dev scores")?.bpb(),
                tokens: r.summary.tokens_seen,
            });
        }
    }
    Ok((out, Some((w.condition.clone(), dev))))
}

/// The scale with each student's rate set to its best of the sweep (lowest dev bits per byte,
/// the lower rate on a tie); unchanged without a sweep.
pub fn with_best_rates(s: &Scale, points: &[SweepPoint]) -> Scale {
    let mut out = s.clone();
    for st in &mut out.students {
        let best = points
            .iter()
            .filter(|p| p.student == st.name)
            .min_by(|a, b| a.dev_bpb.total_cmp(&b.dev_bpb).then(a.lr.total_cmp(&b.lr)));
        if let Some(b) = best {
            st.lr = Some(b.lr);
        }
    }
    out
}
