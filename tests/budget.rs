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
    let hours = b.flops / (82.6e12 * 0.4) / 3600.0;
    assert!((b.gpu_hours - hours).abs() < 1e-9 && (b.wall_hours - hours / 8.0).abs() < 1e-9);
    assert!((b.dollars - 5.0 * hours).abs() < 1e-9);
    // The inverse: that many GPU-hours buy back the same tokens.
    let back = tokens_for_gpu_hours("gpt2-small", b.gpu_hours, &gpu).unwrap();
    assert!((back as f64 - tokens as f64).abs() / (tokens as f64) < 1e-6);
}
