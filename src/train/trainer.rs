//! The training loop, top to bottom. Deterministic on CPU: the same config gives the same
//! weights bit for bit, whether or not the run was interrupted and resumed.

use crate::config::RunConfig;
use crate::data::pack::TokenShards;
use crate::data::tokenizer::TextTokenizer;
use crate::eval::perplexity::{evaluate, EvalResult};
use crate::model::gpt::{decays, Dropout, Gpt};
use crate::train::checkpoint::{self, CheckpointState, SamplerState};
use crate::train::collective::{all_reduce_mean, Collective, Single, BUCKET_ELEMS};
use crate::train::grads::Grads;
use crate::train::metrics::{
    DataIdentity, MetricLine, MetricsWriter, Summary, METRICS, SCHEMA, SUMMARY,
};
use crate::train::optim::{AdamW, AdamWParams};
use crate::train::schedule::learning_rate;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
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
    /// The data-parallel group this process is one rank of (`None`: a single process). Not part
    /// of the run's identity: `train.batch_size` is the global batch, split evenly over the
    /// ranks, so N ranks see exactly the windows one process would.
    pub collective: Option<Arc<dyn Collective>>,
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
    use crate::train::process_group::{ENV_RANK, ENV_WORLD};
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let launched = var(ENV_RANK).zip(var(ENV_WORLD));
    let ordinal = cuda_ordinal(name, launched)?;
    if cfg!(feature = "cuda") {
        Ok(Device::new_cuda(ordinal)?)
    } else {
        bail!("device `{name}` needs a build with the `cuda` feature (cargo build --release --features cuda)")
    }
}

/// The GPU a device name selects: `cuda:N` is GPU N; plain `cuda` is GPU 0, or under
/// `synthlm launch` (`launched` = (rank, world)) the GPU of the rank. A job of several ranks
/// may not name one GPU: every rank would train on it, and NCCL refuses two ranks on a device.
pub fn cuda_ordinal(name: &str, launched: Option<(usize, usize)>) -> Result<usize> {
    let Some(rest) = name.strip_prefix("cuda") else {
        bail!("unknown device `{name}` (expected cpu, cuda or cuda:N)");
    };
    let explicit = match rest.strip_prefix(':') {
        Some(n) => Some(
            n.parse::<usize>()
                .with_context(|| format!("device `{name}`: not a GPU number"))?,
        ),
        None if rest.is_empty() => None,
        None => bail!("unknown device `{name}` (expected cpu, cuda or cuda:N)"),
    };
    match (explicit, launched) {
        (Some(n), Some((_, world))) if world > 1 => bail!(
            "device `{name}` names one GPU for all {world} ranks of a launched job; name the device `cuda` and each rank takes the GPU of its rank (GPU {n} is taken by rank {n})"
        ),
        (Some(n), _) => Ok(n),
        (None, Some((rank, _))) => Ok(rank),
        (None, None) => Ok(0),
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

/// The state of a run in progress: what a checkpoint saves and a resume restores.
struct Run<'a> {
    cfg: &'a RunConfig,
    s: &'a Setup,
    coll: Arc<dyn Collective>,
    mcfg: crate::model::ModelConfig,
    names: Vec<String>,
    model: Gpt,
    opt: AdamW,
    step: u64,
    tokens_seen: u64,
    elapsed0: f64,
    started: Instant,
    metrics: MetricsWriter,
    /// Loss sum and steps since the last logged line.
    window: (f64, u64),
    window_tokens: u64,
    window_start: Instant,
    last_train_loss: f64,
    last_lr: f64,
    grad_norm: f64,
    final_val: BTreeMap<String, EvalResult>,
}

impl<'a> Run<'a> {
    /// A fresh start, or an exact resume from the latest checkpoint of `cfg.out_dir`.
    fn open(cfg: &'a RunConfig, s: &'a Setup, coll: Arc<dyn Collective>) -> Result<Run<'a>> {
        let mcfg = cfg.model.resolve(Some(s.train.manifest.vocab_size))?;
        if mcfg.vocab_size < s.train.manifest.vocab_size {
            bail!(
                "model.vocab_size = {} is smaller than the tokenizer's {}",
                mcfg.vocab_size,
                s.train.manifest.vocab_size
            );
        }
        let run_dir = &cfg.out_dir;
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("creating {}", run_dir.display()))?;
        if coll.is_root() {
            crate::io::write_json(&run_dir.join("config.json"), cfg)?;
        }
        let shapes = mcfg.parameter_shapes();
        let names: Vec<String> = shapes.iter().map(|(n, _)| n.clone()).collect();
        let sizes: Vec<usize> = shapes.iter().map(|(_, s)| s.iter().product()).collect();
        let mut opt = AdamW::new(&sizes, names.iter().map(|n| decays(n)).collect(), &s.device)?;
        if cfg.train.zero1 && coll.world_size() > 1 {
            opt = opt.shard(coll.rank(), coll.world_size())?;
        }
        let latest = checkpoint::latest(run_dir)?;
        // A fresh run starts its metrics file empty; a resumed one reopens it in `resume`.
        let metrics_keep = if latest.is_some() { u64::MAX } else { 0 };
        let metrics = metrics_writer(&coll, &run_dir.join(METRICS), metrics_keep)?;
        let mut run = Run {
            model: Gpt::new(mcfg.clone(), cfg.train.seed, &s.device)?
                .with_matmul_dtype(cfg.train.precision.dtype()),
            cfg,
            s,
            coll,
            mcfg,
            names,
            opt: AdamW::new(&[], vec![], &s.device)?,
            step: 0,
            tokens_seen: 0,
            elapsed0: 0.0,
            started: Instant::now(),
            metrics,
            window: (0.0, 0),
            window_tokens: 0,
            window_start: Instant::now(),
            last_train_loss: f64::NAN,
            last_lr: 0.0,
            grad_norm: 0.0,
            final_val: BTreeMap::new(),
        };
        if let Some(dir) = latest {
            run.resume(&dir, &mut opt)?;
        }
        run.opt = opt;
        Ok(run)
    }

    /// Restore weights, optimizer, counters and the metrics file from checkpoint `dir`.
    fn resume(&mut self, dir: &std::path::Path, opt: &mut AdamW) -> Result<()> {
        let ck = checkpoint::load(dir, &self.s.device)?;
        let diff = checkpoint::config_diff(&ck.state.config, self.cfg);
        if !diff.is_empty() {
            bail!(
                "{} was written with a different config ({}); use another out_dir or delete {}",
                dir.display(),
                diff.join("; "),
                checkpoint::checkpoints_dir(&self.cfg.out_dir).display()
            );
        }
        if ck.state.config.device == self.cfg.device {
            let here = (self.kernels(), crate::cpu::threads());
            let recorded = (ck.state.matmul.as_str(), ck.state.threads);
            crate::cpu::check_same_arithmetic(dir, "resume", recorded, (&here.0, here.1))?;
        }
        if ck.state.data_sha256 != self.s.train.manifest.content_sha256 {
            bail!(
                "{}: the training data changed since this checkpoint (content hash differs)",
                dir.display()
            );
        }
        self.model = Gpt::from_tensors(self.mcfg.clone(), ck.model, &self.s.device)
            .with_context(|| format!("checkpoint {}", dir.display()))?
            .with_matmul_dtype(self.cfg.train.precision.dtype());
        opt.load_state(&self.names, ck.optim)
            .with_context(|| format!("checkpoint {}", dir.display()))?;
        self.metrics = metrics_writer(
            &self.coll,
            &self.cfg.out_dir.join(METRICS),
            ck.state.metrics_lines,
        )?;
        self.window = (ck.state.log_window_loss, ck.state.log_window_steps);
        (self.step, self.tokens_seen, self.elapsed0) =
            (ck.state.step, ck.state.tokens_seen, ck.state.elapsed_s);
        Ok(())
    }

    /// The matmul kernels this run trains with: the CPU's ([`crate::cpu::matmul_kernels`]), or
    /// the device's name on a GPU.
    fn kernels(&self) -> String {
        if self.s.device.is_cpu() {
            crate::cpu::matmul_kernels().into()
        } else {
            self.cfg.device.clone()
        }
    }

    fn elapsed(&self) -> f64 {
        self.elapsed0 + self.started.elapsed().as_secs_f64()
    }

    /// Write a checkpoint of the current state (learning rate `lr` of the last step).
    fn save(&self, lr: f64) -> Result<PathBuf> {
        // Under ZeRO-1 every rank takes part in gathering the optimizer state.
        let optim = if self.opt.is_sharded() {
            Some(crate::train::zero::gathered_state(
                &self.opt,
                &self.names,
                &self.s.device,
                self.coll.as_ref(),
            )?)
        } else {
            None
        };
        if !self.coll.is_root() {
            return Ok(checkpoint::checkpoints_dir(&self.cfg.out_dir));
        }
        let optim = match optim {
            Some(o) => o,
            None => self.opt.state_tensors(&self.names, &self.s.device)?,
        };
        let tc = &self.cfg.train;
        let state = CheckpointState {
            step: self.step,
            tokens_seen: self.tokens_seen,
            elapsed_s: self.elapsed(),
            sampler: SamplerState {
                kind: "chacha8(seed, stream = step * grad_accum + micro)".into(),
                seed: tc.seed,
                next_step: self.step,
            },
            metrics_lines: self.metrics.lines,
            lr,
            log_window_loss: self.window.0,
            log_window_steps: self.window.1,
            config: self.cfg.clone(),
            tokenizer_sha256: self.s.train.manifest.tokenizer_sha256.clone(),
            data_sha256: self.s.train.manifest.content_sha256.clone(),
            matmul: self.kernels(),
            threads: crate::cpu::threads(),
            files: BTreeMap::new(),
        };
        checkpoint::save(
            &self.cfg.out_dir,
            &state,
            &self.model.tensors(),
            &optim,
            tc.keep_checkpoints,
        )
    }

    /// One optimizer step at the current step's learning rate.
    fn step_once(&mut self) -> Result<()> {
        let tc = &self.cfg.train;
        let lr = learning_rate(tc, self.step);
        let hp = AdamWParams {
            lr,
            beta1: tc.beta1,
            beta2: tc.beta2,
            eps: tc.eps,
            weight_decay: tc.weight_decay,
        };
        let (s, step) = (self.s, self.step);
        let (rank, world) = (self.coll.rank(), self.coll.world_size());
        let rows = tc.batch_size / world;
        let batch = |micro: u64| -> Result<(Tensor, u64)> {
            let stream = step * tc.grad_accum as u64 + micro;
            let windows =
                s.train
                    .rank_windows(tc.seed, stream, tc.batch_size, tc.seq_len, rank, world);
            // One mask stream per rank (rank 0's is the single-process one): with dropout on,
            // N ranks draw other masks than one process would; without it they are identical.
            let dropout_seed = tc
                .seed
                .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .wrapping_add(rank as u64);
            Ok((
                Tensor::from_vec(windows, (rows, tc.seq_len + 1), &s.device)?,
                dropout_seed,
            ))
        };
        let o = StepOptions {
            grad_accum: tc.grad_accum,
            grad_clip: tc.grad_clip,
            hp,
            checkpointing: tc.grad_checkpointing,
        };
        let loss = match optimizer_step(&self.model, &mut self.opt, batch, &o, self.coll.as_ref())?
        {
            StepResult::Ok { loss, grad_norm } => {
                self.grad_norm = grad_norm;
                loss
            }
            StepResult::NonFinite(v) => return Err(diverged(&self.cfg.out_dir, self.step, v)),
        };
        self.step += 1;
        self.tokens_seen += tc.tokens_per_step();
        self.last_lr = lr;
        self.window = (self.window.0 + loss, self.window.1 + 1);
        self.window_tokens += tc.tokens_per_step();
        Ok(())
    }

    /// Log the mean training loss of the window since the last line.
    fn log(&mut self, pb: &indicatif::ProgressBar) -> Result<()> {
        let tokens_per_s = self.window_tokens as f64 / self.window_start.elapsed().as_secs_f64();
        self.last_train_loss = self.window.0 / self.window.1 as f64;
        self.metrics.write(&MetricLine::Train {
            step: self.step,
            tokens: self.tokens_seen,
            loss: self.last_train_loss,
            lr: self.last_lr,
            grad_norm: self.grad_norm,
            tokens_per_s,
            elapsed_s: self.elapsed(),
        })?;
        pb.set_message(format!(
            "loss {:.3}  lr {:.2e}  {tokens_per_s:.0} tok/s",
            self.last_train_loss, self.last_lr
        ));
        (self.window, self.window_tokens, self.window_start) = ((0.0, 0), 0, Instant::now());
        Ok(())
    }

    /// Evaluate on every validation set (evenly spaced windows) and log it.
    fn evaluate(&mut self) -> Result<()> {
        if !self.coll.is_root() {
            return Ok(());
        }
        let tc = &self.cfg.train;
        // Evaluation runs in f32 whatever the training precision: the master weights are f32,
        // and bits per byte must compare across precisions and with every other scorer of the
        // same weights (the suite, the report, a loaded student), none of which rounds the
        // matmul inputs to bf16. It is under 1% of training's FLOPs at every scale we run. (An
        // error ends the run, so the precision need not be restored on that path.)
        let train_dtype = std::mem::replace(&mut self.model.matmul_dtype, DType::F32);
        for (name, shards) in &self.s.vals {
            let r = evaluate(
                &self.model,
                shards,
                tc.seq_len,
                // Rank 0 evaluates alone: per-rank rows, so it fits where training fits.
                tc.batch_size / self.coll.world_size(),
                tc.eval_windows,
                &self.s.token_bytes,
            )?;
            self.metrics.write(&MetricLine::Eval {
                step: self.step,
                tokens: self.tokens_seen,
                set: name.clone(),
                loss: r.loss,
                ppl: r.ppl,
                bpb: r.bpb,
                eval_tokens: r.tokens,
            })?;
            self.final_val.insert(name.clone(), r);
        }
        self.model.matmul_dtype = train_dtype;
        Ok(())
    }

    /// The loop: step, log, evaluate and checkpoint on their intervals, until `max_steps` or
    /// an interruption (which saves a checkpoint). Returns whether the run finished.
    fn run(&mut self, opts: &TrainOptions) -> Result<bool> {
        let tc = &self.cfg.train;
        let pb = if opts.progress {
            crate::progress::bar(tc.max_steps, "steps", "train")
        } else {
            indicatif::ProgressBar::hidden()
        };
        pb.set_position(self.step);
        while self.step < tc.max_steps {
            let mut interrupted = [opts
                .interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst)) as u8
                as f32];
            // Ranks stop together: a Ctrl-C seen by any rank stops all at this step (a rank
            // that stopped alone would leave the others waiting in the next all-reduce).
            self.coll.all_reduce_sum(&mut interrupted)?;
            let interrupted = interrupted[0] > 0.0;
            if interrupted || opts.stop_after.is_some_and(|k| self.step >= k) {
                let dir = self.save(self.last_lr)?;
                pb.abandon_with_message(format!(
                    "stopped at step {}; checkpoint {}",
                    self.step,
                    dir.display()
                ));
                return Ok(false);
            }
            self.step_once()?;
            let last = self.step == tc.max_steps;
            if self.step.is_multiple_of(tc.log_interval) || last {
                self.log(&pb)?;
            }
            if self.step.is_multiple_of(tc.eval_interval) || last {
                self.evaluate()?;
            }
            if self.step.is_multiple_of(tc.ckpt_interval) || last {
                self.save(self.last_lr)?;
            }
            if tc.snapshot_steps.contains(&self.step) && self.coll.is_root() {
                checkpoint::save_weights(&self.cfg.out_dir, self.step, &self.model.tensors())?;
            }
            pb.set_position(self.step);
        }
        pb.finish();
        Ok(true)
    }

    /// The summary of a finished run. A run resumed after its last evaluation and log line
    /// takes them from metrics.jsonl.
    fn summary(&mut self) -> Result<Summary> {
        let lines = || crate::train::metrics::read_metrics(&self.cfg.out_dir);
        if self.final_val.is_empty() {
            for line in lines()? {
                if let MetricLine::Eval {
                    set,
                    loss,
                    ppl,
                    bpb,
                    eval_tokens,
                    ..
                } = line
                {
                    self.final_val.insert(
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
        if self.last_train_loss.is_nan() {
            self.last_train_loss = lines()?
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
        let (wall_s, threads) = (self.elapsed(), crate::cpu::threads());
        let on_gpu = !self.s.device.is_cpu();
        let world = self.coll.world_size();
        let m = &self.s.train.manifest;
        Ok(Summary {
            schema: SCHEMA.into(),
            synthlm_version: env!("CARGO_PKG_VERSION").into(),
            config: self.cfg.clone(),
            params: self.mcfg.param_count(),
            non_embedding_params: self.mcfg.non_embedding_params(),
            train_flops_per_token: self.mcfg.train_flops_per_token(),
            model: self.mcfg.clone(),
            tokenizer_sha256: m.tokenizer_sha256.clone(),
            train_data: DataIdentity {
                dir: self.cfg.data.train.display().to_string(),
                content_sha256: m.content_sha256.clone(),
                tokens: m.tokens,
                documents: m.documents,
            },
            steps: self.step,
            tokens_seen: self.tokens_seen,
            wall_s,
            // Every rank runs as long as rank 0 (they step together).
            cpu_core_hours: if on_gpu {
                0.0
            } else {
                wall_s * (threads * world) as f64 / 3600.0
            },
            gpu_hours: if on_gpu {
                wall_s * world as f64 / 3600.0
            } else {
                0.0
            },
            world_size: world,
            device: self.cfg.device.clone(),
            threads,
            matmul: self.kernels(),
            final_train_loss: self.last_train_loss,
            final_val: std::mem::take(&mut self.final_val),
            status: "completed".into(),
        })
    }
}

/// Train (or resume) the run described by `cfg`.
pub fn train(cfg: &RunConfig, opts: &TrainOptions) -> Result<TrainOutcome> {
    cfg.validate()?;
    let coll = opts.collective.clone().unwrap_or_else(|| Arc::new(Single));
    if !cfg.train.batch_size.is_multiple_of(coll.world_size()) {
        bail!(
            "train.batch_size = {} (the global batch) does not split evenly over {} ranks",
            cfg.train.batch_size,
            coll.world_size()
        );
    }
    let s = setup(cfg)?;
    let root = coll.is_root();
    let mut run = Run::open(cfg, &s, coll)?;
    let run_dir = cfg.out_dir.clone();
    let finished = run.run(opts)?;
    if !finished || !root {
        // Only rank 0 writes the summary; the other ranks end here.
        return Ok(TrainOutcome {
            run_dir,
            steps_done: run.step,
            finished,
            summary: None,
        });
    }
    let summary = run.summary()?;
    crate::io::write_json(&run_dir.join(SUMMARY), &summary)?;
    Ok(TrainOutcome {
        run_dir,
        steps_done: run.step,
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

/// What one optimizer step does besides its data.
#[derive(Clone, Copy, Debug)]
pub struct StepOptions {
    pub grad_accum: usize,
    /// Clip the global gradient norm to this (0 = off).
    pub grad_clip: f64,
    pub hp: AdamWParams,
    /// Recompute each block in the backward pass instead of keeping its activations.
    pub checkpointing: bool,
}

/// One optimizer step: forward and backward over `grad_accum` micro-batches (each a window
/// tensor [rows, T+1] and a dropout seed from `batch(micro)`), gradients averaged over the
/// micro-batches and then over the ranks of `coll`, global-norm clipping, AdamW. Returns the
/// mean loss (over ranks too) and the gradient norm before clipping. Gradients are collected
/// where the optimizer keeps its state: host vectors on the CPU, device tensors on a GPU.
pub fn optimizer_step(
    model: &Gpt,
    opt: &mut AdamW,
    batch: impl Fn(u64) -> Result<(Tensor, u64)>,
    o: &StepOptions,
    coll: &dyn Collective,
) -> Result<StepResult> {
    let (grad_accum, grad_clip, hp) = (o.grad_accum, o.grad_clip, o.hp);
    let mut grads: Option<Grads> = None;
    let mut mean_loss = 0f64;
    for micro in 0..grad_accum as u64 {
        let (windows, dropout_seed) = batch(micro)?;
        let dropout = Dropout {
            seed: Some(dropout_seed),
        };
        let (loss, g) = if o.checkpointing {
            let (loss, g) = model.loss_and_grads_checkpointed(&windows, dropout)?;
            (loss, Grads::from_tensors(g, opt.wants_host_grads())?)
        } else {
            let loss = model.loss(&windows, dropout)?;
            let g = Grads::collect(model, &loss.backward()?, opt.wants_host_grads())?;
            (loss, g)
        };
        let lv = loss.to_scalar::<f32>()? as f64;
        // A lone process stops at once; ranks of a group carry on to the all-reduce, where a
        // non-finite loss on any rank reaches every rank, so they all stop at the same step.
        if !lv.is_finite() && coll.world_size() == 1 {
            return Ok(StepResult::NonFinite(lv));
        }
        mean_loss += lv / grad_accum as f64;
        match grads.as_mut() {
            None => grads = Some(g),
            Some(acc) => acc.add(g)?,
        }
    }
    let mut grads = grads.ok_or_else(|| anyhow!("grad_accum must be at least 1"))?;
    if grad_accum > 1 {
        grads.scale(1.0 / grad_accum as f32)?;
    }
    if coll.world_size() > 1 {
        all_reduce_mean(coll, &mut grads, BUCKET_ELEMS)?;
        let mut l = [mean_loss as f32];
        coll.all_reduce_sum(&mut l)?;
        mean_loss = l[0] as f64 / coll.world_size() as f64;
        if !mean_loss.is_finite() {
            return Ok(StepResult::NonFinite(mean_loss));
        }
    }
    let norm = grads.global_norm()?;
    if !norm.is_finite() {
        return Ok(StepResult::NonFinite(norm));
    }
    if grad_clip > 0.0 && norm > grad_clip {
        grads.scale((grad_clip / norm) as f32)?;
    }
    opt.step(&model.params, &grads, hp)?;
    if opt.is_sharded() {
        crate::train::zero::share_weights(&model.params, opt, coll)?;
    }
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

/// Rank 0 writes metrics.jsonl; the other ranks count lines without writing.
fn metrics_writer(
    coll: &Arc<dyn Collective>,
    path: &std::path::Path,
    keep_lines: u64,
) -> Result<MetricsWriter> {
    if coll.is_root() {
        MetricsWriter::open(path, keep_lines)
    } else {
        Ok(MetricsWriter::discard(keep_lines))
    }
}
