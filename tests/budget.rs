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

/// Memory per GPU: 18 bytes per parameter before activations (f32 master + bf16 copy + f32
/// gradients + two f32 moments); checkpointing keeps a layer's input only; ZeRO-1 divides the
/// moments. gpt-1b at 4 x 1024 tokens per GPU needs checkpointing to fit a 24 GB card.
#[test]
fn training_memory_per_gpu() {
    use synthlm::budget::train_memory;
    use synthlm::model::ModelConfig;
    let c = ModelConfig::preset("gpt-1b").unwrap();
    let n = c.param_count() as f64;
    let plain = train_memory(&c, 4, 1024, false, 1);
    assert!((plain.weights + plain.grads + plain.optimizer - 18.0 * n).abs() < 1.0);
    let ck = train_memory(&c, 4, 1024, true, 1);
    assert!(ck.activations < plain.activations / 4.0);
    assert_eq!(ck.weights + ck.grads + ck.optimizer, 18.0 * n);
    let z = train_memory(&c, 4, 1024, true, 8);
    assert!((ck.total - z.total - 7.0 * n).abs() < 1.0);
    assert!(plain.total > 24e9 && ck.total < 24e9, "{plain:?} {ck:?}");
    // Korthikanti et al.'s per-layer figure, by hand, for one layer of gpt2-small.
    let s = ModelConfig::preset("gpt2-small").unwrap();
    let one = train_memory(
        &ModelConfig {
            n_layer: 1,
            ..s.clone()
        },
        1,
        1024,
        false,
        1,
    );
    let layer = 1024.0 * 768.0 * (34.0 + 5.0 * 12.0 * 1024.0 / 768.0);
    let logits = 8.0 * 1024.0 * 50257.0;
    assert!((one.activations - layer - logits).abs() < 1.0);
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
