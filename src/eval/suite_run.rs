//! The evaluation suite on a run folder: every weight snapshot and the final weights, the first
//! against the last ([`crate::eval::suite::separations`]), and n-gram baselines counted on the
//! positions the run saw, written to `RUN/suite.json` (reused when it exists and is complete).

use crate::eval::suite::{self, MetricRow, Separation, SuiteItems};
use crate::experiments::results::{BaselineRow, HeadlineRow};
use crate::generate::Teacher;
use crate::model::student::Student;
use crate::train::checkpoint;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SUITE: &str = "suite.json";

/// What [`evaluate_run`] writes to `RUN/suite.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteReport {
    pub run: String,
    /// Steps evaluated (weight snapshots, then the final weights), each with its rows.
    pub evaluated: Vec<(u64, Vec<MetricRow>)>,
    /// The first evaluated step against the last, per metric.
    pub separation: Vec<Separation>,
    /// The last step's rows in the shared results schema.
    pub headline: Vec<HeadlineRow>,
    /// n-gram models counted on the positions the run saw, scored on the same items.
    pub baselines: Vec<(String, Vec<MetricRow>)>,
    /// The baselines in the shared results schema.
    pub baseline_rows: Vec<BaselineRow>,
}

impl SuiteReport {
    /// The final weights' rows.
    pub fn last(&self) -> &[MetricRow] {
        self.evaluated.last().map_or(&[], |(_, r)| r.as_slice())
    }
}

/// The steps to evaluate: every weight snapshot, then the final checkpoint (if kept).
fn steps(run: &Path) -> Result<Vec<Option<u64>>> {
    let mut steps: Vec<Option<u64>> = checkpoint::snapshot_steps(run)?
        .into_iter()
        .map(Some)
        .collect();
    if checkpoint::latest(run)?.is_some() || steps.is_empty() {
        steps.push(None);
    }
    Ok(steps)
}

/// Run the suite on a run folder and write `RUN/suite.json`.
pub fn evaluate_run(
    run: &Path,
    items: &SuiteItems,
    teacher: &Teacher,
    work: &Path,
    progress: bool,
) -> Result<SuiteReport> {
    let mut evaluated: Vec<(u64, Vec<MetricRow>)> = Vec::new();
    let mut loaded = None;
    for step in steps(run)? {
        let student = Student::load(run, step)?;
        if !evaluated.iter().any(|(s, _)| *s == student.step) {
            eprintln!("suite on {} at step {} ...", run.display(), student.step);
            let rows = suite::run_student(&student, items, teacher, work, progress)?;
            evaluated.push((student.step, rows));
        }
        loaded = Some(student);
    }
    // The run's config and tokenizer, whichever weights were loaded last.
    let student = loaded.expect("steps() gives at least one step");
    let separation = match evaluated.as_slice() {
        [first, .., last] => suite::separations(&first.1, &last.1),
        _ => vec![],
    };
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    eprintln!(
        "n-gram baselines on the positions {} saw ...",
        run.display()
    );
    let config = student.config.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: the n-gram baselines need the run's training data; a model without a run config cannot have them",
            run.display()
        )
    })?;
    let baselines =
        crate::experiments::baselines::suite_baselines(config, &student.tokenizer, items, work)?;
    let baseline_rows = baselines
        .iter()
        .flat_map(|(b, rows)| {
            rows.iter().map(|r| BaselineRow {
                name: b.clone(),
                trained_on: name.clone(),
                eval_set: r.eval_set.clone(),
                metric: r.metric.clone(),
                value: r.value,
            })
        })
        .collect();
    let last = evaluated.last().map(|(_, r)| r.clone()).unwrap_or_default();
    let report = SuiteReport {
        run: name.clone(),
        headline: suite::headline(&last, "suite", &name, "-"),
        evaluated,
        separation,
        baselines,
        baseline_rows,
    };
    crate::io::write_json(&run.join(SUITE), &report)?;
    Ok(report)
}
