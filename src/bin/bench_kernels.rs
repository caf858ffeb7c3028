//! Forward and forward+backward time of each fused kernel against the composite of
//! differentiable candle ops it replaces, at a realistic small-GPT size
//! (B=8, T=256, d=256, 8 heads; cross-entropy over N=2048 rows of V=8192).
//!
//! `cargo run --release --bin bench_kernels` (set `RAYON_NUM_THREADS` to pin the threads;
//! `BENCH_ONLY=fused` runs only the variants whose label contains that text, e.g. for `perf`).
//!
//! Each measurement is `f(inputs)` then `loss = Σ out` and `loss.backward()`; `Σ` and its
//! backward (the dense gradient of `out`) are included in every figure, and printed alone as
//! each kernel's "harness" line so that they can be subtracted.
//!
//! The benchmark runs itself twice in child processes: with glibc malloc's defaults, and with
//! malloc tuned to keep freed memory (`GLIBC_TUNABLES`, see [`KEEP_MEMORY`]). By default glibc
//! serves every allocation over 32 MiB (and many smaller ones) with a fresh `mmap` and returns it
//! on free, so each new tensor costs one page fault per 4 KiB page, and candle allocates a new
//! tensor for every op and every gradient. The second run shows what a training binary gains by
//! keeping that memory (or by linking an allocator that does).

use anyhow::Result;
use candle_core::{Device, Tensor, Var};
use std::time::Instant;
use synthlm::model::kernels::{self, reference};

type Op<'a> = Box<dyn Fn(&[Tensor]) -> candle_core::Result<Tensor> + 'a>;

/// Median over repetitions (at least 5, about a second in all) of the forward time and the
/// forward + backward time, in ms.
fn time(f: &Op, inputs: &[Tensor], backward: bool) -> Result<(f64, f64)> {
    let vars: Vec<Var> = inputs
        .iter()
        .map(Var::from_tensor)
        .collect::<candle_core::Result<_>>()?;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let once = || -> Result<(f64, f64)> {
        let t0 = Instant::now();
        let out = f(&ts)?;
        let fwd = t0.elapsed().as_secs_f64();
        if backward {
            let grads = out.sum_all()?.backward()?;
            drop(grads);
        }
        Ok((fwd * 1e3, t0.elapsed().as_secs_f64() * 1e3))
    };
    once()?; // warm-up: page in buffers, spin up the thread pool
    let mut runs = vec![];
    let start = Instant::now();
    while runs.len() < 5 || (start.elapsed().as_secs_f64() < 1.0 && runs.len() < 50) {
        runs.push(once()?);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    Ok((
        median(runs.iter().map(|r| r.0).collect()),
        median(runs.iter().map(|r| r.1).collect()),
    ))
}

fn uniform(dims: &[usize], scale: f64) -> Result<Tensor> {
    Ok(Tensor::rand(
        -scale as f32,
        scale as f32,
        dims,
        &Device::Cpu,
    )?)
}

struct Case<'a> {
    name: &'static str,
    inputs: Vec<Tensor>,
    /// (label, op, has backward)
    variants: Vec<(&'static str, Op<'a>, bool)>,
}

/// glibc malloc: never `mmap` (serve all sizes from the heap), never give freed memory back,
/// one arena (so memory freed by one thread is reused by the others).
const KEEP_MEMORY: &str =
    "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.arena_max=1";

fn main() -> Result<()> {
    if std::env::var_os("BENCH_KERNELS_CHILD").is_some() {
        return run();
    }
    let runs = [
        ("glibc malloc defaults", None),
        (
            "glibc malloc keeping freed memory: GLIBC_TUNABLES=KEEP_MEMORY",
            Some(KEEP_MEMORY),
        ),
    ];
    for (label, tunables) in runs {
        println!("=== {label}");
        let mut child = std::process::Command::new(std::env::current_exe()?);
        child.env("BENCH_KERNELS_CHILD", "1");
        if let Some(t) = tunables {
            child.env("GLIBC_TUNABLES", t);
        }
        anyhow::ensure!(child.status()?.success(), "benchmark child failed");
        println!();
    }
    Ok(())
}

fn run() -> Result<()> {
    let (b, t, d, n_head) = (8, 256, 256, 8);
    let (n, vocab) = (2048, 8192);
    let targets =
        Tensor::rand(0f32, vocab as f32, n, &Device::Cpu)?.to_dtype(candle_core::DType::U32)?;
    let tg = &targets;
    println!(
        "fused kernels vs differentiable candle composites, {} rayon threads",
        rayon::current_num_threads()
    );
    println!("B={b} T={t} d={d} heads={n_head}; cross-entropy N={n} V={vocab}; median ms\n");

    let cases = vec![
        Case {
            name: "layer_norm x[8,256,256]",
            inputs: vec![
                uniform(&[b, t, d], 2.0)?,
                uniform(&[d], 1.0)?,
                uniform(&[d], 1.0)?,
            ],
            variants: vec![
                (
                    "fused",
                    Box::new(|x| kernels::layer_norm(&x[0], &x[1], &x[2], 1e-5)),
                    true,
                ),
                (
                    "reference",
                    Box::new(|x| reference::layer_norm(&x[0], &x[1], &x[2], 1e-5)),
                    true,
                ),
                (
                    "candle_nn::LayerNorm (no backward!)",
                    Box::new(|x| {
                        let ln = candle_nn::LayerNorm::new(x[1].clone(), x[2].clone(), 1e-5);
                        candle_core::Module::forward(&ln, &x[0])
                    }),
                    false,
                ),
            ],
        },
        Case {
            name: "gelu x[8,256,1024]",
            inputs: vec![uniform(&[b, t, 4 * d], 3.0)?],
            variants: vec![
                ("fused", Box::new(|x| kernels::gelu(&x[0])), true),
                (
                    "reference (tanh formula)",
                    Box::new(|x| reference::gelu(&x[0])),
                    true,
                ),
                ("candle Tensor::gelu", Box::new(|x| x[0].gelu()), true),
            ],
        },
        Case {
            name: "bias_gelu x[8,256,1024] b[1024]",
            inputs: vec![uniform(&[b, t, 4 * d], 3.0)?, uniform(&[4 * d], 1.0)?],
            variants: vec![
                (
                    "fused",
                    Box::new(|x| kernels::bias_gelu(&x[0], &x[1])),
                    true,
                ),
                (
                    "broadcast_add + candle gelu",
                    Box::new(|x| x[0].broadcast_add(&x[1])?.gelu()),
                    true,
                ),
            ],
        },
        Case {
            name: "causal_attention qkv[8,256,768], 8 heads",
            inputs: vec![uniform(&[b, t, 3 * d], 2.0)?],
            variants: vec![
                (
                    "fused",
                    Box::new(move |x| kernels::causal_attention(&x[0], n_head)),
                    true,
                ),
                (
                    "reference",
                    Box::new(move |x| reference::causal_attention(&x[0], n_head)),
                    true,
                ),
            ],
        },
        Case {
            name: "cross_entropy logits[2048,8192]",
            inputs: vec![uniform(&[n, vocab], 4.0)?],
            variants: vec![
                (
                    "fused",
                    Box::new(move |x| kernels::cross_entropy(&x[0], tg)),
                    true,
                ),
                (
                    "reference",
                    Box::new(move |x| reference::cross_entropy(&x[0], tg)),
                    true,
                ),
                (
                    "candle_nn::loss::cross_entropy",
                    Box::new(move |x| candle_nn::loss::cross_entropy(&x[0], tg)),
                    true,
                ),
            ],
        },
    ];

    println!(
        "{:<44} {:<38} {:>9} {:>10}",
        "kernel", "variant", "fwd ms", "fwd+bwd ms"
    );
    let only = std::env::var("BENCH_ONLY").ok();
    for case in &cases {
        // The harness alone: Σ and its backward on a Var shaped like the kernel's output.
        let out_dims = case.variants[0].1(&case.inputs)?.dims().to_vec();
        let identity: Op = Box::new(|x| Ok(x[0].clone()));
        let (_, harness) = time(&identity, &[uniform(&out_dims, 1.0)?], true)?;
        println!(
            "{:<44} {:<38} {:>9} {harness:10.2}",
            case.name, "harness (Σ + its backward)", "-"
        );
        let mut fused_total = None;
        for (label, op, backward) in &case.variants {
            if only.as_ref().is_some_and(|o| !label.contains(o.as_str())) {
                continue;
            }
            let (fwd, total) = time(op, &case.inputs, *backward)?;
            let total_s = if *backward {
                format!("{total:10.2}")
            } else {
                format!("{:>10}", "-")
            };
            let speedup = match (fused_total, backward) {
                (Some(f), true) => format!("  ({:.1}x slower than fused)", total / f),
                _ => String::new(),
            };
            println!(
                "{:<44} {:<38} {fwd:9.2} {total_s}{speedup}",
                case.name, label
            );
            if *label == "fused" {
                fused_total = Some(total);
            }
        }
    }
    Ok(())
}
