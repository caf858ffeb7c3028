//! AdamW with decoupled weight decay (Loshchilov & Hutter), written out so its state (first and
//! second moments, step count) can be saved and restored exactly. candle-nn's AdamW keeps its
//! moments private, which would make bit-exact resume impossible.
//!
//! Two backends, one update rule and one checkpoint format:
//! - **Host** (the CPU): one fused pass per parameter on plain `f32` slices (parallel over fixed
//!   chunks, so results do not depend on the thread count), instead of a dozen tensor ops each
//!   allocating a parameter-sized temporary.
//! - **Device** (a GPU): the same arithmetic as tensor ops on the device, so weights, gradients
//!   and moments never leave it. Each op is written in the fused loop's order of operations
//!   (`((1-b2)·g)·g`, `sqrt(v)·c + eps`, ...), so on the CPU the two backends agree bit for bit
//!   (tested): the device path is the fused path, not an approximation of it.

use crate::train::grads::{Grads, CHUNK};
use anyhow::{bail, Result};
use candle_core::{Device, Tensor, Var};
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

/// First and second moments, one flat buffer per parameter.
enum Moments {
    Host { m: Vec<Vec<f32>>, v: Vec<Vec<f32>> },
    Device { m: Vec<Tensor>, v: Vec<Tensor> },
}

/// Optimizer state for a list of parameters (same order as the model's).
pub struct AdamW {
    moments: Moments,
    /// Updates applied so far (for bias correction).
    pub t: u64,
    /// Whether each parameter is weight-decayed.
    pub decay: Vec<bool>,
    /// Elements of each parameter.
    sizes: Vec<usize>,
    /// Whether this rank keeps the parameter's moments and updates it: all of them, or under
    /// ZeRO-1 ([`AdamW::shard`]) this rank's share.
    owned: Vec<bool>,
}

/// The scalars of one update, computed once in f32 exactly as the fused loop uses them.
#[derive(Clone, Copy)]
struct Coeffs {
    b1: f32,
    b2: f32,
    one_minus_b1: f32,
    one_minus_b2: f32,
    step_size: f32,
    inv_sqrt_bc2: f32,
    eps: f32,
}

impl AdamW {
    /// Zero state on `device`: the host backend on the CPU, the device backend elsewhere.
    pub fn new(sizes: &[usize], decay: Vec<bool>, device: &Device) -> Result<Self> {
        Self::with_backend(sizes, decay, device, device.is_cpu())
    }

    /// Zero state with an explicit backend (`host` = the fused CPU loop; otherwise tensor ops on
    /// `device`, which may be the CPU: that is how the two are compared).
    pub fn with_backend(
        sizes: &[usize],
        decay: Vec<bool>,
        device: &Device,
        host: bool,
    ) -> Result<Self> {
        let moments = if host {
            Moments::Host {
                m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
                v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            }
        } else {
            let zeros = || -> Result<Vec<Tensor>> {
                sizes
                    .iter()
                    .map(|&n| Ok(Tensor::zeros(n, candle_core::DType::F32, device)?))
                    .collect()
            };
            Moments::Device {
                m: zeros()?,
                v: zeros()?,
            }
        };
        Ok(AdamW {
            moments,
            t: 0,
            decay,
            sizes: sizes.to_vec(),
            owned: vec![true; sizes.len()],
        })
    }

    /// ZeRO stage 1: keep moments only for the parameters rank `rank` of `world` owns
    /// ([`crate::train::zero::owners`]), and update only those; the others' memory is freed.
    /// After each step the owners' new weights reach every rank
    /// ([`crate::train::zero::share_weights`]); checkpoints gather the full state
    /// ([`crate::train::zero::gathered_state`]), so the format stays one.
    pub fn shard(mut self, rank: usize, world: usize) -> Result<Self> {
        let owners = crate::train::zero::owners(&self.sizes, world);
        self.owned = owners.iter().map(|&o| o == rank).collect();
        for (i, own) in self.owned.clone().into_iter().enumerate() {
            if !own {
                match &mut self.moments {
                    Moments::Host { m, v } => (m[i], v[i]) = (Vec::new(), Vec::new()),
                    Moments::Device { m, v } => {
                        let empty = Tensor::zeros(0, candle_core::DType::F32, m[i].device())?;
                        (m[i], v[i]) = (empty.clone(), empty);
                    }
                }
            }
        }
        Ok(self)
    }

    /// Which parameters this rank updates.
    pub fn owned(&self) -> &[bool] {
        &self.owned
    }

    /// Whether the state is sharded over ranks (some parameter is not this rank's).
    pub fn is_sharded(&self) -> bool {
        self.owned.iter().any(|o| !o)
    }

    /// Parameter `i`'s first and second moments as host vectors (empty if not owned).
    pub fn moments_host(&self, i: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok(match &self.moments {
            Moments::Host { m, v } => (m[i].clone(), v[i].clone()),
            Moments::Device { m, v } => (m[i].to_vec1::<f32>()?, v[i].to_vec1::<f32>()?),
        })
    }

    /// Elements of parameter `i`.
    pub fn size(&self, i: usize) -> usize {
        self.sizes[i]
    }

    /// Whether gradients for this optimizer should be collected on the host.
    pub fn wants_host_grads(&self) -> bool {
        matches!(self.moments, Moments::Host { .. })
    }

    /// Apply one update with gradients `grads` (same order and sizes as the parameters, and on
    /// the side this optimizer's backend expects).
    pub fn step(&mut self, params: &[(String, Var)], grads: &Grads, h: AdamWParams) -> Result<()> {
        self.t += 1;
        let (b1, b2) = (h.beta1 as f32, h.beta2 as f32);
        let bc1 = 1.0 - h.beta1.powi(self.t as i32);
        let bc2 = 1.0 - h.beta2.powi(self.t as i32);
        // p -= lr * (m̂ / (sqrt(v̂) + eps) + wd * p), with m̂ = m / bc1, v̂ = v / bc2.
        let c = Coeffs {
            b1,
            b2,
            one_minus_b1: 1.0 - b1,
            one_minus_b2: 1.0 - b2,
            step_size: (h.lr / bc1) as f32,
            inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
            eps: h.eps as f32,
        };
        for (i, (_, var)) in params.iter().enumerate() {
            if !self.owned[i] {
                continue;
            }
            let wd = if self.decay[i] {
                (h.lr * h.weight_decay) as f32
            } else {
                0.0
            };
            match (&mut self.moments, grads) {
                (Moments::Host { m, v }, Grads::Host(g)) => {
                    host_update(var, &mut m[i], &mut v[i], &g[i], c, wd)?
                }
                (Moments::Device { m, v }, Grads::Device(g)) => {
                    device_update(var, &mut m[i], &mut v[i], &g[i], c, wd)?
                }
                _ => bail!("AdamW: gradients are not where this optimizer's state is"),
            }
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
            let (m, v) = match &self.moments {
                Moments::Host { m, v } => (
                    Tensor::from_slice(&m[i], m[i].len(), device)?,
                    Tensor::from_slice(&v[i], v[i].len(), device)?,
                ),
                Moments::Device { m, v } => (m[i].clone(), v[i].clone()),
            };
            out.insert(format!("m.{n}"), m);
            out.insert(format!("v.{n}"), v);
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
            for (key, second) in [(format!("m.{n}"), false), (format!("v.{n}"), true)] {
                let t = tensors
                    .remove(&key)
                    .ok_or_else(|| anyhow::anyhow!("optimizer state has no `{key}`"))?;
                if !self.owned[i] {
                    continue; // another rank's share (ZeRO-1)
                }
                self.set_moment(i, second, &key, t)?;
            }
        }
        let t = tensors
            .remove("t")
            .ok_or_else(|| anyhow::anyhow!("optimizer state has no step count `t`"))?;
        self.t = t.to_vec1::<u32>()?[0] as u64;
        Ok(())
    }

    /// Replace parameter `i`'s first (`second = false`) or second moment with the flat tensor `t`
    /// read from a checkpoint (`key` names it in errors).
    fn set_moment(&mut self, i: usize, second: bool, key: &str, t: Tensor) -> Result<()> {
        let expected = match &self.moments {
            Moments::Host { m, .. } => m[i].len(),
            Moments::Device { m, .. } => m[i].elem_count(),
        };
        anyhow::ensure!(
            t.rank() == 1 && t.elem_count() == expected,
            "optimizer state `{key}` has shape {:?}, expected [{expected}]",
            t.dims()
        );
        let t = t.to_dtype(candle_core::DType::F32)?;
        match &mut self.moments {
            Moments::Host { m, v } => {
                let slot = if second { &mut v[i] } else { &mut m[i] };
                *slot = t.to_vec1::<f32>()?;
            }
            Moments::Device { m, v } => {
                let slot = if second { &mut v[i] } else { &mut m[i] };
                *slot = t.to_device(slot.device())?;
            }
        }
        Ok(())
    }
}

/// The fused update of one parameter on the host.
fn host_update(
    var: &Var,
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    c: Coeffs,
    wd: f32,
) -> Result<()> {
    let t = var.as_tensor();
    let mut p = t.flatten_all()?.to_vec1::<f32>()?;
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((p, m), v), g)| {
            for j in 0..p.len() {
                let gj = g[j];
                m[j] = c.b1 * m[j] + c.one_minus_b1 * gj;
                v[j] = c.b2 * v[j] + c.one_minus_b2 * gj * gj;
                let denom = v[j].sqrt() * c.inv_sqrt_bc2 + c.eps;
                p[j] -= c.step_size * m[j] / denom + wd * p[j];
            }
        });
    var.set(&Tensor::from_vec(p, t.shape(), t.device())?)?;
    Ok(())
}

/// The same update as tensor ops on the parameter's device, op for op in the fused loop's order
/// (`affine(x, a, b)` is `x·a + b`, rounded once per op as the loop rounds).
fn device_update(
    var: &Var,
    m: &mut Tensor,
    v: &mut Tensor,
    g: &Tensor,
    c: Coeffs,
    wd: f32,
) -> Result<()> {
    let f = |x: f32| x as f64;
    *m = (m.affine(f(c.b1), 0.0)? + g.affine(f(c.one_minus_b1), 0.0)?)?;
    *v = (v.affine(f(c.b2), 0.0)? + g.affine(f(c.one_minus_b2), 0.0)?.mul(g)?)?;
    let denom = v.sqrt()?.affine(f(c.inv_sqrt_bc2), f(c.eps))?;
    let p = var.as_tensor().flatten_all()?;
    let update = (m.affine(f(c.step_size), 0.0)?.div(&denom)? + p.affine(f(wd), 0.0)?)?;
    var.set(&(p - update)?.reshape(var.as_tensor().shape())?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn params(sizes: &[usize], rng: &mut rand_chacha::ChaCha8Rng) -> Vec<(String, Var)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let t = Tensor::from_vec(v, n, &Device::Cpu).unwrap();
                (format!("p{i}"), Var::from_tensor(&t).unwrap())
            })
            .collect()
    }

    fn bits(ps: &[(String, Var)]) -> Vec<Vec<u32>> {
        ps.iter()
            .map(|(_, v)| {
                let x = v.as_tensor().to_vec1::<f32>().unwrap();
                x.iter().map(|f| f.to_bits()).collect()
            })
            .collect()
    }

    /// The device backend (tensor ops), run on the CPU, gives the fused host loop's weights bit
    /// for bit, and a checkpoint written by one backend resumes in the other.
    #[test]
    fn tensor_backend_equals_the_fused_loop_bit_for_bit_and_shares_its_checkpoints() {
        let sizes = [40_000usize, 7, 1];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (ph, pd) = (params(&sizes, &mut rng), params(&sizes, &mut rng));
        for ((_, a), (_, b)) in ph.iter().zip(&pd) {
            a.set(b.as_tensor()).unwrap();
        }
        let decay = vec![true, false, true];
        let dev = Device::Cpu;
        let mut host = AdamW::with_backend(&sizes, decay.clone(), &dev, true).unwrap();
        let mut tens = AdamW::with_backend(&sizes, decay.clone(), &dev, false).unwrap();
        assert!(host.wants_host_grads() && !tens.wants_host_grads());
        let h = AdamWParams {
            lr: 3e-3,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let names: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
        for step in 0..6 {
            let g: Vec<Vec<f32>> = sizes
                .iter()
                .map(|&n| (0..n).map(|_| rng.gen_range(-1e-2..1e-2)).collect())
                .collect();
            let gd = Grads::Device(
                g.iter()
                    .map(|v| Tensor::from_slice(v, v.len(), &dev).unwrap())
                    .collect(),
            );
            host.step(&ph, &Grads::Host(g), h).unwrap();
            tens.step(&pd, &gd, h).unwrap();
            assert_eq!(bits(&ph), bits(&pd), "weights differ after step {step}");
            if step == 2 {
                // Swap states through the checkpoint format: each backend resumes the other's.
                let (sh, sd) = (
                    host.state_tensors(&names, &dev).unwrap(),
                    tens.state_tensors(&names, &dev).unwrap(),
                );
                host = AdamW::with_backend(&sizes, decay.clone(), &dev, true).unwrap();
                tens = AdamW::with_backend(&sizes, decay.clone(), &dev, false).unwrap();
                host.load_state(&names, sd).unwrap();
                tens.load_state(&names, sh).unwrap();
                assert_eq!(host.t, 3);
            }
        }
        // Mixing sides is refused rather than silently copied.
        let g = Grads::Host(sizes.iter().map(|&n| vec![0.0; n]).collect());
        assert!(tens.step(&pd, &g, h).is_err());
    }

    #[test]
    fn a_moment_of_the_wrong_size_is_refused_by_name() {
        let dev = Device::Cpu;
        let mut o = AdamW::new(&[4], vec![true], &dev).unwrap();
        let mut st = o.state_tensors(&["w".into()], &dev).unwrap();
        st.insert(
            "v.w".into(),
            Tensor::zeros(5, candle_core::DType::F32, &dev).unwrap(),
        );
        let e = o.load_state(&["w".into()], st).unwrap_err().to_string();
        assert!(e.contains("v.w") && e.contains("[4]"), "{e}");
    }
}
