//! The scale of an experiment: students, seeds, tokenizer, batch, steps and data budgets, read
//! from `configs/experiments/expN/PROFILE.toml` (`smoke` for tests and CI, `mini` for the CPU
//! run of the book, `paper` for the original GPU plan). Unknown keys are errors naming the key;
//! impossible values too. What an experiment varies beyond these (its conditions) is read by
//! the experiment itself from the `[design]` table.

use crate::config::{ModelSpec, Precision};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One student: a name used in results, and its model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Student {
    pub name: String,
    pub model: ModelSpec,
    /// Peak learning rate of this student, when it is not the scale's `lr` (set by the
    /// learning-rate sweep, [`super::sweep`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
}

/// The learning-rate sweep of a scale: every student trained on one condition at each rate,
/// scored on a dev split of that condition's training documents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub lrs: Vec<f64>,
    pub condition: String,
}

/// Where the corpora come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Corpora {
    /// The CPU scales: the teacher-generated families in `generated` (relative to the project
    /// root) and the documents extracted from Debian packages.
    Local { generated: PathBuf },
    /// The paper scale: seed datasets from the Hugging Face cache (specs such as
    /// `cosmopedia/stories`), the first `docs_per_source` documents of each.
    Hub {
        synthetic: Vec<String>,
        real: Vec<String>,
        docs_per_source: usize,
    },
}

fn one() -> usize {
    1
}
fn is_one(x: &usize) -> bool {
    *x == 1
}
fn cpu() -> String {
    "cpu".into()
}

/// Sizes and budgets of one scale of one experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// The experiment's number.
    pub experiment: u32,
    /// `smoke`, `mini` or `paper`.
    pub profile: String,
    pub students: Vec<Student>,
    pub seeds: Vec<u64>,
    /// Tokenizer: byte-level BPE of this many tokens, trained on the training sets' union.
    pub vocab_size: usize,
    pub seq_len: usize,
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[serde(default = "one")]
    pub grad_accum: usize,
    pub steps: u64,
    pub lr: f64,
    /// At most this many bytes of text per training condition (0 = all).
    pub max_train_bytes: u64,
    /// At most this many bytes of each held-out set.
    pub max_eval_bytes: u64,
    /// Windows per held-out set at each evaluation during training (the learning curves; final
    /// numbers score whole held-out sets).
    pub eval_windows: usize,
    /// Evaluations during training (evenly spaced; the last at the end).
    #[serde(default = "four")]
    pub evals: u64,
    /// Tokens of each sample from the fixed prompts.
    pub sample_tokens: usize,
    /// `cpu`, or `cuda` (needs the `cuda` feature).
    #[serde(default = "cpu")]
    pub device: String,
    /// Number format of the students' matmuls (`f32`, or `bf16` mixed precision).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Gradient checkpointing of every transformer block.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grad_checkpointing: bool,
    /// Keep every run's final weights (f16, Hugging Face layout, `RUN/hf/`) so that later
    /// experiments can score the students without retraining them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_weights: bool,
    /// Choose each student's learning rate by a sweep on a dev split before the grid runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
    /// Multiples of the token budget (not 1) at which the first seed of every student and
    /// condition is trained again for the learning curve ([`super::curve`]), e.g. `[0.25,
    /// 0.5, 2.0]`. Empty: no curve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<f64>,
    /// Run the evaluation suite on the learning curve's runs too, and add their neutral-domain
    /// points (needs `suite` and `curve`). Off by default: a curve trained before this existed
    /// kept no weights to evaluate, and retraining it costs the curve again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub curve_suite: bool,
    /// ZeRO-1: AdamW's state divided over the `ranks` (the weights do not change).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zero1: bool,
    /// Processes per run (one per GPU): above 1, each run is trained by `synthlm launch`
    /// as that many data-parallel ranks, each with `batch_size / ranks` sequences.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub ranks: usize,
    pub corpora: Corpora,
    /// Run the evaluation suite (`data/eval`) on every run, at 10% of its training (a weight
    /// snapshot) and at the end, with n-gram baselines on the same items.
    #[serde(default)]
    pub suite: bool,
    /// What the experiment itself varies (read by its design).
    #[serde(default)]
    pub design: toml::Table,
}

fn four() -> u64 {
    4
}

impl Scale {
    /// Tokens each run trains on.
    pub fn tokens_per_run(&self) -> u64 {
        self.steps * (self.batch_size * self.grad_accum * self.seq_len) as u64
    }

    /// How each rank of a run trains (for the planner's time and memory).
    pub fn train_options(&self) -> crate::budget::TrainOptions {
        crate::budget::TrainOptions {
            checkpointing: self.grad_checkpointing,
            zero1_ranks: if self.zero1 { self.ranks } else { 1 },
            bf16: self.precision == Precision::Bf16,
            grad_accum: self.grad_accum,
        }
    }

    /// Parse a scale from TOML; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Scale> {
        let v: toml::Value =
            toml::from_str(text).with_context(|| format!("{origin}: invalid TOML"))?;
        let s: Scale = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            anyhow!("{origin}: key `{path}`: {}", e.into_inner())
        })?;
        s.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
        Ok(s)
    }

    /// Read a scale file.
    pub fn load(path: &Path) -> Result<Scale> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// `configs/experiments/expN/PROFILE.toml` under `root`, checked to be experiment `N`'s.
    pub fn standard(root: &Path, experiment: u32, profile: &str) -> Result<Scale> {
        let path = root
            .join("configs/experiments")
            .join(format!("exp{experiment}"))
            .join(format!("{profile}.toml"));
        if !path.exists() {
            bail!(
                "{}: no such scale (profiles are the .toml files in that folder)",
                path.display()
            );
        }
        let s = Self::load(&path)?;
        if s.experiment != experiment || s.profile != profile {
            bail!(
                "{}: says experiment {} profile `{}`",
                path.display(),
                s.experiment,
                s.profile
            );
        }
        Ok(s)
    }

    /// Read the `[design]` table as the experiment's own settings (unknown keys named).
    pub fn design<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_path_to_error::deserialize(toml::Value::Table(self.design.clone())).map_err(|e| {
            let path = e.path().to_string();
            anyhow!(
                "scale exp{} `{}`: key `design.{path}`: {}",
                self.experiment,
                self.profile,
                e.into_inner()
            )
        })
    }

    /// Check values that types cannot; each error names its key.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("vocab_size", self.vocab_size),
            ("seq_len", self.seq_len),
            ("batch_size", self.batch_size),
            ("grad_accum", self.grad_accum),
            ("eval_windows", self.eval_windows),
            ("ranks", self.ranks),
        ] {
            if v == 0 {
                bail!("key `{k}` must be at least 1");
            }
        }
        if self.steps == 0 || self.evals == 0 {
            bail!("keys `steps` and `evals` must be at least 1");
        }
        if !self.batch_size.is_multiple_of(self.ranks) {
            bail!(
                "key `batch_size` ({}) must divide over `ranks` ({})",
                self.batch_size,
                self.ranks
            );
        }
        if let Some(m) = self
            .curve
            .iter()
            .find(|m| !(m.is_finite() && **m > 0.0) || **m == 1.0)
        {
            bail!("key `curve`: multiples of the token budget must be positive and not 1 (the grid's own runs), not {m}");
        }
        if self.curve_suite && (!self.suite || self.curve.is_empty()) {
            bail!("key `curve_suite` needs `suite = true` and a `curve`");
        }
        if let Some(w) = &self.sweep {
            if w.lrs.len() < 2 || w.lrs.iter().any(|x| !(*x > 0.0 && *x < 1.0)) {
                bail!("key `sweep.lrs`: at least two rates, each in (0, 1)");
            }
        }
        if self.students.is_empty() || self.seeds.is_empty() {
            bail!("keys `students` and `seeds` must not be empty");
        }
        if !(self.lr > 0.0 && self.lr < 1.0) {
            bail!("key `lr` must be in (0, 1), not {}", self.lr);
        }
        let mut names: Vec<&str> = self.students.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        names.dedup();
        if names.len() != self.students.len() {
            bail!("key `students`: names must be distinct");
        }
        for s in &self.students {
            let m = s
                .model
                .resolve(Some(self.vocab_size))
                .with_context(|| format!("student `{}`", s.name))?;
            if m.context < self.seq_len {
                bail!(
                    "student `{}`: context {} is shorter than seq_len {}",
                    s.name,
                    m.context,
                    self.seq_len
                );
            }
        }
        Ok(())
    }
}
