//! The `cuda` feature on a real GPU (issue 13): training on the device follows the CPU run of
//! the same config, bf16 trains as well as f32, checkpointed gradients equal the plain backward,
//! the device AdamW is the host kernel's arithmetic, a GPU run's checkpoint resumes on the CPU
//! (one format for both), and peak device memory is measured. Built only with
//! `--features cuda`; run where a GPU is (CI has none):
//! `cargo test --release --features cuda --test cuda`.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{Device, Tensor, Var};
use synthlm::config::{Precision, RunConfig};
use synthlm::model::gpt::{Dropout, Gpt};
use synthlm::model::ModelConfig;
use synthlm::train::grads::Grads;
use synthlm::train::metrics::{self, MetricLine};
use synthlm::train::optim::{AdamW, AdamWParams};
use synthlm::train::trainer::{train, TrainOptions};

fn gpu() -> Device {
    Device::new_cuda(0).expect("a CUDA GPU (these tests need one)")
}

/// Train losses of every step of a run.
fn losses(run: &std::path::Path) -> Vec<f64> {
    metrics::read_metrics(run)
        .unwrap()
        .into_iter()
        .filter_map(|l| match l {
            MetricLine::Train { loss, .. } => Some(loss),
            _ => None,
        })
        .collect()
}

fn fixture(dir: &std::path::Path, steps: u64) -> RunConfig {
    let mut c = common::training_fixture(dir, 300);
    c.train.max_steps = steps;
    c.train.log_interval = 1;
    c
}

fn run(base: &RunConfig, name: &str, device: &str, precision: Precision) -> RunConfig {
    let mut c = base.clone();
    c.out_dir = base.out_dir.parent().unwrap().join(name);
    c.device = device.into();
    c.train.precision = precision;
    train(&c, &TrainOptions::default()).unwrap();
    c
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The same config on the CPU and the GPU, both f32: the same weights at the start (the
/// initialisation is drawn on the host), so every step's loss agrees to float rounding (1e-5);
/// and bf16 on the GPU stays within 0.05 of it at every step and ends within 2% in validation
/// loss (over 30 steps of a tiny model: early training only).
#[test]
fn training_on_the_gpu_follows_the_cpu_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = fixture(dir.path(), 30);
    let cpu = run(&base, "cpu", "cpu", Precision::F32);
    let gpu32 = run(&base, "gpu32", "cuda", Precision::F32);
    let gpu16 = run(&base, "gpu16", "cuda", Precision::Bf16);
    let (a, b, c) = (
        losses(&cpu.out_dir),
        losses(&gpu32.out_dir),
        losses(&gpu16.out_dir),
    );
    println!("cpu f32 {a:?}\ngpu f32 {b:?}\ngpu bf16 {c:?}");
    assert!(a[0] - a[a.len() - 1] > 0.5, "the CPU run must learn: {a:?}");
    let d = max_diff(&a, &b);
    assert!(d < 1e-5, "GPU f32 loss differs from the CPU's by {d}");
    let d16 = max_diff(&a, &c);
    assert!(d16 < 0.05, "GPU bf16 loss differs from the CPU's by {d16}");
    let val = |c: &RunConfig| metrics::read_summary(&c.out_dir).unwrap().final_val["grammar"].loss;
    let (v32, v16) = (val(&cpu), val(&gpu16));
    assert!((v32 - v16).abs() < 0.02 * v32, "validation {v32} vs {v16}");
}

/// Half a run on the GPU, the other half on the CPU from the GPU's checkpoint: one checkpoint
/// format for both devices, and the result is the all-GPU run's to float rounding.
#[test]
fn a_gpu_checkpoint_resumes_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let base = fixture(dir.path(), 20);
    let whole = run(&base, "whole", "cuda", Precision::F32);
    let mut split = base.clone();
    split.out_dir = dir.path().join("split");
    split.device = "cuda".into();
    let first = train(
        &split,
        &TrainOptions {
            stop_after: Some(10),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!first.finished);
    split.device = "cpu".into();
    let second = train(&split, &TrainOptions::default()).unwrap();
    assert!(second.finished && second.steps_done == 20);
    let d = max_diff(&losses(&whole.out_dir), &losses(&split.out_dir));
    assert!(d < 2e-3, "resumed on the CPU, the losses moved by {d}");
}

/// Gradient checkpointing on the GPU, f32 and bf16 matmuls: gradients equal the plain
/// backward's to rounding (the recomputed forward is the same computation).
#[test]
fn checkpointed_gradients_equal_the_plain_backward_on_the_gpu() {
    let mut c = ModelConfig::preset("tiny").unwrap();
    c.n_layer = 3;
    let dev = gpu();
    for (dtype, tol) in [
        (candle_core::DType::F32, 1e-4f32),
        (candle_core::DType::BF16, 1e-3),
    ] {
        let m = Gpt::new(c.clone(), 7, &dev)
            .unwrap()
            .with_matmul_dtype(dtype);
        let data: Vec<u32> = (0..3 * 33)
            .map(|i| ((i * 131 + 7) % c.vocab_size) as u32)
            .collect();
        let w = Tensor::from_vec(data, (3, 33), &dev).unwrap();
        let loss = m.loss(&w, Dropout::default()).unwrap();
        let plain = loss.backward().unwrap();
        let (loss_ck, grads) = m
            .loss_and_grads_checkpointed(&w, Dropout::default())
            .unwrap();
        let (l0, l1) = (
            loss.to_scalar::<f32>().unwrap(),
            loss_ck.to_scalar::<f32>().unwrap(),
        );
        assert!((l0 - l1).abs() < 1e-5, "{dtype:?}: loss {l0} vs {l1}");
        for ((name, var), g) in m.params.iter().zip(&grads) {
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let (a, b) = (flat(plain.get(var.as_tensor()).unwrap()), flat(g));
            let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
            let diff = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(scale > 0.0, "{dtype:?} {name}: zero gradient");
            assert!(
                diff <= tol * scale,
                "{dtype:?} {name}: max diff {diff} at scale {scale}"
            );
        }
    }
}

/// AdamW as tensor ops on the GPU against the fused host loop, three steps on the same
/// gradients: the same update rule, so the weights agree to f32 rounding.
#[test]
fn the_device_adamw_matches_the_host_kernel() {
    let sizes = [1000usize, 37];
    let hp = AdamWParams {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    let init = |dev: &Device| -> Vec<(String, Var)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let v: Vec<f32> = (0..n).map(|j| ((j * 7 + i) % 13) as f32 / 13.0).collect();
                (
                    format!("p{i}"),
                    Var::from_tensor(&Tensor::from_vec(v, n, dev).unwrap()).unwrap(),
                )
            })
            .collect()
    };
    let grads = |dev: &Device, step: usize, host: bool| {
        let g: Vec<Tensor> = sizes
            .iter()
            .map(|&n| {
                let v: Vec<f32> = (0..n)
                    .map(|j| ((j * 31 + step * 17) % 29) as f32 / 29.0 - 0.5)
                    .collect();
                Tensor::from_vec(v, n, dev).unwrap()
            })
            .collect();
        Grads::from_tensors(g, host).unwrap()
    };
    let (cpu, dev) = (Device::Cpu, gpu());
    let (pc, pg) = (init(&cpu), init(&dev));
    let mut host = AdamW::new(&sizes, vec![true, false], &cpu).unwrap();
    let mut device = AdamW::new(&sizes, vec![true, false], &dev).unwrap();
    assert!(host.wants_host_grads() && !device.wants_host_grads());
    for step in 0..3 {
        host.step(&pc, &grads(&cpu, step, true), hp).unwrap();
        device.step(&pg, &grads(&dev, step, false), hp).unwrap();
    }
    for ((name, a), (_, b)) in pc.iter().zip(&pg) {
        let a = a.as_tensor().to_vec1::<f32>().unwrap();
        let b = b.as_tensor().to_vec1::<f32>().unwrap();
        let d = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(d < 1e-6, "{name}: host and device AdamW differ by {d}");
    }
}

/// The peak-memory reading follows what tensors hold: after a reset, a 256 MiB tensor shows as
/// at least that and not much more; after another reset, a 4 MiB one as much less. (The mark
/// is process-wide: run with `--test-threads 1`, as scripts/gpu-check.sh does.)
#[test]
fn peak_device_memory_follows_allocations() {
    let dev = gpu();
    let name = synthlm::train::gpu::name(&dev).unwrap();
    assert!(name.contains("NVIDIA"), "{name}");
    synthlm::train::gpu::reset_peak(&dev);
    let big = Tensor::zeros(64 << 20, candle_core::DType::F32, &dev).unwrap();
    let peak = synthlm::train::gpu::peak_bytes(&dev).unwrap();
    assert!(
        (256 << 20..(256 + 64) << 20).contains(&peak),
        "peak {peak} after a reset and a 256 MiB tensor"
    );
    drop(big);
    synthlm::train::gpu::reset_peak(&dev);
    let _small = Tensor::zeros(1 << 20, candle_core::DType::F32, &dev).unwrap();
    let after = synthlm::train::gpu::peak_bytes(&dev).unwrap();
    assert!(
        after < 64 << 20,
        "peak {after} after a reset and a 4 MiB tensor"
    );
    assert_eq!(synthlm::train::gpu::peak_bytes(&Device::Cpu), None);
}

/// NCCL at world size 1 (one GPU cannot host two ranks: NCCL refuses two ranks on one device):
/// the id goes through the rendezvous file, the communicator initialises, and
/// `ncclAllReduce` of a device tensor (a view at an offset too) and of a host buffer returns a
/// lone rank's values unchanged. A sum over one rank is the identity, so this shows the calls
/// run and read and write the right memory, not that ranks are averaged: multi-rank averaging
/// is tested on CPU replicas (tests/data_parallel.rs), and NCCL with two or more ranks has not
/// run (one GPU cannot host two).
#[cfg(feature = "nccl")]
#[test]
fn nccl_all_reduce_at_world_size_one() {
    use synthlm::train::collective::Collective;
    let dir = tempfile::tempdir().unwrap();
    let g = synthlm::train::nccl::NcclGroup::join(0, 1, &dir.path().join("id"), 0).unwrap();
    assert_eq!(std::fs::read(dir.path().join("id")).unwrap().len(), 128);
    let dev = gpu();
    let t = Tensor::arange(0f32, 1000.0, &dev).unwrap();
    let s = g.all_reduce_sum_tensor(&t).unwrap();
    assert_eq!(s.to_vec1::<f32>().unwrap(), t.to_vec1::<f32>().unwrap());
    let mut host = vec![1.5f32, -2.0, 3.25];
    g.all_reduce_sum(&mut host).unwrap();
    assert_eq!(host, vec![1.5, -2.0, 3.25]);
    // a view into the middle of a buffer: the offset must be honoured
    let mid = t.narrow(0, 100, 50).unwrap();
    let got = g
        .all_reduce_sum_tensor(&mid)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(got, (100..150).map(|x| x as f32).collect::<Vec<_>>());
}

/// A student trained on the GPU, exported in Hugging Face's format, gives transformers'
/// `GPT2LMHeadModel` the logits synthlm computes (within 1e-4; scripts/check_hf_export.py), and
/// `AutoTokenizer` the same ids. The GPU machine has transformers; the check must have run.
#[test]
fn a_gpu_trained_student_loads_in_transformers_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let base = fixture(dir.path(), 10);
    let c = run(&base, "hf", "cuda", Precision::Bf16);
    let st = synthlm::model::student::Student::load(&c.out_dir, None).unwrap();
    let text = "The cat sat on the mat, and the dog ran to the park.";
    let ids = st.tokenizer.encode(text).unwrap();
    let x = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let want = st
        .model
        .forward(&x, Dropout::default())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let hf = dir.path().join("hf-export");
    synthlm::model::hf::export(&st.model, &st.tokenizer, &hf, candle_core::DType::F32).unwrap();
    let report = common::hf_check(&hf, text, &ids, &want);
    println!("{report}");
    assert!(
        report.contains("transformers GPT2LMHeadModel: max |logit difference|"),
        "transformers did not run:\n{report}"
    );
}
