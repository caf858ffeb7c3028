//! The training loop, top to bottom. Deterministic on CPU: the same config gives the same
//! weights bit for bit, whether or not the run was interrupted and resumed.

use crate::config::RunConfig;
use crate::data::pack::TokenShards;
use crate::data::tokenizer::TextTokenizer;
use crate::eval::perplexity::{evaluate, EvalResult};
use crate::model::gpt::{decays, Dropout, Gpt};
use crate::train::checkpoint::{self, CheckpointState, SamplerState};
use crate::train::metrics::{
    DataIdentity, MetricLine, MetricsWriter, Summary, METRICS, SCHEMA, SUMMARY,
};
use crate::train::optim::{global_norm, AdamW, AdamWParams};
use crate::train::schedule::learning_rate;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{Device, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How to run (not part of the experiment's identity).
#[derive(Clone, Default)]
pub struct TrainOptions {
    /// Stop (with a checkpoint) once this many steps are done: simulates an interruption.
    pub stop_after: Option<u64>,
    /// Set (e.g. by Ctrl-C) to stop at the next step boundary with a checkpoint.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Draw a progress bar.
    pub progress: bool,
}

/// How a call to [`train`] ended.
#[derive(Debug)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub steps_done: u64,
    /// The run reached `max_steps` and wrote its summary.
    pub finished: bool,
    pub summary: Option<Summary>,
}

/// The device a config names.
pub fn device(name: &str) -> Result<Device> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal: usize = name
        .strip_prefix("cuda")
        .map(|r| r.trim_start_matches(':'))
        .filter(|r| !r.is_empty())
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(0);
    if cfg!(feature = "cuda") {
        Ok(Device::new_cuda(ordinal)?)
    } else {
        bail!("device `{name}` needs a build with the `cuda` feature (cargo build --release --features cuda)")
    }
}

/// Everything the loop reads: data, tokenizer, model shape, device.
struct Setup {
    train: TokenShards,
    vals: Vec<(String, TokenShards)>,
    token_bytes: Vec<u32>,
    device: Device,
}

fn setup(cfg: &RunConfig) -> Result<Setup> {
    let train = TokenShards::open(&cfg.data.train).context("data.train")?;
    let tok_path = cfg.data.tokenizer.as_ref().ok_or_else(|| {
        anyhow!("data.tokenizer is required (bits per byte and sampling need it)")
    })?;
    let tok = TextTokenizer::load(tok_path).context("data.tokenizer")?;
    if tok.sha256() != train.manifest.tokenizer_sha256 {
        bail!(
            "data.tokenizer {} (sha256 {}) is not the tokenizer that packed data.train ({})",
            tok_path.display(),
            tok.sha256(),
            train.manifest.tokenizer_sha256
        );
    }
    let mut vals = Vec::new();
    for (name, dir) in &cfg.data.val {
        let v = TokenShards::open(dir).with_context(|| format!("data.val.{name}"))?;
        if v.manifest.tokenizer_sha256 != train.manifest.tokenizer_sha256 {
            bail!("data.val.{name} was packed with another tokenizer than data.train");
        }
        vals.push((name.clone(), v));
    }
    Ok(Setup {
        train,
        vals,
        token_bytes: tok.token_byte_lengths(),
        device: device(&cfg.device)?,
    })
}

/// Train (or resume) the run described by `cfg`.
pub fn train(cfg: &RunConfig, opts: &TrainOptions) -> Result<TrainOutcome> {
    cfg.validate()?;
    let s = setup(cfg)?;
    let tc = &cfg.train;
    let mcfg = cfg.model.resolve(Some(s.train.manifest.vocab_size))?;
    if mcfg.vocab_size < s.train.manifest.vocab_size {
        bail!(
            "model.vocab_size = {} is smaller than the tokenizer's {}",
            mcfg.vocab_size,
            s.train.manifest.vocab_size
        );
    }
    let run_dir = cfg.out_dir.clone();
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    crate::io::write_json(&run_dir.join("config.json"), cfg)?;

    // Fresh start or exact resume.
    let names: Vec<String> = mcfg
        .parameter_shapes()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let sizes: Vec<usize> = mcfg
        .parameter_shapes()
        .iter()
        .map(|(_, s)| s.iter().product())
        .collect();
    let mut opt = AdamW::new(&sizes, names.iter().map(|n| decays(n)).collect());
    let (mut window_loss, mut window_steps) = (0f64, 0u64);
    let (model, mut step, mut tokens_seen, elapsed0, mut metrics) =
        match checkpoint::latest(&run_dir)? {
            Some(dir) => {
                let ck = checkpoint::load(&dir, &s.device)?;
                let diff = checkpoint::config_diff(&ck.state.config, cfg);
                if !diff.is_empty() {
                    bail!(
                    "{} was written with a different config ({}); use another out_dir or delete {}",
                    dir.display(),
                    diff.join("; "),
                    checkpoint::checkpoints_dir(&run_dir).display()
                );
                }
                if ck.state.data_sha256 != s.train.manifest.content_sha256 {
                    bail!(
                    "{}: the training data changed since this checkpoint (content hash differs)",
                    dir.display()
                );
                }
                let model = Gpt::from_tensors(mcfg.clone(), ck.model, &s.device)
                    .with_context(|| format!("checkpoint {}", dir.display()))?;
                opt.load_state(&names, ck.optim)
                    .with_context(|| format!("checkpoint {}", dir.display()))?;
                let metrics = MetricsWriter::open(&run_dir.join(METRICS), ck.state.metrics_lines)?;
                (window_loss, window_steps) = (ck.state.log_window_loss, ck.state.log_window_steps);
                (
                    model,
                    ck.state.step,
                    ck.state.tokens_seen,
                    ck.state.elapsed_s,
                    metrics,
                )
            }
            None => (
                Gpt::new(mcfg.clone(), tc.seed, &s.device)?,
                0,
                0,
                0.0,
                MetricsWriter::open(&run_dir.join(METRICS), 0)?,
            ),
        };

    let started = Instant::now();
    let elapsed = || elapsed0 + started.elapsed().as_secs_f64();
    let pb = if opts.progress {
        crate::progress::bar(tc.max_steps, "steps", "train")
    } else {
        indicatif::ProgressBar::hidden()
    };
    pb.set_position(step);
    let (mut window_tokens, mut window_start) = (0u64, Instant::now());
    let mut last_train_loss = f64::NAN;
    let mut final_val: BTreeMap<String, EvalResult> = BTreeMap::new();
    let mut last_lr = 0.0;

    let save = |step: u64,
                tokens_seen: u64,
                lr: f64,
                metrics_lines: u64,
                window: (f64, u64),
                opt: &AdamW,
                model: &Gpt|
     -> Result<PathBuf> {
        let state = CheckpointState {
            step,
            tokens_seen,
            elapsed_s: elapsed(),
            sampler: SamplerState {
                kind: "chacha8(seed, stream = step * grad_accum + micro)".into(),
                seed: tc.seed,
                next_step: step,
            },
            metrics_lines,
            lr,
            log_window_loss: window.0,
            log_window_steps: window.1,
            config: cfg.clone(),
            tokenizer_sha256: s.train.manifest.tokenizer_sha256.clone(),
            data_sha256: s.train.manifest.content_sha256.clone(),
            files: BTreeMap::new(),
        };
        checkpoint::save(
            &run_dir,
            &state,
            &model.tensors(),
            &opt.state_tensors(&names, &s.device)?,
            tc.keep_checkpoints,
        )
    };

    while step < tc.max_steps {
        let interrupted = opts
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst));
        if interrupted || opts.stop_after.is_some_and(|k| step >= k) {
            let dir = save(
                step,
                tokens_seen,
                last_lr,
                metrics.lines,
                (window_loss, window_steps),
                &opt,
                &model,
            )?;
            pb.abandon_with_message(format!(
                "stopped at step {step}; checkpoint {}",
                dir.display()
            ));
            return Ok(TrainOutcome {
                run_dir,
                steps_done: step,
                finished: false,
                summary: None,
            });
        }
        let lr = learning_rate(tc, step);

        let hp = AdamWParams {
            lr,
            beta1: tc.beta1,
            beta2: tc.beta2,
            eps: tc.eps,
            weight_decay: tc.weight_decay,
        };
        let batch = |micro: u64| -> Result<(Tensor, u64)> {
            let stream = step * tc.grad_accum as u64 + micro;
            let windows = s
                .train
                .random_windows(tc.seed, stream, tc.batch_size, tc.seq_len);
            let dropout_seed = tc
                .seed
                .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            Ok((
                Tensor::from_vec(windows, (tc.batch_size, tc.seq_len + 1), &s.device)?,
                dropout_seed,
            ))
        };
        let (step_loss, norm) =
            match optimizer_step(&model, &mut opt, tc.grad_accum, batch, tc.grad_clip, hp)? {
                StepResult::Ok { loss, grad_norm } => (loss, grad_norm),
                StepResult::NonFinite(v) => return Err(diverged(&run_dir, step, v)),
            };
        step += 1;
        tokens_seen += tc.tokens_per_step();
        last_lr = lr;
        window_loss += step_loss;
        window_steps += 1;
        window_tokens += tc.tokens_per_step();

        if step % tc.log_interval == 0 || step == tc.max_steps {
            let tokens_per_s = window_tokens as f64 / window_start.elapsed().as_secs_f64();
            last_train_loss = window_loss / window_steps as f64;
            metrics.write(&MetricLine::Train {
                step,
                tokens: tokens_seen,
                loss: last_train_loss,
                lr,
                grad_norm: norm,
                tokens_per_s,
                elapsed_s: elapsed(),
            })?;
            pb.set_message(format!(
                "loss {last_train_loss:.3}  lr {lr:.2e}  {tokens_per_s:.0} tok/s"
            ));
            (window_loss, window_steps, window_tokens, window_start) = (0.0, 0, 0, Instant::now());
        }
        if step % tc.eval_interval == 0 || step == tc.max_steps {
            for (name, shards) in &s.vals {
                let r = evaluate(
                    &model,
                    shards,
                    tc.seq_len,
                    tc.batch_size,
                    tc.eval_windows,
                    &s.token_bytes,
                )?;
                metrics.write(&MetricLine::Eval {
                    step,
                    tokens: tokens_seen,
                    set: name.clone(),
                    loss: r.loss,
                    ppl: r.ppl,
                    bpb: r.bpb,
                    eval_tokens: r.tokens,
                })?;
                final_val.insert(name.clone(), r);
            }
        }
        if step % tc.ckpt_interval == 0 || step == tc.max_steps {
            save(
                step,
                tokens_seen,
                lr,
                metrics.lines,
                (window_loss, window_steps),
                &opt,
                &model,
            )?;
        }
        pb.set_position(step);
    }
    pb.finish();

    // Evaluations of a run resumed after its last evaluation come from metrics.jsonl.
    if final_val.is_empty() {
        for line in crate::train::metrics::read_metrics(&run_dir)? {
            if let MetricLine::Eval {
                set,
                loss,
                ppl,
                bpb,
                eval_tokens,
                ..
            } = line
            {
                final_val.insert(
                    set,
                    EvalResult {
                        tokens: eval_tokens,
                        bytes: 0,
                        loss,
                        ppl,
                        bpb,
                    },
                );
            }
        }
    }
    if last_train_loss.is_nan() {
        last_train_loss = crate::train::metrics::read_metrics(&run_dir)?
            .iter()
            .rev()
            .find_map(|l| {
                if let MetricLine::Train { loss, .. } = l {
                    Some(*loss)
                } else {
                    None
                }
            })
            .unwrap_or(f64::NAN);
    }
    let wall_s = elapsed();
    let threads = candle_core::utils::get_num_threads();
    let on_gpu = !s.device.is_cpu();
    let summary = Summary {
        schema: SCHEMA.into(),
        synthlm_version: env!("CARGO_PKG_VERSION").into(),
        config: cfg.clone(),
        params: mcfg.param_count(),
        non_embedding_params: mcfg.non_embedding_params(),
        train_flops_per_token: mcfg.train_flops_per_token(),
        model: mcfg,
        tokenizer_sha256: s.train.manifest.tokenizer_sha256.clone(),
        train_data: DataIdentity {
            dir: cfg.data.train.display().to_string(),
            content_sha256: s.train.manifest.content_sha256.clone(),
            tokens: s.train.manifest.tokens,
            documents: s.train.manifest.documents,
        },
        steps: step,
        tokens_seen,
        wall_s,
        cpu_core_hours: if on_gpu {
            0.0
        } else {
            wall_s * threads as f64 / 3600.0
        },
        gpu_hours: if on_gpu { wall_s / 3600.0 } else { 0.0 },
        device: cfg.device.clone(),
        threads,
        final_train_loss: last_train_loss,
        final_val,
        status: "completed".into(),
    };
    crate::io::write_json(&run_dir.join(SUMMARY), &summary)?;
    Ok(TrainOutcome {
        run_dir,
        steps_done: step,
        finished: true,
        summary: Some(summary),
    })
}

/// What one optimizer step produced.
pub enum StepResult {
    Ok {
        loss: f64,
        grad_norm: f64,
    },
    /// The loss or gradient norm was not finite; nothing was updated.
    NonFinite(f64),
}

/// One optimizer step: forward and backward over `grad_accum` micro-batches (each a [B, T+1]
/// window tensor and a dropout seed from `batch(micro)`), averaged gradients, global-norm
/// clipping, AdamW. Returns the mean loss and the gradient norm before clipping.
pub fn optimizer_step(
    model: &Gpt,
    opt: &mut AdamW,
    grad_accum: usize,
    batch: impl Fn(u64) -> Result<(Tensor, u64)>,
    grad_clip: f64,
    hp: AdamWParams,
) -> Result<StepResult> {
    let mut grads: Vec<Vec<f32>> = Vec::with_capacity(model.params.len());
    let mut mean_loss = 0f64;
    for micro in 0..grad_accum as u64 {
        let (windows, dropout_seed) = batch(micro)?;
        let loss = model.loss(
            &windows,
            Dropout {
                seed: Some(dropout_seed),
            },
        )?;
        let lv = loss.to_scalar::<f32>()? as f64;
        if !lv.is_finite() {
            return Ok(StepResult::NonFinite(lv));
        }
        mean_loss += lv / grad_accum as f64;
        let gs = loss.backward()?;
        for (i, (name, var)) in model.params.iter().enumerate() {
            let g = gs
                .get(var.as_tensor())
                .ok_or_else(|| anyhow!("parameter `{name}` received no gradient"))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if micro == 0 {
                grads.push(g);
            } else {
                grads[i].iter_mut().zip(&g).for_each(|(a, b)| *a += b);
            }
        }
    }
    if grad_accum > 1 {
        let k = 1.0 / grad_accum as f32;
        grads
            .iter_mut()
            .for_each(|g| g.iter_mut().for_each(|x| *x *= k));
    }
    let norm = global_norm(&grads);
    if !norm.is_finite() {
        return Ok(StepResult::NonFinite(norm));
    }
    if grad_clip > 0.0 && norm > grad_clip {
        let k = (grad_clip / norm) as f32;
        grads
            .iter_mut()
            .for_each(|g| g.iter_mut().for_each(|x| *x *= k));
    }
    opt.step(&model.params, &grads, hp)?;
    Ok(StepResult::Ok {
        loss: mean_loss,
        grad_norm: norm,
    })
}

fn diverged(run_dir: &std::path::Path, step: u64, value: f64) -> anyhow::Error {
    let last = checkpoint::latest(run_dir)
        .ok()
        .flatten()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "none yet".into());
    anyhow!("training diverged at step {step}: loss or gradient norm is {value}. Nothing was saved after it; the last good checkpoint is {last}. Lower train.lr, raise train.warmup_steps or check the data.")
}
