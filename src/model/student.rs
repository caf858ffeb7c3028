//! A trained student as the evaluation sees it: the model, the tokenizer it was trained with and
//! its run config, loaded from a run folder: the latest checkpoint, or the weight snapshot of a
//! given step (`weights/step-NNNNNNNN.safetensors`); or a GPT-2 in Hugging Face's format
//! (a folder with config.json, model.safetensors and tokenizer.json), which has no run config.

use crate::config::RunConfig;
use crate::data::tokenizer::TextTokenizer;
use crate::model::Gpt;
use crate::train::checkpoint;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::Device;
use std::path::Path;

pub struct Student {
    pub model: Gpt,
    pub tokenizer: TextTokenizer,
    /// The run's config; `None` for a model imported from Hugging Face's format.
    pub config: Option<RunConfig>,
    /// The training step these weights are from.
    pub step: u64,
}

impl Student {
    /// Load from `run` (a run folder): the snapshot of `step` if given, else the latest
    /// checkpoint, else the last snapshot. A Hugging Face GPT-2 folder loads as it is.
    /// `run` may also be `hf:ORG/NAME`, a model repository in the Hugging Face cache.
    pub fn load(run: &Path, step: Option<u64>) -> Result<Student> {
        if let Some(id) = run.to_str().and_then(|s| s.strip_prefix("hf:")) {
            let opts = crate::data::hub::HubOptions::from_env();
            let dir = crate::data::hub::model_snapshot(id, &opts)?;
            return Student::load(&dir, step);
        }
        if crate::model::hf::is_hf_dir(run) {
            if step.is_some() {
                bail!(
                    "{}: a Hugging Face model folder has no steps",
                    run.display()
                );
            }
            let (model, tokenizer) = crate::model::hf::load(run)?;
            return Ok(Student {
                model,
                tokenizer,
                config: None,
                step: 0,
            });
        }
        let config: RunConfig =
            crate::io::read_json(&run.join("config.json")).with_context(|| {
                format!(
                    "{}: not a run folder (no readable config.json)",
                    run.display()
                )
            })?;
        let tok_path =
            config.data.tokenizer.clone().ok_or_else(|| {
                anyhow!("{}: the run's config has no data.tokenizer", run.display())
            })?;
        let tokenizer = TextTokenizer::load(&tok_path)
            .with_context(|| format!("{}: its tokenizer", run.display()))?;
        let mcfg = config.model.resolve(Some(tokenizer.vocab_size()))?;
        let snapshots = checkpoint::snapshot_steps(run)?;
        let (tensors, step) = match (step, checkpoint::latest(run)?) {
            (None, Some(dir)) => {
                let ck = checkpoint::load(&dir, &Device::Cpu)?;
                (ck.model, ck.state.step)
            }
            _ => {
                let s = match step.or(snapshots.last().copied()) {
                    Some(s) => s,
                    None => bail!("{} has no checkpoint and no weight snapshot", run.display()),
                };
                if !snapshots.contains(&s) {
                    bail!(
                        "{}: no weight snapshot of step {s} (have {snapshots:?})",
                        run.display()
                    );
                }
                let path = checkpoint::weights_dir(run).join(format!("step-{s:08}.safetensors"));
                let t = candle_core::safetensors::load(&path, &Device::Cpu)
                    .with_context(|| format!("reading {}", path.display()))?;
                (t, s)
            }
        };
        let model = Gpt::from_tensors(mcfg, tensors, &Device::Cpu)
            .with_context(|| format!("{}: weights of step {step}", run.display()))?;
        Ok(Student {
            model,
            tokenizer,
            config: Some(config),
            step,
        })
    }
}
