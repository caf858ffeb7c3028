//! Experiment 1's report: the same tables and figures for the notebook, the book and the paper,
//! built from `data/results/exp1/PROFILE/` only.

use crate::budget::Gpu;
use crate::experiments::exp1::{
    plan, profile, Exp1Profile, Exp1Results, PlanRow, CONDITIONS, EVAL_SETS,
};
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

/// What a profile costs on `gpu` (see [`plan`]): one row per student, then the whole grid.
pub fn plan_table(p: &Exp1Profile, gpu: &Gpu) -> Result<DataFrame> {
    let rows = plan(p, gpu)?;
    // Per-student columns, then the total row (blank where a total means nothing).
    let per = |f: fn(&PlanRow) -> f64| {
        let mut v: Vec<Option<f64>> = rows.iter().map(|r| Some(f(r))).collect();
        v.push(None);
        v
    };
    let total = |f: fn(&PlanRow) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.push(v.iter().sum());
        v
    };
    let mut student: Vec<String> = rows.iter().map(|r| r.student.clone()).collect();
    student.push("all".into());
    let dollars: Vec<u64> = total(|r| r.dollars)
        .into_iter()
        .map(|d| d.round() as u64)
        .collect();
    Ok(DataFrame::new(vec![
        Column::new("student".into(), student),
        Column::new("parameters (M)".into(), per(|r| r.params as f64 / 1e6)),
        Column::new(
            "runs".into(),
            total(|r| r.runs as f64)
                .into_iter()
                .map(|x| x as u64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "tokens per run (M)".into(),
            per(|r| r.tokens_per_run as f64 / 1e6),
        ),
        Column::new("GPU-hours per run".into(), per(|r| r.per_run.gpu_hours)),
        Column::new("GPU-hours".into(), total(|r| r.gpu_hours)),
        Column::new("dollars".into(), dollars),
    ])?)
}

/// The paragraph under the plan table: assumptions, and what the original budget covers.
pub fn plan_text(p: &Exp1Profile, gpu: &Gpu, original_gpu_hours: f64) -> Result<String> {
    let rows = plan(p, gpu)?;
    let hours: f64 = rows.iter().map(|r| r.gpu_hours).sum();
    Ok(format!(
        "Profile `{}`: {} seeds x {} training sets per student, {} optimizer steps of {} micro-batches x {} sequences x {} tokens, tokenizer of {} tokens, on {}. FLOPs per token = 6N + 12 x layers x width x sequence length; {:.0}% of the GPU's {} TFLOP/s dense peak (a well-tuned run's utilisation); ${} per GPU-hour. The grid takes {} GPU-hours (${:.0}), {} hours of wall time on 8 GPUs. {}",
        p.name,
        p.seeds.len(),
        CONDITIONS.len(),
        p.steps,
        p.grad_accum,
        p.batch_size,
        p.seq_len,
        p.vocab_size,
        gpu.name,
        gpu.mfu * 100.0,
        gpu.peak_tflops,
        gpu.dollars_per_hour,
        num(hours),
        hours * gpu.dollars_per_hour,
        num(hours / 8.0),
        if hours <= original_gpu_hours {
            format!(
                "It fits in the original plan's budget of {} GPU-hours (${:.0}).",
                original_gpu_hours,
                original_gpu_hours * gpu.dollars_per_hour
            )
        } else {
            format!(
                "The original plan's budget of {} GPU-hours (${:.0}) covers {:.1}% of it.",
                original_gpu_hours,
                original_gpu_hours * gpu.dollars_per_hour,
                100.0 * original_gpu_hours / hours
            )
        }
    ))
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
    // The folder holds only this report's figures: drop those of an earlier report (another
    // profile's students) so the pages never link or ship stale ones.
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
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
    let (paper, gpu) = (profile("paper")?, Gpu::rtx4090());
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
    md += "### Findings\n\nSentences generated from the results below (bits per byte, means over seeds).\n\n";
    for f in findings(r) {
        md += &format!("- {f}\n");
    }
    md += "\n### Data\n\n";
    md += &markdown(&corpus_table(r)?)?;
    md += "\n### Results\n\nLoss in nats per token, bits per byte; mean over seeds with a 95% bootstrap interval.\n\n";
    md += &markdown(&results_table(r)?)?;
    md += &format!("\n### Synthetic vs real, paired by seed\n\nNegative differences favour training on synthetic data. With {} seeds the smallest attainable p-value of the exact permutation test is {}.\n\n", p.seeds.len(), num(min_p_value(p.seeds.len())));
    md += &markdown(&comparison_table(r)?)?;
    md += "\n### Contamination\n\nShare of each held-out set's word 13-grams found in each training set.\n\n";
    md += &markdown(&contamination_table(r)?)?;
    md += "\n### Figures\n\n";
    for f in &figs {
        // The page is included from book/src/exp1.md, so links are relative to book/src/.
        md += &format!("![{f}](generated/figures/{f}.svg)\n\n");
    }
    md += &format!(
        "### At the paper scale (planned, not run here)\n\n{}\n\n",
        plan_text(&paper, &gpu, ORIGINAL_GPU_HOURS)?
    );
    md += &markdown(&plan_table(&paper, &gpu)?)?;
    md += "\n### Samples\n\nFixed prompts, temperature 0.8, top-k 40, top-p 0.95, seed = the run's seed (first seed shown).\n\n";
    for s in r.samples.iter().filter(|s| s.seed == p.seeds[0]) {
        md += &format!(
            "- **{} / trained on {}**, prompt `{}`: {}\n",
            s.student,
            s.condition,
            s.prompt.replace('\n', "\\n").replace('`', "'"),
            md_text(&s.completion)
        );
    }
    crate::io::write_bytes(&out_dir.join("exp1.md"), md.as_bytes())?;
    crate::io::write_bytes(&out_dir.join("exp1-data.md"), data_markdown(r)?.as_bytes())?;
    crate::io::write_bytes(
        &out_dir.join("exp1-reproducibility.md"),
        reproducibility_markdown(r)?.as_bytes(),
    )
}

/// The first look at the training data, per source, as a polars table.
pub fn first_look_table(r: &Exp1Results) -> Result<DataFrame> {
    crate::generate::stats::first_look_frame(&r.first_look)
}

/// The data chapter's generated part: statistics of the training splits and example records.
pub fn data_markdown(r: &Exp1Results) -> Result<String> {
    let mut md = format!(
        "<!-- generated by `synthlm report` from data/results/exp1/{}/results.json: do not edit -->\n\n\
         ### Statistics (Experiment 1, profile `{}`)\n\n\
         The training splits, per source (at most 20,000 documents each): documents, words per document (mean, median, 90th percentile), exact and near-duplicate rates (MinHash, Jaccard >= 0.8) and distinct-n (share of word n-grams that are unique).\n\n",
        r.profile.name, r.profile.name
    );
    md += &markdown(&first_look_table(r)?)?;
    md += "\n### Example records\n\nThe start of one held-out document per source.\n\n";
    for e in &r.examples {
        md += &format!("- **{}** (`{}`): {}\n", e.source, e.id, md_text(&e.excerpt));
    }
    Ok(md)
}

/// The reproducibility chapter's generated part: command, machine, software, time, inputs.
pub fn reproducibility_markdown(r: &Exp1Results) -> Result<String> {
    let (p, e) = (&r.profile, &r.environment);
    let mut md = format!(
        "<!-- generated by `synthlm report` from data/results/exp1/{0}/results.json: do not edit -->\n\n\
         ### Experiment 1, profile `{0}`\n\n\
         - Command: `bash scripts/reproduce.sh {0}` (or `synthlm experiment --number 1 --profile {0}`, then `synthlm report --profile {0}`).\n\
         - Seeds: {1:?} (weights, data order and dropout of each run; samples use the run's seed).\n\
         - Machine: {2}, {3} cores, {4}; no GPU.\n\
         - Software: synthlm {5} (checkout `{6}`), {7}, candle {8}.\n\
         - Time: {9} training runs, {10:.1} min of wall time, {11:.3} CPU core-hours.\n\n\
         Inputs, by SHA-256 (first 16 hex digits):\n\n",
        p.name,
        p.seeds,
        md_text(&e.cpu),
        e.cores,
        md_text(&e.os),
        e.synthlm,
        e.git,
        e.rustc,
        e.candle,
        r.runs.len(),
        r.wall_s / 60.0,
        r.cpu_core_hours
    );
    let df = DataFrame::new(vec![
        Column::new(
            "input".into(),
            r.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "what".into(),
            r.inputs
                .iter()
                .map(|i| md_text(&i.detail))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "SHA-256".into(),
            r.inputs
                .iter()
                .map(|i| i.sha256.chars().take(16).collect::<String>())
                .collect::<Vec<_>>(),
        ),
    ])?;
    md += &markdown(&df)?;
    Ok(md)
}

/// Plain text for a Markdown list item or table cell: one line, and every character Markdown
/// (or the HTML inside it) would interpret escaped, so generated text shows as it is.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\n' | '\r' | '\t' => out.push(' '),
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '&' => out += "&amp;",
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
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
    let (paper, gpu) = (profile("paper")?, Gpu::rtx4090());
    crate::io::write_bytes(
        &out_dir.join("exp1-plan.tex"),
        latex(&plan_table(&paper, &gpu)?)?.as_bytes(),
    )?;
    crate::io::write_bytes(
        &out_dir.join("exp1-plan-text.tex"),
        tex_escape(&plan_text(&paper, &gpu, ORIGINAL_GPU_HOURS)?).as_bytes(),
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
        "% generated by `synthlm report`: do not edit\n\\newcommand{{\\ExpOneProfile}}{{{}}}\n\\newcommand{{\\ExpOneTokens}}{{{}}}\n\\newcommand{{\\ExpOneSeeds}}{{{}}}\n\\newcommand{{\\ExpOneSteps}}{{{}}}\n\\newcommand{{\\ExpOneWallMinutes}}{{{}}}\n\\newcommand{{\\ExpOneHeadline}}{{{}}}\n\\newcommand{{\\ExpOneFindings}}{{{}}}\n",
        p.name,
        p.tokens_per_run(),
        p.seeds.len(),
        p.steps,
        num(r.wall_s / 60.0),
        tex_escape(&headline(r)),
        tex_escape(&findings(r).join(" "))
    );
    crate::io::write_bytes(&out_dir.join("exp1-macros.tex"), macros.as_bytes())
}

/// One sentence with the main numbers: the largest student's bits per byte after training on
/// synthetic vs real data, on each held-out set (means over seeds).
pub fn headline(r: &Exp1Results) -> String {
    let p = &r.profile;
    let big = &p.students[p.students.len() - 1].0;
    let bpb = |cond: &str, eval: &str| {
        r.cells
            .iter()
            .find(|c| &c.student == big && c.condition == cond)
            .map(|c| num(c.bpb[eval].mean))
            .unwrap_or_default()
    };
    format!(
        "Our largest student (`{big}`, profile `{}`) trained on synthetic data reaches {} bits per byte on held-out real text, against {} when trained on real text; on held-out synthetic text, {} against {}.",
        p.name,
        bpb("synthetic", "real"),
        bpb("real", "real"),
        bpb("synthetic", "synthetic"),
        bpb("real", "synthetic")
    )
}

/// What the results say, per student, in sentences built from the numbers (so they stay true
/// when the results are regenerated): which training data gives the lowest bits per byte on each
/// held-out set and whether its interval clears the next best, what each kind of training data
/// costs on the other kind of text, and how far the blend is from the best.
pub fn findings(r: &Exp1Results) -> Vec<String> {
    let cell = |student: &str, cond: &str| {
        r.cells
            .iter()
            .find(|c| c.student == student && c.condition == cond)
    };
    let mut out = Vec::new();
    for (student, _) in &r.profile.students {
        let bpb = |cond: &str, eval: &str| cell(student, cond).map(|c| c.bpb[eval]);
        let mut parts = Vec::new();
        let mut best_of = BTreeMap::new();
        for eval in EVAL_SETS {
            let mut ranked: Vec<(&str, crate::stats::MeanCi)> = CONDITIONS
                .iter()
                .filter_map(|c| bpb(c, eval).map(|m| (*c, m)))
                .collect();
            ranked.sort_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
            if ranked.len() < 2 {
                return out;
            }
            let (best, next) = (&ranked[0], &ranked[1]);
            let clear = if best.1.hi < next.1.lo {
                "its 95% interval clears the next best"
            } else {
                "its 95% interval overlaps the next best's"
            };
            parts.push(format!(
                "on held-out {eval} text, training on {} gives the lowest bits per byte ({}; next: {}, {}; {clear})",
                best.0,
                num(best.1.mean),
                next.0,
                num(next.1.mean)
            ));
            best_of.insert(eval, best.1.mean);
        }
        let gap = |cond: &str, eval: &str, other: &str| {
            Some(bpb(cond, eval)?.mean - bpb(other, eval)?.mean)
        };
        let mut s = format!("`{student}`: {}.", parts.join("; "));
        if let (Some(a), Some(b)) = (
            gap("synthetic", "real", "real"),
            gap("real", "synthetic", "synthetic"),
        ) {
            s += &format!(
                " Trained on synthetic data it is {} bits per byte worse on real text than when trained on real data; trained on real data it is {} worse on synthetic text than when trained on synthetic data.",
                num(a),
                num(b)
            );
        }
        if let (Some(real), Some(syn)) = (bpb("blend", "real"), bpb("blend", "synthetic")) {
            s += &format!(
                " The 50/50 blend is {} above the best on real text and {} above the best on synthetic text.",
                num(real.mean - best_of["real"]),
                num(syn.mean - best_of["synthetic"])
            );
        }
        out.push(s);
    }
    out
}

/// The original plan's GPU budget: 10 GPU-hours ($50).
pub const ORIGINAL_GPU_HOURS: f64 = 10.0;

/// The smallest two-sided p-value an exact sign-flip test over `n` pairs can reach.
pub fn min_p_value(n: usize) -> f64 {
    2.0 / 2f64.powi(n as i32)
}

/// Plain text to LaTeX: `code` spans become \texttt, and the special characters are escaped.
fn tex_escape(s: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    for ch in s.chars() {
        match ch {
            '`' => {
                out += if code { "}" } else { "\\texttt{" };
                code = !code;
            }
            '$' | '%' | '&' | '#' | '_' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
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
