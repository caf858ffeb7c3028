//! Experiment 1's report: the same tables and figures for the notebook, the book and the paper,
//! built from `data/results/exp1/PROFILE/` only.

use crate::experiments::exp1::{Exp1Results, CONDITIONS, EVAL_SETS};
use crate::report::plots::{grouped_bars, line_chart, save_png, save_svg, Series};
use crate::report::tables::{latex, markdown, mean_ci, num};
use crate::train::metrics::{read_metrics, MetricLine};
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Main results: one row per (student, training data), loss and bits per byte on each held-out
/// set, mean over seeds with a 95% bootstrap interval.
pub fn results_table(r: &Exp1Results) -> Result<DataFrame> {
    let mut cols: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut params = Vec::new();
    for c in &r.cells {
        cols.entry("student").or_default().push(c.student.clone());
        cols.entry("trained on")
            .or_default()
            .push(c.condition.clone());
        params.push(c.params as u64);
        for e in EVAL_SETS {
            let l = &c.loss[e];
            let b = &c.bpb[e];
            cols.entry(if e == "synthetic" {
                "loss, synthetic held-out"
            } else {
                "loss, real held-out"
            })
            .or_default()
            .push(mean_ci(l.mean, l.lo, l.hi));
            cols.entry(if e == "synthetic" {
                "bits/byte, synthetic"
            } else {
                "bits/byte, real"
            })
            .or_default()
            .push(mean_ci(b.mean, b.lo, b.hi));
        }
    }
    let order = [
        "student",
        "trained on",
        "loss, synthetic held-out",
        "loss, real held-out",
        "bits/byte, synthetic",
        "bits/byte, real",
    ];
    let mut columns = vec![
        Column::new("student".into(), &cols["student"]),
        Column::new("params".into(), params),
    ];
    for k in &order[1..] {
        columns.push(Column::new((*k).into(), &cols[k]));
    }
    Ok(DataFrame::new(columns)?)
}

/// Synthetic-trained vs real-trained, paired by seed.
pub fn comparison_table(r: &Exp1Results) -> Result<DataFrame> {
    let student: Vec<String> = r.comparisons.iter().map(|c| c.student.clone()).collect();
    let eval: Vec<String> = r.comparisons.iter().map(|c| c.eval.clone()).collect();
    let diff: Vec<String> = r
        .comparisons
        .iter()
        .map(|c| mean_ci(c.test.mean_diff, c.test.ci.lo, c.test.ci.hi))
        .collect();
    let p: Vec<f64> = r.comparisons.iter().map(|c| c.test.p_value).collect();
    let n: Vec<u64> = r.comparisons.iter().map(|c| c.test.n as u64).collect();
    Ok(DataFrame::new(vec![
        Column::new("student".into(), student),
        Column::new("held-out set".into(), eval),
        Column::new("loss(synthetic) - loss(real)".into(), diff),
        Column::new("p (paired permutation)".into(), p),
        Column::new("seeds".into(), n),
    ])?)
}

/// 13-gram overlap of every training set with every held-out set.
pub fn contamination_table(r: &Exp1Results) -> Result<DataFrame> {
    Ok(DataFrame::new(vec![
        Column::new(
            "training set".into(),
            r.contamination
                .iter()
                .map(|c| c.train.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "held-out set".into(),
            r.contamination
                .iter()
                .map(|c| c.eval.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "13-gram overlap".into(),
            r.contamination
                .iter()
                .map(|c| c.ngram_overlap)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "documents flagged".into(),
            r.contamination
                .iter()
                .map(|c| c.docs_flagged)
                .collect::<Vec<_>>(),
        ),
    ])?)
}

/// Sizes of the training and held-out sets (tokens of the experiment's tokenizer).
pub fn corpus_table(r: &Exp1Results) -> Result<DataFrame> {
    let rows: Vec<(String, &crate::experiments::exp1::CorpusSize)> = r
        .train_sets
        .iter()
        .map(|(k, v)| (format!("train: {k}"), v))
        .chain(
            r.eval_sets
                .iter()
                .map(|(k, v)| (format!("held-out: {k}"), v)),
        )
        .collect();
    Ok(DataFrame::new(vec![
        Column::new(
            "set".into(),
            rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "documents".into(),
            rows.iter().map(|r| r.1.documents).collect::<Vec<_>>(),
        ),
        Column::new(
            "tokens".into(),
            rows.iter().map(|r| r.1.tokens).collect::<Vec<_>>(),
        ),
        Column::new(
            "MB of text".into(),
            rows.iter()
                .map(|r| r.1.text_bytes as f64 / 1e6)
                .collect::<Vec<_>>(),
        ),
    ])?)
}

/// Validation-loss curves of one student on one held-out set: one series per training
/// condition, mean over seeds with min-max bars (x: training tokens, in `unit`s).
pub fn curves(
    r: &Exp1Results,
    results_dir: &Path,
    student: &str,
    eval: &str,
    unit: f64,
) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for cond in CONDITIONS {
        let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for run in r
            .runs
            .iter()
            .filter(|x| x.student == student && x.condition == cond)
        {
            for line in read_metrics(&results_dir.join(&run.dir))? {
                if let MetricLine::Eval {
                    tokens, set, loss, ..
                } = line
                {
                    if set == eval {
                        by_step.entry(tokens).or_default().push(loss);
                    }
                }
            }
        }
        let points = by_step
            .into_iter()
            .map(|(t, v)| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                let (lo, hi) = v
                    .iter()
                    .fold((f64::MAX, f64::MIN), |a, &x| (a.0.min(x), a.1.max(x)));
                (t as f64 / unit, m, lo, hi)
            })
            .collect();
        out.push(Series {
            label: format!("trained on {cond}"),
            points,
        });
    }
    Ok(out)
}

const FIG: (u32, u32) = (720, 440);

/// Draw every figure into `dir` (SVG, and PNG at 3x for print) and return their base names.
pub fn figures(r: &Exp1Results, results_dir: &Path, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut names = Vec::new();
    let (unit, x_label) = if r.profile.tokens_per_run() >= 1_000_000 {
        (1e6, "training tokens (millions)")
    } else {
        (1e3, "training tokens (thousands)")
    };
    for (student, _) in &r.profile.students {
        for eval in EVAL_SETS {
            let series = curves(r, results_dir, student, eval, unit)?;
            let title = format!("{student}: loss on held-out {eval} text");
            let name = format!("exp1-curves-{student}-{eval}");
            save_svg(&dir.join(format!("{name}.svg")), FIG, |root, s| {
                line_chart(
                    root,
                    &title,
                    x_label,
                    "validation loss (nats/token)",
                    &series,
                    s,
                )
            })?;
            save_png(&dir.join(format!("{name}.png")), FIG, 3.0, |root, s| {
                line_chart(
                    root,
                    &title,
                    x_label,
                    "validation loss (nats/token)",
                    &series,
                    s,
                )
            })?;
            names.push(name);
        }
        let groups: Vec<String> = CONDITIONS
            .iter()
            .map(|c| format!("trained on {c}"))
            .collect();
        let series: Vec<crate::report::plots::BarSeries> = EVAL_SETS
            .iter()
            .map(|e| {
                let vals = CONDITIONS
                    .iter()
                    .map(|c| {
                        r.cells
                            .iter()
                            .find(|x| &x.student == student && x.condition == *c)
                            .map(|x| (x.bpb[*e].mean, x.bpb[*e].lo, x.bpb[*e].hi))
                            .unwrap_or_default()
                    })
                    .collect();
                (format!("held-out {e}"), vals)
            })
            .collect();
        let title = format!("{student}: final bits per byte (mean, 95% CI over seeds)");
        let name = format!("exp1-bars-{student}");
        save_svg(&dir.join(format!("{name}.svg")), FIG, |root, s| {
            grouped_bars(
                root,
                &title,
                "bits per byte (lower is better)",
                &groups,
                &series,
                s,
            )
        })?;
        save_png(&dir.join(format!("{name}.png")), FIG, 3.0, |root, s| {
            grouped_bars(
                root,
                &title,
                "bits per byte (lower is better)",
                &groups,
                &series,
                s,
            )
        })?;
        names.push(name);
    }
    Ok(names)
}

/// The Markdown the book includes (tables, figures, samples), figures beside it. It is meant
/// to be `{{#include}}`d from `book/src/exp1.md`, with `out_dir` = `book/src/generated`.
pub fn book_markdown(r: &Exp1Results, results_dir: &Path, out_dir: &Path) -> Result<()> {
    let figs = figures(r, results_dir, &out_dir.join("figures"))?;
    let p = &r.profile;
    let mut md = format!(
        "<!-- generated by `synthlm report` from data/results/exp1/{0}/results.json: do not edit -->\n\n\
         Scale: profile `{0}`: students {1}; {2} seeds each; {3} optimizer steps of {4} sequences x {5} tokens = {6} training tokens per run; tokenizer: byte-level BPE, {7} tokens (SHA-256 `{8}`). Training wall time {9:.1} min over all runs, {10:.3} CPU core-hours.\n\n",
        p.name,
        p.students.iter().map(|s| format!("`{}`", s.0)).collect::<Vec<_>>().join(" and "),
        p.seeds.len(),
        p.steps,
        p.batch_size,
        p.seq_len,
        p.tokens_per_run(),
        p.vocab_size,
        &r.tokenizer_sha256[..12],
        r.wall_s / 60.0,
        r.cpu_core_hours
    );
    md += "### Data\n\n";
    md += &markdown(&corpus_table(r)?)?;
    md += "\n### Results\n\nLoss in nats per token, bits per byte; mean over seeds with a 95% bootstrap interval.\n\n";
    md += &markdown(&results_table(r)?)?;
    md += "\n### Synthetic vs real, paired by seed\n\nNegative differences favour training on synthetic data. With 3 seeds the smallest attainable p-value of the exact permutation test is 0.25.\n\n";
    md += &markdown(&comparison_table(r)?)?;
    md += "\n### Contamination\n\nShare of each held-out set's word 13-grams found in each training set.\n\n";
    md += &markdown(&contamination_table(r)?)?;
    md += "\n### Figures\n\n";
    for f in &figs {
        // The page is included from book/src/exp1.md, so links are relative to book/src/.
        md += &format!("![{f}](generated/figures/{f}.svg)\n\n");
    }
    md += "### Samples\n\nFixed prompts, temperature 0.8, top-k 40, top-p 0.95, seed = the run's seed (first seed shown).\n\n";
    for s in r.samples.iter().filter(|s| s.seed == p.seeds[0]) {
        md += &format!(
            "- **{} / trained on {}**, prompt `{}`: {}\n",
            s.student,
            s.condition,
            s.prompt.replace('\n', "\\n").replace('`', "'"),
            s.completion.replace('\n', " ").replace('|', "\\|")
        );
    }
    crate::io::write_bytes(&out_dir.join("exp1.md"), md.as_bytes())
}

/// The LaTeX pieces the paper includes, figures (PNG) beside them.
pub fn paper_tex(r: &Exp1Results, results_dir: &Path, out_dir: &Path) -> Result<()> {
    figures(r, results_dir, &out_dir.join("figures"))?;
    crate::io::write_bytes(
        &out_dir.join("exp1-results.tex"),
        latex(&results_table(r)?)?.as_bytes(),
    )?;
    crate::io::write_bytes(
        &out_dir.join("exp1-comparison.tex"),
        latex(&comparison_table(r)?)?.as_bytes(),
    )?;
    crate::io::write_bytes(
        &out_dir.join("exp1-contamination.tex"),
        latex(&contamination_table(r)?)?.as_bytes(),
    )?;
    crate::io::write_bytes(
        &out_dir.join("exp1-corpora.tex"),
        latex(&corpus_table(r)?)?.as_bytes(),
    )?;
    let p = &r.profile;
    // Figures of the larger student (learning curves on both held-out sets) and of both
    // students (final bits per byte), named after this profile's students.
    let big = &p.students[p.students.len() - 1].0;
    let mut figs = String::from("% generated by `synthlm report`: do not edit\n");
    figs += &format!(
        "\\begin{{figure}}[t]\\centering\n\\includegraphics[width=0.49\\linewidth]{{generated/figures/exp1-curves-{big}-synthetic.png}}\\hfill\n\\includegraphics[width=0.49\\linewidth]{{generated/figures/exp1-curves-{big}-real.png}}\n\\caption{{Validation loss of the {big} student during training, on held-out synthetic (left) and real (right) text; mean over seeds, bars span the seeds.}}\\label{{fig:exp1-curves}}\n\\end{{figure}}\n"
    );
    figs += "\\begin{figure}[t]\\centering\n";
    for (s, _) in &p.students {
        figs += &format!("\\includegraphics[width=0.49\\linewidth]{{generated/figures/exp1-bars-{s}.png}}\\hfill\n");
    }
    figs += "\\caption{Final bits per byte by training data and held-out set (mean, 95\\% bootstrap interval over seeds).}\\label{fig:exp1-bars}\n\\end{figure}\n";
    crate::io::write_bytes(&out_dir.join("exp1-figures.tex"), figs.as_bytes())?;
    let macros = format!(
        "% generated by `synthlm report`: do not edit\n\\newcommand{{\\ExpOneProfile}}{{{}}}\n\\newcommand{{\\ExpOneTokens}}{{{}}}\n\\newcommand{{\\ExpOneSeeds}}{{{}}}\n\\newcommand{{\\ExpOneSteps}}{{{}}}\n\\newcommand{{\\ExpOneWallMinutes}}{{{}}}\n",
        p.name,
        p.tokens_per_run(),
        p.seeds.len(),
        p.steps,
        num(r.wall_s / 60.0)
    );
    crate::io::write_bytes(&out_dir.join("exp1-macros.tex"), macros.as_bytes())
}

/// Validation-loss curves of one student on one held-out set, as an inline figure.
pub fn curves_figure(
    r: &Exp1Results,
    results_dir: &Path,
    student: &str,
    eval: &str,
) -> Result<crate::report::plots::Svg> {
    let (unit, x_label) = if r.profile.tokens_per_run() >= 1_000_000 {
        (1e6, "training tokens (millions)")
    } else {
        (1e3, "training tokens (thousands)")
    };
    let series = curves(r, results_dir, student, eval, unit)?;
    let title = format!("{student}: loss on held-out {eval} text");
    crate::report::plots::to_svg(FIG, |root, s| {
        line_chart(
            root,
            &title,
            x_label,
            "validation loss (nats/token)",
            &series,
            s,
        )
    })
}

/// Samples of one student and seed, one row per (training data, prompt).
pub fn samples_table(r: &Exp1Results, student: &str, seed: u64) -> Result<DataFrame> {
    let rows: Vec<&crate::experiments::exp1::Sample> = r
        .samples
        .iter()
        .filter(|s| s.student == student && s.seed == seed)
        .collect();
    Ok(DataFrame::new(vec![
        Column::new(
            "trained on".into(),
            rows.iter().map(|s| s.condition.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "prompt".into(),
            rows.iter().map(|s| s.prompt.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "completion".into(),
            rows.iter()
                .map(|s| s.completion.clone())
                .collect::<Vec<_>>(),
        ),
    ])?)
}
