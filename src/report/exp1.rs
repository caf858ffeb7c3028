//! Experiment 1's report: pages of blocks (text, tables, figures, macros) built from
//! `data/results/exp1/PROFILE/` alone, rendered to book, paper and notebook by
//! [`crate::report`].

use crate::budget::Gpu;
use crate::experiments::exp1::{analysis, Exp1, BAR_SETS, CONDITIONS, CONDITION_PAIRS, EVAL_SETS};
use crate::experiments::results::Results;
use crate::experiments::scale::Scale;
use crate::experiments::{plan, PlanRow};
use crate::model::ModelConfig;
use crate::report::plots::{BarSeries, Figure, Series};
use crate::report::tables::{col, int, md_escape, mean_ci, num, pval};
use crate::report::{Block, Page, Report};
use crate::train::metrics::{read_metrics, MetricLine};
use anyhow::{Context, Result};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The original plan's GPU budget: 10 GPU-hours ($50).
pub const ORIGINAL_GPU_HOURS: f64 = 10.0;

/// One colour per training condition, the same in every figure.
fn color(condition: &str) -> usize {
    CONDITIONS.iter().position(|c| *c == condition).unwrap_or(3)
}

fn text(s: impl Into<String>) -> Block {
    Block::Text(s.into())
}
fn heading(s: &str) -> Block {
    Block::Heading(3, s.into())
}

/// The whole report.
pub fn report(r: &Results, results_dir: &Path) -> Result<Report> {
    let mut source = format!("data/results/exp1/{}/results.json", r.scale.profile);
    let probe = probe_results(r, results_dir)?;
    if let Some(p) = &probe {
        source += &format!(" and data/results/exp1/{}/results.json", p.scale.profile);
    }
    Ok(Report {
        experiment: "exp1".into(),
        source,
        pages: vec![
            main_page(r, results_dir, probe.as_ref())?,
            data_page(r)?,
            reproducibility_page(r, results_dir, probe.as_ref())?,
        ],
    })
}

/// Tokens a student saw per parameter.
fn tokens_per_param(r: &Results, student: &str) -> f64 {
    r.runs
        .iter()
        .find(|x| x.student == student)
        .map_or(0.0, |x| x.tokens_seen as f64 / x.params.max(1) as f64)
}

fn scale_text(r: &Results) -> String {
    let s = &r.scale;
    let students: Vec<String> = s
        .students
        .iter()
        .map(|st| {
            let params = r
                .runs
                .iter()
                .find(|x| x.student == st.name)
                .map_or(0, |x| x.params);
            format!(
                "`{}` ({} parameters, {:.2} tokens per parameter)",
                st.name,
                int(params as u64),
                tokens_per_param(r, &st.name)
            )
        })
        .collect();
    let wall: f64 = r.runs.iter().map(|x| x.provenance.wall_s).sum();
    let core_h: f64 = r.runs.iter().map(|x| x.provenance.cpu_core_hours).sum();
    format!(
        "Scale: profile `{}`: students {}; {} seeds each; {} optimizer steps of {} sequences x {} tokens = {} training tokens per run; tokenizer: byte-level BPE, {} tokens (SHA-256 `{}`). Training: {:.1} min of wall time over {} runs, {:.3} CPU core-hours.",
        s.profile,
        students.join(" and "),
        s.seeds.len(),
        int(s.steps),
        s.batch_size * s.grad_accum,
        s.seq_len,
        int(s.tokens_per_run()),
        int(s.vocab_size as u64),
        &r.tokenizer_sha256[..12],
        wall / 60.0,
        r.runs.len(),
        core_h
    )
}

fn main_page(r: &Results, dir: &Path, probe: Option<&Results>) -> Result<Page> {
    let mut b = vec![
        text(scale_text(r)),
        heading("Findings"),
        text("Sentences generated from the results below (bits per byte: lower is better)."),
    ];
    let mut found = findings(r);
    if let Some(p) = probe {
        let cells = crate::report::bar::cells(p, &CONDITIONS, &BAR_SETS);
        found.push(format!(
            "The probe of a larger student (profile `{}`, chosen after these results; seeds {}; Holm over its own comparisons): {}",
            p.scale.profile,
            seed_list(&p.scale.seeds),
            crate::report::bar::summary(&cells)
        ));
        let curve = crate::report::harness::curve_sentence(&p.curve);
        if !curve.is_empty() {
            let provs = curve_provenances(p, &probe_dir(dir, p))?;
            let noted = provs.iter().filter(|x| x.note.is_some()).count();
            let adopted = match noted {
                0 => String::new(),
                n => format!(" {n} of its {} runs carry a note on how they were made (on the reproducibility page).", provs.len()),
            };
            found.push(format!(
                "The probe's learning curve was decided after these results.{adopted} {curve}"
            ));
        }
    }
    b.push(Block::List(found));
    b.extend(data_blocks(r, dir)?);
    b.push(heading("Results"));
    b.push(Block::Table {
        name: "results".into(),
        caption: results_caption(r),
        frame: results_table(r)?,
    });
    let cells = crate::report::bar::cells(r, &CONDITIONS, &BAR_SETS);
    b.push(heading("The bar: do the students learn?"));
    b.push(text(crate::report::bar::count(&cells)));
    b.push(Block::Table {
        name: "bar".into(),
        caption: format!("Each student against the n-gram models of its own training tokens, per held-out set (neutral: the evaluation suite's third domain). Student: mean [interval] over seeds (as in the results table). Differences: student - n-gram in bits per byte, paired over documents ({}). The bar: at most -{:.2} from the bigram, and the interval from the best Kneser-Ney model (lowest mean) below 0 with a Holm-adjusted p below 0.05 and every seed below it (per seed: each seed's whole-set difference from the Kneser-Ney model counted on that seed's tokens).", kn_interval(r), crate::report::bar::BIGRAM_MARGIN),
        frame: crate::report::bar::table(&cells)?,
    });
    if let Some(p) = probe {
        b.extend(probe_blocks(r, dir, p, &cells)?);
    }
    b.push(heading("Comparisons"));
    b.push(Block::Table {
        name: "comparisons".into(),
        caption: comparison_caption(r, "every comparison in this table"),
        frame: comparison_table(r)?,
    });
    b.extend(crate::report::suite::blocks(
        r,
        &CONDITIONS,
        &analysis(r)?.frames,
    )?);
    b.extend(crate::report::harness::decontamination(r)?);
    b.push(heading("Contamination"));
    b.push(Block::Table {
        name: "contamination".into(),
        caption: "Share of each held-out set's word 13-grams found in each training set.".into(),
        frame: contamination_table(r)?,
    });
    b.extend(crate::report::harness::sweep(r)?);
    b.extend(crate::report::harness::curve(r, color, "")?);
    b.extend(closing_blocks(r, dir)?);
    Ok(Page {
        name: "exp1".into(),
        blocks: b,
    })
}

/// The data section: what the sets are, what they are made of, what the held-out sets rest
/// on, each source's numbers, and every hyperparameter.
fn data_blocks(r: &Results, dir: &Path) -> Result<Vec<Block>> {
    let mut b = Vec::new();
    b.push(heading("Data"));
    b.push(Block::Table {
        name: "corpora".into(),
        caption: "Training and held-out sets (tokens of the experiment's tokenizer). Passes per run: the tokens a run trains on over its training set's tokens. Runs train on windows at uniformly random offsets, drawn with replacement, so the expected share of a set's tokens a run sees at least once is about 1 - e^-passes (share seen: computed, not counted), and the distinct text a run reads is about that share of the set's text (distinct text seen). Every run trains on the same number of tokens, but a tokenizer fitted to all training sets packs a different number of bytes into a token for each, so the text a run reads (text per run: its tokens times the set's bytes per token) differs between sets; bits per byte, not per token, is what the tables compare. The neutral row is the neutral domain as it is scored (its near-copies of training text left out); the sweep dev row is the split of the blend's training documents that the learning rate was chosen on.".into(),
        frame: corpus_table(r)?,
    });
    if let Some(frame) = crate::report::sources::composition_table(&r.sets)? {
        b.push(Block::Table {
            name: "composition".into(),
            caption: format!("What each set is made of: share of its text bytes / share of its tokens per source (documents in brackets). The blend takes each half as a prefix of its side's training set in a fixed pseudo-random order of documents; a byte prefix is decided by a few long documents, so a half need not have its side's composition.{}", mix_by_tokens(r)),
            frame,
        });
    }
    if let Some(frame) = held_out_table(r, dir)? {
        b.push(Block::Table {
            name: "held-out".into(),
            caption: "What each held-out set's bits per byte rest on. Bits per byte weighs every document by its bytes, so a set whose text sits in a few long documents has few effective documents (Kish: (sum of bytes)^2 / sum of squared bytes), and intervals that resample its documents are correspondingly rough.".into(),
            frame,
        });
    }
    let sources = analysis(r)?.sources;
    for e in EVAL_SETS {
        if let Some(frame) = crate::report::sources::table(&sources, e)? {
            let mut caption = format!("Held-out {e} text by source: bits per byte of each training set's student (mean over seeds) and of its best Kneser-Ney model, per source and as the mean over sources (every source weighing the same, whatever its bytes). Descriptive: no interval.");
            if let Some(s) = crate::report::sources::sentence(&sources, e) {
                caption = format!("{caption} {s}");
            }
            b.push(Block::Table {
                name: format!("sources-{e}"),
                caption,
                frame,
            });
        }
    }
    b.push(Block::Table {
        name: "hyperparameters".into(),
        caption: "Every hyperparameter of the grid's runs, from their committed configs (the runs of a student differ only in seed and training set; the learning curve's runs only in their steps and the settings scaled with them: warmup, logging and evaluation intervals).".into(),
        frame: hyperparameter_table(r, dir)?,
    });
    Ok(b)
}

/// The page's end: figures, the paper-scale plan, samples, and the macros the paper reads.
fn closing_blocks(r: &Results, dir: &Path) -> Result<Vec<Block>> {
    let mut b = Vec::new();
    b.push(heading("Figures"));
    for st in &r.scale.students {
        for e in EVAL_SETS {
            b.push(Block::Figure { name: format!("curves-{}-{e}", st.name), caption: format!("Bits per byte of `{}` on held-out {e} text during training (the training-time windows; mean over seeds, bars span the seeds), and the best Kneser-Ney baseline of each training set (dashed).", st.name), figure: curves(r, dir, &st.name, e)? });
        }
        b.push(Block::Figure { name: format!("bars-{}", st.name), caption: format!("Final bits per byte of `{}` on whole held-out sets by training data (interval: as in the results table).", st.name), figure: bars(r, &st.name) });
    }
    let (paper, gpu) = (
        Scale::standard(&crate::experiments::provenance::project_root(), 1, "paper")?,
        crate::report::gpu::rtx4090(&crate::experiments::provenance::project_root()),
    );
    b.push(heading("At the paper scale (planned, not run here)"));
    b.push(text(plan_text(&paper, &gpu, ORIGINAL_GPU_HOURS)?));
    b.push(Block::Table {
        name: "plan".into(),
        caption: String::new(),
        frame: plan_table(&paper, &gpu)?,
    });
    b.push(heading("Samples"));
    b.push(text("Fixed prompts, temperature 0.8, top-k 40, top-p 0.95, seed = the run's seed (first seed shown)."));
    b.push(Block::List(samples(r)));
    b.extend(macros(r, &paper, &gpu)?);
    Ok(b)
}

/// The results of this design's probe of a larger student: profile `PROFILE-probe`
/// beside this one's results folder, when it has finished.
fn probe_results(r: &Results, dir: &Path) -> Result<Option<Results>> {
    let probe = dir.with_file_name(format!("{}-probe", r.scale.profile));
    if !probe.join(crate::experiments::results::RESULTS).exists() {
        return Ok(None);
    }
    Ok(Some(crate::experiments::load_results(&probe)?))
}

/// The probe's results folder, beside this design's `dir`.
fn probe_dir(dir: &Path, p: &Results) -> std::path::PathBuf {
    dir.with_file_name(&p.scale.profile)
}

/// "1 seed", "3 seeds".
fn seeds_phrase(n: usize) -> String {
    format!("{n} seed{}", if n == 1 { "" } else { "s" })
}

/// Refuse a probe that did not train on this design's data: the same tokenizer (by hash),
/// corpora, budgets, steps, batch and left-out neutral documents, at seeds of this design, so that each probe run saw the
/// token windows of this design's run of the same seed and is held to the same n-gram models.
fn check_probe(r: &Results, p: &Results) -> Result<()> {
    let (a, b) = (&r.scale, &p.scale);
    let same = r.tokenizer_sha256 == p.tokenizer_sha256
        && a.corpora == b.corpora
        && (a.vocab_size, a.seq_len, a.batch_size, a.grad_accum, a.steps)
            == (b.vocab_size, b.seq_len, b.batch_size, b.grad_accum, b.steps)
        && (a.max_train_bytes, a.max_eval_bytes) == (b.max_train_bytes, b.max_eval_bytes)
        && b.seeds.iter().all(|x| a.seeds.contains(x))
        && r.neutral_excluded == p.neutral_excluded;
    if !same {
        anyhow::bail!(
            "the probe `{}` did not train on the data of `{}` (tokenizer, corpora, budgets, steps, batch, seeds or neutral documents differ): it cannot be set beside it",
            b.profile,
            a.profile
        );
    }
    Ok(())
}

/// The probe held to the same bar, with this design's students beside it (each one's whole-set
/// difference from its own best Kneser-Ney model, mean and range over its seeds), then the two
/// students against each other on the same documents at the probe's seeds.
fn probe_blocks(
    r: &Results,
    dir: &Path,
    p: &Results,
    main: &[crate::report::bar::BarCell],
) -> Result<Vec<Block>> {
    check_probe(r, p)?;
    let cells = crate::report::bar::cells(p, &CONDITIONS, &BAR_SETS);
    let frame = probe_bar_table(r, &cells, main)?;
    let pdir = probe_dir(dir, p);
    let rows = probe_vs_design(r, dir, p, &pdir)?;
    let names = |v: &[crate::experiments::scale::Student]| {
        v.iter()
            .map(|s| format!("`{}`", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let n = p.scale.seeds.len();
    let (word, seeds) = (
        if n == 1 { "seed" } else { "seeds" },
        seed_list(&p.scale.seeds),
    );
    let limits = if n == 1 {
        format!("With one seed the bar's every-seed condition is that seed (this design's count holds {} to it), its intervals resample documents with the weights held fixed, and its Holm adjustment covers the probe's own comparisons only: the table shows what one run of {} did, not what the larger size does.", seeds_phrase(r.scale.seeds.len()), names(&p.scale.students))
    } else {
        "Its intervals and every-seed condition are the bar's; its Holm adjustment covers the probe's own comparisons only, and its learning rate was fixed, not swept.".to_string()
    };
    let mut b = vec![
        heading(&format!("A larger student, {}", seeds_phrase(n))),
        text(format!(
            "The probe ({}, {word} {seeds}; profile `{}`, results in `data/results/exp1/{}/results.json`) was designed after this design's results were known, to ask whether a larger student clears the cells that {} misses. It trains on this design's tokenizer, held-out sets, steps and batch at {word} {seeds}, so each of its runs sees the token windows of this design's run of the same seed and is compared with the same n-gram models. {} {limits}",
            names(&p.scale.students),
            p.scale.profile,
            p.scale.profile,
            names(&r.scale.students),
            crate::report::bar::count(&cells),
        )),
        Block::Table {
            name: "probe-bar".into(),
            caption: format!("The probe against the n-gram models of its training tokens, as in the bar's table ({}). Last: this design's student minus its own best Kneser-Ney model, mean over its {} (lowest to highest seed in parentheses; the probe's {} among them). A probe whose highest seed (per seed) is below that lowest is, seed for seed, below every seed of the smaller student on the same held-out documents.", probe_intervals(p), seeds_phrase(r.scale.seeds.len()), if n == 1 { "seed is" } else { "seeds are" }),
            frame,
        },
        text(format!("The two students against each other, at the probe's {word} only ({seeds}): the same tokens, the same held-out documents, the same n-gram models, so the difference is the student's size and learning rate (which differ together), not the data or the comparison.")),
        Block::Table {
            name: "probe-vs-design".into(),
            caption: format!("The probe's student minus this design's, trained on the same tokens at {word} {seeds} (negative: the larger student is better). {}", probe_caption(&rows)),
            frame: comparison_frame(&rows.iter().collect::<Vec<_>>())?,
        },
    ];
    b.extend(probe_own_blocks(p)?);
    Ok(b)
}

/// The probe's own results read as this design's are: its training sets compared on each
/// held-out set, its suite tables and its learning curve (named `probe-...`).
fn probe_own_blocks(p: &Results) -> Result<Vec<Block>> {
    let between: Vec<&crate::experiments::results::ComparisonRow> = p
        .comparisons
        .iter()
        .filter(|c| c.metric == "bpb")
        .filter(|c| {
            p.scale.students.iter().any(|st| {
                CONDITION_PAIRS.iter().any(|(x, y)| {
                    c.label == crate::experiments::results::between_label(&st.name, x, y)
                })
            })
        })
        .collect();
    let holm = p.comparisons.iter().filter(|c| c.metric == "bpb").count();
    let mut b = vec![
        text("The probe's own results, read as this design's are below: its training sets against each other on each held-out set, and the evaluation suite."),
        Block::Table {
            name: "probe-comparisons".into(),
            caption: format!("The probe's training sets against each other on its own runs. {}", comparison_caption(p, &format!("the probe's {holm} bits-per-byte comparisons, these and its bar's"))),
            frame: comparison_frame(&between)?,
        },
    ];
    let suite = crate::report::suite::tables(p, &CONDITIONS, &analysis(p)?.frames, "probe-")?;
    if !suite.is_empty() {
        b.push(text(format!("The probe (`{}`) on the evaluation suite: its tables, read as the suite's section below explains (the n-gram column is the best of six models of the same tokens, chosen per row after the fact; where the n-grams sit above chance, they, not chance, are the floor).", p.scale.profile)));
    }
    b.extend(suite);
    b.extend(crate::report::harness::curve(p, color, "probe-")?);
    if !p.samples.is_empty() {
        b.push(text("The probe's samples, from the prompts and settings of the samples at the end of this page (first seed shown):"));
        b.push(Block::List(samples(p)));
    }
    Ok(b)
}

/// What the probe table's intervals are: with one seed, the student's bits per byte and its
/// differences alike are bootstraps over documents, said once; with more, each kind.
fn probe_intervals(p: &Results) -> String {
    match p.scale.seeds.len() {
        1 => format!(
            "intervals, of the student's bits per byte and of its differences alike: {}",
            kn_interval(p)
        ),
        _ => format!(
            "student bits/byte: {}; differences: {}",
            intervals(p),
            kn_interval(p)
        ),
    }
}

/// "0, 1, 2".
fn seed_list(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The probe's bar table with, beside it, each of this design's students' difference from its
/// own best Kneser-Ney model (mean, lowest to highest seed).
fn probe_bar_table(
    r: &Results,
    cells: &[crate::report::bar::BarCell],
    main: &[crate::report::bar::BarCell],
) -> Result<DataFrame> {
    let mut frame = crate::report::bar::table(cells)?;
    for st in &r.scale.students {
        let beside = cells.iter().map(|c| {
            main.iter()
                .find(|m| m.student == st.name && m.condition == c.condition && m.set == c.set)
                .and_then(|m| m.kn.as_ref())
                .map_or("-".into(), |(_, k)| match &k.seeds {
                    Some(s) => format!("{} ({} to {})", num(k.diff), num(s.lo), num(s.hi)),
                    None => num(k.diff),
                })
        });
        let name = format!("{} - best KN, per seed", st.name);
        frame.with_column(col(&name, beside))?;
    }
    Ok(frame)
}

/// Each probe student against each of this design's, seed with seed at the probe's seeds, on
/// every training set and held-out set: per-document bits averaged over those seeds, a bootstrap
/// interval and sign flips over documents, Holm over these comparisons, and the range over the
/// seed pairs. Read from the runs' `scores.json` (synthetic, real) and `suite.json` (neutral).
fn probe_vs_design(
    r: &Results,
    dir: &Path,
    p: &Results,
    pdir: &Path,
) -> Result<Vec<crate::experiments::results::ComparisonRow>> {
    use crate::experiments::results::{compare, holm_all, Pairing};
    let mut rows = vec![];
    for (big, small) in p
        .scale
        .students
        .iter()
        .flat_map(|b| r.scale.students.iter().map(move |s| (b, s)))
    {
        for c in CONDITIONS {
            let a = run_scores(p, pdir, &big.name, c, &p.scale.seeds)?;
            let b = run_scores(r, dir, &small.name, c, &p.scale.seeds)?;
            for set in BAR_SETS {
                let (a, b) = (pick(&a, set)?, pick(&b, set)?);
                if a.iter().chain(&b).any(|x| x.bytes != a[0].bytes) {
                    anyhow::bail!("the probe's `{}` and `{}` were not scored on the same held-out {set} documents at every seed: they cannot be paired", big.name, small.name);
                }
                let label = format!("{} on {c} - {} on {c}", big.name, small.name);
                let docs = |v: Vec<crate::stats::DocScores>| -> Vec<_> {
                    v.into_iter()
                        .map(crate::experiments::grid::SetScore::Documents)
                        .collect()
                };
                let (a, b) = (docs(a), docs(b));
                let (a, b): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
                rows.push(compare(
                    &r.experiment,
                    &label,
                    set,
                    (&a, &b),
                    Pairing::BySeed,
                ));
            }
        }
    }
    holm_all(&mut rows);
    Ok(rows)
}

/// One held-out set's per-document scores out of each seed's run (see [`run_scores`]).
fn pick(
    runs: &[(PathBuf, BTreeMap<String, crate::stats::DocScores>)],
    set: &str,
) -> Result<Vec<crate::stats::DocScores>> {
    runs.iter()
        .map(|(rd, scores)| {
            scores.get(set).cloned().with_context(|| {
                format!("{}: no per-document scores on held-out {set} (in `scores.json`, or for the neutral set in `suite.json`)", rd.display())
            })
        })
        .collect()
}

/// One student's run folders on a training set, seed by seed, each with its per-document scores
/// on every held-out set (read once per run).
fn run_scores(
    r: &Results,
    dir: &Path,
    student: &str,
    condition: &str,
    seeds: &[u64],
) -> Result<Vec<(PathBuf, BTreeMap<String, crate::stats::DocScores>)>> {
    seeds
        .iter()
        .map(|&seed| {
            let run = r
                .runs
                .iter()
                .find(|x| x.student == student && x.condition == condition && x.seed == seed)
                .with_context(|| {
                    format!(
                        "{}: no run of `{student}` on {condition}, seed {seed}",
                        dir.display()
                    )
                })?;
            let rd = dir.join(&run.dir);
            let scores = crate::experiments::results::held_out_scores(&rd, &r.neutral_excluded)?;
            Ok((rd, scores))
        })
        .collect()
}

/// What the probe's comparisons with this design's students are.
fn probe_caption(rows: &[crate::experiments::results::ComparisonRow]) -> String {
    let intervals = per_set(
        rows.iter()
            .map(|c| (c.eval_set.as_str(), c.interval.clone())),
    );
    let tests = per_set(rows.iter().map(|c| {
        (
            c.eval_set.as_str(),
            format!("{}, smallest attainable p {}", c.test, pval(c.p_floor)),
        )
    }));
    format!("Paired over documents, each document's bits averaged over the seeds; interval: {intervals}; test: {tests}; p-values Holm-adjusted over the {} comparisons of this table. Per seed pairing: the whole-set difference of each seed's two runs, lowest to highest (with one seed, that seed's). The interval and the test hold the trained weights fixed.", rows.len())
}

fn samples(r: &Results) -> Vec<String> {
    r.samples
        .iter()
        .filter(|s| s.seed == r.scale.seeds[0])
        .map(|s| {
            format!(
                "**{} / trained on {}**, prompt `{}`: {}",
                s.student,
                s.condition,
                s.prompt.replace('\n', "\\n").replace('`', "'"),
                md_escape(&s.completion)
            )
        })
        .collect()
}

/// What the intervals of the bits-per-byte rows are: their kind ("min-max over 3 seeds"),
/// then what each held-out set's rows add to it ("whole set, 331 documents"), set by set.
fn intervals(r: &Results) -> String {
    let rows: Vec<(&str, &str)> = r
        .headline
        .iter()
        .filter(|h| h.metric == "bpb" || h.metric == "neutral_bpb")
        .map(|h| (h.eval_set.as_str(), h.interval.as_str()))
        .collect();
    let kinds = per_set(
        rows.iter()
            .map(|(e, l)| (*e, l.split("; ").next().unwrap_or(l).to_string())),
    );
    let notes: Vec<(&str, String)> = rows
        .iter()
        .filter_map(|(e, l)| l.split_once("; ").map(|x| (*e, x.1.to_string())))
        .collect();
    match notes.is_empty() {
        true => kinds,
        false => format!("{kinds} ({})", labelled(notes)),
    }
}

/// One label per held-out set, said once when every set has the same one, otherwise set by
/// set in the order of the bar's sets (`synthetic: ..; real: ..`).
fn per_set<'a>(labels: impl Iterator<Item = (&'a str, String)>) -> String {
    let v: Vec<(&str, String)> = labels.collect();
    let distinct: std::collections::BTreeSet<&String> = v.iter().map(|x| &x.1).collect();
    match distinct.len() {
        1 => v[0].1.clone(),
        _ => labelled(v),
    }
}

/// `set: label; set: label`, in the order of the bar's sets, each pair once.
fn labelled(mut v: Vec<(&str, String)>) -> String {
    v.sort_by_key(|(e, l)| (BAR_SETS.iter().position(|b| b == e), *e, l.clone()));
    v.dedup();
    v.iter()
        .map(|(e, l)| format!("{e}: {l}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn kn_interval(r: &Results) -> String {
    per_set(
        r.comparisons
            .iter()
            .filter(|c| c.label.contains(" - kn-") || c.label.contains(" - bigram"))
            .map(|c| (c.eval_set.as_str(), c.interval.clone())),
    )
}

fn results_caption(r: &Results) -> String {
    format!(
        "Bits per byte on each held-out set (lower is better): students as mean [interval] over seeds, interval: {}. Below them, n-gram baselines counted on exactly the tokens the students of each training set saw (unigram and bigram: Witten-Bell; kn-N: modified Kneser-Ney of order N), scored on the whole held-out sets.",
        intervals(r)
    )
}

/// Students, then the n-gram baselines of each training set, bits per byte on each held-out
/// set.
pub fn results_table(r: &Results) -> Result<DataFrame> {
    let (mut model, mut trained, mut params) = (vec![], vec![], vec![]);
    let mut cols: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for st in &r.scale.students {
        for c in CONDITIONS {
            model.push(st.name.clone());
            trained.push(c.to_string());
            params.push(
                r.runs
                    .iter()
                    .find(|x| x.student == st.name)
                    .map(|x| x.params as u64),
            );
            for e in BAR_SETS {
                let v = crate::report::bar::value(r, &st.name, c, e)
                    .map(|h| mean_ci(h.mean, h.lo, h.hi))
                    .unwrap_or_default();
                cols.entry(e).or_default().push(v);
            }
        }
    }
    let mut names: Vec<String> = r.baselines.iter().map(|b| b.name.clone()).collect();
    names.dedup();
    names.sort_by_key(|n| (n != "unigram", n != "bigram", n.clone()));
    names.dedup();
    for c in CONDITIONS {
        for n in &names {
            model.push(n.clone());
            trained.push(c.to_string());
            params.push(None);
            for e in BAR_SETS {
                cols.entry(e)
                    .or_default()
                    .push(r.baseline(n, c, e).map(num).unwrap_or_default());
            }
        }
    }
    let mut frame = vec![
        Column::new("model".into(), model),
        Column::new("trained on".into(), trained),
        Column::new("parameters".into(), params),
        Column::new("bits/byte, held-out synthetic".into(), &cols["synthetic"]),
        Column::new("bits/byte, held-out real".into(), &cols["real"]),
    ];
    if cols["neutral"].iter().any(|v| !v.is_empty()) {
        frame.push(Column::new("bits/byte, neutral".into(), &cols["neutral"]));
    }
    Ok(DataFrame::new(frame)?)
}

pub fn comparison_table(r: &Results) -> Result<DataFrame> {
    let c: Vec<&crate::experiments::results::ComparisonRow> =
        r.comparisons.iter().filter(|x| x.metric == "bpb").collect();
    comparison_frame(&c)
}

/// Bits-per-byte comparisons as a table: label, set, difference [interval], per seed pairing,
/// p and Holm's p.
fn comparison_frame(c: &[&crate::experiments::results::ComparisonRow]) -> Result<DataFrame> {
    Ok(DataFrame::new(vec![
        Column::new(
            "comparison (a - b)".into(),
            c.iter().map(|x| x.label.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "held-out set".into(),
            c.iter().map(|x| x.eval_set.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "difference, bits/byte [interval]".into(),
            c.iter()
                .map(|x| mean_ci(x.diff, x.lo, x.hi))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "per seed pairing".into(),
            c.iter()
                .map(|x| {
                    x.seeds.as_ref().map_or("-".into(), |s| {
                        format!("{} to {} ({})", num(s.lo), num(s.hi), s.pairs)
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "p".into(),
            c.iter().map(|x| pval(x.p_value)).collect::<Vec<_>>(),
        ),
        Column::new(
            "p (Holm)".into(),
            c.iter().map(|x| pval(x.p_holm)).collect::<Vec<_>>(),
        ),
    ])?)
}

/// What the comparisons' intervals and tests are, and the smallest p-value each can reach.
fn comparison_caption(r: &Results, holm: &str) -> String {
    let bpb = || r.comparisons.iter().filter(|c| c.metric == "bpb");
    let tests = per_set(bpb().map(|c| {
        let floor = pval(c.p_floor);
        (
            c.eval_set.as_str(),
            format!("{}, smallest attainable p {floor}", c.test),
        )
    }));
    let intervals = per_set(bpb().map(|c| (c.eval_set.as_str(), c.interval.clone())));
    format!(
        "Paired differences in bits per byte (a - b; negative: a is better). Test: {tests}; interval: {intervals}. p-values Holm-adjusted over {holm}{}. The interval and the test resample documents with the trained weights held fixed: they say how sure the difference is for these weights, not for another draw of training seeds. Per seed pairing: the smallest and largest whole-set difference over the pairings of the two sides' seeds (a student and its n-gram model: seed with seed; two training sets: every seed with every seed); a difference counts as separated only when every pairing has its sign.",
        match r.comparisons.iter().any(|c| c.metric != "bpb") {
            true => " (the suite's comparisons are adjusted in families of their own)",
            false => "",
        }
    )
}

pub fn contamination_table(r: &Results) -> Result<DataFrame> {
    let c = analysis(r)?.contamination;
    Ok(DataFrame::new(vec![
        Column::new(
            "training set".into(),
            c.iter().map(|x| x.train.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "held-out set".into(),
            c.iter().map(|x| x.eval.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "13-gram overlap (%)".into(),
            c.iter()
                .map(|x| 100.0 * x.ngram_overlap)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "documents flagged (%)".into(),
            c.iter().map(|x| 100.0 * x.docs_flagged).collect::<Vec<_>>(),
        ),
    ])?)
}

/// What share of each mixed training set (one with both generated and real sources) is real
/// text, by bytes and by tokens: a mix balanced by bytes is not balanced by tokens when the
/// two sides differ in bytes per token. Empty when no set mixes or tokens were not recorded.
fn mix_by_tokens(r: &Results) -> String {
    let real = |m: &BTreeMap<String, u64>| {
        let all: u64 = m.values().sum();
        let real: u64 = m
            .iter()
            .filter(|(k, _)| k.starts_with("real/"))
            .map(|(_, v)| v)
            .sum();
        (all > 0).then(|| real as f64 / all as f64)
    };
    let mut out = String::new();
    for set in r.sets.iter().filter(|x| x.role == "train") {
        let z = &set.size;
        let mixed = z.source_bytes.keys().any(|k| k.starts_with("real/"))
            && z.source_bytes.keys().any(|k| !k.starts_with("real/"));
        if let (true, Some(b), Some(t)) = (mixed, real(&z.source_bytes), real(&z.source_tokens)) {
            let fewer = if t > b { "fewer" } else { "more" };
            out += &format!(
                " Training set {} is {} real text by bytes and {} by tokens (a real token covers {fewer} bytes than a generated one).",
                set.name,
                crate::report::tables::pct(b),
                crate::report::tables::pct(t)
            );
        }
    }
    out
}

pub fn corpus_table(r: &Results) -> Result<DataFrame> {
    let s = &r.sets;
    // How often a run went over its training set. Training windows start at uniformly random
    // offsets, drawn with replacement (`TokenShards::random_windows`), so a run of `passes`
    // times its set's tokens covers each position with probability ~1 - e^-passes: 2.6 passes
    // still leave ~7% of the set unseen, and equal tokens are not equal distinct text.
    let train = |x: &crate::experiments::results::SetRecord| x.role == "train";
    let passes = |x: &crate::experiments::results::SetRecord| {
        train(x).then(|| r.scale.tokens_per_run() as f64 / x.size.tokens.max(1) as f64)
    };
    let seen = |x: &crate::experiments::results::SetRecord| passes(x).map(|p| 1.0 - (-p).exp());
    let bytes_per_token = |x: &crate::experiments::results::SetRecord| {
        x.size.text_bytes as f64 / x.size.tokens.max(1) as f64
    };
    Ok(DataFrame::new(vec![
        Column::new(
            "set".into(),
            s.iter().map(|x| x.label()).collect::<Vec<_>>(),
        ),
        Column::new(
            "documents".into(),
            s.iter().map(|x| x.size.documents).collect::<Vec<_>>(),
        ),
        Column::new(
            "tokens".into(),
            s.iter().map(|x| x.size.tokens).collect::<Vec<_>>(),
        ),
        Column::new(
            "text (MB)".into(),
            s.iter()
                .map(|x| x.size.text_bytes as f64 / 1e6)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "bytes/token".into(),
            s.iter().map(bytes_per_token).collect::<Vec<_>>(),
        ),
        Column::new(
            "passes per run".into(),
            s.iter().map(passes).collect::<Vec<_>>(),
        ),
        Column::new("share seen".into(), s.iter().map(seen).collect::<Vec<_>>()),
        Column::new(
            "distinct text seen (MB)".into(),
            s.iter()
                .map(|x| seen(x).map(|f| f * x.size.text_bytes as f64 / 1e6))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "text per run (MB)".into(),
            s.iter()
                .map(|x| {
                    train(x).then(|| r.scale.tokens_per_run() as f64 * bytes_per_token(x) / 1e6)
                })
                .collect::<Vec<_>>(),
        ),
    ])?)
}

/// The bytes of each document of every held-out set as the first run scored it (neutral:
/// the suite's set without its near-copies), in the report's set order: the sets the results
/// list (results written since the suite's neutral set was added list it too).
fn held_out_bytes(r: &Results, dir: &Path) -> Result<Vec<(String, Vec<u64>)>> {
    let Some(run) = r.runs.first() else {
        return Ok(vec![]);
    };
    let mut scores =
        crate::experiments::results::held_out_scores(&dir.join(&run.dir), &r.neutral_excluded)?;
    Ok(r.sets
        .iter()
        .filter(|x| x.role == "eval")
        .filter_map(|set| {
            scores
                .remove(&set.name)
                .map(|d| (set.name.clone(), d.bytes))
        })
        .collect())
}

/// How many documents each held-out set's bits per byte rest on: its documents, and Kish's
/// effective number when each counts by its bytes (as bits per byte counts them).
pub fn held_out_table(r: &Results, dir: &Path) -> Result<Option<DataFrame>> {
    let sets = held_out_bytes(r, dir)?;
    if sets.is_empty() {
        return Ok(None);
    }
    let largest = |b: &Vec<u64>| {
        b.iter().copied().max().unwrap_or(0) as f64 / b.iter().sum::<u64>().max(1) as f64
    };
    Ok(Some(DataFrame::new(vec![
        col("held-out set", sets.iter().map(|x| x.0.clone())),
        Column::new(
            "documents".into(),
            sets.iter().map(|x| x.1.len() as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "text (MB)".into(),
            sets.iter()
                .map(|x| x.1.iter().sum::<u64>() as f64 / 1e6)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "effective documents (by bytes)".into(),
            sets.iter()
                .map(|x| crate::stats::effective_documents(&x.1).round() as u64)
                .collect::<Vec<_>>(),
        ),
        col(
            "largest document (% of bytes)",
            sets.iter().map(|x| format!("{:.1}", 100.0 * largest(&x.1))),
        ),
    ])?))
}

/// The config every grid run of `student` was trained with, checked to be one config but for
/// the seed, the training set, the run's folder and its checkpoint interval.
fn student_config(r: &Results, dir: &Path, student: &str) -> Result<crate::config::RunConfig> {
    let mut first: Option<(serde_json::Value, &str)> = None;
    for run in r.runs.iter().filter(|x| x.student == student) {
        let mut v: serde_json::Value =
            crate::io::read_json(&dir.join(&run.dir).join("config.json"))?;
        let o = v.as_object_mut().context("a run config")?;
        o.remove("out_dir");
        o.remove("data");
        // How often a run saves a checkpoint changes where it can resume, not what it learns
        // (resume is bit-identical): grid runs made before checkpoints every tenth of a run
        // saved only at the end.
        if let Some(t) = o.get_mut("train").and_then(|t| t.as_object_mut()) {
            t.remove("seed");
            t.remove("ckpt_interval");
        }
        match &first {
            None => first = Some((v, &run.dir)),
            Some((f, name)) if *f != v => anyhow::bail!(
                "{} and {}: the runs of `{student}` differ in more than seed and data",
                name,
                run.dir
            ),
            Some(_) => {}
        }
    }
    let run = r
        .runs
        .iter()
        .find(|x| x.student == student)
        .context("a run of the student")?;
    crate::io::read_json(&dir.join(&run.dir).join("config.json"))
}

/// Every hyperparameter, one column per student.
fn hyperparameter_table(r: &Results, dir: &Path) -> Result<DataFrame> {
    let mut cols = vec![];
    let mut names: Vec<&str> = vec![];
    for st in &r.scale.students {
        let c = student_config(r, dir, &st.name)?;
        let m = c.model.resolve(Some(r.scale.vocab_size))?;
        let t = &c.train;
        let params = r
            .runs
            .iter()
            .find(|x| x.student == st.name)
            .map_or(0, |x| x.params);
        let rate = if r.sweep.is_empty() {
            "set"
        } else {
            "from the sweep"
        };
        let rows: Vec<(&str, String)> = vec![
            ("parameters", int(params as u64)),
            ("vocabulary (byte-level BPE)", int(m.vocab_size as u64)),
            ("context (tokens)", int(m.context as u64)),
            (
                "width / layers / heads",
                format!("{} / {} / {}", m.d_model, m.n_layer, m.n_head),
            ),
            ("dropout", num(m.dropout as f64)),
            (
                "sequences per step x tokens",
                format!("{} x {}", t.batch_size * t.grad_accum, t.seq_len),
            ),
            ("optimizer steps", int(t.max_steps)),
            (
                "training tokens per run",
                int(t.max_steps * (t.batch_size * t.grad_accum * t.seq_len) as u64),
            ),
            (
                "tokens per parameter",
                format!("{:.2}", tokens_per_param(r, &st.name)),
            ),
            (
                "tokens per non-embedding parameter",
                format!(
                    "{:.2}",
                    r.scale.tokens_per_run() as f64 / m.non_embedding_params() as f64
                ),
            ),
            ("peak learning rate", format!("{} ({rate})", t.lr)),
            (
                "schedule",
                format!(
                    "linear warmup over {} steps, cosine to {}",
                    t.warmup_steps, t.min_lr
                ),
            ),
            (
                "optimizer",
                format!("AdamW, betas ({}, {}), eps {:e}", t.beta1, t.beta2, t.eps),
            ),
            ("weight decay", t.weight_decay.to_string()),
            ("gradient clipping (global norm)", t.grad_clip.to_string()),
            ("precision", format!("{:?}", t.precision).to_lowercase()),
            ("seeds", format!("{:?}", r.scale.seeds)),
            (
                "held-out windows during training",
                int(t.eval_windows as u64),
            ),
        ];
        names = rows.iter().map(|x| x.0).collect();
        let vals: Vec<String> = rows.into_iter().map(|x| x.1).collect();
        cols.push(Column::new(st.name.as_str().into(), vals));
    }
    cols.insert(0, Column::new("hyperparameter".into(), names));
    Ok(DataFrame::new(cols)?)
}

/// The best (lowest) Kneser-Ney bits per byte of a training set's baselines on a held-out set.
fn best_kn(r: &Results, trained_on: &str, eval: &str) -> Option<(String, f64)> {
    r.baselines
        .iter()
        .filter(|b| b.trained_on == trained_on && b.eval_set == eval && b.name.starts_with("kn-"))
        .min_by(|a, b| a.value.total_cmp(&b.value))
        .map(|b| (b.name.clone(), b.value))
}

/// Training-time bits per byte of one student on one held-out set, per condition (mean over
/// seeds, min-max bars), with each condition's best Kneser-Ney baseline dashed.
fn curves(r: &Results, dir: &Path, student: &str, eval: &str) -> Result<Figure> {
    let (unit, x_label) = if r.scale.tokens_per_run() >= 1_000_000 {
        (1e6, "training tokens (millions)")
    } else {
        (1e3, "training tokens (thousands)")
    };
    let mut series = Vec::new();
    for c in CONDITIONS {
        let mut by: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for run in r
            .runs
            .iter()
            .filter(|x| x.student == student && x.condition == c)
        {
            for line in read_metrics(&dir.join(&run.dir))? {
                if let MetricLine::Eval {
                    tokens, set, bpb, ..
                } = line
                {
                    if set == eval {
                        by.entry(tokens).or_default().push(bpb);
                    }
                }
            }
        }
        let points: Vec<_> = by
            .into_iter()
            .map(|(t, v)| {
                let (lo, hi) = v
                    .iter()
                    .fold((f64::MAX, f64::MIN), |a, &x| (a.0.min(x), a.1.max(x)));
                (t as f64 / unit, crate::stats::mean(&v), lo, hi)
            })
            .collect();
        let x1 = points.last().map_or(1.0, |p| p.0);
        series.push(Series {
            label: format!("trained on {c}"),
            points,
            color: color(c),
            dashed: false,
        });
        if let Some((name, v)) = best_kn(r, c, eval) {
            series.push(Series {
                label: format!("{name} on {c}"),
                points: vec![(0.0, v, v, v), (x1, v, v, v)],
                color: color(c),
                dashed: true,
            });
        }
    }
    Ok(Figure::Lines {
        title: format!("{student}: held-out {eval} text"),
        x_label: x_label.into(),
        y_label: "bits per byte".into(),
        series,
    })
}

fn bars(r: &Results, student: &str) -> Figure {
    let series: Vec<BarSeries> = EVAL_SETS
        .iter()
        .map(|e| {
            let vals = CONDITIONS
                .iter()
                .map(|c| {
                    r.cell(student, c, e, "bpb")
                        .map(|h| (h.mean, h.lo, h.hi))
                        .unwrap_or_default()
                })
                .collect();
            (format!("held-out {e}"), vals)
        })
        .collect();
    Figure::Bars {
        title: format!("{student}: final bits per byte"),
        y_label: "bits per byte (lower is better)".into(),
        groups: CONDITIONS
            .iter()
            .map(|c| format!("trained on {c}"))
            .collect(),
        series,
    }
}

/// What a scale costs on `gpu`: one row per student, then the whole grid.
pub fn plan_table(p: &Scale, gpu: &Gpu) -> Result<DataFrame> {
    let rows = plan(&Exp1, p, gpu)?;
    let per = |f: fn(&PlanRow) -> f64| {
        rows.iter()
            .map(|r| Some(f(r)))
            .chain([None])
            .collect::<Vec<_>>()
    };
    let total = |f: fn(&PlanRow) -> f64| {
        let v: Vec<f64> = rows.iter().map(f).collect();
        let t = v.iter().sum();
        v.into_iter().chain([t]).collect::<Vec<f64>>()
    };
    let student: Vec<String> = rows
        .iter()
        .map(|r| r.student.clone())
        .chain(["all".into()])
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
        Column::new(
            "tokens per parameter".into(),
            per(|r| r.tokens_per_run as f64 / r.params as f64),
        ),
        Column::new("GPU-hours per run".into(), per(|r| r.per_run.gpu_hours)),
        Column::new("GPU-hours".into(), total(|r| r.gpu_hours)),
        Column::new(
            "dollars".into(),
            total(|r| r.dollars)
                .into_iter()
                .map(|d| d.round() as u64)
                .collect::<Vec<_>>(),
        ),
    ])?)
}

/// The paragraph under the plan table: assumptions, and what the original budget covers.
pub fn plan_text(p: &Scale, gpu: &Gpu, original_gpu_hours: f64) -> Result<String> {
    let rows = plan(&Exp1, p, gpu)?;
    let hours: f64 = rows.iter().map(|r| r.gpu_hours).sum();
    let fits = if hours <= original_gpu_hours {
        format!(
            "It fits in the original plan's budget of {original_gpu_hours} GPU-hours (${:.0}).",
            original_gpu_hours * gpu.dollars_per_hour
        )
    } else {
        format!("The original plan's budget of {original_gpu_hours} GPU-hours (${:.0}) covers {:.1}% of it.", original_gpu_hours * gpu.dollars_per_hour, 100.0 * original_gpu_hours / hours)
    };
    let o = p.train_options();
    let runs = rows.first().map_or(1, |r| r.runs);
    let shape = ModelConfig {
        vocab_size: p.vocab_size,
        context: p.seq_len,
        ..ModelConfig::preset("gpt2-small")?
    };
    let better = match crate::budget::compute_optimal(original_gpu_hours, runs, gpu, &shape, o) {
        Some(c) => format!(
            "{runs} runs of a model of {} parameters ({} layers of width {}, GPT-2's aspect) at 20 tokens per parameter fit the original {original_gpu_hours} GPU-hours",
            int(c.param_count() as u64), c.n_layer, c.d_model
        ),
        None => format!("not even a one-layer model fits {runs} compute-optimal runs in {original_gpu_hours} GPU-hours"),
    };
    Ok(format!(
        "Profile `{}`: {} seeds x {} training sets per student, {} optimizer steps of {} micro-batches x {} sequences x {} tokens, tokenizer of {} tokens, on {}, ${} per GPU-hour. {} The grid takes {} GPU-hours (${}), {} hours of wall time on 8 GPUs. {fits}",
        p.profile, p.seeds.len(), CONDITIONS.len(), int(p.steps), p.grad_accum, p.batch_size, p.seq_len, int(p.vocab_size as u64), gpu.name,
        gpu.dollars_per_hour, crate::budget::costing_text(gpu, o), num(hours), int((hours * gpu.dollars_per_hour).round() as u64), num(hours / 8.0)
    ) + &format!(
        " Every run sees {} tokens: {} tokens per parameter for the largest student, well short of the roughly 20 at which a model of that size is trained compute-optimally. The same budget would be better spent on one smaller student: {better}.",
        int(p.tokens_per_run()),
        rows.last().map_or("-".into(), |r| num(r.tokens_per_run as f64 / r.params as f64)),
    ))
}

fn macros(r: &Results, paper: &Scale, gpu: &Gpu) -> Result<Vec<Block>> {
    let m = |name: &str, value: String| Block::Macro {
        name: name.into(),
        value,
    };
    let s = &r.scale;
    let big = &s.students[s.students.len() - 1].name;
    let main = match r.curve.is_empty() {
        true => "curves",
        false => "budget",
    };
    Ok(vec![
        m("ExpOneProfile", s.profile.clone()),
        m("ExpOneTokens", int(s.tokens_per_run())),
        m("ExpOneSeeds", s.seeds.len().to_string()),
        m("ExpOneSteps", int(s.steps)),
        m(
            "ExpOneWallMinutes",
            num(r.runs.iter().map(|x| x.provenance.wall_s).sum::<f64>() / 60.0),
        ),
        m("ExpOneInterval", intervals(r)),
        m("ExpOneHeadline", headline(r)),
        m("ExpOneFindings", findings(r).join(" ")),
        m("ExpOnePlanText", plan_text(paper, gpu, ORIGINAL_GPU_HOURS)?),
        m(
            "ExpOneCurveText",
            crate::report::harness::curve_sentence(&r.curve),
        ),
        // The figure the paper shows: the largest student on real text, against the tokens of
        // finished runs where there is a learning curve, else during training.
        m(
            "ExpOneMainFigure",
            format!("generated/exp1-fig-{main}-{big}-real.tex"),
        ),
        m(
            "ExpOneMainFigureLabel",
            format!("fig:exp1-{main}-{big}-real"),
        ),
    ])
}

/// One sentence with the main numbers: the largest student's bits per byte after training on
/// synthetic vs real data, on each held-out set (means over seeds).
pub fn headline(r: &Results) -> String {
    let big = &r.scale.students[r.scale.students.len() - 1].name;
    let b = |c: &str, e: &str| {
        r.cell(big, c, e, "bpb")
            .map(|h| num(h.mean))
            .unwrap_or_default()
    };
    let who = match r.scale.students.len() {
        1 => "The student",
        _ => "Our largest student",
    };
    format!(
        "{who} (`{big}`, profile `{}`) trained on synthetic data reaches {} bits per byte on held-out real text, against {} when trained on real text; on held-out synthetic text, {} against {}.",
        r.scale.profile, b("synthetic", "real"), b("real", "real"), b("synthetic", "synthetic"), b("real", "synthetic")
    )
}

/// What the results say, per student, in sentences built from the numbers (so they stay true
/// when the results are regenerated): the best training data per held-out set and whether the
/// paired comparison with the next best separates them (interval excluding 0 and Holm-adjusted
/// p < 0.05); then the bar against the n-grams of the students' own training tokens.
pub fn findings(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    let cells = crate::report::bar::cells(r, &CONDITIONS, &BAR_SETS);
    let clears = |st: &str, c: &str, e: &str| {
        cells
            .iter()
            .any(|x| x.student == st && x.condition == c && x.set == e && x.misses().is_empty())
    };
    for st in &r.scale.students {
        let mut parts = Vec::new();
        for e in BAR_SETS {
            let mut ranked: Vec<_> = CONDITIONS
                .iter()
                .filter_map(|c| crate::report::bar::value(r, &st.name, c, e).map(|h| (*c, h)))
                .collect();
            ranked.sort_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
            if ranked.len() < 2 {
                continue;
            }
            let (best, next) = (ranked[0].0, ranked[1].0);
            let pair = CONDITION_PAIRS
                .iter()
                .find(|(x, y)| (*x, *y) == (best, next) || (*x, *y) == (next, best));
            let cmp = pair.and_then(|(x, y)| {
                let label = crate::experiments::results::between_label(&st.name, x, y);
                r.comparisons
                    .iter()
                    .find(|c| c.label == label && c.eval_set == e && c.metric == "bpb")
            });
            let verdict = match cmp {
                Some(c) => {
                    let apart = c.separated(0.05);
                    format!(
                        "{}: {} {} [{}, {}], Holm p = {}{}",
                        if apart { "separated" } else { "not separated" },
                        c.label.split(": ").nth(1).unwrap_or(""),
                        num(c.diff),
                        num(c.lo),
                        num(c.hi),
                        pval(c.p_holm),
                        c.seeds.as_ref().map_or(String::new(), |s| format!(
                            ", {} to {} over the {} seed pairings",
                            num(s.lo),
                            num(s.hi),
                            s.pairs
                        ))
                    )
                }
                None => "not compared".into(),
            };
            // A student no better than an n-gram model of its own tokens has not shown that it
            // learned more than those counts: its lead over the other is then a difference
            // between the corpora (which the n-gram rows show as well), not between students.
            let short: Vec<&str> = [best, next]
                .into_iter()
                .filter(|c| !clears(&st.name, c, e))
                .collect();
            let caveat = match short.as_slice() {
                [] => String::new(),
                [c] => format!("; the student trained on {c} misses the bar here, so this is a difference between corpora rather than between learned models"),
                _ => "; both students miss the bar here, so this is a difference between corpora rather than between learned models".into(),
            };
            parts.push(format!(
                "on {e} text, training on {best} gives the lowest bits per byte ({}; next: {next}, {}; {verdict}{caveat})",
                num(ranked[0].1.mean),
                num(ranked[1].1.mean)
            ));
        }
        if !parts.is_empty() {
            out.push(format!("`{}`: {}.", st.name, parts.join("; ")));
        }
    }
    out.push(crate::report::bar::summary(&cells));
    out
}

fn data_page(r: &Results) -> Result<Page> {
    let a = analysis(r)?;
    let mut b = vec![
        heading(&format!("Statistics (Experiment 1, profile `{}`)", r.scale.profile)),
        text(format!("The training splits, per source (at most 20,000 documents each): documents, words per document (mean, median, 90th percentile), exact and near-duplicate rates (MinHash, Jaccard >= 0.8) and distinct-n (the share of word n-grams that are unique) over the first {} words of each source, so that sources of different sizes compare.", int(crate::generate::stats::DISTINCT_SAMPLE_WORDS as u64))),
        Block::Table { name: "first-look".into(), caption: String::new(), frame: crate::generate::stats::first_look_frame(&a.first_look)? },
        heading("Example records"),
        text("The start of one held-out document per source."),
    ];
    b.push(Block::List(
        a.examples
            .iter()
            .map(|e| format!("**{}** (`{}`): {}", e.source, e.id, md_escape(&e.excerpt)))
            .collect(),
    ));
    Ok(Page {
        name: "exp1-data".into(),
        blocks: b,
    })
}

/// Where some runs finished and with what: each distinct machine with the checkouts its runs
/// finished at (a run's record holds the checkout at its end, not its build) and, when there
/// are several machines, how many runs each trained; the software; the runs' distinct notes.
fn run_records(
    provs: &[&crate::experiments::grid::RunProvenance],
) -> (String, String, Vec<String>) {
    type Machine = (std::collections::BTreeSet<String>, usize);
    let mut machines: std::collections::BTreeMap<String, Machine> = Default::default();
    let mut software = std::collections::BTreeSet::new();
    for p in provs {
        let e = &p.environment;
        let m = format!(
            "{}, {} cores, {}",
            md_escape(&e.cpu),
            e.cores,
            md_escape(&e.os)
        );
        let entry = machines.entry(m).or_default();
        entry.0.insert(format!("`{}`", e.git));
        entry.1 += 1;
        software.insert(format!(
            "synthlm {}, {}, candle {}",
            e.synthlm, e.rustc, e.candle
        ));
    }
    let many = machines.len() > 1;
    let machines = machines
        .into_iter()
        .map(|(m, (commits, n))| {
            let commits = commits.into_iter().collect::<Vec<_>>().join(", ");
            match many {
                true => format!("{commits} on {m} ({n} runs)"),
                false => format!("{commits} on {m}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let software = software.into_iter().collect::<Vec<_>>().join("; ");
    let notes = provs
        .iter()
        .filter_map(|p| p.note.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|n| format!("Note: {}", md_escape(&n)))
        .collect();
    (machines, software, notes)
}

/// How a results file was made: its seeds, the checkouts its runs finished at on each
/// machine, their time, the checkout that aggregated them, the runs' notes, and the same for
/// the learning curve's runs (read from their committed `provenance.json`).
fn provenance_items(r: &Results, dir: &Path) -> Result<Vec<String>> {
    let provs: Vec<_> = r.runs.iter().map(|x| &x.provenance).collect();
    let (machines, software, notes) = run_records(&provs);
    let wall: f64 = r.runs.iter().map(|x| x.provenance.wall_s).sum();
    let mut items = vec![
        format!("Seeds: {:?} (weights, data order and dropout of each run; samples use the run's seed).", r.scale.seeds),
        format!("Runs finished at checkout(s) {machines}; software: {software}."),
        format!("Time: {} training runs, {:.1} min of wall time, {:.3} CPU core-hours.", r.runs.len(), wall / 60.0, r.runs.iter().map(|x| x.provenance.cpu_core_hours).sum::<f64>()),
        format!("Aggregated (scored, baselines, this report's numbers) at checkout `{}`.", r.aggregated_by.git),
    ];
    items.extend(notes);
    let provs = curve_provenances(r, dir)?;
    if !provs.is_empty() {
        let (machines, software, notes) = run_records(&provs.iter().collect::<Vec<_>>());
        let wall: f64 = provs.iter().map(|p| p.wall_s).sum();
        let core_hours: f64 = provs.iter().map(|p| p.cpu_core_hours).sum();
        let n = match provs.len() {
            1 => "1 training run".to_string(),
            n => format!("{n} training runs"),
        };
        items.push(format!("Learning curve: {n} besides the grid's (under `curve/`), {:.1} min of wall time, {core_hours:.3} CPU core-hours, finished at checkout(s) {machines}; software: {software}.", wall / 60.0));
        items.extend(notes.into_iter().map(|n| format!("Learning curve: {n}")));
    }
    Ok(items)
}

/// The committed records of the learning curve's own runs (not the grid's 1x runs), one per
/// run, in folder order.
fn curve_provenances(
    r: &Results,
    dir: &Path,
) -> Result<Vec<crate::experiments::grid::RunProvenance>> {
    let runs: std::collections::BTreeSet<String> = r
        .curve
        .iter()
        .filter(|x| x.multiple != 1.0)
        .map(|x| crate::experiments::curve::run_dir(&x.student, &x.condition, x.seed, x.steps))
        .collect();
    runs.iter()
        .map(|d| crate::io::read_json(&dir.join(d).join(crate::experiments::grid::PROVENANCE)))
        .collect()
}

fn reproducibility_page(r: &Results, dir: &Path, probe: Option<&Results>) -> Result<Page> {
    let s = &r.scale;
    let mut items = vec![format!("Command: `bash scripts/reproduce.sh {0}` (or `synthlm experiment --number 1 --profile {0}`, then `synthlm report --number 1 --profile {0}`); scale: `configs/experiments/exp1/{0}.toml`.", s.profile)];
    items.extend(provenance_items(r, dir)?);
    if let Some(p) = probe {
        items.push(format!("Probe (`{0}`): trained by the same main job, or by `synthlm experiment --number 1 --profile {0}`, and reported within these pages; scale: `configs/experiments/exp1/{0}.toml`.", p.scale.profile));
        items.extend(
            provenance_items(p, &probe_dir(dir, p))?
                .into_iter()
                .map(|x| format!("Probe (`{}`): {x}", p.scale.profile)),
        );
    }
    let df = DataFrame::new(vec![
        Column::new(
            "input".into(),
            r.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "what".into(),
            r.inputs
                .iter()
                .map(|i| md_escape(&i.detail))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "SHA-256 (first 16 hex digits)".into(),
            r.inputs
                .iter()
                .map(|i| i.sha256.chars().take(16).collect::<String>())
                .collect::<Vec<_>>(),
        ),
    ])?;
    Ok(Page {
        name: "exp1-reproducibility".into(),
        blocks: vec![
            heading(&format!("Experiment 1, profile `{}`", s.profile)),
            Block::List(items),
            Block::Table {
                name: "inputs".into(),
                caption: "Inputs, by SHA-256.".into(),
                frame: df,
            },
        ],
    })
}
