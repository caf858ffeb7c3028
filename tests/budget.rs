//! The paper-scale planner's arithmetic.

use synthlm::budget::{chinchilla_tokens, run_budget, tokens_for_gpu_hours, Gpu, TrainOptions};

const F32: TrainOptions = TrainOptions {
    checkpointing: false,
    zero1_ranks: 1,
    bf16: false,
    grad_accum: 1,
};
const BF16: TrainOptions = TrainOptions { bf16: true, ..F32 };
const BF16_CKPT: TrainOptions = TrainOptions {
    checkpointing: true,
    ..BF16
};

/// gpt2-small on 20 tokens per parameter, costed by hand three ways: all f32; bf16 weight
/// matmuls with attention left f32; and bf16 with every block's forward recomputed.
#[test]
fn gpt2_small_on_its_chinchilla_budget() {
    let gpu = Gpu::rtx4090();
    let tokens = chinchilla_tokens("gpt2-small").unwrap();
    assert_eq!(tokens, 20 * 124_439_808);
    let n = 124_439_808.0;
    let attn = 12.0 * 12.0 * 768.0 * 1024.0;
    let t = tokens as f64;
    let hours = |flops_over_rate: f64| flops_over_rate / (1e12 * 0.4) / 3600.0;
    let f32 = run_budget("gpt2-small", tokens, &gpu, 8, F32).unwrap();
    assert!((f32.flops - (6.0 * n + attn) * t).abs() / f32.flops < 1e-12);
    assert_eq!(f32.hardware_flops, f32.flops);
    assert!((f32.gpu_hours - hours((6.0 * n + attn) * t / 82.6)).abs() < 1e-9);
    assert!((f32.wall_hours - f32.gpu_hours / 8.0).abs() < 1e-9);
    assert!((f32.dollars - 5.0 * f32.gpu_hours).abs() < 1e-9);
    let bf16 = run_budget("gpt2-small", tokens, &gpu, 8, BF16).unwrap();
    assert_eq!(bf16.flops, f32.flops);
    let want = hours(6.0 * n * t / 165.2 + attn * t / 82.6);
    assert!(
        (bf16.gpu_hours - want).abs() < 1e-9,
        "{} {want}",
        bf16.gpu_hours
    );
    // attention is 13% of the FLOPs but, left in f32, 23% of the time
    let share = attn / 82.6 / (6.0 * n / 165.2 + attn / 82.6);
    assert!((0.22..0.24).contains(&share), "{share}");
    let ck = run_budget("gpt2-small", tokens, &gpu, 8, BF16_CKPT).unwrap();
    let blocks = n - (50257.0 + 1024.0) * 768.0;
    assert!(
        (ck.hardware_flops - ck.flops - (2.0 * blocks + attn / 3.0) * t).abs() / ck.flops < 1e-12
    );
    let want = hours((6.0 * n + 2.0 * blocks) * t / 165.2 + (attn * 4.0 / 3.0) * t / 82.6);
    assert!((ck.gpu_hours - want).abs() < 1e-9);
    assert!(ck.gpu_hours > 1.2 * bf16.gpu_hours && ck.gpu_hours < 1.34 * bf16.gpu_hours);
    // The inverse: that many GPU-hours buy back the same tokens, under each costing.
    for (b, o) in [(&f32, F32), (&bf16, BF16), (&ck, BF16_CKPT)] {
        let back = tokens_for_gpu_hours("gpt2-small", b.gpu_hours, &gpu, o).unwrap();
        assert!((back as f64 - t).abs() / t < 1e-6);
    }
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
    use synthlm::budget::{train_memory, TrainOptions};
    use synthlm::model::ModelConfig;
    let c = ModelConfig::preset("gpt-1b").unwrap().with_vocab(32768);
    let n = c.param_count() as f64;
    let o = |checkpointing: bool, zero1_ranks: usize| TrainOptions {
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
    let f32_plain = TrainOptions {
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
        TrainOptions {
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

/// The largest compute-optimal model of GPT-2's aspect for a budget: its runs at 20 tokens
/// per parameter fit, one layer more does not, and attention and the recompute are costed.
#[test]
fn compute_optimal_size_spends_the_budget() {
    use synthlm::budget::{budget_for, compute_optimal};
    use synthlm::model::ModelConfig;
    let gpu = Gpu::rtx4090();
    let shape = ModelConfig {
        vocab_size: 32768,
        ..ModelConfig::preset("gpt2-small").unwrap()
    };
    let cost = |c: &ModelConfig, o| {
        9.0 * budget_for("x", c, 20 * c.param_count() as u64, &gpu, 1, o).gpu_hours
    };
    let mut sizes = vec![];
    for o in [F32, BF16, BF16_CKPT] {
        let c = compute_optimal(10.0, 9, &gpu, &shape, o).unwrap();
        assert_eq!((c.d_model, c.n_head), (64 * c.n_layer, c.n_layer));
        assert_eq!((c.vocab_size, c.context), (32768, 1024));
        let next = ModelConfig {
            n_layer: c.n_layer + 1,
            n_head: c.n_layer + 1,
            d_model: 64 * (c.n_layer + 1),
            ..c.clone()
        };
        assert!(cost(&c, o) <= 10.0 && cost(&next, o) > 10.0);
        sizes.push(c.param_count());
    }
    // f32 buys the smallest model, bf16 the largest, the recompute takes some of it back
    assert!(sizes[0] < sizes[2] && sizes[2] <= sizes[1], "{sizes:?}");
    assert!(sizes[1] > 20_000_000 && sizes[1] < 80_000_000, "{sizes:?}");
    assert!(compute_optimal(1e-6, 9, &gpu, &shape, BF16).is_none());
}
