//! The paper-scale planner's arithmetic.

use synthlm::budget::{chinchilla_tokens, run_budget, tokens_for_gpu_hours, Gpu};

#[test]
fn gpt2_small_on_its_chinchilla_budget() {
    let gpu = Gpu::rtx4090();
    let tokens = chinchilla_tokens("gpt2-small").unwrap();
    assert_eq!(tokens, 20 * 124_439_808);
    let b = run_budget("gpt2-small", tokens, &gpu, 8).unwrap();
    let per_token = 6.0 * 124_439_808.0 + 12.0 * 12.0 * 768.0 * 1024.0;
    assert!((b.flops - per_token * tokens as f64).abs() / b.flops < 1e-12);
    let hours = b.flops / (165.2e12 * 0.4) / 3600.0;
    assert!((b.gpu_hours - hours).abs() < 1e-9 && (b.wall_hours - hours / 8.0).abs() < 1e-9);
    assert!((b.dollars - 5.0 * hours).abs() < 1e-9);
    // The inverse: that many GPU-hours buy back the same tokens.
    let back = tokens_for_gpu_hours("gpt2-small", b.gpu_hours, &gpu).unwrap();
    assert!((back as f64 - tokens as f64).abs() / (tokens as f64) < 1e-6);
}

/// Experiment 1's paper scale: three students at equal token budgets, 9 runs each, costed at
/// the scale's own vocabulary and sequence length; its run configs are valid GPU configs.
#[test]
fn experiment_1_paper_plan() {
    use synthlm::experiments::grid::{run_config, RunData};
    use synthlm::experiments::{exp1::Exp1, plan, provenance::project_root, scale::Scale};
    let p = Scale::standard(&project_root(), 1, "paper").unwrap();
    let gpu = Gpu::rtx4090();
    let rows = plan(&Exp1, &p, &gpu).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(p.tokens_per_run(), 1000 * 16 * 32 * 1024);
    // GPT-2 small's shape with a 32,768-token vocabulary (tied embeddings): 124.4M - 17.5M x 768.
    assert_eq!(rows[0].params, 124_439_808 - (50257 - 32768) * 768);
    for r in &rows {
        assert_eq!(r.runs, 9);
        assert_eq!(r.tokens_per_run, p.tokens_per_run());
        let dense = 6.0 * r.params as f64 * r.tokens_per_run as f64;
        assert!(
            r.per_run.flops > dense && r.per_run.flops < 1.2 * dense,
            "attention adds a little"
        );
        assert!((r.gpu_hours - 9.0 * r.per_run.gpu_hours).abs() < 1e-9);
        assert!((r.dollars - 5.0 * r.gpu_hours).abs() < 1e-6);
    }
    assert!(rows[0].gpu_hours < rows[1].gpu_hours && rows[1].gpu_hours < rows[2].gpu_hours);
    for st in &p.students {
        let data = RunData {
            train: "train".into(),
            evals: Default::default(),
            tokenizer: "tokenizer.json".into(),
        };
        let c = run_config(&p, st, data, 0, "out".into()).unwrap();
        assert_eq!(c.device, "cuda");
        assert_eq!(c.train.tokens_per_step(), 16 * 32 * 1024);
    }
}

/// Memory per GPU under bf16 with gradient accumulation: 22 bytes per parameter before
/// activations (f32 master + bf16 copy + f32 gradients and their running sum + two f32
/// moments); checkpointing keeps a block's input only; ZeRO-1 divides the moments.
#[test]
fn training_memory_per_gpu() {
    use synthlm::budget::{train_memory, MemoryOptions};
    use synthlm::model::ModelConfig;
    let c = ModelConfig::preset("gpt-1b").unwrap().with_vocab(32768);
    let n = c.param_count() as f64;
    let o = |checkpointing: bool, zero1_ranks: usize| MemoryOptions {
        checkpointing,
        zero1_ranks,
        bf16: true,
        grad_accum: 16,
    };
    let plain = train_memory(&c, 4, 1024, o(false, 1));
    assert!((plain.weights + plain.grads + plain.optimizer - 22.0 * n).abs() < 1.0);
    let ck = train_memory(&c, 4, 1024, o(true, 1));
    assert!(ck.activations < plain.activations / 4.0);
    let z = train_memory(&c, 4, 1024, o(true, 8));
    assert!((ck.total - z.total - 7.0 * n).abs() < 1.0);
    // One block of gpt2-small in f32, by hand: 88 bytes per token and dimension, 8 per head
    // and query-key pair, and 12 per token and vocabulary entry for the logits.
    let s = ModelConfig::preset("gpt2-small").unwrap();
    let f32_plain = MemoryOptions {
        checkpointing: false,
        zero1_ranks: 1,
        bf16: false,
        grad_accum: 1,
    };
    let one = train_memory(
        &ModelConfig {
            n_layer: 1,
            ..s.clone()
        },
        1,
        1024,
        f32_plain,
    );
    let layer = 1024.0 * 768.0 * 88.0 + 8.0 * 12.0 * 1024.0 * 1024.0;
    assert!((one.activations - layer - 12.0 * 1024.0 * 50257.0).abs() < 1.0);
    // Against the peak RSS measured on the CPU (gpt2-small, vocab 8,192, 4 x 512, f32:
    // 5,195 MB plain, 2,138 MB checkpointed; the process's RSS also holds the binary and the
    // allocator's slack): the model may be under, but by no more than 20%.
    let cpu = s.with_vocab(8192);
    let plain = train_memory(&cpu, 4, 512, f32_plain).total / 1e6;
    let ck = train_memory(
        &cpu,
        4,
        512,
        MemoryOptions {
            checkpointing: true,
            ..f32_plain
        },
    )
    .total
        / 1e6;
    println!("gpt2-small 4 x 512 f32: model {plain:.0} MB plain, {ck:.0} MB checkpointed");
    assert!(plain <= 5195.0 && plain > 0.8 * 5195.0, "{plain}");
    assert!(ck <= 2138.0 && ck > 0.8 * 2138.0, "{ck}");
}

/// The largest compute-optimal model for a budget: its runs at 20 tokens per parameter cost
/// the budget (up to the attention term it ignores).
#[test]
fn compute_optimal_size_spends_the_budget() {
    use synthlm::budget::compute_optimal_params;
    let gpu = Gpu::rtx4090();
    let n = compute_optimal_params(10.0, 9, &gpu);
    let flops = 6.0 * n * 20.0 * n * 9.0;
    let hours = flops / (gpu.peak_tflops * 1e12 * gpu.mfu) / 3600.0;
    assert!((hours - 10.0).abs() < 1e-9, "{hours}");
    assert!(n > 30e6 && n < 60e6, "{n}");
}
