//! Learning rate: linear warmup from 0 to `lr` over `warmup_steps`, then cosine decay to
//! `min_lr` at `max_steps`. A pure function of the step, so resuming needs no schedule state.

use crate::config::TrainConfig;

pub fn learning_rate(c: &TrainConfig, step: u64) -> f64 {
    if step < c.warmup_steps {
        return c.lr * (step + 1) as f64 / c.warmup_steps as f64;
    }
    let span = (c.max_steps - c.warmup_steps).max(1) as f64;
    let progress = ((step - c.warmup_steps) as f64 / span).min(1.0);
    c.min_lr + 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()) * (c.lr - c.min_lr)
}
