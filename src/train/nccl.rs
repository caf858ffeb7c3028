//! NCCL behind the [`Collective`] seam (feature `nccl`): one process per GPU, gradients summed
//! on the devices without a trip through the host.
//!
//! `synthlm launch --gpus N -- train ...` with `device = "cuda"` starts N ranks; rank r takes
//! GPU r. Rank 0 asks NCCL for a unique id and writes its 128 bytes to the launcher's rendezvous
//! file (atomically); the others wait for the file and read it; every rank then joins the
//! communicator. [`super::collective::all_reduce_mean`] buckets and averages exactly as it does
//! for the CPU collectives, calling [`Collective::all_reduce_sum_tensor`] per bucket, which here
//! is one `ncclAllReduce` on device memory.
//!
//! Streams: the communicator runs on its own stream of the GPU, and candle's tensors live on the
//! trainer's. The device is synchronised before each all-reduce and the communicator's stream
//! after it, so no reordering can reach a buffer in flight (a few microseconds per bucket
//! against milliseconds of compute per step).

use super::collective::Collective;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::cuda_backend::cudarc::driver::CudaContext;
use candle_core::cuda_backend::cudarc::nccl::{Comm, Id, ReduceOp};
use candle_core::{CpuStorage, CudaStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long ranks wait for rank 0's id.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// NCCL's communicator holds a raw handle, so it is neither `Send` nor `Sync`. The group only
/// ever uses it under its mutex, one call at a time, which is what NCCL requires.
struct Shared(Comm);
// SAFETY: the handle is used from one thread at a time (behind `NcclGroup::comm`'s mutex).
unsafe impl Send for Shared {}

/// One rank of a job whose gradients NCCL sums.
pub struct NcclGroup {
    rank: usize,
    world: usize,
    comm: Mutex<Shared>,
}

impl NcclGroup {
    /// Join the job on GPU `ordinal`: rank 0 publishes NCCL's id in `rendezvous`, the others
    /// read it; all then initialise the communicator (which waits for every rank).
    pub fn join(rank: usize, world: usize, rendezvous: &Path, ordinal: usize) -> Result<Self> {
        if rank >= world {
            bail!("rank {rank} is outside a world of {world}");
        }
        let id = if rank == 0 {
            let id = Id::new().map_err(|e| anyhow!("ncclGetUniqueId: {e:?}"))?;
            let bytes: Vec<u8> = id.internal().iter().map(|&c| c as u8).collect();
            crate::io::write_bytes(rendezvous, &bytes)?;
            id
        } else {
            read_id(rendezvous)?
        };
        let stream = CudaContext::new(ordinal)
            .with_context(|| format!("CUDA device {ordinal}"))?
            .new_stream()?;
        let comm = Comm::from_rank(stream, rank, world, id)
            .map_err(|e| anyhow!("ncclCommInitRank (rank {rank} of {world}): {e:?}"))?;
        Ok(NcclGroup {
            rank,
            world,
            comm: Mutex::new(Shared(comm)),
        })
    }
}

/// Wait for rank 0's 128-byte id in `rendezvous`.
fn read_id(rendezvous: &Path) -> Result<Id> {
    let start = Instant::now();
    loop {
        if let Ok(b) = std::fs::read(rendezvous) {
            if let Ok(arr) = <[u8; 128]>::try_from(b.as_slice()) {
                return Ok(Id::uninit(arr.map(|x| x as std::ffi::c_char)));
            }
        }
        if start.elapsed() > JOIN_TIMEOUT {
            bail!(
                "rank 0 did not publish an NCCL id in {} within {JOIN_TIMEOUT:?}",
                rendezvous.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The all-reduce as a candle op, so it reads and writes the tensor's device memory directly.
struct AllReduce<'a>(&'a Comm);

impl CustomOp1 for AllReduce<'_> {
    fn name(&self) -> &'static str {
        "nccl-all-reduce"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("an NCCL all-reduce needs a CUDA tensor")
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        let n = l.shape().elem_count();
        let src = s.as_cuda_slice::<f32>()?;
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("NCCL all-reduce of a non-contiguous tensor")
        };
        let dev = s.device.clone();
        // SAFETY: every element is written by the all-reduce below before anyone reads it.
        let mut dst = unsafe { dev.alloc::<f32>(n) }?;
        self.0
            .all_reduce(&src.slice(start..end), &mut dst, &ReduceOp::Sum)
            .map_err(|e| candle_core::Error::Msg(format!("ncclAllReduce: {e:?}")))?;
        self.0
            .stream()
            .synchronize()
            .map_err(|e| candle_core::Error::Msg(format!("NCCL stream: {e:?}")))?;
        Ok((CudaStorage::wrap_cuda_slice(dst, dev), l.shape().clone()))
    }
}

impl Collective for NcclGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    /// Host buffers (the loss, a few scalars) go up to the communicator's GPU and back.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        let comm = self
            .comm
            .lock()
            .map_err(|_| anyhow!("NCCL group poisoned"))?;
        let stream = comm.0.stream();
        let src = stream.clone_htod(buf)?;
        let mut dst = stream.alloc_zeros::<f32>(buf.len())?;
        comm.0
            .all_reduce(&src, &mut dst, &ReduceOp::Sum)
            .map_err(|e| anyhow!("ncclAllReduce: {e:?}"))?;
        stream.memcpy_dtoh(&dst, buf)?;
        stream.synchronize()?;
        Ok(())
    }

    fn all_reduce_sum_tensor(&self, t: &Tensor) -> Result<Tensor> {
        if t.dtype() != DType::F32 || !matches!(t.device(), Device::Cuda(_)) {
            bail!(
                "NCCL sums f32 CUDA tensors (got {:?} on {:?})",
                t.dtype(),
                t.device()
            );
        }
        let t = t.contiguous()?;
        t.device().synchronize()?;
        let comm = self
            .comm
            .lock()
            .map_err(|_| anyhow!("NCCL group poisoned"))?;
        Ok(t.apply_op1_no_bwd(&AllReduce(&comm.0))?)
    }
}
