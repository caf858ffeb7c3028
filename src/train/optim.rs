//! AdamW with decoupled weight decay (Loshchilov & Hutter), written out so its state (first and
//! second moments, step count) can be saved and restored exactly. candle-nn's AdamW keeps its
//! moments private, which would make bit-exact resume impossible.
//!
//! The update runs on plain `f32` slices in one fused pass per parameter (parallel over fixed
//! chunks, so results do not depend on the thread count), instead of a dozen tensor ops each
//! allocating a parameter-sized temporary.

use anyhow::Result;
use candle_core::{Tensor, Var};
use rayon::prelude::*;
use std::collections::HashMap;

/// Hyper-parameters of one update.
#[derive(Clone, Copy, Debug)]
pub struct AdamWParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// Optimizer state for a list of parameters (same order as the model's).
pub struct AdamW {
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    /// Updates applied so far (for bias correction).
    pub t: u64,
    /// Whether each parameter is weight-decayed.
    pub decay: Vec<bool>,
}

const CHUNK: usize = 1 << 14;

impl AdamW {
    pub fn new(sizes: &[usize], decay: Vec<bool>) -> Self {
        AdamW {
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            t: 0,
            decay,
        }
    }

    /// Apply one update with gradients `grads` (same order and sizes as the parameters).
    pub fn step(
        &mut self,
        params: &[(String, Var)],
        grads: &[Vec<f32>],
        h: AdamWParams,
    ) -> Result<()> {
        self.t += 1;
        let (b1, b2) = (h.beta1 as f32, h.beta2 as f32);
        let bc1 = 1.0 - h.beta1.powi(self.t as i32);
        let bc2 = 1.0 - h.beta2.powi(self.t as i32);
        // p -= lr * (m̂ / (sqrt(v̂) + eps) + wd * p), with m̂ = m / bc1, v̂ = v / bc2.
        let step_size = (h.lr / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let eps = h.eps as f32;
        for (i, ((_, var), g)) in params.iter().zip(grads).enumerate() {
            let t = var.as_tensor();
            let mut p = t.flatten_all()?.to_vec1::<f32>()?;
            let wd = if self.decay[i] {
                (h.lr * h.weight_decay) as f32
            } else {
                0.0
            };
            p.par_chunks_mut(CHUNK)
                .zip(self.m[i].par_chunks_mut(CHUNK))
                .zip(self.v[i].par_chunks_mut(CHUNK))
                .zip(g.par_chunks(CHUNK))
                .for_each(|(((p, m), v), g)| {
                    for j in 0..p.len() {
                        let gj = g[j];
                        m[j] = b1 * m[j] + (1.0 - b1) * gj;
                        v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
                        let denom = v[j].sqrt() * inv_sqrt_bc2 + eps;
                        p[j] -= step_size * m[j] / denom + wd * p[j];
                    }
                });
            var.set(&Tensor::from_vec(p, t.shape(), t.device())?)?;
        }
        Ok(())
    }

    /// The state as named tensors (`m.NAME`, `v.NAME`, and `t`), for safetensors.
    pub fn state_tensors(
        &self,
        names: &[String],
        device: &candle_core::Device,
    ) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            out.insert(
                format!("m.{n}"),
                Tensor::from_slice(&self.m[i], self.m[i].len(), device)?,
            );
            out.insert(
                format!("v.{n}"),
                Tensor::from_slice(&self.v[i], self.v[i].len(), device)?,
            );
        }
        out.insert("t".into(), Tensor::new(&[self.t as u32], device)?);
        Ok(out)
    }

    /// Restore from [`AdamW::state_tensors`] output.
    pub fn load_state(
        &mut self,
        names: &[String],
        mut tensors: HashMap<String, Tensor>,
    ) -> Result<()> {
        for (i, n) in names.iter().enumerate() {
            for (key, slot) in [
                (format!("m.{n}"), &mut self.m[i]),
                (format!("v.{n}"), &mut self.v[i]),
            ] {
                let t = tensors
                    .remove(&key)
                    .ok_or_else(|| anyhow::anyhow!("optimizer state has no `{key}`"))?;
                let v = t.to_vec1::<f32>()?;
                anyhow::ensure!(
                    v.len() == slot.len(),
                    "optimizer state `{key}` has {} values, expected {}",
                    v.len(),
                    slot.len()
                );
                *slot = v;
            }
        }
        let t = tensors
            .remove("t")
            .ok_or_else(|| anyhow::anyhow!("optimizer state has no step count `t`"))?;
        self.t = t.to_vec1::<u32>()?[0] as u64;
        Ok(())
    }
}

/// Global L2 norm of all gradients, summed in a fixed order (f64 partials per chunk).
pub fn global_norm(grads: &[Vec<f32>]) -> f64 {
    let sq: f64 = grads
        .iter()
        .map(|g| {
            g.par_chunks(CHUNK)
                .map(|c| c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
                .collect::<Vec<_>>()
                .iter()
                .sum::<f64>()
        })
        .sum();
    sq.sqrt()
}
