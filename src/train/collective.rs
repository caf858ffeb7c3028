//! Data parallelism's one seam: a [`Collective`] sums buffers over the ranks of a training job.
//!
//! Every rank holds the whole model, reads its own rows of each global batch, and before the
//! optimizer step the gradients are averaged over ranks ([`all_reduce_mean`]), so every rank
//! applies the same update and the replicas stay identical without ever exchanging weights.
//! What implements the sum is a detail behind the trait:
//! - [`Single`]: one process, world size 1 (every CPU run): no communication at all.
//! - [`LocalReplicas`]: N replicas as threads of one process, summing through shared memory.
//!   It exists so the averaging logic that multi-GPU training relies on is tested on machines
//!   without GPUs: N replicas x B rows equal one run of N·B rows (tests/data_parallel.rs).
//! - [`super::process_group::TcpGroup`]: N processes on one machine (`synthlm launch`), over
//!   localhost TCP through the host.
//! - [`super::nccl::NcclGroup`] (feature `nccl`): one process per GPU; it overrides
//!   [`Collective::all_reduce_sum_tensor`] with `ncclAllReduce` on device buffers. Without the
//!   feature, launched GPU ranks reduce through the host over TCP.
//!
//! Gradients travel in buckets of whole parameters (PyTorch DDP's idea): one call per ~16 MB
//! rather than one per parameter, because each collective call has a fixed latency (tens of
//! microseconds for NCCL) that would dominate the ~100 small bias and LayerNorm tensors of a
//! 12-layer model.

use crate::train::grads::Grads;
use anyhow::{bail, Result};
use candle_core::Tensor;
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// Elements per gradient bucket: 4 Mi f32 = 16 MiB (DDP's default bucket is 25 MB).
pub const BUCKET_ELEMS: usize = 1 << 22;

/// Sums over the ranks of a job. Every rank must make the same calls in the same order.
pub trait Collective: Send + Sync {
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// Replace `buf` by its elementwise sum over all ranks; every rank gets identical values.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()>;
    /// The same for a flat `f32` tensor. The default goes through the host; a device
    /// collective (NCCL) overrides it and keeps the data on the device.
    fn all_reduce_sum_tensor(&self, t: &Tensor) -> Result<Tensor> {
        let mut v = t.to_vec1::<f32>()?;
        self.all_reduce_sum(&mut v)?;
        Ok(Tensor::from_vec(v, t.elem_count(), t.device())?)
    }
    /// Whether this rank writes checkpoints, metrics and summaries (rank 0 only).
    fn is_root(&self) -> bool {
        self.rank() == 0
    }
}

/// A job of one rank: nothing to communicate.
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
}

/// One of N replicas running as threads of one process.
pub struct LocalReplicas {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    world: usize,
    meet: Mutex<Meeting>,
    arrived_all: Condvar,
    slots: RwLock<Vec<Vec<f32>>>,
}

/// A barrier that a departed rank breaks: `std::sync::Barrier` would leave the others waiting
/// forever for a rank whose thread returned an error.
struct Meeting {
    arrived: usize,
    generation: u64,
    /// The first rank whose handle was dropped.
    left: Option<usize>,
}

impl LocalReplicas {
    /// The N ranks of a new group; hand one to each thread. A rank whose handle is dropped
    /// (its thread finished or failed) leaves the group: the others' reductions then fail
    /// naming it, instead of waiting for it forever.
    pub fn group(world: usize) -> Vec<LocalReplicas> {
        let shared = Arc::new(Shared {
            world,
            meet: Mutex::new(Meeting {
                arrived: 0,
                generation: 0,
                left: None,
            }),
            arrived_all: Condvar::new(),
            slots: RwLock::new(vec![Vec::new(); world]),
        });
        (0..world)
            .map(|rank| LocalReplicas {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Wait until every rank has arrived, or fail if one has left.
    fn wait_all(&self) -> Result<()> {
        let s = &self.shared;
        let mut m = s.meet.lock().expect("replica lock");
        let generation = m.generation;
        m.arrived += 1;
        if m.arrived == s.world {
            m.arrived = 0;
            m.generation += 1;
            s.arrived_all.notify_all();
            return Ok(());
        }
        while m.generation == generation {
            if let Some(r) = m.left {
                bail!("all-reduce: rank {r} left the group (its thread stopped)");
            }
            m = s.arrived_all.wait(m).expect("replica lock");
        }
        Ok(())
    }
}

impl Drop for LocalReplicas {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.meet.lock() {
            m.left.get_or_insert(self.rank);
            self.shared.arrived_all.notify_all();
        }
    }
}

impl Collective for LocalReplicas {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.shared.world
    }
    /// Deposit, wait for all, sum in rank order (so every rank computes the same floats), wait
    /// again before anyone deposits the next buffer.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        let s = &self.shared;
        s.slots.write().expect("replica lock")[self.rank] = buf.to_vec();
        self.wait_all()?;
        let mismatch = {
            let slots = s.slots.read().expect("replica lock");
            let ok = slots.iter().all(|x| x.len() == buf.len());
            if ok {
                for (j, out) in buf.iter_mut().enumerate() {
                    *out = slots.iter().skip(1).fold(slots[0][j], |acc, x| acc + x[j]);
                }
            }
            !ok
        };
        self.wait_all()?;
        if mismatch {
            bail!("all-reduce: the ranks passed buffers of different lengths");
        }
        Ok(())
    }
}

/// Average `grads` over the ranks of `coll`, in buckets of whole parameters of at most
/// `bucket` elements (a larger parameter travels alone).
pub fn all_reduce_mean(coll: &dyn Collective, grads: &mut Grads, bucket: usize) -> Result<()> {
    let world = coll.world_size();
    if world == 1 {
        return Ok(());
    }
    let inv = 1.0 / world as f32;
    match grads {
        Grads::Host(gs) => {
            let sizes: Vec<usize> = gs.iter().map(|g| g.len()).collect();
            for b in buckets(&sizes, bucket) {
                let mut buf: Vec<f32> = b.clone().flat_map(|i| gs[i].iter().copied()).collect();
                coll.all_reduce_sum(&mut buf)?;
                let mut at = 0;
                for i in b {
                    for (g, s) in gs[i].iter_mut().zip(&buf[at..]) {
                        *g = s * inv;
                    }
                    at += gs[i].len();
                }
            }
        }
        Grads::Device(gs) => {
            let sizes: Vec<usize> = gs.iter().map(|g| g.elem_count()).collect();
            for b in buckets(&sizes, bucket) {
                let sum = coll.all_reduce_sum_tensor(&Tensor::cat(&gs[b.clone()], 0)?)?;
                let mut at = 0;
                for i in b {
                    let n = sizes[i];
                    gs[i] = sum.narrow(0, at, n)?.affine(inv as f64, 0.0)?;
                    at += n;
                }
            }
        }
    }
    Ok(())
}

/// Consecutive runs of parameters whose sizes add up to at most `bucket` (at least one each).
fn buckets(sizes: &[usize], bucket: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut filled) = (0, 0);
    for (i, &n) in sizes.iter().enumerate() {
        if i > start && filled + n > bucket {
            out.push(start..i);
            (start, filled) = (i, 0);
        }
        filled += n;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_whole_parameters_up_to_the_limit() {
        assert_eq!(buckets(&[3, 3, 3, 10, 1], 6), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(buckets(&[1, 1, 1], 100), vec![0..3]);
        assert_eq!(buckets(&[], 4), Vec::<std::ops::Range<usize>>::new());
    }

    #[test]
    fn local_replicas_average_in_rank_order_and_agree() {
        let group = LocalReplicas::group(3);
        let results: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
            let hs: Vec<_> = group
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let r = c.rank() as f32;
                        let mut g = Grads::Host(vec![vec![r, 1.0 + r], vec![10.0 * r; 5]]);
                        all_reduce_mean(c, &mut g, 3).unwrap();
                        match g {
                            Grads::Host(v) => v,
                            _ => unreachable!(),
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // ranks 0, 1, 2: means 1, 2 and 10 (rounded once by the 1/3 multiply, as on every rank)
        let third = 1.0f32 / 3.0;
        assert_eq!(
            results[0],
            vec![vec![3.0 * third, 6.0 * third], vec![30.0 * third; 5]]
        );
        assert!(results.iter().all(|r| r == &results[0]));
    }

    #[test]
    fn device_path_averages_like_the_host_path() {
        let group = LocalReplicas::group(2);
        let out: Vec<Vec<f32>> = std::thread::scope(|s| {
            let hs: Vec<_> = group
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let dev = candle_core::Device::Cpu;
                        let r = c.rank() as f32;
                        let t = |v: Vec<f32>| Tensor::from_vec(v.clone(), v.len(), &dev).unwrap();
                        let mut g = Grads::Device(vec![t(vec![r, 2.0]), t(vec![4.0 * r])]);
                        all_reduce_mean(c, &mut g, 2).unwrap();
                        match g {
                            Grads::Device(v) => {
                                v.iter().flat_map(|x| x.to_vec1::<f32>().unwrap()).collect()
                            }
                            _ => unreachable!(),
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(out[0], vec![0.5, 2.0, 2.0]);
        assert_eq!(out[0], out[1]);
    }

    #[test]
    fn a_rank_that_stops_ends_the_others_reduction_with_an_error() {
        let mut group = LocalReplicas::group(3);
        let gone = group.pop().expect("rank 2");
        let errs: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = group
                .iter()
                .map(|c| s.spawn(move || format!("{}", c.all_reduce_sum(&mut [1.0]).unwrap_err())))
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(gone);
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(errs.iter().all(|e| e.contains("rank 2 left")), "{errs:?}");
    }

    #[test]
    fn mismatched_buffers_are_an_error_on_every_rank() {
        let group = LocalReplicas::group(2);
        let errs: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = group
                .iter()
                .map(|c| s.spawn(move || c.all_reduce_sum(&mut vec![1.0; 1 + c.rank()]).is_err()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(errs, vec![true, true]);
    }
}
