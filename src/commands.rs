//! What the command line's experiment and report commands do, as library calls: the
//! `synthlm` binary only parses arguments and calls these (so a program, or a test, that
//! registers an experiment runs it exactly as the command line would).

use crate::budget::Gpu;
use crate::experiments::{self, scale::Scale, Paths};
use anyhow::Result;
use std::path::Path;

/// `synthlm experiment --number N --profile P [--plan]`: run (or resume) the experiment and
/// return its headline table as Markdown; with `plan`, only what the scale costs on GPUs.
pub fn experiment(
    root: &Path,
    number: u32,
    profile: &str,
    plan: bool,
    progress: bool,
) -> Result<String> {
    let e = experiments::find(number)?;
    let s = Scale::standard(root, number, profile)?;
    if plan {
        return plan_text(e, &s);
    }
    let r = experiments::run(e, &s, &Paths::standard(root, number, profile), progress)?;
    summary(&r)
}

/// The headline rows and the baselines of a results file as Markdown tables.
pub fn summary(r: &experiments::results::Results) -> Result<String> {
    use crate::report::tables::{markdown, mean_ci, num};
    use polars::prelude::*;
    let h = &r.headline;
    let head = DataFrame::new(vec![
        Column::new(
            "student".into(),
            h.iter().map(|x| x.student.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "trained on".into(),
            h.iter().map(|x| x.condition.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "held-out set".into(),
            h.iter().map(|x| x.eval_set.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "metric".into(),
            h.iter().map(|x| x.metric.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "mean [interval]".into(),
            h.iter()
                .map(|x| mean_ci(x.mean, x.lo, x.hi))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "interval".into(),
            h.iter().map(|x| x.interval.clone()).collect::<Vec<_>>(),
        ),
    ])?;
    let b = &r.baselines;
    let base = DataFrame::new(vec![
        Column::new(
            "baseline".into(),
            b.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "trained on".into(),
            b.iter().map(|x| x.trained_on.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "held-out set".into(),
            b.iter().map(|x| x.eval_set.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            b.first().map_or("bpb", |x| x.metric.as_str()).into(),
            b.iter().map(|x| num(x.value)).collect::<Vec<_>>(),
        ),
    ])?;
    Ok(format!("{}\n{}", markdown(&head)?, markdown(&base)?))
}

fn plan_text(e: &dyn experiments::Experiment, s: &Scale) -> Result<String> {
    let gpu = Gpu::rtx4090();
    let rows = experiments::plan(e, s, &gpu)?;
    let mut out = format!(
        "Experiment {} at profile `{}` on {} ({} TFLOP/s dense peak x {:.0}% MFU, ${}/GPU-hour):\n\n| student | parameters | runs | tokens per run | tokens per parameter | GPU-hours per run | GPU-hours | dollars |\n|---|---|---|---|---|---|---|---|\n",
        e.number(), s.profile, gpu.name, gpu.peak_tflops, gpu.mfu * 100.0, gpu.dollars_per_hour
    );
    for r in &rows {
        out += &format!(
            "| {} | {} | {} | {} | {:.1} | {:.2} | {:.1} | {:.0} |\n",
            r.student,
            r.params,
            r.runs,
            r.tokens_per_run,
            r.tokens_per_run as f64 / r.params as f64,
            r.per_run.gpu_hours,
            r.gpu_hours,
            r.dollars
        );
    }
    let hours: f64 = rows.iter().map(|r| r.gpu_hours).sum();
    out += &format!(
        "\nIn all: {hours:.1} GPU-hours, ${:.0}.\n",
        hours * gpu.dollars_per_hour
    );
    Ok(out)
}

/// `synthlm report --profile P [--number N]`: write the book's and the paper's generated parts
/// of experiment N (or of every registered experiment with results at that profile) from the
/// committed results files.
pub fn report(root: &Path, number: Option<u32>, profile: &str) -> Result<String> {
    let chosen = match number {
        Some(n) => vec![experiments::find(n)?],
        None => experiments::all(),
    };
    let mut out = String::new();
    for e in chosen {
        let dir = Paths::standard(root, e.number(), profile).results;
        if number.is_none() && !dir.join(experiments::results::RESULTS).exists() {
            continue;
        }
        let r = experiments::load_results(&dir)?;
        crate::report::write(&e.report(&r, &dir)?, root)?;
        out += &format!(
            "{}: wrote book/src/generated/ and paper/generated/ from {}\n",
            e.name(),
            dir.display()
        );
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no experiment has results at profile `{profile}`"
    );
    Ok(out)
}
