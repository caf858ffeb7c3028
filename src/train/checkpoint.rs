//! Checkpoints: everything needed to continue a run bit for bit.
//!
//! ```text
//! RUN/checkpoints/step-00000200/
//!     model.safetensors      weights (Hugging Face GPT-2 names)
//!     optimizer.safetensors  AdamW moments m.NAME, v.NAME and step count t
//!     state.json             step, tokens, elapsed time, sampler state, metrics position,
//!                            config, tokenizer and data hashes, SHA-256 of both files
//! RUN/checkpoints/latest     name of the newest complete checkpoint
//! ```
//!
//! A checkpoint is written into a staging folder and renamed into place, then `latest` is
//! replaced atomically: a crash at any moment leaves the previous checkpoint usable. The data
//! sampler and dropout are stateless functions of (seed, step), so the step *is* their state.

use crate::config::RunConfig;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIM_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "state.json";

/// The sampler: windows and dropout masks are drawn from ChaCha8(seed) on stream `step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerState {
    pub kind: String,
    pub seed: u64,
    pub next_step: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimizer steps completed.
    pub step: u64,
    pub tokens_seen: u64,
    pub elapsed_s: f64,
    pub sampler: SamplerState,
    /// Lines of metrics.jsonl written when the checkpoint was taken.
    pub metrics_lines: u64,
    /// Learning rate of the last step (the schedule is a function of the step).
    pub lr: f64,
    /// Sum of losses and count of steps since the last logged line, so a resumed run logs the
    /// same interval means.
    pub log_window_loss: f64,
    pub log_window_steps: u64,
    pub config: RunConfig,
    pub tokenizer_sha256: String,
    pub data_sha256: String,
    /// The matmul kernels and threads that trained it so far (see [`crate::cpu::matmul_kernels`]):
    /// on one device, a run resumed with other kernels or threads would be reproducible by
    /// neither. Checkpoints written before these were recorded: `fma`, threads unknown (0).
    #[serde(default = "crate::cpu::kernels_before_recorded")]
    pub matmul: String,
    #[serde(default)]
    pub threads: usize,
    /// SHA-256 of each file of the checkpoint.
    pub files: BTreeMap<String, String>,
}

pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Write a checkpoint; keep the newest `keep` ones.
pub fn save(
    run_dir: &Path,
    state: &CheckpointState,
    model: &HashMap<String, Tensor>,
    optim: &HashMap<String, Tensor>,
    keep: usize,
) -> Result<PathBuf> {
    let root = checkpoints_dir(run_dir);
    std::fs::create_dir_all(&root)?;
    let name = format!("step-{:08}", state.step);
    let staging = root.join(format!(".{name}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let mut state = state.clone();
    for (file, tensors) in [(MODEL_FILE, model), (OPTIM_FILE, optim)] {
        let path = staging.join(file);
        candle_core::safetensors::save(tensors, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        state
            .files
            .insert(file.to_string(), crate::io::sha256_file(&path)?);
    }
    crate::io::write_json(&staging.join(STATE_FILE), &state)?;
    let dir = root.join(&name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&staging, &dir)?;
    crate::io::write_bytes(&root.join("latest"), name.as_bytes())?;
    // Prune: newest `keep` complete checkpoints stay.
    let mut all: Vec<_> = std::fs::read_dir(&root)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("step-"))
        .collect();
    all.sort();
    for old in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        std::fs::remove_dir_all(root.join(old))?;
    }
    Ok(dir)
}

/// Folder of a run's weight snapshots (`TrainConfig::snapshot_steps`).
pub fn weights_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("weights")
}

/// Save the model's weights alone at `step` (atomically): `weights/step-NNNNNNNN.safetensors`.
pub fn save_weights(run_dir: &Path, step: u64, model: &HashMap<String, Tensor>) -> Result<PathBuf> {
    let dir = weights_dir(run_dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("step-{step:08}.safetensors"));
    let tmp = dir.join(format!(".step-{step:08}.partial"));
    candle_core::safetensors::save(model, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The steps a run has weight snapshots of, ascending.
pub fn snapshot_steps(run_dir: &Path) -> Result<Vec<u64>> {
    let dir = weights_dir(run_dir);
    if !dir.exists() {
        return Ok(vec![]);
    }
    let mut steps: Vec<u64> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_prefix("step-")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()
        })
        .collect();
    steps.sort();
    Ok(steps)
}

/// The newest checkpoint of a run, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    let pointer = checkpoints_dir(run_dir).join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer)
        .with_context(|| format!("reading {}", pointer.display()))?;
    let dir = checkpoints_dir(run_dir).join(name.trim());
    if !dir.is_dir() {
        bail!(
            "{} points to {}, which does not exist",
            pointer.display(),
            dir.display()
        );
    }
    Ok(Some(dir))
}

/// A loaded checkpoint.
pub struct Loaded {
    pub dir: PathBuf,
    pub state: CheckpointState,
    pub model: HashMap<String, Tensor>,
    pub optim: HashMap<String, Tensor>,
}

/// Load and verify a checkpoint folder: every file must match its recorded SHA-256.
pub fn load(dir: &Path, device: &Device) -> Result<Loaded> {
    let state_path = dir.join(STATE_FILE);
    let state: CheckpointState = crate::io::read_json(&state_path)
        .with_context(|| format!("checkpoint {}: unreadable {STATE_FILE}", dir.display()))?;
    for (file, want) in &state.files {
        let path = dir.join(file);
        let got = crate::io::sha256_file(&path)
            .with_context(|| format!("checkpoint {}: missing {file}", dir.display()))?;
        if &got != want {
            bail!("checkpoint {}: {file} is corrupt (SHA-256 {got} does not match the recorded {want}); resume from an older checkpoint or delete it", dir.display());
        }
    }
    let read = |file: &str| -> Result<HashMap<String, Tensor>> {
        let path = dir.join(file);
        candle_core::safetensors::load(&path, device)
            .with_context(|| format!("checkpoint {}: cannot read {file}", dir.display()))
    };
    Ok(Loaded {
        dir: dir.to_path_buf(),
        model: read(MODEL_FILE)?,
        optim: read(OPTIM_FILE)?,
        state,
    })
}

/// Settings that change how a step is computed or stored but not its result (to float
/// rounding), so a run may resume with them changed: the memory tricks, and the device (one
/// checkpoint format for CPU and GPU: a run started on a GPU can finish on the CPU; only a
/// resume on the same device is bit-identical).
const RESULT_NEUTRAL: [&str; 3] = ["train.grad_checkpointing", "train.zero1", "device"];

/// Keys whose values differ between two configs (dotted paths), for resume errors; the
/// result-neutral settings are left out.
pub fn config_diff(a: &RunConfig, b: &RunConfig) -> Vec<String> {
    fn walk(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<_> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&serde_json::Value::Null),
                        y.get(k).unwrap_or(&serde_json::Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{prefix}: {a} -> {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(a).unwrap_or_default(),
        &serde_json::to_value(b).unwrap_or_default(),
        &mut out,
    );
    out.retain(|d| {
        !RESULT_NEUTRAL
            .iter()
            .any(|k| d.starts_with(&format!("{k}:")))
    });
    out
}
