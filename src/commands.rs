//! What the command line's experiment and report commands do, as library calls: the
//! `synthlm` binary only parses arguments and calls these (so a program, or a test, that
//! registers an experiment runs it exactly as the command line would).

use crate::budget::Gpu;
use crate::experiments::{self, scale::Scale, Paths};
use crate::filter::agreement::{agreement, Graded};
use crate::generate::{seeds::Seeds, serve::TeacherBackend, GenSettings, RunOptions};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// `synthlm experiment --number N --profile P --restore-weights`: retrain the finished runs
/// whose kept weights are missing, each checked bit for bit against its committed record.
pub fn restore_weights(root: &Path, number: u32, profile: &str, progress: bool) -> Result<String> {
    let e = experiments::find(number)?;
    let s = Scale::standard(root, number, profile)?;
    let paths = Paths::standard(root, number, profile);
    let done = experiments::restore_weights(e, &s, &paths, progress)?;
    Ok(if done.is_empty() {
        format!(
            "every finished run of {} at {profile} has its weights",
            e.name()
        )
    } else {
        format!(
            "retrained bit for bit, weights kept in RUN/{}: {}",
            experiments::grid::WEIGHTS,
            done.join(", ")
        )
    })
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
    let gpu = crate::report::gpu::rtx4090(&crate::experiments::provenance::project_root());
    let rows = experiments::plan(e, s, &gpu)?;
    let mut out = format!(
        "Experiment {} at profile `{}` on {}, ${}/GPU-hour. {}\n\n| student | parameters | runs | tokens per run | tokens per parameter | GPU-hours per run | GPU-hours | dollars |\n|---|---|---|---|---|---|---|---|\n",
        e.number(), s.profile, gpu.name, gpu.dollars_per_hour, crate::budget::costing_text(&gpu, s.train_options())
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
    let summary = root.join(crate::generate::summary::SUMMARY);
    if number.is_none() && summary.exists() {
        let s = crate::io::read_json(&summary)?;
        let source = crate::generate::summary::SUMMARY;
        crate::report::write(&crate::report::corpora::report(&s, source)?, root)?;
        out += &format!("corpora: wrote book/src/generated/ and paper/generated/ from {source}\n");
    }
    if let (None, Some(dir)) = (number, crate::report::gpu::latest(root)?) {
        let source = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
        let r = crate::report::gpu::GpuResults::load(&dir)?;
        crate::report::write(&crate::report::gpu::report(&r, &source)?, root)?;
        out += &format!("gpu: wrote book/src/generated/ and paper/generated/ from {source}\n");
    }
    Ok(out)
}

/// The teacher at `path`, or the installed one.
fn load_teacher(path: Option<&Path>) -> Result<crate::generate::Teacher> {
    match path {
        Some(p) => crate::generate::Teacher::load_from(p),
        None => crate::generate::Teacher::load(),
    }
}

/// `synthlm generate run`: records `0..records` of one generator into `out`, continuing what
/// is there (kill-safe); says so without loading the teacher when every record is settled.
pub fn generate_run(
    mut settings: GenSettings,
    teacher: Option<&Path>,
    seeds: &Path,
    out: &Path,
    records: u64,
    slots: usize,
    shard_records: usize,
) -> Result<String> {
    let mut output = String::new();
    let generator = settings.generator;
    // Nothing left to do (same settings, every record settled): say so without loading
    // the teacher (seconds and a gigabyte), so re-running the corpus script is cheap.
    let manifest = out.join(crate::generate::shards::MANIFEST);
    if manifest.exists() {
        let m: crate::generate::shards::GenManifest = crate::io::read_json(&manifest)?;
        settings.teacher_sha256 = m.settings.teacher_sha256.clone();
        let settled = m.settled();
        if m.settings == settings && (0..records.max(m.target)).all(|i| settled.contains(&i)) {
            output += &format!(
                "{}: all {} records settled ({} kept, {} dropped); nothing to do in {}\n",
                generator.name(),
                records.max(m.target),
                m.records,
                m.dropped.len(),
                out.display()
            );
            return Ok(output);
        }
    }
    let t = load_teacher(teacher)?;
    settings.teacher_sha256 = t.sha256.clone();
    let seeds = Seeds::load(seeds)?;
    let mut backend = TeacherBackend {
        teacher: &t,
        run: RunOptions {
            slots,
            ..Default::default()
        },
        settings: settings.clone(),
    };
    let pb = crate::progress::bar(records, "records", generator.name());
    let r = crate::generate::generate(
        &settings,
        &seeds,
        out,
        records,
        shard_records,
        &mut backend,
        Some(&pb),
    )?;
    pb.finish();
    output += &format!(
        "{}: {} records and {} dropped this session, {} teacher tokens in {:.0} s ({:.0} tokens/s); output in {}\n",
        generator.name(), r.records, r.dropped, r.teacher_tokens, r.seconds, r.teacher_tokens as f64 / r.seconds.max(1e-9), out.display()
    );
    Ok(output)
}

/// `synthlm generate show`: a few records into a scratch folder, every teacher call printed
/// (prompt end, answer, how it stopped) and what became of each record.
pub fn generate_show(
    mut settings: GenSettings,
    teacher: Option<&Path>,
    seeds: &Path,
    records: u64,
) -> Result<String> {
    let mut out = String::new();
    let t = load_teacher(teacher)?;
    settings.teacher_sha256 = t.sha256.clone();
    let mut backend = TeacherBackend {
        teacher: &t,
        run: RunOptions::default(),
        settings: settings.clone(),
    };
    let mut log = crate::generate::driver::Transcript {
        inner: &mut backend,
        calls: vec![],
    };
    let dir = tempfile::tempdir()?;
    crate::generate::generate(
        &settings,
        &Seeds::load(seeds)?,
        dir.path(),
        records,
        1000,
        &mut log,
        None,
    )?;
    for (i, prompt, a) in &log.calls {
        let tail: String = prompt
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        out += &format!("=== record {i}: prompt ends ...{tail:?}\n--- answer ({} tokens, {}, logprob/token {:.2}):\n{}\n\n", a.tokens, if a.finished { "ended" } else { "hit the cap" }, a.logprob / a.tokens.max(1) as f64, a.text);
    }
    let m = crate::generate::shards::ShardedWriter::open(dir.path(), &settings, 0, 1)?.manifest;
    out += &format!("kept {} records; dropped: {:?}\n", m.records, m.dropped);
    Ok(out)
}

/// `synthlm generate stats`: the first look and the recipe checks of generated folders (one
/// family, or a folder of families such as `data/generated/v2`), families named
/// `VERSION/FAMILY` so that versions show side by side; `json`: also the first look as JSON.
pub fn generate_stats(dirs: &[PathBuf], json: Option<&Path>) -> Result<String> {
    let corpora = crate::generate::stats::load_families(dirs)?;
    let mut df = crate::generate::stats::first_look(&corpora)?;
    let checks: Vec<_> = corpora
        .iter()
        .map(|(name, docs)| crate::generate::stats::recipe_checks(name, docs))
        .collect();
    let mut out = format!(
        "{df}\n{}\n",
        crate::generate::stats::recipe_checks_frame(&checks)?
    );
    for c in &checks {
        out += &format!(
            "{}: most common opening {:?} ({:.1}%)\n",
            c.corpus,
            c.top_opening,
            100.0 * c.top_opening_share
        );
    }
    for d in dirs
        .iter()
        .flat_map(|d| crate::generate::stats::family_dirs(d))
    {
        let m: crate::generate::shards::GenManifest =
            crate::io::read_json(&d.1.join(crate::generate::shards::MANIFEST))?;
        // recipe 1's manifests predate kept/dropped tokens and the truncation share: "-", not 0
        let r2 = |x: String| {
            if m.settings.recipe >= 2 {
                x
            } else {
                "-".into()
            }
        };
        out += &format!(
            "{}: {} records kept, {} dropped {:?}; teacher tokens {} (kept text {}, dropped {}); truncated share {}; required-words share {}\n",
            d.0, m.records, m.dropped.len(), m.dropped_by, m.teacher_tokens, r2(m.kept_tokens.to_string()),
            r2(m.dropped_tokens.to_string()), r2(format!("{:.3}", m.truncated_share)),
            m.required_words_share.map_or("-".into(), |x| format!("{x:.3}"))
        );
    }
    if let Some(path) = json {
        crate::report::tables::write_json(path, &mut df)?;
    }
    Ok(out)
}

/// The students `synthlm budget` costs.
const PAPER_STUDENTS: [&str; 3] = ["gpt2-small", "gpt-500m", "gpt-1b"];

/// `synthlm budget`'s memory table: each paper student per GPU, plain, checkpointed, and
/// checkpointed with ZeRO-1, at Experiment 1's paper profile over `gpus` GPUs.
fn memory_table(gpu: &Gpu, scale: &Scale, gpus: usize) -> Result<String> {
    use crate::budget::train_memory;
    let o = scale.train_options();
    let mut out = String::new();
    let rows = (scale.batch_size / gpus.max(1)).max(1);
    let bf16 = scale.precision == crate::config::Precision::Bf16;
    out += &format!("\nMemory per GPU, GB (10^9 bytes), at {rows} sequences x {} tokens per micro-batch per GPU and vocabulary {} (Experiment 1's paper profile over {gpus} GPUs, {}, {} micro-batches per step): master weights{} + gradients + AdamW moments + activations and f32 logits. An op-by-op count of our implementation, checked against peak RSS on the CPU; {}.\n\n| student | weights+grads+AdamW | activations | total | checkpointed | checkpointed + ZeRO-1 | fits {} GiB less {:.1} GiB reserved |\n|---|---|---|---|---|---|---|\n", scale.seq_len, scale.vocab_size, if bf16 { "bf16 matmuls" } else { "f32" }, scale.grad_accum, if bf16 { " + bf16 copies" } else { "" }, crate::report::gpu::planner_memory_note(&crate::experiments::provenance::project_root()).unwrap_or_else(|| "not yet measured on a GPU".into()), gpu.memory_gib, crate::budget::RESERVED_BYTES / (1u64 << 30) as f64);
    for preset in PAPER_STUDENTS {
        let c = crate::model::ModelConfig::preset(preset)?.with_vocab(scale.vocab_size);
        let gb = |x: f64| x / 1e9;
        let mem = |checkpointing: bool, zero1_ranks: usize| {
            let o = crate::budget::TrainOptions {
                checkpointing,
                zero1_ranks,
                ..o
            };
            train_memory(&c, rows, scale.seq_len, o)
        };
        let (plain, ck, z) = (mem(false, 1), mem(true, 1), mem(true, gpus));
        let cap = gpu.memory_bytes() - crate::budget::RESERVED_BYTES;
        let fits = if plain.total <= cap {
            "yes"
        } else if ck.total <= cap {
            "with checkpointing"
        } else if z.total <= cap {
            "with checkpointing and ZeRO-1"
        } else {
            "no: fewer sequences per micro-batch"
        };
        out += &format!(
            "| {preset} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {fits} |\n",
            gb(plain.weights + plain.grads + plain.optimizer),
            gb(plain.activations),
            gb(plain.total),
            gb(ck.total),
            gb(z.total)
        );
    }
    Ok(out)
}

/// `synthlm budget`: what `gpu_hours` buy per paper-scale student, the compute-optimal cost of
/// each, the memory one GPU needs (with and without gradient checkpointing and ZeRO-1), and
/// what Experiment 1's paper profile trains for its money.
pub fn budget(gpu_hours: f64, gpus: usize) -> Result<String> {
    use crate::budget::{chinchilla_tokens, compute_optimal, run_budget, tokens_for_gpu_hours};
    let gpu = crate::report::gpu::rtx4090(&crate::experiments::provenance::project_root());
    let scale = crate::experiments::scale::Scale::standard(
        &crate::experiments::provenance::project_root(),
        1,
        "paper",
    )?;
    let o = scale.train_options();
    let mut out = format!(
        "{}, ${}/GPU-hour, {} GiB, {gpus} GPUs, trained as Experiment 1's paper profile trains. {}\n\n| student | params | tokens {gpu_hours} GPU-h buy | tokens per param | compute-optimal tokens (20/param) | their GPU-hours | wall hours | $ |\n|---|---|---|---|---|---|---|---|\n",
        gpu.name, gpu.dollars_per_hour, gpu.memory_gib, crate::budget::costing_text(&gpu, o)
    );
    for preset in PAPER_STUDENTS {
        let t = chinchilla_tokens(preset)?;
        let b = run_budget(preset, t, &gpu, gpus, o)?;
        let plan = tokens_for_gpu_hours(preset, gpu_hours, &gpu, o)?;
        out += &format!(
            "| {preset} | {} | {:.2}B | {:.1} | {:.2}B | {:.0} | {:.1} | {:.0} |\n",
            b.params,
            plan as f64 / 1e9,
            plan as f64 / b.params as f64,
            t as f64 / 1e9,
            b.gpu_hours,
            b.wall_hours,
            b.dollars
        );
    }
    out += &memory_table(&gpu, &scale, gpus)?;
    let tokens = scale.tokens_per_run();
    let runs = scale.seeds.len() * crate::experiments::exp1::CONDITIONS.len();
    let per_param = |p: &str| -> Result<f64> {
        let c = crate::model::ModelConfig::preset(p)?.with_vocab(scale.vocab_size);
        Ok(tokens as f64 / c.param_count() as f64)
    };
    let shape = crate::model::ModelConfig {
        vocab_size: scale.vocab_size,
        context: scale.seq_len,
        ..crate::model::ModelConfig::preset("gpt2-small")?
    };
    let better = match compute_optimal(gpu_hours, runs, &gpu, &shape, o) {
        Some(c) => format!("{runs} runs of a {:.0}M-parameter student ({} layers of width {}, GPT-2's aspect, at the profile's vocabulary and context) at 20 tokens per parameter, costed as above", c.param_count() as f64 / 1e6, c.n_layer, c.d_model),
        None => format!("not even a one-layer student fits {runs} compute-optimal runs"),
    };
    out += &format!(
        "\nExperiment 1's paper profile trains each of {runs} runs per student on {:.2}B tokens: {:.1} tokens per parameter for gpt2-small, {:.2} for gpt-1b, far below the ~20 at which a model of that size is trained compute-optimally. A better use of {gpu_hours} GPU-hours: {better}, plus a single-seed probe of gpt2-small, rather than a 1B model trained on a fraction of a token per parameter.\n",
        tokens as f64 / 1e9,
        per_param("gpt2-small")?,
        per_param("gpt-1b")?,
    );
    Ok(out)
}

/// `synthlm eval-items`: build the suite's fixed items under `out` (word frequencies from the
/// v1 synthetic families and the real corpus; the cloze from the neutral documents) and record
/// the neutral set.
pub fn eval_items(root: &Path, out: &Path, seed: u64, per_task: usize) -> Result<String> {
    use crate::experiments::corpora;
    let mut synthetic = Vec::new();
    for g in crate::generate::Generator::ALL {
        synthetic.extend(corpora::generated(&root.join("data/generated/v1"), g)?);
    }
    let (syn_train, _) = corpora::split(synthetic);
    let (real_train, _) = corpora::split(corpora::real_of_project(root)?);
    let (neutral, nm) = crate::eval::neutral::extract()?;
    std::fs::create_dir_all(out)?;
    crate::io::write_json(&out.join(crate::eval::items::NEUTRAL), &nm)?;
    let m = crate::eval::items::build(out, &syn_train, &real_train, &neutral, seed, per_task)?;
    Ok(format!(
        "wrote {} item files to {} ({:?}); neutral set: {} documents, {} bytes\n",
        m.files.len(),
        out.display(),
        m.counts,
        nm.documents,
        nm.text_bytes
    ))
}

/// `synthlm eval RUN --suite`: the whole suite on each weight snapshot of a run and on its
/// final weights, beside n-gram baselines; `RUN/suite.json`; the tables.
pub fn eval_suite(run: &Path, items_dir: &Path, work: &Path, progress: bool) -> Result<String> {
    let items = crate::eval::suite::SuiteItems::load(items_dir)?;
    let teacher = crate::generate::Teacher::load()?;
    let report = crate::eval::suite_run::evaluate_run(run, &items, &teacher, work, progress)?;
    Ok(suite_text(&report))
}

/// The suite's rows, and the separation of the first and last step, as Markdown tables.
pub fn suite_text(r: &crate::eval::suite_run::SuiteReport) -> String {
    use crate::report::tables::num;
    let mut out = String::new();
    for (step, rows) in &r.evaluated {
        out += &format!("\n{} at step {step}:\n\n| metric | part | value [interval] | interval | chance | items | core-s |\n|---|---|---|---|---|---|---|\n", r.run);
        for x in rows {
            out += &format!(
                "| {} | {} | {} [{}, {}] | {} | {} | {} | {:.1} |\n",
                x.metric,
                x.eval_set,
                num(x.value),
                num(x.lo),
                num(x.hi),
                x.interval,
                x.chance.map_or("-".into(), num),
                x.items,
                x.cost_cpu_s
            );
        }
    }
    if let (Some((step, last)), false) = (r.evaluated.last(), r.baselines.is_empty()) {
        let names: Vec<&str> = r.baselines.iter().map(|(n, _)| n.as_str()).collect();
        out += &format!("\nThe student at step {step} beside n-gram models counted on the positions it saw (same items):\n\n| metric | part | chance | student | {} |\n|---|---|---|---|{}\n", names.join(" | "), "---|".repeat(names.len()));
        for x in last {
            let same = |y: &&crate::eval::suite::MetricRow| {
                y.metric == x.metric && y.eval_set == x.eval_set
            };
            let b: Vec<String> = r
                .baselines
                .iter()
                .map(|(_, rows)| rows.iter().find(same).map_or("-".into(), |y| num(y.value)))
                .collect();
            out += &format!(
                "| {} | {} | {} | {} | {} |\n",
                x.metric,
                x.eval_set,
                x.chance.map_or("-".into(), num),
                num(x.value),
                b.join(" | ")
            );
        }
    }
    if !r.separation.is_empty() {
        let (a, b) = (r.evaluated[0].0, r.evaluated[r.evaluated.len() - 1].0);
        out += &format!("\nStep {a} against step {b}: paired over items, exact sign test, Holm-corrected over the {} metrics (informative: p < 0.05 after correction); the interval is the 95% bootstrap of the mean difference:\n\n| metric | part | step {a} | step {b} | difference [95%] | items that differ | p (Holm) | informative at this scale |\n|---|---|---|---|---|---|---|---|\n", r.separation.len());
        let say = |s: &crate::eval::suite::Separation| match (s.informative, s.improved) {
            (true, Some(true)) => "yes: better",
            (true, Some(false)) => "yes: worse",
            (true, None) => "yes: changed",
            _ => "no",
        };
        for s in &r.separation {
            out += &format!(
                "| {} | {} | {} | {} | [{}, {}] | {} of {} | {} | {} |\n",
                s.metric,
                s.eval_set,
                num(s.early),
                num(s.fin),
                num(s.diff_lo),
                num(s.diff_hi),
                s.discordant,
                s.paired,
                if s.p_holm < 0.001 {
                    "<0.001".to_string()
                } else {
                    format!("{:.3}", s.p_holm)
                },
                say(s)
            );
        }
    }
    out
}

/// One pool's column of the quality table: folder name, records, mean teacher NLL, mean
/// real-text n-gram bits per byte, rule shares.
type PoolColumn = (
    String,
    usize,
    Option<f64>,
    Option<f64>,
    BTreeMap<String, f64>,
);

/// `synthlm quality DIR...`: the quality signals of every family of each generated-corpus
/// folder (e.g. `data/generated/v1 data/generated/v2`), written to `out/NAME/FAMILY.json`, and
/// per family a table of the share of records each rule rejects, the folders side by side.
pub fn quality(root: &Path, dirs: &[PathBuf], out: &Path) -> Result<String> {
    use crate::filter::{heuristics::Thresholds, reference::Reference, signals};
    let gguf = crate::generate::teacher::find_gguf()?;
    let tok = crate::generate::tokenizer_from_gguf(&crate::generate::teacher::read_gguf(&gguf)?)?;
    let reference = Reference::fit(&experiments::corpora::real_of_project(root)?, tok)?;
    eprintln!(
        "real-text reference: Kneser-Ney 3-gram on {} documents, {} teacher tokens",
        reference.documents, reference.tokens
    );
    let mut pools = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .map_or("pool".into(), |n| n.to_string_lossy().to_string());
        for g in crate::generate::Generator::ALL {
            if dir.join(g.name()).join("manifest.json").exists() {
                pools.push((
                    name.clone(),
                    dir,
                    g,
                    experiments::corpora::generated(dir, g)?,
                ));
            }
        }
    }
    let total = pools.iter().map(|p| p.3.len() as u64).sum();
    let pb = crate::progress::bar(total, "records", "quality");
    let mut shares: BTreeMap<String, Vec<PoolColumn>> = BTreeMap::new();
    for (name, dir, g, docs) in pools {
        let pool = dir.join(g.name()).display().to_string();
        pb.set_message(pool.clone());
        let q = signals::score(&docs, &pool, &Thresholds::default(), Some(&reference), &pb);
        crate::io::write_json(&out.join(&name).join(format!("{}.json", g.name())), &q)?;
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| crate::stats::mean(&v));
        let nll = mean(q.records.iter().filter_map(|r| r.teacher_nll).collect());
        let kn = mean(q.records.iter().filter_map(|r| r.real_kn_bpb).collect());
        shares.entry(g.name().to_string()).or_default().push((
            name.clone(),
            docs.len(),
            nll,
            kn,
            signals::rule_shares(&q),
        ));
    }
    pb.finish();
    let mut text = String::new();
    for (family, cols) in &shares {
        let row = |label: &str, f: &dyn Fn(&PoolColumn) -> String| {
            format!(
                "| {label} | {} |\n",
                cols.iter().map(f).collect::<Vec<_>>().join(" | ")
            )
        };
        let mean = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.3}"));
        text += &format!("\n{family}: share of records each rule rejects\n\n");
        text += &row("rule", &|c| c.0.clone());
        text += &format!("|---|{}\n", "---|".repeat(cols.len()));
        text += &row("records", &|c| crate::report::tables::int(c.1 as u64));
        text += &row("teacher NLL per token (mean)", &|c| mean(c.2));
        text += &row("real-text KN-3 bits per byte (mean)", &|c| mean(c.3));
        let rules: std::collections::BTreeSet<&String> =
            cols.iter().flat_map(|c| c.4.keys()).collect();
        for r in rules {
            text += &row(r, &|c| {
                format!("{:.1}%", 100.0 * c.4.get(r).copied().unwrap_or(0.0))
            });
        }
    }
    Ok(text)
}

/// `synthlm label-sheet DIR OUT`: a labelling sheet of `per_family` records of every family of
/// a generated-corpus folder (rubric: data/labels/GUIDE.md), drawn from the training split only
/// (held-out records are the experiments' test sets, and the classifier is fitted on the
/// sheet); never overwrites a sheet. With `append`, `per_family` more records of each family,
/// none already on the sheet, are added after its rows (kept as they are, labels and all).
pub fn label_sheet(
    dir: &Path,
    out: &Path,
    per_family: usize,
    seed: u64,
    append: bool,
) -> Result<String> {
    use crate::filter::labels::{append_to_sheet, draw, read_sheet, write_sheet};
    let mut pools = Vec::new();
    for g in crate::generate::Generator::ALL {
        if dir.join(g.name()).join("manifest.json").exists() {
            let mut docs = experiments::corpora::generated(dir, g)?;
            docs.retain(|d| !experiments::corpora::is_held_out(d));
            pools.push((g.name().to_string(), docs));
        }
    }
    let on_sheet = match append {
        true => read_sheet(out)?
            .into_iter()
            .map(|r| (r.family, r.id))
            .collect(),
        false => Default::default(),
    };
    let rows = draw(&pools, per_family, seed, &on_sheet);
    match append {
        true => append_to_sheet(out, &rows)?,
        false => write_sheet(out, &rows)?,
    }
    Ok(format!("wrote {} rows ({} families) to {}; label them by data/labels/GUIDE.md before looking at any model score\n", rows.len(), pools.len(), out.display()))
}

/// `synthlm annotate SHEET OUT`: the LLM annotator's scores of a labelling sheet, and their
/// agreement with its hand labels (or that there are none yet).
pub fn annotate(sheet: &Path, out: &Path) -> Result<String> {
    use crate::filter::annotator::{agreement, annotate_sheet, find_gguf, Annotator};
    let rows = crate::filter::labels::read_sheet(sheet)?;
    let mut a = Annotator::load(&find_gguf()?)?;
    let ann = annotate_sheet(&mut a, &rows, out)?;
    let mut text = format!("{} records annotated in {}\n", ann.len(), out.display());
    let mean = |f: &str| {
        let v: Vec<f64> = ann
            .iter()
            .filter(|x| x.family == f)
            .map(|x| x.annotation.expected)
            .collect();
        (v.len(), crate::stats::mean(&v))
    };
    for f in ["stories", "cosmo", "instruct", "magpie"] {
        let (n, m) = mean(f);
        if n > 0 {
            text += &format!("{f}: {n} records, mean expected score {m:.2}\n");
        }
    }
    text += &match agreement(&rows, &ann) {
        Some(g) => format!("agreement with the hand labels over {}\n", g.line()),
        None => "no hand labels on the sheet yet: the annotator is not validated and is not a quality signal\n".into(),
    };
    Ok(text)
}

/// The quality files of the families on a labelling sheet, each checked against its pool:
/// `quality/FAMILY.json` must have been scored on exactly the records of `corpus/FAMILY`.
fn sheet_quality(
    corpus: &Path,
    quality: &Path,
    families: &std::collections::BTreeSet<String>,
) -> Result<BTreeMap<String, (PathBuf, crate::filter::signals::QualityFile)>> {
    let mut out = BTreeMap::new();
    for g in crate::generate::Generator::ALL {
        if !families.contains(g.name()) {
            continue;
        }
        let docs = experiments::corpora::generated(corpus, g)?;
        let path = quality.join(format!("{}.json", g.name()));
        let q = crate::filter::signals::load_for(&path, &docs)?;
        out.insert(g.name().to_string(), (path, q));
    }
    Ok(out)
}

/// (reference, grader) pairs over the hand-labelled records of the sheet, for the annotator
/// and for the classifier's held-out predictions (`held_out`, in `ann`'s order).
fn hand_label_pairs(
    rows: &[crate::filter::labels::LabelRow],
    ann: &[crate::filter::annotator::SheetAnnotation],
    held_out: &[f64],
) -> [(&'static str, Vec<(Graded, Graded)>); 2] {
    let labelled = |grader: &dyn Fn(usize) -> Graded| -> Vec<(Graded, Graded)> {
        ann.iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let r = rows.iter().find(|r| r.id == a.id && r.family == a.family)?;
                Some((Graded::label(r.label?), grader(i)))
            })
            .collect()
    };
    [
        ("annotator", labelled(&|i| ann[i].annotation.graded())),
        ("classifier", labelled(&|i| Graded::score(held_out[i]))),
    ]
}

/// Score every record of each pool with `c` into its quality file (recording the classifier
/// file's hash); one line per family.
fn score_pools(
    c: &crate::filter::classifier::Classifier,
    sha: &str,
    files: &mut BTreeMap<String, (PathBuf, crate::filter::signals::QualityFile)>,
) -> Result<String> {
    let mut text = String::new();
    for (family, (path, q)) in files.iter_mut() {
        for r in q.records.iter_mut() {
            r.classifier = Some(c.score(r));
        }
        q.classifier = Some(sha.to_string());
        crate::io::write_json(path, q)?;
        let s: Vec<f64> = q.records.iter().filter_map(|r| r.classifier).collect();
        let keep = s.iter().filter(|&&x| Graded::score(x).grade >= 3).count();
        text += &format!(
            "{family}: {} records scored, mean {:.2}, {:.1}% graded >= 3\n",
            s.len(),
            crate::stats::mean(&s),
            100.0 * keep as f64 / s.len().max(1) as f64
        );
    }
    Ok(text)
}

/// The classifier file: what it was trained on (with hashes), its agreement, its weights.
fn classifier_file(
    sheet: &Path,
    annotations: &Path,
    c: &crate::filter::classifier::Classifier,
    vs_annotator: &[(Graded, Graded)],
    by_hand: &[(&str, Vec<(Graded, Graded)>)],
) -> Result<serde_json::Value> {
    Ok(serde_json::json!({
        "trained_on": {
            "sheet": sheet.display().to_string(),
            "sheet_sha256": crate::io::sha256_file(sheet)?,
            "annotations": annotations.display().to_string(),
            "annotations_sha256": crate::io::sha256_file(annotations)?,
            "target": "the annotator's expected score",
        },
        "held_out_agreement_with_annotator": agreement(vs_annotator),
        "agreement_with_hand_labels": by_hand.iter().map(|(w, p)| (w.to_string(), agreement(p))).collect::<BTreeMap<_, _>>(),
        "classifier": c,
    }))
}

/// `synthlm classify SHEET ANNOTATIONS`: fit the quality classifier on the annotator's grades
/// of the sheet's records (their signals from `quality/FAMILY.json`, each checked against
/// `corpus/FAMILY`), report its held-out agreement with the annotator and, where the sheet has
/// hand labels, the annotator's and the classifier's agreement with them; write the classifier
/// to `out` and its score of every record into the quality files.
pub fn classify(
    sheet: &Path,
    annotations: &Path,
    corpus: &Path,
    quality: &Path,
    out: &Path,
) -> Result<String> {
    use crate::filter::classifier::{out_of_fold, Classifier, Example};
    let rows = crate::filter::labels::read_sheet(sheet)?;
    let ann = crate::filter::annotator::read_annotations(annotations, &rows)?;
    if ann.is_empty() {
        bail!(
            "{}: no annotations (run `synthlm annotate` first)",
            annotations.display()
        );
    }
    let families = ann.iter().map(|a| a.family.clone()).collect();
    let mut files = sheet_quality(corpus, quality, &families)?;
    let mut ex = Vec::new();
    for a in &ann {
        let (path, q) = &files[&a.family];
        let Some(r) = q.records.iter().find(|r| r.id == a.id) else {
            bail!(
                "{}: record {} ({}) of {} is not in the pool it was scored on",
                path.display(),
                a.id,
                a.family,
                annotations.display()
            );
        };
        ex.push(Example {
            key: format!("{}/{}", a.family, a.id),
            signals: r,
            target: a.annotation.expected,
        });
    }
    let held_out = out_of_fold(&ex)?;
    let vs_annotator: Vec<(Graded, Graded)> = ann
        .iter()
        .zip(&held_out)
        // the classifier learns the expected score, so it is compared with that (rounded for
        // the grade), not with the annotator's most likely digit
        .map(|(a, &p)| (Graded::score(a.annotation.expected), Graded::score(p)))
        .collect();
    let mut text =
        format!(
        "classifier (5-fold held-out predictions) against the annotator it learns from, over {}\n",
        agreement(&vs_annotator).expect("annotations are not empty").line()
    );
    let by_hand = hand_label_pairs(&rows, &ann, &held_out);
    for (who, pairs) in &by_hand {
        text += &match agreement(pairs) {
            Some(g) => format!("{who} against the hand labels, over {}\n", g.line()),
            None => format!("{who}: no hand labels on the sheet yet, so not validated\n"),
        };
    }
    let c = Classifier::fit(&ex)?;
    drop(ex);
    let file = classifier_file(sheet, annotations, &c, &vs_annotator, &by_hand)?;
    crate::io::write_json(out, &file)?;
    let sha = crate::io::sha256_file(out)?;
    text += &format!(
        "penalty {}; strongest inputs (standardised weights): {}\nwrote {}\n",
        c.lambda,
        c.strongest(5)
            .iter()
            .map(|(n, w)| format!("{n} {w:+.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        out.display()
    );
    text += &score_pools(&c, &sha, &mut files)?;
    Ok(text)
}

/// Inputs of `synthlm corpora`.
pub struct CorporaInputs {
    /// Generated-corpus folders, oldest version first (e.g. data/generated/v1, v2).
    pub dirs: Vec<PathBuf>,
    /// The quality files (`synthlm quality --out`), then scored by `synthlm classify`.
    pub quality: PathBuf,
    pub sheet: PathBuf,
    /// An independent second labelling of some of the sheet's rows (a sheet of its own), if any.
    pub second_pass: Option<PathBuf>,
    pub annotations: PathBuf,
    pub classifier: PathBuf,
    /// Time the annotator on [`TIMED_RECORDS`] sheet records (needs `setup.sh annotator`).
    pub time_annotator: bool,
    /// Time the teacher's NLL (a forward pass) on the same records (needs the teacher).
    pub time_teacher: bool,
}

/// `synthlm corpora`: the data chapter's numbers ([`crate::generate::summary`]) written to
/// `out`, from the corpora, their quality files, the sheet, its annotations and the classifier.
pub fn corpora(i: &CorporaInputs, out: &Path) -> Result<String> {
    use crate::generate::summary::{self as sm, CorporaSummary};
    let families = crate::generate::stats::load_families(&i.dirs)?;
    let mut inputs = BTreeMap::new();
    let generation = generation_facts(&i.dirs, &mut inputs)?;
    for p in [&i.sheet, &i.annotations, &i.classifier] {
        inputs.insert(p.display().to_string(), crate::io::sha256_file(p)?);
    }
    // the first look and the checks read the documents before they move into `scored`
    let first_look = crate::generate::stats::first_look_rows(&families);
    let checks = families
        .iter()
        .map(|(n, d)| crate::generate::stats::recipe_checks(n, d))
        .collect();
    let scored = scored_pools(&i.quality, families, &mut inputs)?;
    let latest = scored.last().map(|s| sm::version(&s.0).to_string());
    let rows = crate::filter::labels::read_sheet(&i.sheet)?;
    let second = match &i.second_pass {
        Some(p) => {
            inputs.insert(p.display().to_string(), crate::io::sha256_file(p)?);
            crate::filter::labels::read_sheet(p)?
        }
        None => Vec::new(),
    };
    let ann = crate::filter::annotator::read_annotations(&i.annotations, &rows)?;
    let annotator_prompt = ann.first().map_or(String::new(), |a| a.prompt.clone());
    if let Some(a) = ann.iter().find(|a| a.prompt != annotator_prompt) {
        bail!(
            "{}: rows scored with different prompts (row {} and the first): score the sheet again into one file",
            i.annotations.display(),
            a.id
        );
    }
    let (file, classifier) = fitted_classifier(i)?;
    let annotator = i
        .time_annotator
        .then(|| time_annotator(&rows))
        .transpose()?;
    let teacher = i.time_teacher.then(|| time_teacher(&rows)).transpose()?;
    let files = (i.sheet.as_path(), i.quality.as_path());
    let summary = CorporaSummary {
        inputs,
        generation,
        first_look,
        checks,
        rules: scored.iter().map(|s| sm::rule_facts(&s.0, &s.2)).collect(),
        examples: scored
            .iter()
            .filter(|s| Some(sm::version(&s.0)) == latest.as_deref())
            .flat_map(|s| sm::examples(&s.0, &s.1, &s.2))
            .collect(),
        costs: sm::costs(
            &scored,
            Some(&classifier),
            teacher.as_ref(),
            annotator.as_ref(),
        ),
        annotator: sm::annotator_facts(&rows, &ann, &|family, id| {
            let r = sheet_record(&scored, latest.as_deref(), (family, id), files)?;
            Ok(!r.signals.fails.is_empty())
        })?,
        annotator_prompt,
        classifier: classifier_facts(&file, &rows, &scored, latest.as_deref(), files)?,
        hand_labels: sm::hand_label_facts(
            &rows,
            &second,
            &labelled_signals(&rows, &ann, &scored, latest.as_deref(), files)?,
        )?,
    };
    crate::io::write_json(out, &summary)?;
    Ok(format!(
        "wrote {} ({} corpora, {} examples)\n",
        out.display(),
        summary.rules.len(),
        summary.examples.len()
    ))
}

/// The classifier file and its classifier. Its agreement is copied into the summary, so it
/// must be the one fitted on this sheet and these annotations (their SHA-256 as recorded).
fn fitted_classifier(
    i: &CorporaInputs,
) -> Result<(serde_json::Value, crate::filter::classifier::Classifier)> {
    let file: serde_json::Value = crate::io::read_json(&i.classifier)?;
    for (key, path) in [
        ("sheet_sha256", &i.sheet),
        ("annotations_sha256", &i.annotations),
    ] {
        if file["trained_on"][key].as_str() != Some(crate::io::sha256_file(path)?.as_str()) {
            bail!(
                "{} was not fitted on the current {} (run `synthlm classify` again)",
                i.classifier.display(),
                path.display()
            );
        }
    }
    let classifier: crate::filter::classifier::Classifier =
        serde_json::from_value(file["classifier"].clone())
            .map_err(|e| anyhow::anyhow!("{}: no classifier ({e})", i.classifier.display()))?;
    Ok((file, classifier))
}

/// What each family's generation manifest under `dirs` says; every manifest's SHA-256 goes
/// into `inputs`.
fn generation_facts(
    dirs: &[PathBuf],
    inputs: &mut BTreeMap<String, String>,
) -> Result<Vec<crate::generate::summary::GenerationFacts>> {
    let mut out = Vec::new();
    for (name, dir) in dirs
        .iter()
        .flat_map(|d| crate::generate::stats::family_dirs(d))
    {
        let path = dir.join(crate::generate::shards::MANIFEST);
        inputs.insert(path.display().to_string(), crate::io::sha256_file(&path)?);
        let facts =
            crate::generate::summary::generation_facts(&name, &crate::io::read_json(&path)?);
        out.push(facts);
    }
    Ok(out)
}

/// Every corpus with its quality file (checked against its records); the quality files'
/// SHA-256 go into `inputs`, since the summary's rules, scores and sheet facts come from them.
fn scored_pools(
    quality: &Path,
    families: Vec<(String, Vec<crate::data::document::Document>)>,
    inputs: &mut BTreeMap<String, String>,
) -> Result<Vec<crate::generate::summary::ScoredPool>> {
    use crate::generate::summary as sm;
    let mut out = Vec::new();
    for (name, docs) in families {
        let q = sm::load_quality(quality, &name, &docs)?;
        let path = sm::quality_path(quality, &name);
        let key = format!("{}{}", path.display(), sm::SCORES_KEY);
        inputs.insert(key, q.scores_sha256()?);
        out.push((name, docs, q));
    }
    Ok(out)
}

/// Every labelled sheet row's signals, higher = better (NLL and bits per byte enter negated),
/// from its record in the `latest` version's quality file (a row missing there is an error),
/// the annotator's expected score and the classifier's; with whether it was labelled blind.
fn labelled_signals(
    rows: &[crate::filter::labels::LabelRow],
    ann: &[crate::filter::annotator::SheetAnnotation],
    scored: &[crate::generate::summary::ScoredPool],
    latest: Option<&str>,
    files: (&Path, &Path),
) -> Result<Vec<(crate::filter::vs_labels::Scored, Option<bool>)>> {
    let mut out = Vec::new();
    for r in rows {
        let Some(label) = r.label else { continue };
        let rec = sheet_record(scored, latest, (&r.family, &r.id), files)?;
        let mut scores = BTreeMap::new();
        let mut put = |name: &str, x: Option<f64>| {
            if let Some(x) = x.filter(|x| x.is_finite()) {
                scores.insert(name.to_string(), x);
            }
        };
        put(
            "annotator",
            ann.iter()
                .find(|a| a.id == r.id && a.family == r.family)
                .map(|a| a.annotation.expected),
        );
        put("classifier", rec.classifier);
        put(
            "fewer words",
            Some(-(r.text.split_whitespace().count() as f64)),
        );
        put(
            "passes every rule",
            Some(if rec.signals.fails.is_empty() {
                1.0
            } else {
                0.0
            }),
        );
        put("lower teacher NLL", rec.teacher_nll.map(|x| -x));
        put("lower real-text n-gram bpb", rec.real_kn_bpb.map(|x| -x));
        out.push((
            crate::filter::vs_labels::Scored {
                family: r.family.clone(),
                label: label as f64,
                scores,
            },
            r.blind,
        ));
    }
    Ok(out)
}

/// The record of sheet row (`family`, `id`) in the `latest` version's quality file: a row
/// whose pool or record is missing there is an error naming the sheet, the quality file and
/// the id (the summary's sheet facts would otherwise leave it out silently).
fn sheet_record<'a>(
    scored: &'a [crate::generate::summary::ScoredPool],
    latest: Option<&str>,
    (family, id): (&str, &str),
    (sheet, quality): (&Path, &Path),
) -> Result<&'a crate::filter::signals::RecordSignals> {
    let corpus = format!("{}/{family}", latest.unwrap_or(""));
    let file = crate::generate::summary::quality_path(quality, &corpus);
    let Some(s) = scored.iter().find(|s| s.0 == corpus) else {
        bail!(
            "{}: record {id} ({family}) is from {corpus}, which has no quality file among the corpora given ({} expected)",
            sheet.display(),
            file.display()
        );
    };
    s.2.records.iter().find(|r| r.id == id).with_context(|| {
        format!(
            "{}: record {id} ({family}) is not in {}, the quality file of the pool {}",
            sheet.display(),
            file.display(),
            s.2.pool
        )
    })
}

/// The classifier's facts: its scores of the sheet's records (from the latest version's
/// quality files, which `synthlm classify` filled in) and the agreement its file records.
fn classifier_facts(
    file: &serde_json::Value,
    rows: &[crate::filter::labels::LabelRow],
    scored: &[crate::generate::summary::ScoredPool],
    latest: Option<&str>,
    files: (&Path, &Path),
) -> Result<Option<crate::generate::summary::GraderFacts>> {
    let mut on_sheet = Vec::new();
    for r in rows {
        let rec = sheet_record(scored, latest, (&r.family, &r.id), files)?;
        let Some(score) = rec.classifier else {
            bail!(
                "the quality file of {}/{} has no classifier scores: run `synthlm classify` first",
                latest.unwrap_or(""),
                r.family
            );
        };
        on_sheet.push(crate::generate::summary::SheetScore {
            family: r.family.clone(),
            score,
            grade: Graded::score(score).grade,
            words: r.text.split_whitespace().count() as f64,
            fails_a_rule: Some(!rec.signals.fails.is_empty()),
        });
    }
    let get = |v: &serde_json::Value| {
        serde_json::from_value::<Option<crate::filter::agreement::Agreement>>(v.clone())
            .ok()
            .flatten()
    };
    Ok(crate::generate::summary::grader_facts(
        &on_sheet,
        get(&file["agreement_with_hand_labels"]["classifier"]),
        get(&file["held_out_agreement_with_annotator"]),
    ))
}

/// Sheet records each model signal is timed on.
pub const TIMED_RECORDS: usize = 8;

/// `n` rows spread evenly over the sheet (its families come in interleaved blocks, so the
/// first few would be one family's): every `len / n`-th row from the first.
fn timing_rows(
    rows: &[crate::filter::labels::LabelRow],
    n: usize,
) -> Vec<&crate::filter::labels::LabelRow> {
    let n = n.min(rows.len());
    (0..n).map(|k| &rows[k * rows.len() / n]).collect()
}

/// Microseconds per record `score` takes on the [`timing_rows`] of the sheet (whatever it
/// loaded before excluded), and the rows timed (`FAMILY/ID`).
fn time_rows(
    rows: &[crate::filter::labels::LabelRow],
    mut score: impl FnMut(&str) -> Result<()>,
) -> Result<crate::generate::summary::Timed> {
    let sample = timing_rows(rows, TIMED_RECORDS);
    let started = std::time::Instant::now();
    for r in &sample {
        score(&r.text)?;
    }
    Ok(crate::generate::summary::Timed {
        us: 1e6 * started.elapsed().as_secs_f64() / sample.len().max(1) as f64,
        sample: sample
            .iter()
            .map(|r| format!("{}/{}", r.family, r.id))
            .collect(),
    })
}

/// The annotator's time per sheet record (model loading excluded).
fn time_annotator(
    rows: &[crate::filter::labels::LabelRow],
) -> Result<crate::generate::summary::Timed> {
    use crate::filter::annotator::{find_gguf, Annotator};
    let mut a = Annotator::load(&find_gguf()?)?;
    time_rows(rows, |text| a.score(text).map(drop))
}

/// The teacher's NLL of a sheet record's text, timed: tokenising and one forward pass (model
/// loading excluded), what the signal costs on text the teacher did not write.
fn time_teacher(
    rows: &[crate::filter::labels::LabelRow],
) -> Result<crate::generate::summary::Timed> {
    let t = load_teacher(None)?;
    time_rows(rows, |text| {
        std::hint::black_box(crate::eval::quality::teacher_nll(&t, "", text)?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timed rows are spread over the sheet, not its first rows: with families in
    /// interleaved blocks of 5, eight of forty rows hold every family twice.
    #[test]
    fn timing_rows_spread_over_the_sheet_and_every_family() {
        let rows: Vec<crate::filter::labels::LabelRow> = (0..40)
            .map(|i| crate::filter::labels::LabelRow {
                id: format!("r{i}"),
                family: ["cosmo", "magpie", "instruct", "stories"][(i / 5) % 4].into(),
                text: String::new(),
                label: None,
                labeller: None,
                note: None,
                blind: None,
            })
            .collect();
        let picked = timing_rows(&rows, 8);
        let ids: Vec<&str> = picked.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r0", "r5", "r10", "r15", "r20", "r25", "r30", "r35"]);
        let mut by = BTreeMap::new();
        for r in &picked {
            *by.entry(r.family.as_str()).or_insert(0) += 1;
        }
        assert_eq!(by.values().copied().collect::<Vec<_>>(), [2, 2, 2, 2]);
        assert_eq!(timing_rows(&rows[..3], 8).len(), 3);
        assert!(timing_rows(&[], 8).is_empty());
    }
}
