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

use crate::config::{profile as train_profile, ModelSpec, RunConfig};
use crate::data::document::Document;
use crate::data::pack::{pack_documents, PackOptions};
use crate::data::read::DataError;
use crate::data::tokenizer::{train_bpe, BpeOptions, TextTokenizer};
use crate::eval::contamination::{contamination, ngram_set, Contamination};
use crate::experiments::corpora;
use crate::generate::jobs::Generator;
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
}

impl Exp1Profile {
    pub fn tokens_per_run(&self) -> u64 {
        self.steps * (self.batch_size * self.seq_len) as u64
    }
}

/// `smoke` (well under a minute, for tests and CI) or `mini` (the CPU run; ~40 minutes on 2
/// cores). The `paper` scale is planned, not run here: see [`crate::budget`].
pub fn profile(name: &str) -> Result<Exp1Profile> {
    let spec = |preset: &str, ctx: usize| ModelSpec {
        preset: Some(preset.into()),
        context: Some(ctx),
        ..Default::default()
    };
    Ok(match name {
        "smoke" => Exp1Profile {
            name: name.into(),
            students: vec![("tiny".into(), spec("tiny", 64)), ("tiny-wide".into(), ModelSpec { d_model: Some(48), ..spec("tiny", 64) })],
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
        },
        "mini" => Exp1Profile {
            name: name.into(),
            students: vec![("mini-1m".into(), spec("mini-1m", 128)), ("mini-3m".into(), spec("mini-3m", 128))],
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
        },
        _ => anyhow::bail!("unknown Experiment 1 profile `{name}` (expected smoke or mini; `paper` is a plan: see synthlm budget)"),
    })
}

/// Where inputs come from and results go.
#[derive(Clone, Debug)]
pub struct Exp1Paths {
    /// `data/generated` (the synthetic families).
    pub generated: PathBuf,
    /// Real documents from `synthlm data real`.
    pub real: PathBuf,
    /// Scratch: tokenizer, packed shards, checkpoints of runs (git-ignored).
    pub work: PathBuf,
    /// Committed results.
    pub results: PathBuf,
}

impl Exp1Paths {
    /// The project's standard layout for a profile.
    pub fn standard(root: &Path, profile: &str) -> Exp1Paths {
        Exp1Paths {
            generated: root.join("data/generated"),
            real: root.join(".work/real/documents.jsonl"),
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
    let mut synthetic = Vec::new();
    for g in Generator::ALL {
        synthetic.extend(corpora::generated(&paths.generated, g)?);
    }
    let real = corpora::real(&paths.real)?;
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
    let tok_path = paths.work.join("tokenizer.json");
    let tok = if tok_path.exists() {
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
        tok
    };
    let pack = |name: &str, docs: Vec<Document>| -> Result<(PathBuf, Vec<Document>)> {
        let dir = paths.work.join("packed").join(name);
        let fresh = crate::data::pack::TokenShards::open(&dir)
            .map(|s| {
                s.manifest.tokenizer_sha256 == tok.sha256()
                    && s.manifest.documents == docs.len() as u64
            })
            .unwrap_or(false);
        if !fresh {
            pack_documents(
                docs.clone().into_iter().map(Ok::<_, DataError>),
                &tok,
                &dir,
                &PackOptions::default(),
                serde_json::json!({"experiment": "exp1", "set": name}),
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
    if !paths.real.exists() {
        crate::data::real::extract(&paths.real)?;
    }
    let (tok, train_sets, eval_sets) = prepare(p, paths)?;
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
                // Samples from the final weights (deterministic: seeded).
                let ck = crate::train::checkpoint::latest(&out)?
                    .with_context(|| format!("{rel} has no checkpoint"))?;
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
    };
    crate::io::write_json(&paths.results.join(RESULTS), &results)?;
    Ok(results)
}

/// Read a profile's results.
pub fn load_results(results_dir: &Path) -> Result<Exp1Results> {
    crate::io::read_json(&results_dir.join(RESULTS))
}
