//! The grid of an experiment: students x conditions x seeds, one training run each, under
//! `RESULTS/runs/STUDENT-CONDITION-sSEED/`. A run directory holds what the trainer writes
//! (config, metrics, summary; checkpoints are not committed) and what the grid adds once, when
//! the run is trained or first scored:
//!
//! | file | what | written |
//! |---|---|---|
//! | `provenance.json` | commit, machine, software, wall time of the training | when training finishes; never rewritten |
//! | `scores.json` | bits and bytes of every document of every held-out set | from the final checkpoint, once |
//! | `samples.json` | continuations of the experiment's fixed prompts | from the final checkpoint, once |
//! | `hf/` | the final weights in f16, as a Hugging Face GPT-2 folder (`synthlm eval RUN/hf`), when the scale sets `keep_weights` | from the final checkpoint, once |
//! | `weights/` | the weights alone at 10% of training, for the suite (written by the trainer), when the scale sets `suite` | during training |
//! | `suite.json` | the evaluation suite's rows at the weight snapshot and at the end, when the scale sets `suite` | once by the grid (`synthlm eval RUN --suite` rewrites it) |
//!
//! `hf/`, `weights/` and the checkpoints are not committed. `synthlm experiment
//! --restore-weights` retrains a run whose `hf/` is missing and keeps its `hf/` and `weights/`
//! when the run reproduces its record (see [`restore_weights`]); the checkpoints are not kept.
//!
//! A finished run (its `summary.json` exists) is reused, not retrained: aggregating again
//! changes no run's record.

use crate::config::{profile as train_profile, RunConfig};
use crate::eval::perplexity::score_documents;
use crate::experiments::prepare::Prepared;
use crate::experiments::provenance::{environment, Environment};
use crate::experiments::scale::{Scale, Student};
use crate::model::sample::{generate, SampleOptions};
use crate::stats::DocScores;
use crate::train::{checkpoint, metrics, train, TrainOptions};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One cell of the grid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    pub student: String,
    pub condition: String,
    pub seed: u64,
}

impl RunKey {
    /// The run's folder, relative to the results folder.
    pub fn dir(&self) -> String {
        format!("runs/{}-{}-s{}", self.student, self.condition, self.seed)
    }
}

/// Where and when a run was trained: written by the grid when the run finishes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunProvenance {
    pub environment: Environment,
    pub wall_s: f64,
    pub cpu_core_hours: f64,
    /// Seconds since the Unix epoch when training finished.
    pub finished_unix: u64,
    /// How this record was made, when not at training time (runs older than the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A continuation of one fixed prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub student: String,
    pub condition: String,
    pub seed: u64,
    pub prompt: String,
    pub completion: String,
}

/// How a run scored a held-out set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SetScore {
    /// Every document of the set (from `scores.json`).
    Documents(DocScores),
    /// Only the evenly spaced windows of the training-time evaluation (runs whose checkpoint
    /// is gone and that were never scored whole).
    Windows {
        windows: usize,
        tokens: u64,
        loss: f64,
        bpb: f64,
    },
}

impl SetScore {
    pub fn bpb(&self) -> f64 {
        match self {
            SetScore::Documents(d) => d.bpb(),
            SetScore::Windows { bpb, .. } => *bpb,
        }
    }
}

/// A finished run and what was measured on it.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub key: RunKey,
    pub dir: PathBuf,
    pub summary: metrics::Summary,
    pub provenance: RunProvenance,
    pub scores: BTreeMap<String, SetScore>,
    pub samples: Vec<Sample>,
}

/// Where a run's data is: its training set, the held-out sets by name, the tokenizer.
pub struct RunData {
    pub train: PathBuf,
    pub evals: BTreeMap<String, PathBuf>,
    pub tokenizer: PathBuf,
}

impl RunData {
    pub fn of(p: &Prepared, condition: &str) -> RunData {
        RunData {
            train: p.train_set(condition).dir.clone(),
            evals: p
                .eval
                .iter()
                .map(|e| (e.name.clone(), e.dir.clone()))
                .collect(),
            tokenizer: p.tokenizer_path.clone(),
        }
    }
}

/// The training config of one run of the grid.
pub fn run_config(
    s: &Scale,
    student: &Student,
    data: RunData,
    seed: u64,
    out_dir: PathBuf,
) -> Result<RunConfig> {
    let mut c = train_profile("mini")?;
    c.profile = format!("exp{}-{}", s.experiment, s.profile);
    c.out_dir = out_dir;
    c.model = student.model.clone();
    c.data.train = data.train;
    c.data.val = data.evals;
    c.data.tokenizer = Some(data.tokenizer);
    let t = &mut c.train;
    t.seed = seed;
    t.seq_len = s.seq_len;
    t.batch_size = s.batch_size;
    t.grad_accum = s.grad_accum;
    t.max_steps = s.steps;
    t.warmup_steps = (s.steps / 10).max(1);
    t.lr = student.lr.unwrap_or(s.lr);
    t.min_lr = t.lr / 10.0;
    t.log_interval = (s.steps / 40).max(1);
    t.eval_interval = (s.steps / s.evals).max(1);
    // A checkpoint every tenth of the run (one kept, ~16 MB for mini-1m, written in well under a
    // second): a session that ends kills the process without a signal, and with only the final
    // checkpoint a half-trained run started over (25 minutes lost on 2026-12-05).
    t.ckpt_interval = (s.steps / 10).max(1);
    t.keep_checkpoints = 1;
    t.eval_windows = s.eval_windows;
    if s.suite {
        t.snapshot_steps = vec![(s.steps / 10).max(1)];
    }
    t.precision = s.precision;
    t.grad_checkpointing = s.grad_checkpointing;
    t.zero1 = s.zero1;
    c.device = s.device.clone();
    c.validate()?;
    Ok(c)
}

/// A finished training's summary, or the error an interrupted one ends the command with.
fn trained(out: crate::train::TrainOutcome) -> Result<metrics::Summary> {
    out.summary.with_context(|| {
        format!(
            "interrupted at step {} (checkpoint saved); run the same command to resume",
            out.steps_done
        )
    })
}

/// Train the run if it is not finished, recording where and when: in this process, or as
/// `ranks` data-parallel processes of the synthlm binary (`synthlm launch`).
/// Ctrl-C or SIGTERM (when the command installed [`crate::train::interrupt`]) stops it at a
/// step boundary with a checkpoint, which the next call resumes from.
pub(crate) fn train_if_needed(
    cfg: &RunConfig,
    dir: &Path,
    ranks: usize,
    progress: bool,
) -> Result<()> {
    if metrics::read_summary(dir).is_ok() {
        return Ok(());
    }
    let s = if ranks > 1 {
        let path = dir.join(LAUNCH_CONFIG);
        crate::io::write_bytes(&path, toml::to_string(cfg)?.as_bytes())?;
        let args = ["train", "--config"].map(String::from);
        let args = [&args[..], &[path.display().to_string()]].concat();
        let exe = crate::train::process_group::synthlm_exe()?;
        crate::train::process_group::launch_exe(&exe, ranks, &args)?;
        metrics::read_summary(dir).context("the launched ranks wrote no summary")?
    } else {
        let opts = TrainOptions {
            progress,
            interrupt: crate::train::interrupt::installed(),
            ..Default::default()
        };
        trained(train(cfg, &opts)?)?
    };
    let p = RunProvenance {
        environment: environment(),
        wall_s: s.wall_s,
        cpu_core_hours: s.cpu_core_hours,
        finished_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        note: None,
    };
    crate::io::write_json(&dir.join(PROVENANCE), &p)
}

pub const PROVENANCE: &str = "provenance.json";
/// The run config a launched (multi-rank) run reads.
pub const LAUNCH_CONFIG: &str = "launch.toml";
pub const SCORES: &str = "scores.json";
pub const SAMPLES: &str = "samples.json";
/// The folder of a run's kept final weights (`Scale::keep_weights`).
pub const WEIGHTS: &str = "hf";

/// Score every held-out document and sample the fixed prompts, from the final checkpoint,
/// unless done before.
pub(crate) fn measure_if_needed(
    key: &RunKey,
    s: &Scale,
    p: &Prepared,
    dir: &Path,
    prompts: &[&str],
) -> Result<()> {
    let (scores, samples, weights) = (dir.join(SCORES), dir.join(SAMPLES), dir.join(WEIGHTS));
    if scores.exists() && samples.exists() && (!s.keep_weights || weights.exists()) {
        return Ok(());
    }
    let Some(ck) = checkpoint::latest(dir)? else {
        return Ok(()); // an old run: measured from what it recorded (see `outcome`)
    };
    let student = s
        .students
        .iter()
        .find(|x| x.name == key.student)
        .expect("student of the grid");
    let model = load_model(&ck, &student.model, p)?;
    if !scores.exists() {
        crate::io::write_json(&scores, &score_sets(&model, p, s.seq_len, s.batch_size)?)?;
    }
    if s.keep_weights && !weights.exists() {
        // f16 halves the files; export refuses a weight beyond f16's range.
        crate::model::hf::export(&model, &p.tokenizer, &weights, candle_core::DType::F16)?;
    }
    if !samples.exists() {
        let tok = &p.tokenizer;
        let ids: Vec<Vec<u32>> = prompts
            .iter()
            .map(|x| Ok([vec![tok.eot_id()], tok.encode(x)?].concat()))
            .collect::<Result<_>>()?;
        let o = SampleOptions {
            max_new_tokens: s.sample_tokens,
            temperature: 0.8,
            top_k: Some(40),
            top_p: Some(0.95),
            stop_tokens: vec![tok.eot_id()],
            seed: key.seed,
        };
        let out: Vec<Sample> = prompts
            .iter()
            .zip(generate(&model, &ids, &o)?)
            .map(|(pr, g)| {
                Ok(Sample {
                    student: key.student.clone(),
                    condition: key.condition.clone(),
                    seed: key.seed,
                    prompt: pr.to_string(),
                    completion: tok.decode(&g.tokens)?,
                })
            })
            .collect::<Result<_>>()?;
        crate::io::write_json(&samples, &out)?;
    }
    Ok(())
}

/// The student of a checkpoint.
fn load_model(
    ck: &Path,
    spec: &crate::config::ModelSpec,
    p: &Prepared,
) -> Result<crate::model::Gpt> {
    let loaded = checkpoint::load(ck, &candle_core::Device::Cpu)?;
    let mcfg = spec.resolve(Some(p.tokenizer.vocab_size()))?;
    crate::model::Gpt::from_tensors(mcfg, loaded.model, &candle_core::Device::Cpu)
}

/// Bits and bytes of every document of every held-out set.
fn score_sets(
    model: &crate::model::Gpt,
    p: &Prepared,
    seq_len: usize,
    batch_size: usize,
) -> Result<BTreeMap<String, DocScores>> {
    let mut all = BTreeMap::new();
    for e in &p.eval {
        let shards = crate::data::pack::TokenShards::open(&e.dir)?;
        let scores = score_documents(model, &shards, seq_len, batch_size)?;
        all.insert(e.name.clone(), scores);
    }
    Ok(all)
}

/// Retrain a finished run whose kept weights are not here (they are not committed: the
/// experiment's weights outgrow the repository), in `work/restore/RUN`, and keep its weights
/// only if the retrained run is the committed one bit for bit: the same training data (content
/// hash), the same final training and validation losses, and the same bits on every document
/// of every held-out set. The run's committed `config.json` is what is trained, with its data
/// paths pointed at this checkout's prepared sets of the same names. Its weight snapshots are
/// kept with the final weights.
pub(crate) fn restore_weights(dir: &Path, p: &Prepared, work: &Path, progress: bool) -> Result<()> {
    let name = dir
        .file_name()
        .context("a run folder")?
        .to_string_lossy()
        .to_string();
    let committed = metrics::read_summary(dir)?;
    crate::cpu::check_same_arithmetic(
        dir,
        "reproduce it",
        (&committed.matmul, committed.threads),
        (crate::cpu::matmul_kernels(), crate::cpu::threads()),
    )?;
    let mut cfg: RunConfig = crate::io::read_json(&dir.join("config.json"))?;
    let here = |path: &Path, sets: &[crate::experiments::prepare::PackedSet]| {
        sets.iter()
            .find(|x| x.dir.file_name() == path.file_name())
            .map(|x| x.dir.clone())
            .with_context(|| format!("{}: no prepared set like {}", dir.display(), path.display()))
    };
    cfg.data.train = here(&cfg.data.train, &p.train)?;
    for v in cfg.data.val.values_mut() {
        *v = here(v, &p.eval)?;
    }
    cfg.data.tokenizer = Some(p.tokenizer_path.clone());
    cfg.out_dir = work.join("restore").join(&name);
    let opts = TrainOptions {
        progress,
        interrupt: crate::train::interrupt::installed(),
        ..Default::default()
    };
    let again = trained(train(&cfg, &opts)?)?;
    use serde_json::to_value as v;
    let (c, a) = (&committed, &again);
    let differs = [
        (
            "training data",
            v(&c.train_data.content_sha256)?,
            v(&a.train_data.content_sha256)?,
        ),
        (
            "final training loss",
            v(c.final_train_loss)?,
            v(a.final_train_loss)?,
        ),
        ("final validation", v(&c.final_val)?, v(&a.final_val)?),
    ];
    if let Some((what, a, b)) = differs.iter().find(|(_, a, b)| a != b) {
        anyhow::bail!("{}: the retrained run differs from the committed one in its {what} ({a} committed, {b} now); its weights are not kept", dir.display());
    }
    let ck = checkpoint::latest(&cfg.out_dir)?.context("the retrained run's checkpoint")?;
    let model = load_model(&ck, &cfg.model, p)?;
    let scores: BTreeMap<String, DocScores> = crate::io::read_json(&dir.join(SCORES))?;
    if score_sets(&model, p, cfg.train.seq_len, cfg.train.batch_size)? != scores {
        anyhow::bail!("{}: the retrained run scores the held-out documents differently from the committed {SCORES}; its weights are not kept", dir.display());
    }
    let tmp = cfg.out_dir.join(WEIGHTS);
    crate::model::hf::export(&model, &p.tokenizer, &tmp, candle_core::DType::F16)?;
    keep_snapshots(dir, &cfg.out_dir)?;
    std::fs::rename(&tmp, dir.join(WEIGHTS))
        .with_context(|| format!("moving the weights into {}", dir.display()))?;
    std::fs::remove_dir_all(&cfg.out_dir)?;
    Ok(())
}

/// Move the retrained run's weight snapshots (`weights/`) into the run folder, replacing any
/// left there, after checking that they are the steps its committed `suite.json` scored before
/// the final weights: the suite's rows can then be recomputed from the restored folder.
fn keep_snapshots(dir: &Path, retrained: &Path) -> Result<()> {
    let suite = dir.join(crate::eval::suite_run::SUITE);
    if suite.exists() {
        let r: crate::eval::suite_run::SuiteReport = crate::io::read_json(&suite)?;
        let scored: Vec<u64> = r.evaluated.iter().map(|(s, _)| *s).collect();
        let have = checkpoint::snapshot_steps(retrained)?;
        let wanted = &scored[..scored.len().saturating_sub(1)];
        if let Some(s) = wanted.iter().find(|s| !have.contains(s)) {
            anyhow::bail!("{}: the suite scored a snapshot of step {s}, which the retrained run does not have ({have:?}); its weights are not kept", dir.display());
        }
    }
    let (from, to) = (
        checkpoint::weights_dir(retrained),
        checkpoint::weights_dir(dir),
    );
    if from.exists() {
        if to.exists() {
            std::fs::remove_dir_all(&to)?;
        }
        std::fs::rename(&from, &to)
            .with_context(|| format!("moving the weight snapshots into {}", dir.display()))?;
    }
    Ok(())
}

/// Read a finished run's records.
pub(crate) fn outcome(key: RunKey, dir: PathBuf, eval_windows: usize) -> Result<RunOutcome> {
    let summary = metrics::read_summary(&dir)?;
    let provenance: RunProvenance = crate::io::read_json(&dir.join(PROVENANCE))
        .with_context(|| format!("{}: the run's provenance", dir.display()))?;
    let scores = if dir.join(SCORES).exists() {
        let d: BTreeMap<String, DocScores> = crate::io::read_json(&dir.join(SCORES))?;
        d.into_iter()
            .map(|(k, v)| (k, SetScore::Documents(v)))
            .collect()
    } else {
        summary
            .final_val
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    SetScore::Windows {
                        windows: eval_windows,
                        tokens: v.tokens,
                        loss: v.loss,
                        bpb: v.bpb,
                    },
                )
            })
            .collect()
    };
    let samples: Vec<Sample> = crate::io::read_json(&dir.join(SAMPLES)).with_context(|| {
        format!(
            "{}: no checkpoint and no recorded samples; move it away to train it again",
            dir.display()
        )
    })?;
    Ok(RunOutcome {
        key,
        dir,
        summary,
        provenance,
        scores,
        samples,
    })
}

/// Every run of the grid, in order (student, condition, seed), trained or reused, scored and
/// sampled; a progress bar over runs if asked.
pub fn run_grid(
    s: &Scale,
    p: &Prepared,
    results: &Path,
    work: &Path,
    prompts: &[&str],
    progress: bool,
) -> Result<Vec<RunOutcome>> {
    let keys: Vec<RunKey> = s
        .students
        .iter()
        .flat_map(|st| {
            p.train.iter().flat_map(move |c| {
                s.seeds.iter().map(move |&seed| RunKey {
                    student: st.name.clone(),
                    condition: c.name.clone(),
                    seed,
                })
            })
        })
        .collect();
    let pb = if progress {
        crate::progress::bar(keys.len() as u64, "runs", &format!("exp{}", s.experiment))
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut out = Vec::with_capacity(keys.len());
    let mut suite = SuiteInputs::default();
    for key in keys {
        let dir = results.join(key.dir());
        pb.set_message(key.dir());
        let student = s
            .students
            .iter()
            .find(|x| x.name == key.student)
            .expect("student");
        let cfg = run_config(
            s,
            student,
            RunData::of(p, &key.condition),
            key.seed,
            dir.clone(),
        )?;
        train_if_needed(&cfg, &dir, s.ranks, progress)
            .with_context(|| format!("training {}", key.dir()))?;
        measure_if_needed(&key, s, p, &dir, prompts)
            .with_context(|| format!("scoring {}", key.dir()))?;
        if s.suite {
            suite
                .evaluate_if_needed(&dir, work, progress)
                .with_context(|| format!("the evaluation suite on {}", key.dir()))?;
        }
        out.push(outcome(key, dir, s.eval_windows)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// The evaluation suite's inputs (its items and the teacher), loaded at the first run that
/// needs them: the teacher takes a second or two, and a grid whose runs all have their suite
/// results needs neither.
#[derive(Default)]
pub(crate) struct SuiteInputs(
    Option<(
        Result<crate::eval::suite::SuiteItems>,
        Result<crate::generate::Teacher>,
    )>,
);

impl SuiteInputs {
    /// Run the evaluation suite on a finished run unless its `suite.json` exists.
    pub(crate) fn evaluate_if_needed(
        &mut self,
        dir: &Path,
        work: &Path,
        progress: bool,
    ) -> Result<()> {
        if dir.join(crate::eval::suite_run::SUITE).exists() {
            return Ok(());
        }
        let (items, teacher) = self.0.get_or_insert_with(|| {
            let items = crate::eval::suite::SuiteItems::load(
                &super::provenance::project_root().join("data/eval"),
            );
            (items, crate::generate::Teacher::load())
        });
        let (items, teacher) = match (items, teacher) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => anyhow::bail!("the evaluation suite's inputs: {e:#}"),
        };
        crate::eval::suite_run::evaluate_run(dir, items, teacher, work, progress)?;
        Ok(())
    }
}
