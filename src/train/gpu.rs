//! What the CUDA device can tell about itself: its name and the high-water mark of the memory
//! our tensors took. Without the `cuda` feature, or on the CPU, each answer is `None`.
//!
//! Peak memory is read from the device's default memory pool: candle allocates every tensor
//! with `cuMemAllocAsync` (on GPUs with memory pools, i.e. all we target), which draws from that
//! pool, so the pool's `USED_MEM_HIGH` is the most bytes our tensors held at once: the analogue
//! of PyTorch's `torch.cuda.max_memory_allocated()`. It leaves out the CUDA context and
//! cuBLAS's workspace (a few hundred MB that `nvidia-smi` would add).

use candle_core::Device;

/// The GPU's name (e.g. "NVIDIA H200"), `None` on the CPU.
pub fn name(device: &Device) -> Option<String> {
    imp::name(device)
}

/// Most bytes held by tensors at once since the pool's mark was last reset, `None` on the CPU.
pub fn peak_bytes(device: &Device) -> Option<u64> {
    imp::peak_bytes(device)
}

/// Reset the high-water mark to what is in use now (so a measurement starts after set-up).
pub fn reset_peak(device: &Device) {
    imp::reset_peak(device)
}

#[cfg(feature = "cuda")]
mod imp {
    use candle_core::cuda_backend::cudarc::driver::sys;
    use candle_core::Device;

    fn pool(device: &Device) -> Option<sys::CUmemoryPool> {
        let Device::Cuda(d) = device else { return None };
        let stream = d.cuda_stream();
        let ctx = stream.context();
        ctx.bind_to_thread().ok()?;
        let mut pool = std::ptr::null_mut();
        // SAFETY: a valid device handle of a bound context; `pool` is written by the driver.
        let r = unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) };
        (r == sys::CUresult::CUDA_SUCCESS).then_some(pool)
    }

    pub fn name(device: &Device) -> Option<String> {
        let Device::Cuda(d) = device else { return None };
        d.cuda_stream().context().name().ok()
    }

    pub fn peak_bytes(device: &Device) -> Option<u64> {
        let pool = pool(device)?;
        device.synchronize().ok()?;
        let mut v: u64 = 0;
        // SAFETY: USED_MEM_HIGH is a cuuint64_t attribute; `v` is one.
        let r = unsafe {
            sys::cuMemPoolGetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                (&mut v as *mut u64).cast(),
            )
        };
        (r == sys::CUresult::CUDA_SUCCESS).then_some(v)
    }

    pub fn reset_peak(device: &Device) {
        let Some(pool) = pool(device) else { return };
        let _ = device.synchronize();
        let mut zero: u64 = 0;
        // SAFETY: setting USED_MEM_HIGH (to zero, its only allowed value) resets the mark.
        unsafe {
            sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                (&mut zero as *mut u64).cast(),
            );
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod imp {
    use candle_core::Device;

    pub fn name(_: &Device) -> Option<String> {
        None
    }
    pub fn peak_bytes(_: &Device) -> Option<u64> {
        None
    }
    pub fn reset_peak(_: &Device) {}
}
