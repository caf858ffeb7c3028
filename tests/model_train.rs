//! The model and trainer: exact counts, gradients everywhere, a loss that really falls,
//! bit-identical resume, clear errors.

mod common;

use candle_core::{Device, Tensor};
use std::collections::HashMap;
use synthlm::config::RunConfig;
use synthlm::data::pack::TokenShards;
use synthlm::model::gpt::Dropout;
use synthlm::model::{Gpt, ModelConfig};
use synthlm::train::{checkpoint, metrics, train, TrainOptions};

#[test]
fn gpt2_small_counts_exactly_124_439_808_parameters() {
    let c = ModelConfig::preset("gpt2-small").unwrap();
    assert_eq!(
        (c.vocab_size, c.context, c.d_model, c.n_layer, c.n_head),
        (50257, 1024, 768, 12, 12)
    );
    assert_eq!(c.param_count(), 124_439_808);
    assert_eq!(
        ModelConfig::preset("gpt-500m").unwrap().param_count(),
        537_900_800
    );
    assert_eq!(
        ModelConfig::preset("gpt-1b").unwrap().param_count(),
        1_011_476_480
    );
    // FLOPs per token: 6N + 12·L·d·T.
    assert_eq!(
        c.train_flops_per_token(),
        6.0 * 124_439_808.0 + 12.0 * 12.0 * 768.0 * 1024.0
    );
}

#[test]
fn the_computed_count_matches_the_allocated_model() {
    for preset in ["tiny", "mini-1m"] {
        let c = ModelConfig::preset(preset).unwrap();
        let m = Gpt::new(c.clone(), 0, &Device::Cpu).unwrap();
        let allocated: usize = m
            .params
            .iter()
            .map(|(_, v)| v.as_tensor().elem_count())
            .sum();
        assert_eq!(allocated, c.param_count(), "{preset}");
    }
    assert_eq!(
        ModelConfig::preset("mini-1m").unwrap().param_count(),
        1_334_016
    );
    assert_eq!(
        ModelConfig::preset("mini-7m").unwrap().param_count(),
        6_901_760
    );
}

/// The model's graph as it was built before the fused bias add and attention on rows (commit
/// 22f4d4e): candle's `broadcast_add` for every bias and the position embeddings, the residual
/// adds as plain adds, a reshape on each side of the attention.
fn loss_as_before_fusion(m: &Gpt, windows: &Tensor) -> candle_core::Result<Tensor> {
    use synthlm::model::kernels;
    let c = &m.config;
    let (b, t1) = windows.dims2()?;
    let (t, d) = (t1 - 1, c.d_model);
    let idx = windows.narrow(1, 0, t)?.contiguous()?;
    let targets = windows.narrow(1, 1, t)?.flatten_all()?.contiguous()?;
    let p = |i: usize| m.params[i].1.as_tensor();
    let tok = p(0)
        .index_select(&idx.flatten_all()?, 0)?
        .reshape((b, t, d))?;
    let mut x = tok
        .broadcast_add(&p(1).narrow(0, 0, t)?)?
        .reshape((b * t, d))?;
    for layer in 0..c.n_layer {
        let w = |k: usize| p(2 + layer * 12 + k);
        let h = kernels::layer_norm(&x, w(0), w(1), 1e-5)?;
        let qkv = h
            .matmul(w(2))?
            .broadcast_add(w(3))?
            .reshape((b, t, 3 * d))?;
        let y = kernels::causal_attention(&qkv, c.n_head)?.reshape((b * t, d))?;
        x = (&x + y.matmul(w(4))?.broadcast_add(w(5))?)?;
        let h = kernels::layer_norm(&x, w(6), w(7), 1e-5)?;
        let h = kernels::bias_gelu(&h.matmul(w(8))?, w(9))?;
        x = (&x + h.matmul(w(10))?.broadcast_add(w(11))?)?;
    }
    let n = m.params.len();
    let x = kernels::layer_norm(&x, p(n - 2), p(n - 1), 1e-5)?;
    kernels::cross_entropy(&x.matmul(&p(0).t()?)?, &targets)
}

/// The fused model computes what the graph before the fusion computed, to the bit: the loss
/// and every parameter's gradient (so runs trained before it still reproduce byte for byte).
/// Random biases, 2 layers, 35-row sequences (more rows than one task) and d = 24 (not a
/// multiple of the column tasks).
#[test]
fn the_fused_model_is_the_graph_before_fusion_to_the_bit() {
    let c = ModelConfig {
        vocab_size: 61,
        context: 40,
        d_model: 24,
        n_layer: 2,
        n_head: 3,
        dropout: 0.0,
    };
    let m0 = Gpt::new(c.clone(), 3, &Device::Cpu).unwrap();
    let mut ts = m0.tensors();
    for (name, t) in ts.iter_mut() {
        if name.ends_with(".bias") {
            *t = Tensor::randn(0f32, 0.5, t.dims(), &Device::Cpu).unwrap();
        }
    }
    let m = Gpt::from_tensors(c.clone(), ts, &Device::Cpu).unwrap();
    let data: Vec<u32> = (0..3 * 36)
        .map(|i| ((i * 37 + i / 5) % c.vocab_size) as u32)
        .collect();
    let w = Tensor::from_vec(data, (3, 36), &Device::Cpu).unwrap();
    let fused = m.loss(&w, Dropout::default()).unwrap();
    let before = loss_as_before_fusion(&m, &w).unwrap();
    let bits = |t: &Tensor| -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    };
    assert_eq!(bits(&fused), bits(&before), "loss");
    let (gf, gb) = (fused.backward().unwrap(), before.backward().unwrap());
    for (name, var) in &m.params {
        let (a, b) = (gf.get(var.as_tensor()), gb.get(var.as_tensor()));
        let (a, b) = (a.expect(name), b.expect(name));
        assert!(bits(a).iter().any(|&x| x != 0), "{name}: zero gradient");
        assert_eq!(bits(a), bits(b), "{name}: gradients differ");
    }
}

#[test]
fn every_parameter_receives_a_nonzero_gradient() {
    let c = ModelConfig::preset("tiny").unwrap();
    let m = Gpt::new(c.clone(), 1, &Device::Cpu).unwrap();
    let data: Vec<u32> = (0..2 * 17)
        .map(|i| (i * 37 % c.vocab_size) as u32)
        .collect();
    let w = Tensor::from_vec(data, (2, 17), &Device::Cpu).unwrap();
    let loss = m.loss(&w, Dropout::default()).unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in &m.params {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            norm > 0.0 && norm.is_finite(),
            "{name}: gradient norm {norm}"
        );
    }
}

/// Gradient checkpointing recomputes each block in the backward pass; the gradients are the
/// plain backward's up to float rounding, dropout masks included, and so is the loss.
#[test]
fn checkpointed_gradients_equal_the_plain_backward() {
    let mut c = ModelConfig::preset("tiny").unwrap();
    c.n_layer = 3;
    c.dropout = 0.1;
    let m = Gpt::new(c.clone(), 7, &Device::Cpu).unwrap();
    let data: Vec<u32> = (0..3 * 33)
        .map(|i| ((i * 131 + 7) % c.vocab_size) as u32)
        .collect();
    let w = Tensor::from_vec(data, (3, 33), &Device::Cpu).unwrap();
    let drop = Dropout { seed: Some(99) };
    let loss = m.loss(&w, drop).unwrap();
    let plain = loss.backward().unwrap();
    let (loss_ck, grads) = m.loss_and_grads_checkpointed(&w, drop).unwrap();
    let l0 = loss.to_scalar::<f32>().unwrap();
    assert_eq!(l0, loss_ck.to_scalar::<f32>().unwrap());
    assert_eq!(grads.len(), m.params.len());
    for ((name, var), g) in m.params.iter().zip(&grads) {
        let a = plain
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(scale > 0.0, "{name}: zero gradient");
        assert!(
            diff <= 1e-5 * scale,
            "{name}: max diff {diff} at scale {scale}"
        );
    }
}

/// A run with `grad_checkpointing = true` trains the same model as one without (to rounding).
#[test]
fn a_checkpointed_run_trains_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = common::training_fixture(dir.path(), 300);
    base.train.max_steps = 10;
    let mut plain = base.clone();
    plain.out_dir = dir.path().join("plain");
    let a = train(&plain, &TrainOptions::default())
        .unwrap()
        .summary
        .unwrap();
    let mut ck = base.clone();
    ck.out_dir = dir.path().join("ck");
    ck.train.grad_checkpointing = true;
    let b = train(&ck, &TrainOptions::default())
        .unwrap()
        .summary
        .unwrap();
    let (x, y) = (a.final_val["grammar"].loss, b.final_val["grammar"].loss);
    assert!((x - y).abs() < 1e-4, "validation loss {x} vs {y}");
    assert!((a.final_train_loss - b.final_train_loss).abs() < 1e-4);
    // The flag is part of the config file only when on (older configs hash the same).
    let text = serde_json::to_string(&plain).unwrap();
    assert!(!text.contains("grad_checkpointing"));
    assert!(serde_json::to_string(&ck)
        .unwrap()
        .contains("\"grad_checkpointing\":true"));
}

/// Mixed precision: bf16 matmuls (f32 accumulation) against the f32 model, same weights. The
/// loss agrees to bf16's ~3 significant digits, the master weights' gradients stay f32 and
/// point the same way, and a short run learns as much as the f32 run.
#[test]
fn bf16_matmuls_track_the_f32_model_and_train_as_well() {
    let c = ModelConfig::preset("tiny").unwrap();
    let m32 = Gpt::new(c.clone(), 5, &Device::Cpu).unwrap();
    let m16 = Gpt::new(c.clone(), 5, &Device::Cpu)
        .unwrap()
        .with_matmul_dtype(candle_core::DType::BF16);
    let data: Vec<u32> = (0..4 * 33)
        .map(|i| ((i * 97 + 3) % c.vocab_size) as u32)
        .collect();
    let w = Tensor::from_vec(data, (4, 33), &Device::Cpu).unwrap();
    let (l32, l16) = (
        m32.loss(&w, Dropout::default()).unwrap(),
        m16.loss(&w, Dropout::default()).unwrap(),
    );
    let (a, b) = (
        l32.to_scalar::<f32>().unwrap(),
        l16.to_scalar::<f32>().unwrap(),
    );
    assert!(a != b, "the bf16 path must actually round");
    assert!((a - b).abs() < 0.01 * a, "loss {a} (f32) vs {b} (bf16)");
    let (g32, g16) = (l32.backward().unwrap(), l16.backward().unwrap());
    for ((name, v32), (_, v16)) in m32.params.iter().zip(&m16.params) {
        let x = g32.get(v32.as_tensor()).unwrap();
        let y = g16.get(v16.as_tensor()).unwrap();
        assert_eq!(y.dtype(), candle_core::DType::F32, "{name}");
        let (x, y) = (
            x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let dot: f64 = x
            .iter()
            .zip(&y)
            .map(|(p, q)| (*p as f64) * (*q as f64))
            .sum();
        let n = |v: &[f32]| v.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (n(&x) * n(&y));
        assert!(cos > 0.99, "{name}: cosine {cos}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut base = common::training_fixture(dir.path(), 300);
    base.train.max_steps = 20;
    let mut f32run = base.clone();
    f32run.out_dir = dir.path().join("f32");
    let mut bf = base.clone();
    bf.out_dir = dir.path().join("bf16");
    bf.train.precision = synthlm::config::Precision::Bf16;
    let x = train(&f32run, &TrainOptions::default())
        .unwrap()
        .summary
        .unwrap();
    let y = train(&bf, &TrainOptions::default())
        .unwrap()
        .summary
        .unwrap();
    let (vx, vy) = (x.final_val["grammar"].loss, y.final_val["grammar"].loss);
    // The bf16 run evaluates its f32 master weights in f32: a loaded student (f32) scores the
    // same windows to the same loss, and a bf16 forward of the same weights would not.
    let st = synthlm::model::student::Student::load(&bf.out_dir, None).unwrap();
    let shards = synthlm::data::pack::TokenShards::open(&bf.data.val["grammar"]).unwrap();
    let tc = &bf.train;
    let bytes = st.tokenizer.token_byte_lengths();
    let eval = |m: &Gpt| {
        let r = synthlm::eval::perplexity::evaluate(
            m,
            &shards,
            tc.seq_len,
            tc.batch_size,
            tc.eval_windows,
            &bytes,
        );
        r.unwrap().loss
    };
    assert_eq!(eval(&st.model), vy);
    assert!(eval(&st.model.with_matmul_dtype(candle_core::DType::BF16)) != vy);
    assert!(
        (vx - vy).abs() < 0.02 * vx,
        "validation loss f32 {vx} vs bf16 {vy}"
    );
    assert!(serde_json::to_string(&bf)
        .unwrap()
        .contains("\"precision\":\"bf16\""));
    assert!(!serde_json::to_string(&f32run)
        .unwrap()
        .contains("precision"));
}

/// Unigram entropy (nats/token) of a packed token stream: the loss of the best model that
/// ignores context.
fn unigram_entropy(shards: &TokenShards) -> f64 {
    let mut counts: HashMap<u32, f64> = HashMap::new();
    let toks = shards.all_tokens();
    for t in &toks {
        *counts.entry(*t).or_default() += 1.0;
    }
    let n = toks.len() as f64;
    counts.values().map(|c| -(c / n) * (c / n).ln()).sum()
}

#[test]
fn validation_loss_falls_well_below_the_unigram_entropy() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::training_fixture(dir.path(), 320);
    cfg.train.max_steps = 150;
    cfg.train.eval_interval = 150;
    cfg.train.lr = 3e-3;
    let out = train(&cfg, &TrainOptions::default()).unwrap();
    let s = out.summary.unwrap();
    let h1 = unigram_entropy(&TokenShards::open(&cfg.data.train).unwrap());
    let val = s.final_val["grammar"].loss;
    // A model that only learned token frequencies scores h1. Requiring at least 1 nat below it
    // (perplexity e ≈ 2.7x lower than the best context-free model) shows it uses context; the
    // grammar allows it (each slot is one of 8 choices given the previous words).
    eprintln!(
        "unigram entropy {h1:.3} nats, val loss {val:.3}, first train loss logged {:?}",
        metrics::read_metrics(&out.run_dir).unwrap()[0]
    );
    assert!(
        val < h1 - 1.0,
        "val loss {val:.3} is not well below the unigram entropy {h1:.3}"
    );
    // And the training loss fell from its start (ln(vocab) at init).
    let lines = metrics::read_metrics(&out.run_dir).unwrap();
    let first = lines
        .iter()
        .find_map(|l| {
            if let metrics::MetricLine::Train { loss, .. } = l {
                Some(*loss)
            } else {
                None
            }
        })
        .unwrap();
    assert!(
        s.final_train_loss < first - 1.5,
        "train loss {first:.3} -> {:.3}",
        s.final_train_loss
    );
    assert!(val.is_finite() && s.final_val["grammar"].bpb > 0.0);
}

fn model_bytes(run: &std::path::Path) -> Vec<u8> {
    let dir = checkpoint::latest(run).unwrap().unwrap();
    std::fs::read(dir.join(checkpoint::MODEL_FILE)).unwrap()
}

fn train_losses(run: &std::path::Path) -> Vec<(u64, f64)> {
    metrics::read_metrics(run)
        .unwrap()
        .into_iter()
        .map(|l| match l {
            metrics::MetricLine::Train { step, loss, .. } => (step, loss),
            metrics::MetricLine::Eval { step, loss, .. } => (step + 1_000_000, loss),
        })
        .collect()
}

#[test]
fn resume_after_interruption_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = common::training_fixture(dir.path(), 300);
    base.train.max_steps = 24;
    base.train.grad_accum = 2;
    base.train.ckpt_interval = 5;
    base.train.eval_interval = 8;
    base.model.dropout = Some(0.1); // dropout masks must be reproduced too

    let mut whole = base.clone();
    whole.out_dir = dir.path().join("whole");
    train(&whole, &TrainOptions::default()).unwrap();

    let mut parts = base.clone();
    parts.out_dir = dir.path().join("parts");
    // Stop at step 13 (between checkpoints 10 and 15, after an evaluation at 8): the stop
    // itself writes a checkpoint, as Ctrl-C does.
    let first = train(
        &parts,
        &TrainOptions {
            stop_after: Some(13),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!first.finished && first.steps_done == 13);
    let second = train(&parts, &TrainOptions::default()).unwrap();
    assert!(second.finished && second.steps_done == 24);

    assert_eq!(
        model_bytes(&whole.out_dir),
        model_bytes(&parts.out_dir),
        "final weights differ"
    );
    assert_eq!(
        train_losses(&whole.out_dir),
        train_losses(&parts.out_dir),
        "logged losses differ"
    );
    let a = metrics::read_summary(&whole.out_dir).unwrap();
    let b = metrics::read_summary(&parts.out_dir).unwrap();
    assert_eq!(a.final_val, b.final_val);
    assert_eq!(a.tokens_seen, b.tokens_seen);
}

#[test]
fn a_corrupt_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::training_fixture(dir.path(), 300);
    cfg.train.max_steps = 10;
    train(
        &cfg,
        &TrainOptions {
            stop_after: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    let ck = checkpoint::latest(&cfg.out_dir).unwrap().unwrap();
    let f = ck.join(checkpoint::MODEL_FILE);
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&f, bytes).unwrap();
    let e = train(&cfg, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("step-00000004") && e.contains("model.safetensors is corrupt"),
        "{e}"
    );

    std::fs::write(ck.join(checkpoint::STATE_FILE), "{ not json").unwrap();
    let e = format!("{:#}", train(&cfg, &TrainOptions::default()).unwrap_err());
    assert!(e.contains("unreadable state.json"), "{e}");

    // Resuming with another config is refused and names the key.
    std::fs::remove_dir_all(checkpoint::checkpoints_dir(&cfg.out_dir)).unwrap();
    train(
        &cfg,
        &TrainOptions {
            stop_after: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    let mut other = cfg.clone();
    other.train.lr *= 2.0;
    let e = train(&other, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("train.lr"), "{e}");

    // Resuming with other matmul kernels or threads on the same device is refused: the run
    // would be reproducible by neither.
    let ck = checkpoint::latest(&cfg.out_dir).unwrap().unwrap();
    let path = ck.join(checkpoint::STATE_FILE);
    let state: serde_json::Value = synthlm::io::read_json(&path).unwrap();
    assert_eq!(state["matmul"], synthlm::cpu::matmul_kernels(), "{state}");
    for (key, value) in [
        ("matmul", serde_json::json!("other")),
        ("threads", serde_json::json!(99)),
    ] {
        let mut changed = state.clone();
        changed[key] = value;
        synthlm::io::write_json(&path, &changed).unwrap();
        let e = train(&cfg, &TrainOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("matmul kernels") && e.contains("resume with the same build"),
            "{e}"
        );
    }
}

#[test]
fn divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::training_fixture(dir.path(), 300);
    cfg.train.max_steps = 30;
    cfg.train.ckpt_interval = 2;
    cfg.train.warmup_steps = 0;
    cfg.train.grad_clip = 0.0;
    cfg.train.lr = 1e30;
    cfg.train.min_lr = 1e30;
    let e = train(&cfg, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("training diverged at step") && e.contains("last good checkpoint"),
        "{e}"
    );
    let last = checkpoint::latest(&cfg.out_dir).unwrap();
    if let Some(dir) = last {
        checkpoint::load(&dir, &Device::Cpu).expect("the kept checkpoint is intact");
    }
}

#[test]
fn configs_reject_unknown_keys_and_impossible_values_naming_the_key() {
    let e = RunConfig::from_toml_str("profile = \"smoke\"\n[train]\nlrr = 0.1\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x.toml") && e.contains("train") && e.contains("lrr"),
        "{e}"
    );
    let e = RunConfig::from_toml_str("[model]\npreset = \"tiny\"\nn_head = 5\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.n_head = 5 does not divide model.d_model = 32"),
        "{e}"
    );
    let e = RunConfig::from_toml_str("[train]\nbatch_size = 0\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("train.batch_size must be at least 1"), "{e}");
    let e = RunConfig::from_toml_str("[train]\nbatch_size = \"eight\"\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("key `train.batch_size`"), "{e}");
    let e = RunConfig::from_toml_str("profile = \"huge\"\n", "x.toml").unwrap_err();
    assert!(format!("{e:#}").contains("unknown profile `huge`"), "{e:#}");
    let e = RunConfig::from_toml_str(
        "[model]\npreset = \"tiny\"\n[train]\nseq_len = 999\n",
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("train.seq_len = 999 exceeds"), "{e}");
    // A valid file over a profile keeps the profile's other values.
    let c =
        RunConfig::from_toml_str("profile = \"smoke\"\n[train]\nlr = 0.005\n", "x.toml").unwrap();
    assert_eq!(
        (c.train.lr, c.train.max_steps),
        (
            0.005,
            synthlm::config::profile("smoke").unwrap().train.max_steps
        )
    );
    let c = c
        .with_overrides(&["train.seed=7".into(), "model.preset=\"mini-1m\"".into()])
        .unwrap();
    assert_eq!(
        (c.train.seed, c.model.preset.as_deref()),
        (7, Some("mini-1m"))
    );
    assert!(c
        .with_overrides(&["train.nope=1".into()])
        .unwrap_err()
        .to_string()
        .contains("nope"));
}

#[test]
fn sampling_follows_the_forward_pass_and_is_seeded() {
    use synthlm::model::sample::{generate, last_logits, SampleOptions};
    let c = ModelConfig::preset("tiny").unwrap();
    let m = Gpt::new(c, 3, &Device::Cpu).unwrap();
    let prompt: Vec<u32> = vec![5, 17, 42, 99, 7];
    let greedy = SampleOptions {
        max_new_tokens: 12,
        temperature: 0.0,
        top_k: None,
        top_p: None,
        stop_tokens: vec![],
        seed: 0,
    };
    let g = generate(&m, std::slice::from_ref(&prompt), &greedy)
        .unwrap()
        .remove(0);
    // Greedy = argmax of the forward pass at every step.
    let mut seq = prompt.clone();
    for &t in &g.tokens {
        let logits = last_logits(&m, &seq).unwrap();
        let argmax = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0 as u32;
        assert_eq!(t, argmax);
        seq.push(t);
    }
    let o = SampleOptions {
        max_new_tokens: 20,
        temperature: 1.0,
        top_k: Some(20),
        top_p: Some(0.9),
        stop_tokens: vec![],
        seed: 11,
    };
    let a = generate(&m, &[prompt.clone(), vec![1, 2, 3]], &o).unwrap();
    let b = generate(&m, &[prompt.clone(), vec![1, 2, 3]], &o).unwrap();
    assert_eq!(a, b, "same seed, same samples");
    let c2 = generate(
        &m,
        std::slice::from_ref(&prompt),
        &SampleOptions {
            seed: 12,
            ..o.clone()
        },
    )
    .unwrap();
    assert_ne!(a[0], c2[0]);
    let stop = a[0].tokens[3];
    let s = generate(
        &m,
        std::slice::from_ref(&prompt),
        &SampleOptions {
            stop_tokens: vec![stop],
            ..o.clone()
        },
    )
    .unwrap()
    .remove(0);
    // The stop token ends the sequence and is not part of it (as in the teacher's engine).
    assert_eq!(s.stop_reason, "stop_token");
    assert!(!s.tokens.contains(&stop));
    assert!(s.tokens.len() <= 3);
    // Longer than the context: each step sees the last `context` tokens.
    let long = generate(
        &m,
        &[vec![1; 60]],
        &SampleOptions {
            max_new_tokens: 100,
            ..o
        },
    )
    .unwrap()
    .remove(0);
    assert_eq!(long.stop_reason, "max_new_tokens");
    assert_eq!(long.tokens.len(), 100);
}

#[test]
fn the_shipped_configs_parse() {
    for f in ["configs/mini.toml", "configs/paper-gpt2-small.toml"] {
        let c = RunConfig::load(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(f)
                .as_path(),
        )
        .unwrap_or_else(|e| panic!("{f}: {e:#}"));
        assert!(!c.data.val.is_empty(), "{f}");
    }
}
