//! The experiments of the book, on one harness. An experiment module holds only its design
//! (the training conditions and held-out sets of a scale) and its analysis (the comparisons it
//! makes); everything else is shared:
//!
//! ```text
//! scale (configs/experiments/expN/PROFILE.toml)
//!   -> design (experiment) -> prepare: tokenizer + packed sets (reused while inputs are the same)
//!   -> grid: students x conditions x seeds, trained or reused, scored on whole held-out sets
//!   -> n-gram baselines on the tokens each student saw
//!   -> headline + baselines + comparisons (Holm) + analysis (experiment) -> results.json
//!   -> report (experiment): blocks rendered to book, paper and notebook
//! ```
//!
//! Experiments are found by number in a small registry (the built-in ones, plus any a program
//! registers), so the command line has no per-experiment code.

pub mod baselines;
pub mod corpora;
pub mod curve;
pub mod exp1;
pub mod grid;
pub mod prepare;
pub mod provenance;
pub mod results;
pub mod scale;
pub mod sweep;

use crate::budget::{budget_for, Gpu, RunBudget};
use crate::data::hub::HubOptions;
use anyhow::{bail, Context, Result};
use baselines::BaselineScores;
use grid::RunOutcome;
use prepare::{Design, Prepared};
use results::{ComparisonRow, Results};
use scale::Scale;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where an experiment's inputs come from and its results go.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The project root (corpora paths in scales are relative to it).
    pub root: PathBuf,
    /// Real documents extracted by `synthlm data real`, and their provenance manifest.
    pub real: PathBuf,
    pub real_manifest: PathBuf,
    /// The Hugging Face cache, for hub corpora.
    pub hub: HubOptions,
    /// Scratch: tokenizer, packed sets, baselines, checkpoints (git-ignored).
    pub work: PathBuf,
    /// Committed results.
    pub results: PathBuf,
}

impl Paths {
    /// The project's layout for experiment `number` at `profile`.
    pub fn standard(root: &Path, number: u32, profile: &str) -> Paths {
        Paths {
            root: root.to_path_buf(),
            real: root.join(".work/real/documents.jsonl"),
            real_manifest: root.join("data/real/manifest.json"),
            hub: HubOptions::from_env(),
            work: root.join(format!(".work/exp{number}/{profile}")),
            results: root.join(format!("data/results/exp{number}/{profile}")),
        }
    }
}

/// What an experiment's analysis sees.
pub struct Analysis<'a> {
    pub scale: &'a Scale,
    pub prepared: &'a Prepared,
    pub runs: &'a [RunOutcome],
    pub baselines: &'a [BaselineScores],
    /// Neutral documents left out of every neutral score ([`Results::neutral_excluded`]).
    pub neutral_excluded: &'a [usize],
}

/// One experiment of the book.
pub trait Experiment: Sync {
    fn number(&self) -> u32;
    fn title(&self) -> &'static str;
    /// `expN`.
    fn name(&self) -> String {
        format!("exp{}", self.number())
    }
    /// The training conditions' names at a scale (without loading any data: for plans).
    fn conditions(&self, s: &Scale) -> Result<Vec<String>>;
    /// Fixed prompts every student continues.
    fn prompts(&self) -> Vec<&'static str>;
    /// Training conditions and held-out sets at a scale.
    fn design(&self, s: &Scale, paths: &Paths) -> Result<Design>;
    /// The comparisons the experiment makes, and its own analysis (free-form).
    fn analyse(&self, a: &Analysis) -> Result<(Vec<ComparisonRow>, serde_json::Value)>;
    /// The report, built from the results alone.
    fn report(&self, r: &Results, results_dir: &Path) -> Result<crate::report::Report>;
}

static REGISTRY: Mutex<Vec<&'static dyn Experiment>> = Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<&'static dyn Experiment>> {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if r.is_empty() {
        r.push(&exp1::Exp1);
    }
    r
}

/// Add an experiment (a program's own, or a test's) to the registry.
pub fn register(e: &'static dyn Experiment) {
    let mut r = registry();
    r.retain(|x| x.number() != e.number());
    r.push(e);
}

/// The registered experiment `number`.
pub fn find(number: u32) -> Result<&'static dyn Experiment> {
    let r = registry();
    match r.iter().find(|e| e.number() == number) {
        Some(e) => Ok(*e),
        None => bail!(
            "no experiment {number} (registered: {})",
            r.iter()
                .map(|e| e.number().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Every registered experiment, by number.
pub fn all() -> Vec<&'static dyn Experiment> {
    let mut v: Vec<_> = registry().clone();
    v.sort_by_key(|e| e.number());
    v
}

/// Run (or resume) experiment `e` at scale `s`: prepare, train or reuse the grid, fit the
/// baselines, analyse, and write `results.json`.
pub fn run(e: &dyn Experiment, s: &Scale, paths: &Paths, progress: bool) -> Result<Results> {
    let mut design = e.design(s, paths)?;
    let (decontamination, neutral_excluded, neutral) = decontaminate(&mut design, s)?;
    // The sweep before the grid's data: it prepares its dev split in the same work folder.
    let (sweep, dev) = sweep::run_sweep(&e.name(), &design, s, paths, &e.prompts(), progress)?;
    let chosen = sweep::with_best_rates(s, &sweep);
    let s = &chosen;
    let p = prepare_data(e, &design, s, paths)?;
    // The baselines first: they are the bar every student must clear, cheap next to the grid,
    // and cached, so a design whose students cannot clear them shows it before the grid is
    // spent.
    let base = baselines::baselines(s, &p, &paths.work, progress)?;
    let runs = grid::run_grid(s, &p, &paths.results, &paths.work, &e.prompts(), progress)?;
    let curve = curve::run_curve(
        s,
        &p,
        paths,
        &e.prompts(),
        &runs,
        &neutral_excluded,
        progress,
    )?;
    let mut headline = Vec::new();
    for st in &s.students {
        for c in &p.train {
            for ev in &p.eval {
                headline.extend(results::headline_rows(
                    &e.name(),
                    &runs,
                    (&st.name, &c.name, &ev.name),
                ));
            }
        }
    }
    let (suite_headline, suite_baselines) = if s.suite {
        results::suite_rows(&e.name(), &runs, &neutral_excluded)?
    } else {
        (vec![], vec![])
    };
    headline.extend(suite_headline);
    let (mut comparisons, analysis) = e.analyse(&Analysis {
        scale: s,
        prepared: &p,
        runs: &runs,
        baselines: &base,
        neutral_excluded: &neutral_excluded,
    })?;
    results::holm_all(&mut comparisons);
    let mut inputs = design.inputs;
    for (name, sha256) in prepare::input_hashes(&p)? {
        let detail = if name == "tokenizer" {
            format!("byte-level BPE, {} tokens", p.tokenizer.vocab_size())
        } else {
            "packed token shards (content hash)".into()
        };
        inputs.push(provenance::InputRecord {
            name,
            detail,
            sha256,
        });
    }
    let r = Results {
        schema: results::SCHEMA.into(),
        experiment: e.name(),
        title: e.title().into(),
        scale: s.clone(),
        headline,
        baselines: results::baseline_rows(&base)
            .into_iter()
            .chain(suite_baselines)
            .collect(),
        comparisons,
        runs: runs.iter().map(run_record).collect(),
        sets: p
            .train
            .iter()
            .map(|t| ("train", t))
            .chain(p.eval.iter().map(|t| ("eval", t)))
            .map(|(role, t)| results::SetRecord {
                role: role.into(),
                name: t.name.clone(),
                size: t.size.clone(),
            })
            .chain(neutral_set(&neutral, &p, &neutral_excluded)?)
            .chain(dev_set(dev, &p)?)
            .collect(),
        samples: runs.iter().flat_map(|r| r.samples.clone()).collect(),
        tokenizer_sha256: p.tokenizer.sha256().into(),
        inputs,
        decontamination,
        neutral_excluded,
        curve,
        sweep,
        aggregated_by: provenance::environment(),
        analysis,
    };
    crate::io::write_json(&paths.results.join(results::RESULTS), &r)?;
    Ok(r)
}

/// The design's sets tokenized and packed (cached under `work`), checked against the inputs its
/// committed results record.
fn prepare_data(e: &dyn Experiment, design: &Design, s: &Scale, paths: &Paths) -> Result<Prepared> {
    let p = prepare::prepare(&e.name(), design, s.vocab_size, &paths.work)?;
    prepare::check_inputs(&paths.results, s.profile == "smoke", &p)?;
    Ok(p)
}

/// Retrain every finished run of the grid and the learning curve whose kept weights are not
/// here and that has no checkpoint to export them from (a fresh clone: the weights are not
/// committed), each kept only if it reproduces its committed record bit for bit (see
/// [`grid::restore_weights`]). Returns the runs restored, as folders under the results.
pub fn restore_weights(
    e: &dyn Experiment,
    s: &Scale,
    paths: &Paths,
    progress: bool,
) -> Result<Vec<String>> {
    if !s.keep_weights {
        bail!("the {} scale of {} keeps no weights", s.profile, e.name());
    }
    let mut design = e.design(s, paths)?;
    decontaminate(&mut design, s)?;
    let p = prepare_data(e, &design, s, paths)?;
    let mut dirs = Vec::new();
    for sub in ["runs", "curve"] {
        let Ok(entries) = std::fs::read_dir(paths.results.join(sub)) else {
            continue;
        };
        for d in entries {
            let d = d?.path();
            let finished = crate::train::metrics::read_summary(&d).is_ok();
            if finished
                && !d.join(grid::WEIGHTS).exists()
                && crate::train::checkpoint::latest(&d)?.is_none()
            {
                dirs.push(d);
            }
        }
    }
    dirs.sort();
    let mut done = Vec::new();
    for d in &dirs {
        grid::restore_weights(d, &p, &paths.work, progress)
            .with_context(|| format!("restoring the weights of {}", d.display()))?;
        done.push(
            d.strip_prefix(&paths.results)
                .unwrap_or(d)
                .display()
                .to_string(),
        );
    }
    Ok(done)
}

/// The neutral domain as it is scored (its near-copies of training text left out); None when
/// the scale has no suite.
fn neutral_set(
    neutral: &[crate::data::document::Document],
    p: &Prepared,
    excluded: &[usize],
) -> Result<Option<results::SetRecord>> {
    if neutral.is_empty() {
        return Ok(None);
    }
    let kept = neutral
        .iter()
        .enumerate()
        .filter(|(i, _)| !excluded.contains(i))
        .map(|(_, d)| d);
    unpacked_set("eval", "neutral", kept, p).map(Some)
}

/// The sweep's dev split (named by its condition, role `dev`).
fn dev_set(dev: Option<sweep::DevSplit>, p: &Prepared) -> Result<Option<results::SetRecord>> {
    dev.map(|(name, docs)| unpacked_set("dev", &name, docs.iter(), p))
        .transpose()
}

/// A set that is scored or chosen on without being packed, sized with the design's tokenizer
/// like every packed set.
fn unpacked_set<'a>(
    role: &str,
    name: &str,
    docs: impl Iterator<Item = &'a crate::data::document::Document>,
    p: &Prepared,
) -> Result<results::SetRecord> {
    let docs: Vec<&crate::data::document::Document> = docs.collect();
    Ok(results::SetRecord {
        role: role.into(),
        name: name.into(),
        size: prepare::CorpusSize::of_documents(&docs, &p.tokenizer)?,
    })
}

/// The harness's decontamination of a design (see
/// [`crate::eval::contamination::decontaminate`]): against the neutral domain when the scale
/// runs the evaluation suite, and between its training and held-out sets always. Returns what
/// was removed, the neutral documents to leave out of neutral scores (near-copies of the
/// cleaned training sets, [`crate::eval::contamination::near_copies`]) and the neutral domain
/// (empty without the suite).
fn decontaminate(
    design: &mut Design,
    s: &Scale,
) -> Result<(
    Vec<crate::eval::contamination::Removed>,
    Vec<usize>,
    Vec<crate::data::document::Document>,
)> {
    use crate::eval::contamination as c;
    let neutral = if s.suite {
        let dir = provenance::project_root().join("data/eval");
        crate::eval::neutral::load(&dir.join(crate::eval::items::NEUTRAL))?
    } else {
        vec![]
    };
    let fixed: Vec<(&str, &[crate::data::document::Document])> = if s.suite {
        vec![("neutral", &neutral)]
    } else {
        vec![]
    };
    let mut removed = c::decontaminate(&mut design.conditions, &mut design.eval_sets, &fixed);
    // A set that decontamination empties cannot be trained on or scored: say which and why
    // here, not later as a packing error about zero tokens.
    let sets = design.conditions.iter().map(|(n, d)| ("train", n, d));
    let sets = sets.chain(design.eval_sets.iter().map(|(n, d)| ("eval", n, d)));
    for (role, name, docs) in sets {
        if docs.is_empty() {
            let r = removed.iter().find(|r| r.role == role && &r.set == name);
            let why = r.map_or(String::new(), |r| {
                format!(": {} documents {} ({})", r.documents, r.rule, r.against)
            });
            bail!("decontamination left the {role} set `{name}` empty{why}; its sources repeat the other sets' text");
        }
    }
    let train: Vec<&[crate::data::document::Document]> = design
        .conditions
        .iter()
        .map(|(_, d)| d.as_slice())
        .collect();
    let near = c::near_copies(&neutral, &train);
    let excluded: Vec<usize> = (0..near.len()).filter(|&i| near[i]).collect();
    if s.suite {
        removed.push(c::Removed {
            role: "eval".into(),
            set: "neutral".into(),
            against: "training sets".into(),
            documents: excluded.len(),
            text_bytes: excluded.iter().map(|&i| neutral[i].text.len() as u64).sum(),
            rule: format!(
                "a word {}-gram in them (case, punctuation ignored): left out of neutral scores",
                c::NEAR_NGRAM
            ),
        });
    }
    Ok((removed, excluded, neutral))
}

fn run_record(r: &RunOutcome) -> results::RunRecord {
    results::RunRecord {
        student: r.key.student.clone(),
        condition: r.key.condition.clone(),
        seed: r.key.seed,
        dir: r.key.dir(),
        params: r.summary.params,
        tokens_seen: r.summary.tokens_seen,
        provenance: r.provenance.clone(),
    }
}

/// Read a results file.
pub fn load_results(results_dir: &Path) -> Result<Results> {
    crate::io::read_json(&results_dir.join(results::RESULTS))
}

/// One student's share of a scale's compute on a GPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    pub student: String,
    pub params: usize,
    pub runs: usize,
    pub tokens_per_run: u64,
    pub per_run: RunBudget,
    pub gpu_hours: f64,
    pub dollars: f64,
}

/// What a scale costs on a GPU (FLOPs from the model shapes at the scale's vocabulary and
/// sequence length; utilisation and price from [`Gpu`]). Evaluation is left out: at these
/// settings it is under 1% of training.
pub fn plan(e: &dyn Experiment, s: &Scale, gpu: &Gpu) -> Result<Vec<PlanRow>> {
    let runs = e.conditions(s)?.len() * s.seeds.len();
    s.students
        .iter()
        .map(|st| {
            let mut c = st.model.resolve(Some(s.vocab_size))?;
            c.context = s.seq_len;
            let per_run = budget_for(&st.name, &c, s.tokens_per_run(), gpu, 1, s.train_options());
            Ok(PlanRow {
                student: st.name.clone(),
                params: c.param_count(),
                runs,
                tokens_per_run: s.tokens_per_run(),
                gpu_hours: per_run.gpu_hours * runs as f64,
                dollars: per_run.dollars * runs as f64,
                per_run,
            })
        })
        .collect()
}
