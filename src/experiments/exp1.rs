//! Experiment 1 — can purely synthetic data match real data?
//!
//! Students of two sizes are trained at equal token budgets on (a) the synthetic mix (the four
//! generated families), (b) the real corpus, (c) a 50/50 blend by text bytes; each with several
//! seeds. Every model is evaluated on held-out synthetic *and* held-out real text (loss,
//! perplexity, bits per byte). One tokenizer, trained on the union of the training splits, keeps
//! losses comparable. We also measure 13-gram contamination between every training set and every
//! evaluation set, and keep samples from fixed prompts.
//!
//! Results go to `data/results/exp1/PROFILE/`: one run directory per model (the results
//! schema of [`crate::train::metrics`], checkpoints excluded from git) and `results.json`.

use crate::budget::{budget_for, Gpu, RunBudget};
use crate::config::{profile as train_profile, ModelSpec, RunConfig};
use crate::data::document::Document;
use crate::data::hub::HubOptions;
use crate::data::pack::{pack_documents, PackOptions};
use crate::data::read::{DataError, LoadOptions};
use crate::data::tokenizer::{train_bpe, BpeOptions, TextTokenizer};
use crate::eval::contamination::{contamination, ngram_set, Contamination};
use crate::experiments::corpora;
use crate::experiments::provenance::{environment, local_inputs, Environment, InputRecord};
use crate::generate::jobs::Generator;
use crate::generate::stats::{first_look_rows, FirstLook};
use crate::model::sample::{generate, SampleOptions};
use crate::stats::{bootstrap_mean_ci, paired_test, MeanCi, PairedTest};
use crate::train::{metrics, train, TrainOptions};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The three training conditions.
pub const CONDITIONS: [&str; 3] = ["synthetic", "real", "blend"];
/// The two evaluation sets.
pub const EVAL_SETS: [&str; 2] = ["synthetic", "real"];

/// Fixed prompts for samples (plain text, or a chat turn for the assistant to answer).
pub const PROMPTS: [&str; 4] = [
    "Once upon a time, there was a little",
    "<|im_start|>user\nWhy do leaves change colour in autumn?<|im_end|>\n<|im_start|>assistant\n",
    "To install a package on Debian, you",
    "The water cycle is",
];

/// Sizes and budgets of one scale of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exp1Profile {
    pub name: String,
    /// Student model presets (two sizes), with any overrides.
    pub students: Vec<(String, ModelSpec)>,
    pub seeds: Vec<u64>,
    pub vocab_size: usize,
    pub seq_len: usize,
    pub batch_size: usize,
    pub steps: u64,
    pub lr: f64,
    /// At most this many bytes of text per training condition (0 = all).
    pub max_train_bytes: u64,
    /// At most this many bytes of each held-out set.
    pub max_eval_bytes: u64,
    pub eval_windows: usize,
    pub sample_tokens: usize,
    /// Micro-batches per optimizer step.
    #[serde(default = "one")]
    pub grad_accum: usize,
    /// `cpu`, or `cuda` for the paper scale (needs the `cuda` feature).
    #[serde(default = "cpu")]
    pub device: String,
    #[serde(default)]
    pub corpora: Corpora,
}

fn one() -> usize {
    1
}

fn cpu() -> String {
    "cpu".into()
}

/// Where the synthetic and the real corpus come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Corpora {
    /// The CPU scales: the teacher-generated families under `data/generated` against the
    /// documents extracted from Debian packages.
    #[default]
    Local,
    /// The paper scale: seed datasets from the Hugging Face cache (specs such as
    /// `cosmopedia/stories`), the first `docs_per_source` documents of each.
    Hub {
        synthetic: Vec<String>,
        real: Vec<String>,
        docs_per_source: usize,
    },
}

impl Exp1Profile {
    pub fn tokens_per_run(&self) -> u64 {
        self.steps * (self.batch_size * self.grad_accum * self.seq_len) as u64
    }

    /// Training runs in the grid: students x conditions x seeds.
    pub fn runs(&self) -> usize {
        self.students.len() * CONDITIONS.len() * self.seeds.len()
    }
}

/// One student's share of a profile's compute: every condition and seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    pub student: String,
    pub params: usize,
    pub runs: usize,
    pub tokens_per_run: u64,
    /// One run on `gpu`.
    pub per_run: RunBudget,
    pub gpu_hours: f64,
    pub dollars: f64,
}

/// What a profile costs on a GPU (FLOPs from the model shapes at the profile's vocabulary and
/// sequence length; utilisation and price from [`Gpu`]). Evaluation and sampling are left out:
/// at these settings they are under 1% of training.
pub fn plan(p: &Exp1Profile, gpu: &Gpu) -> Result<Vec<PlanRow>> {
    let runs = CONDITIONS.len() * p.seeds.len();
    p.students
        .iter()
        .map(|(name, spec)| {
            let mut c = spec.resolve(Some(p.vocab_size))?;
            c.context = p.seq_len;
            let per_run = budget_for(name, &c, p.tokens_per_run(), gpu, 1);
            Ok(PlanRow {
                student: name.clone(),
                params: c.param_count(),
                runs,
                tokens_per_run: p.tokens_per_run(),
                gpu_hours: per_run.gpu_hours * runs as f64,
                dollars: per_run.dollars * runs as f64,
                per_run,
            })
        })
        .collect()
}

/// `smoke` (well under a minute, for tests and CI), `mini` (the CPU run; ~40 minutes on 2
/// cores) or `paper` (the original plan's GPU scale: GPT-2 small, 500M and 1B students on the
/// seed datasets; see [`plan`] for what it costs).
pub fn profile(name: &str) -> Result<Exp1Profile> {
    let spec = |preset: &str, ctx: usize| ModelSpec {
        preset: Some(preset.into()),
        context: Some(ctx),
        ..Default::default()
    };
    Ok(match name {
        "smoke" => Exp1Profile {
            name: name.into(),
            students: vec![
                ("tiny".into(), spec("tiny", 64)),
                (
                    "tiny-wide".into(),
                    ModelSpec {
                        d_model: Some(48),
                        ..spec("tiny", 64)
                    },
                ),
            ],
            seeds: vec![0, 1, 2],
            vocab_size: 512,
            seq_len: 32,
            batch_size: 4,
            steps: 12,
            lr: 3e-3,
            max_train_bytes: 150_000,
            max_eval_bytes: 20_000,
            eval_windows: 8,
            sample_tokens: 12,
            grad_accum: 1,
            device: cpu(),
            corpora: Corpora::Local,
        },
        "mini" => Exp1Profile {
            name: name.into(),
            students: vec![
                ("mini-1m".into(), spec("mini-1m", 128)),
                ("mini-3m".into(), spec("mini-3m", 128)),
            ],
            seeds: vec![0, 1, 2],
            vocab_size: 8192,
            seq_len: 128,
            batch_size: 16,
            steps: 400,
            lr: 2e-3,
            max_train_bytes: 0,
            max_eval_bytes: 400_000,
            eval_windows: 128,
            sample_tokens: 64,
            grad_accum: 1,
            device: cpu(),
            corpora: Corpora::Local,
        },
        // 0.5M tokens per step (32 x 16 x 1024) for 1,000 steps: 524M tokens per run, the same
        // for every student, as the design asks. Synthetic: the three LLM-generated seed
        // datasets (instructions, textbooks, conversations); real: FineWeb-Edu.
        "paper" => Exp1Profile {
            name: name.into(),
            students: vec![
                ("gpt2-small".into(), spec("gpt2-small", 1024)),
                ("gpt-500m".into(), spec("gpt-500m", 1024)),
                ("gpt-1b".into(), spec("gpt-1b", 1024)),
            ],
            seeds: vec![0, 1, 2],
            vocab_size: 32768,
            seq_len: 1024,
            batch_size: 32,
            steps: 1000,
            lr: 6e-4,
            max_train_bytes: 3_000_000_000,
            max_eval_bytes: 20_000_000,
            eval_windows: 512,
            sample_tokens: 128,
            grad_accum: 16,
            device: "cuda".into(),
            corpora: Corpora::Hub {
                synthetic: vec![
                    "openhermes".into(),
                    "cosmopedia/web_samples_v2".into(),
                    "cosmopedia/stories".into(),
                    "magpie-pro".into(),
                ],
                real: vec!["fineweb-edu/sample-10BT".into()],
                docs_per_source: 1_000_000,
            },
        },
        _ => anyhow::bail!("unknown Experiment 1 profile `{name}` (expected smoke, mini or paper)"),
    })
}

/// Where inputs come from and results go.
#[derive(Clone, Debug)]
pub struct Exp1Paths {
    /// `data/generated` (the synthetic families).
    pub generated: PathBuf,
    /// Real documents from `synthlm data real`.
    pub real: PathBuf,
    /// Their provenance manifest (`data/real/manifest.json`).
    pub real_manifest: PathBuf,
    /// The Hugging Face cache, for [`Corpora::Hub`].
    pub hub: HubOptions,
    /// Scratch: tokenizer, packed shards, checkpoints of runs (git-ignored).
    pub work: PathBuf,
    /// Committed results.
    pub results: PathBuf,
}

impl Exp1Paths {
    /// The project's standard layout for a profile.
    pub fn standard(root: &Path, profile: &str) -> Exp1Paths {
        Exp1Paths {
            generated: root.join("data/generated/v1"),
            real: root.join(".work/real/documents.jsonl"),
            real_manifest: root.join("data/real/manifest.json"),
            hub: HubOptions::from_env(),
            work: root.join(format!(".work/exp1/{profile}")),
            results: root.join(format!("data/results/exp1/{profile}")),
        }
    }
}

/// Size of one corpus split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusSize {
    pub documents: u64,
    pub tokens: u64,
    pub text_bytes: u64,
    pub sources: BTreeMap<String, u64>,
}

/// One row of the results table: a (student, condition) cell over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub student: String,
    pub params: usize,
    pub condition: String,
    /// Per evaluation set: loss (nats/token) and bits per byte, mean and 95% bootstrap CI over
    /// seeds.
    pub loss: BTreeMap<String, MeanCi>,
    pub bpb: BTreeMap<String, MeanCi>,
}

/// Synthetic vs real, paired by seed, for one student and evaluation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub student: String,
    pub eval: String,
    /// Loss(synthetic-trained) − loss(real-trained): negative favours synthetic.
    pub test: PairedTest,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub student: String,
    pub condition: String,
    pub seed: u64,
    pub prompt: String,
    pub completion: String,
}

/// Everything the notebook, book and paper show for Experiment 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exp1Results {
    pub schema: String,
    pub profile: Exp1Profile,
    pub tokenizer_sha256: String,
    pub train_sets: BTreeMap<String, CorpusSize>,
    pub eval_sets: BTreeMap<String, CorpusSize>,
    pub contamination: Vec<Contamination>,
    pub cells: Vec<Cell>,
    pub comparisons: Vec<Comparison>,
    pub samples: Vec<Sample>,
    /// Run directories relative to the results folder, by (student, condition, seed).
    pub runs: Vec<RunRef>,
    /// Training wall time of all runs, summed.
    pub wall_s: f64,
    pub cpu_core_hours: f64,
    /// Per source, training splits (at most 20,000 documents each): length, duplication,
    /// diversity.
    #[serde(default)]
    pub first_look: Vec<FirstLook>,
    /// The start of one held-out document per source.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// Inputs by identity: the corpora's manifests and files, then the tokenizer and the packed
    /// sets the runs were trained and evaluated on.
    #[serde(default)]
    pub inputs: Vec<InputRecord>,
    /// Software and machine of the call that wrote this file.
    #[serde(default)]
    pub environment: Environment,
}

/// The start of a document, for the book's data chapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub source: String,
    pub id: String,
    pub excerpt: String,
}

/// The first `chars` characters of a text, cut at a word boundary, whitespace collapsed.
fn excerpt(text: &str, chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= chars {
        return flat;
    }
    let cut: String = flat.chars().take(chars).collect();
    match cut.rfind(' ') {
        Some(i) => format!("{} ...", &cut[..i]),
        None => format!("{cut} ..."),
    }
}

/// Documents grouped by source, in first-seen order.
fn by_source<'a>(docs: impl IntoIterator<Item = &'a Document>) -> Vec<(String, Vec<Document>)> {
    let mut groups: Vec<(String, Vec<Document>)> = Vec::new();
    for d in docs {
        match groups.iter_mut().find(|g| g.0 == d.source) {
            Some(g) => g.1.push(d.clone()),
            None => groups.push((d.source.clone(), vec![d.clone()])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    groups
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    pub student: String,
    pub condition: String,
    pub seed: u64,
    pub dir: String,
}

pub const RESULTS: &str = "results.json";

/// Packed sets by name: (packed folder, the documents in it).
type Sets = BTreeMap<String, (PathBuf, Vec<Document>)>;

/// Prepare data (splits, tokenizer, packed sets) under `paths.work`, reusing what exists.
fn prepare(p: &Exp1Profile, paths: &Exp1Paths) -> Result<(TextTokenizer, Sets, Sets)> {
    let (synthetic, real) = match &p.corpora {
        Corpora::Local => {
            if !paths.real.exists() {
                let (_, manifest) = crate::data::real::extract(&paths.real)?;
                crate::io::write_json(&paths.real_manifest, &manifest)?;
            }
            let mut synthetic = Vec::new();
            for g in Generator::ALL {
                synthetic.extend(corpora::generated(&paths.generated, g)?);
            }
            (synthetic, corpora::real(&paths.real)?)
        }
        Corpora::Hub {
            synthetic,
            real,
            docs_per_source,
        } => {
            let load = |specs: &[String]| -> Result<Vec<Document>> {
                let mut docs = Vec::new();
                for s in specs {
                    let opts = LoadOptions {
                        limit: Some(*docs_per_source),
                        ..Default::default()
                    };
                    let stream = crate::data::input::open(s, None, &paths.hub, opts)?;
                    for d in stream {
                        docs.push(d?);
                    }
                }
                Ok(docs)
            };
            (load(synthetic)?, load(real)?)
        }
    };
    let (syn_train, syn_eval) = corpora::split(synthetic);
    let (real_train, real_eval) = corpora::split(real);
    let cap = |docs: Vec<Document>, bytes: u64| {
        if bytes == 0 {
            docs
        } else {
            corpora::take_bytes(&docs, bytes)
        }
    };
    let syn_train = cap(syn_train, p.max_train_bytes);
    let real_train = cap(real_train, p.max_train_bytes);
    // The blend: half the bytes of the smaller set from each.
    let syn_bytes: u64 = syn_train.iter().map(|d| d.text.len() as u64).sum();
    let real_bytes: u64 = real_train.iter().map(|d| d.text.len() as u64).sum();
    let half = syn_bytes.min(real_bytes) / 2;
    let mut blend = corpora::take_bytes(&syn_train, half);
    blend.extend(corpora::take_bytes(&real_train, half));

    std::fs::create_dir_all(&paths.work)?;
    // Reuse the tokenizer (and packed sets) only if they were made from these very texts.
    let tok_path = paths.work.join("tokenizer.json");
    let tok_inputs_path = paths.work.join("tokenizer.inputs");
    let tok_inputs = format!(
        "vocab {} min_frequency 2 texts {}{}",
        p.vocab_size,
        fingerprint(&syn_train),
        fingerprint(&real_train)
    );
    let tok_fresh = tok_path.exists()
        && std::fs::read_to_string(&tok_inputs_path).is_ok_and(|s| s == tok_inputs);
    let tok = if tok_fresh {
        TextTokenizer::load(&tok_path)?
    } else {
        let texts: Vec<String> = syn_train
            .iter()
            .chain(&real_train)
            .map(|d| d.text.clone())
            .collect();
        let tok = train_bpe(
            texts.into_iter(),
            &BpeOptions {
                vocab_size: p.vocab_size,
                min_frequency: 2,
            },
        )?;
        tok.save(&tok_path)?;
        crate::io::write_bytes(&tok_inputs_path, tok_inputs.as_bytes())?;
        tok
    };
    let pack = |name: &str, docs: Vec<Document>| -> Result<(PathBuf, Vec<Document>)> {
        let dir = paths.work.join("packed").join(name);
        let inputs = serde_json::json!({"experiment": "exp1", "set": name, "documents_sha256": fingerprint(&docs)});
        let fresh = crate::data::pack::TokenShards::open(&dir)
            .map(|s| s.manifest.tokenizer_sha256 == tok.sha256() && s.manifest.inputs == inputs)
            .unwrap_or(false);
        if !fresh {
            pack_documents(
                docs.clone().into_iter().map(Ok::<_, DataError>),
                &tok,
                &dir,
                &PackOptions::default(),
                inputs,
                None,
            )?;
        }
        Ok((dir, docs))
    };
    let mut train_sets = BTreeMap::new();
    train_sets.insert("synthetic".to_string(), pack("train-synthetic", syn_train)?);
    train_sets.insert("real".to_string(), pack("train-real", real_train)?);
    train_sets.insert("blend".to_string(), pack("train-blend", blend)?);
    let mut eval_sets = BTreeMap::new();
    eval_sets.insert(
        "synthetic".to_string(),
        pack(
            "eval-synthetic",
            corpora::take_bytes(&syn_eval, p.max_eval_bytes),
        )?,
    );
    eval_sets.insert(
        "real".to_string(),
        pack(
            "eval-real",
            corpora::take_bytes(&real_eval, p.max_eval_bytes),
        )?,
    );
    Ok((tok, train_sets, eval_sets))
}

/// SHA-256 over the ids and texts of documents, in order.
fn fingerprint(docs: &[Document]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for d in docs {
        h.update(d.id.as_bytes());
        h.update([0]);
        h.update(d.text.as_bytes());
        h.update([0]);
    }
    format!("{:x}", h.finalize())
}

/// Finished runs are reused only if they were trained on these inputs: `inputs.json` in the
/// results folder records the tokenizer and packed sets the runs there saw.
/// The `smoke` profile's results are scratch (tests and CI): stale ones are cleared instead.
fn check_inputs(results: &Path, scratch: bool, tok: &TextTokenizer, sets: &[&Sets]) -> Result<()> {
    let mut current = BTreeMap::new();
    current.insert("tokenizer".to_string(), tok.sha256().to_string());
    for set in sets {
        for (dir, _) in set.values() {
            let m = crate::data::pack::TokenShards::open(dir)?.manifest;
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            current.insert(name.to_string(), m.content_sha256);
        }
    }
    let path = results.join("inputs.json");
    if path.exists() {
        let before: BTreeMap<String, String> = crate::io::read_json(&path)?;
        if before != current && scratch {
            eprintln!(
                "{}: inputs changed; clearing these scratch results",
                results.display()
            );
            std::fs::remove_dir_all(results.join("runs")).ok();
            crate::io::write_json(&path, &current)?;
        } else if before != current {
            let changed: Vec<&String> = current
                .keys()
                .filter(|k| before.get(*k) != current.get(*k))
                .collect();
            anyhow::bail!(
                "{}: the runs here were trained on other inputs (changed: {changed:?}); move that folder away to start the experiment over",
                path.display()
            );
        }
    } else {
        anyhow::ensure!(
            !results.join("runs").exists(),
            "{}: runs exist but no record of the inputs they were trained on; move that folder away to start the experiment over",
            results.display()
        );
        crate::io::write_json(&path, &current)?;
    }
    Ok(())
}

fn size(dir: &Path) -> Result<CorpusSize> {
    let m = crate::data::pack::TokenShards::open(dir)?.manifest;
    Ok(CorpusSize {
        documents: m.documents,
        tokens: m.tokens,
        text_bytes: m.text_bytes,
        sources: m
            .sources
            .iter()
            .map(|(k, v)| (k.clone(), v.documents))
            .collect(),
    })
}

/// The run config of one model.
pub fn run_config(
    p: &Exp1Profile,
    student: &ModelSpec,
    train_dir: &Path,
    evals: &BTreeMap<String, PathBuf>,
    tokenizer: &Path,
    seed: u64,
    out_dir: PathBuf,
) -> Result<RunConfig> {
    let mut c = train_profile("mini")?;
    c.profile = format!("exp1-{}", p.name);
    c.out_dir = out_dir;
    c.model = student.clone();
    c.data.train = train_dir.to_path_buf();
    c.data.val = evals.clone();
    c.data.tokenizer = Some(tokenizer.to_path_buf());
    c.train.seed = seed;
    c.train.seq_len = p.seq_len;
    c.train.batch_size = p.batch_size;
    c.train.grad_accum = p.grad_accum;
    c.device = p.device.clone();
    c.train.max_steps = p.steps;
    c.train.warmup_steps = (p.steps / 10).max(1);
    c.train.lr = p.lr;
    c.train.min_lr = p.lr / 10.0;
    c.train.log_interval = (p.steps / 40).max(1);
    c.train.eval_interval = (p.steps / 4).max(1);
    c.train.ckpt_interval = p.steps;
    c.train.keep_checkpoints = 1;
    c.train.eval_windows = p.eval_windows;
    c.validate()?;
    Ok(c)
}

/// Run (or resume) Experiment 1 and write `results.json`. Finished runs are not redone.
/// The real corpus is extracted from the installed Debian packages first if it is missing.
pub fn run(p: &Exp1Profile, paths: &Exp1Paths, progress: bool) -> Result<Exp1Results> {
    let (tok, train_sets, eval_sets) = prepare(p, paths)?;
    std::fs::create_dir_all(&paths.results)?;
    check_inputs(
        &paths.results,
        p.name == "smoke",
        &tok,
        &[&train_sets, &eval_sets],
    )?;
    let tok_path = paths.work.join("tokenizer.json");
    let evals: BTreeMap<String, PathBuf> = eval_sets
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();

    // Contamination: every training set against every evaluation set.
    let mut contam = Vec::new();
    for (tname, (_, tdocs)) in &train_sets {
        let set = ngram_set(tdocs);
        for (ename, (_, edocs)) in &eval_sets {
            contam.push(contamination(tname, &set, ename, edocs));
        }
    }

    let total = (p.students.len() * CONDITIONS.len() * p.seeds.len()) as u64;
    let pb = if progress {
        crate::progress::bar(total, "runs", "exp1")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut runs = Vec::new();
    let mut samples = Vec::new();
    let recorded: Vec<Sample> = load_results(&paths.results)
        .map(|r| r.samples)
        .unwrap_or_default();
    let prompts: Vec<Vec<u32>> = PROMPTS
        .iter()
        .map(|s| {
            let mut v = vec![tok.eot_id()];
            v.extend(tok.encode(s)?);
            Ok(v)
        })
        .collect::<Result<_>>()?;
    for (student, spec) in &p.students {
        for cond in CONDITIONS {
            for &seed in &p.seeds {
                let rel = format!("runs/{student}-{cond}-s{seed}");
                let out = paths.results.join(&rel);
                pb.set_message(rel.clone());
                if metrics::read_summary(&out).is_err() {
                    let cfg = run_config(
                        p,
                        spec,
                        &train_sets[cond].0,
                        &evals,
                        &tok_path,
                        seed,
                        out.clone(),
                    )?;
                    train(&cfg, &TrainOptions::default())
                        .with_context(|| format!("training {rel}"))?;
                }
                // Samples from the final weights (deterministic: seeded). Checkpoints are not
                // committed: a finished run without one keeps the samples recorded before.
                let Some(ck) = crate::train::checkpoint::latest(&out)? else {
                    let before: Vec<Sample> = recorded
                        .iter()
                        .filter(|s| &s.student == student && s.condition == cond && s.seed == seed)
                        .cloned()
                        .collect();
                    anyhow::ensure!(
                        before.len() == PROMPTS.len(),
                        "{rel} has no checkpoint and no recorded samples; move it away to train it again"
                    );
                    samples.extend(before);
                    runs.push(RunRef {
                        student: student.clone(),
                        condition: cond.into(),
                        seed,
                        dir: rel,
                    });
                    pb.inc(1);
                    continue;
                };
                let loaded = crate::train::checkpoint::load(&ck, &candle_core::Device::Cpu)?;
                let mcfg = spec.resolve(Some(tok.vocab_size()))?;
                let model =
                    crate::model::Gpt::from_tensors(mcfg, loaded.model, &candle_core::Device::Cpu)?;
                let o = SampleOptions {
                    max_new_tokens: p.sample_tokens,
                    temperature: 0.8,
                    top_k: Some(40),
                    top_p: Some(0.95),
                    stop_tokens: vec![tok.eot_id()],
                    seed,
                };
                for (prompt, g) in PROMPTS.iter().zip(generate(&model, &prompts, &o)?) {
                    samples.push(Sample {
                        student: student.clone(),
                        condition: cond.into(),
                        seed,
                        prompt: prompt.to_string(),
                        completion: tok.decode(&g.tokens)?,
                    });
                }
                runs.push(RunRef {
                    student: student.clone(),
                    condition: cond.into(),
                    seed,
                    dir: rel,
                });
                pb.inc(1);
            }
        }
    }
    pb.finish_and_clear();

    // Aggregate over seeds.
    let final_val = |r: &RunRef| -> Result<BTreeMap<String, crate::eval::perplexity::EvalResult>> {
        Ok(metrics::read_summary(&paths.results.join(&r.dir))?.final_val)
    };
    let mut cells = Vec::new();
    let mut comparisons = Vec::new();
    for (student, spec) in &p.students {
        for cond in CONDITIONS {
            let rs: Vec<&RunRef> = runs
                .iter()
                .filter(|r| &r.student == student && r.condition == cond)
                .collect();
            let (mut loss, mut bpb) = (BTreeMap::new(), BTreeMap::new());
            for e in EVAL_SETS {
                let vals: Vec<crate::eval::perplexity::EvalResult> = rs
                    .iter()
                    .map(|r| Ok(final_val(r)?[e].clone()))
                    .collect::<Result<_>>()?;
                loss.insert(
                    e.to_string(),
                    bootstrap_mean_ci(
                        &vals.iter().map(|v| v.loss).collect::<Vec<_>>(),
                        0.95,
                        10_000,
                        7,
                    ),
                );
                bpb.insert(
                    e.to_string(),
                    bootstrap_mean_ci(
                        &vals.iter().map(|v| v.bpb).collect::<Vec<_>>(),
                        0.95,
                        10_000,
                        7,
                    ),
                );
            }
            cells.push(Cell {
                student: student.clone(),
                params: spec.resolve(Some(tok.vocab_size()))?.param_count(),
                condition: cond.into(),
                loss,
                bpb,
            });
        }
        for e in EVAL_SETS {
            let by = |cond: &str| -> Result<Vec<f64>> {
                p.seeds
                    .iter()
                    .map(|&s| {
                        Ok(final_val(
                            runs.iter()
                                .find(|r| {
                                    &r.student == student && r.condition == cond && r.seed == s
                                })
                                .expect("run"),
                        )?[e]
                            .loss)
                    })
                    .collect()
            };
            comparisons.push(Comparison {
                student: student.clone(),
                eval: e.into(),
                test: paired_test(&by("synthetic")?, &by("real")?, 11),
            });
        }
    }
    // Time is what the runs took (summed from their summaries), not this call's, which may
    // only have reused finished runs.
    let summaries: Vec<metrics::Summary> = runs
        .iter()
        .map(|r| metrics::read_summary(&paths.results.join(&r.dir)))
        .collect::<Result<_>>()?;
    let wall_s = summaries.iter().map(|s| s.wall_s).sum::<f64>();
    // The data as the runs saw it: the training splits per source, one held-out example each.
    let train_docs = train_sets["synthetic"]
        .1
        .iter()
        .chain(&train_sets["real"].1);
    // (At most 20,000 documents per source, in mix order: bounded at the paper scale, all of
    // them at the mini scale.)
    let mut groups = by_source(train_docs);
    for g in &mut groups {
        g.1.truncate(20_000);
    }
    let first_look = first_look_rows(&groups);
    let examples = by_source(eval_sets.values().flat_map(|s| &s.1))
        .into_iter()
        .map(|(source, docs)| Example {
            source,
            id: docs[0].id.clone(),
            excerpt: excerpt(&docs[0].text, 400),
        })
        .collect();
    let mut inputs = match &p.corpora {
        Corpora::Local => local_inputs(&paths.generated, &paths.real, &paths.real_manifest)?,
        Corpora::Hub {
            synthetic, real, ..
        } => synthetic
            .iter()
            .chain(real)
            .map(|s| InputRecord {
                name: s.clone(),
                detail: "Hugging Face dataset (revision in the spec; main if none)".into(),
                sha256: String::new(),
            })
            .collect(),
    };
    let recorded: BTreeMap<String, String> =
        crate::io::read_json(&paths.results.join("inputs.json"))?;
    for (name, sha256) in recorded {
        inputs.push(InputRecord {
            detail: if name == "tokenizer" {
                format!("byte-level BPE, {} tokens", tok.vocab_size())
            } else {
                "packed token shards (content hash)".into()
            },
            name,
            sha256,
        });
    }
    let run_hours: f64 = summaries.iter().map(|s| s.cpu_core_hours).sum();
    let results = Exp1Results {
        schema: "synthlm-exp1/1".into(),
        profile: p.clone(),
        tokenizer_sha256: tok.sha256().into(),
        train_sets: train_sets
            .iter()
            .map(|(k, v)| Ok((k.clone(), size(&v.0)?)))
            .collect::<Result<_>>()?,
        eval_sets: eval_sets
            .iter()
            .map(|(k, v)| Ok((k.clone(), size(&v.0)?)))
            .collect::<Result<_>>()?,
        contamination: contam,
        cells,
        comparisons,
        samples,
        runs,
        wall_s,
        cpu_core_hours: run_hours,
        first_look,
        examples,
        inputs,
        environment: environment(),
    };
    crate::io::write_json(&paths.results.join(RESULTS), &results)?;
    Ok(results)
}

/// Read a profile's results.
pub fn load_results(results_dir: &Path) -> Result<Exp1Results> {
    crate::io::read_json(&results_dir.join(RESULTS))
}
