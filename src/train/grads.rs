//! The gradients of one optimizer step, kept where the optimizer will use them.
//!
//! On the CPU they are plain `f32` vectors: the fused AdamW and the global norm run on slices
//! (one pass per parameter, parallel over fixed chunks), which is what makes the CPU loop fast
//! and bit-identical across thread counts. On a GPU they stay on the device as flat tensors:
//! copying every gradient to the host each micro-batch would move 4 bytes per parameter per
//! micro-batch over PCIe (4 GB per micro-batch at 1B parameters), and gradients must be on the
//! device anyway for NCCL to all-reduce them.

use crate::model::gpt::Gpt;
use anyhow::{anyhow, Result};
use candle_core::backprop::GradStore;
use candle_core::Tensor;
use rayon::prelude::*;

/// Fixed chunk of the parallel host loops: results do not depend on the thread count.
pub const CHUNK: usize = 1 << 14;

/// One gradient per parameter, in the model's parameter order, flattened.
pub enum Grads {
    /// On the host (the CPU path).
    Host(Vec<Vec<f32>>),
    /// On the training device, as flat `f32` tensors (any other device).
    Device(Vec<Tensor>),
}

impl Grads {
    /// Take every parameter's gradient out of `gs` (host vectors if `host`, else tensors on the
    /// model's device). A parameter without a gradient is an error: it would silently never
    /// train.
    pub fn collect(model: &Gpt, gs: &GradStore, host: bool) -> Result<Grads> {
        let gs = model
            .params
            .iter()
            .map(|(name, var)| {
                gs.get(var.as_tensor())
                    .cloned()
                    .ok_or_else(|| anyhow!("parameter `{name}` received no gradient"))
            })
            .collect::<Result<_>>()?;
        Self::from_tensors(gs, host)
    }

    /// From one flat-or-shaped tensor per parameter (the checkpointed backward's output).
    pub fn from_tensors(gs: Vec<Tensor>, host: bool) -> Result<Grads> {
        // Detached: a gradient tensor carries the op that computed it, which references forward
        // activations; kept across micro-batches on a GPU it would keep every micro-batch's
        // whole forward graph alive.
        let flat: Vec<Tensor> = gs
            .iter()
            .map(|g| g.detach().flatten_all())
            .collect::<candle_core::Result<_>>()?;
        Ok(if host {
            Grads::Host(
                flat.iter()
                    .map(|g| g.to_vec1::<f32>())
                    .collect::<candle_core::Result<_>>()?,
            )
        } else {
            Grads::Device(flat)
        })
    }

    /// `self += other` (same kind, same sizes).
    pub fn add(&mut self, other: Grads) -> Result<()> {
        match (self, other) {
            (Grads::Host(a), Grads::Host(b)) => a
                .iter_mut()
                .zip(&b)
                .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, y)| *x += y)),
            (Grads::Device(a), Grads::Device(b)) => {
                for (a, b) in a.iter_mut().zip(&b) {
                    *a = a.add(b)?;
                }
            }
            _ => anyhow::bail!("cannot add host gradients to device gradients"),
        }
        Ok(())
    }

    /// Multiply every gradient by `k`.
    pub fn scale(&mut self, k: f32) -> Result<()> {
        match self {
            Grads::Host(gs) => gs
                .iter_mut()
                .for_each(|g| g.iter_mut().for_each(|x| *x *= k)),
            Grads::Device(gs) => {
                for g in gs.iter_mut() {
                    *g = g.affine(k as f64, 0.0)?;
                }
            }
        }
        Ok(())
    }

    /// Global L2 norm over all gradients. Host: f64 partial sums per fixed chunk, summed in a
    /// fixed order. Device: one f32 sum of squares per parameter on the device, and only those
    /// scalars cross to the host (one synchronisation per step).
    pub fn global_norm(&self) -> Result<f64> {
        let sq: f64 = match self {
            Grads::Host(gs) => gs
                .iter()
                .map(|g| {
                    g.par_chunks(CHUNK)
                        .map(|c| c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
                        .collect::<Vec<_>>()
                        .iter()
                        .sum::<f64>()
                })
                .sum(),
            Grads::Device(gs) => {
                let sums: Vec<Tensor> = gs
                    .iter()
                    .map(|g| g.sqr()?.sum_all())
                    .collect::<candle_core::Result<_>>()?;
                Tensor::stack(&sums, 0)?
                    .to_vec1::<f32>()?
                    .iter()
                    .map(|&x| x as f64)
                    .sum()
            }
        };
        Ok(sq.sqrt())
    }

    /// Number of parameters (gradients) held.
    pub fn len(&self) -> usize {
        match self {
            Grads::Host(g) => g.len(),
            Grads::Device(g) => g.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
