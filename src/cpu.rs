//! CPU threading, set once per process before any tensor work.
//!
//! candle 0.11 runs elementwise ops on its own spinning "barrier pool", beside the rayon pool
//! that gemm and our fused kernels use. On a 2-core machine the two pools fight: a barrier-pool
//! thread spinning on one core starves the rayon task it waits for. Measured with `synthlm
//! bench train` (mini-1m): 4,038 tokens/s with both pools, 9,496 with the barrier pool off. So
//! we give the barrier pool no workers (`CANDLE_NUM_THREADS=1`: elementwise ops run on the
//! calling thread, and are light next to the matmuls) and leave rayon at one thread per core.
//!
//! The allocator: a training step allocates and frees every activation and gradient tensor
//! (mini-1m: ~150 buffers of up to 32 MiB per step). glibc's malloc serves large blocks with
//! fresh `mmap`s and hands freed heap tops back to the kernel, so each step page-faults and
//! zero-fills the same memory again (`perf`: ~8% of the step in page faults and memset). Keeping
//! freed memory in the heap changes no result, only where the bytes live: see [`configure`].

/// Configure threading for this process. Call first thing (the `synthlm` binary and the
/// notebooks' setup cell do); an explicit `CANDLE_NUM_THREADS` is respected.
pub fn configure() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Safe in edition 2021; done before any other thread exists.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    keep_freed_memory();
}

/// glibc malloc: serve blocks up to 256 MiB from the heap (mini-1m's logits alone are 32 MiB;
/// at 32 MiB most of the page faults remained), and keep up to 1 GiB of freed heap instead of
/// returning it to the kernel, so that a step reuses the last step's pages. This holds for the
/// main arena, where the training loop allocates; other threads' arenas are capped at 64 MiB
/// per heap by glibc, so their larger blocks are still mapped fresh. Measured with
/// `synthlm bench train` (40 steps, alternating runs on one machine, default build):
/// mini-1m:4096:128:16 5,750-6,110 tokens/s as glibc comes, 6,110-6,520 with this (+7%; page
/// faults over 20 steps 712k -> 80k; peak memory 303-315 -> 343-351 MB); mini-7m:8192:256:8
/// within noise (1,426-1,503 -> 1,469-1,545 tokens/s).
/// Skipped where the user tunes malloc through the environment (`MALLOC_*`, or a
/// `glibc.malloc.` tunable in `GLIBC_TUNABLES`).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuned = std::env::vars_os().any(|(k, v)| {
            k.to_string_lossy().starts_with("MALLOC_")
                || (k == "GLIBC_TUNABLES" && v.to_string_lossy().contains("glibc.malloc."))
        });
        if !tuned {
            // SAFETY: mallopt only sets malloc's parameters; called before tensors exist.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
                libc::mallopt(libc::M_TOP_PAD, 64 << 20);
            }
        }
    }
}

/// The f32 matmul kernels (gemm's) this build runs on this CPU: `avx512f` in a build with the
/// `avx512` feature on a CPU that has it, else `fma`, else `scalar` (x86-64; `other`
/// elsewhere). Kernels of different widths block their sums differently, so their results
/// differ in the last bits: a run is reproduced bit for bit only by the kernels that trained it.
/// The AVX-512 kernels, measured with `synthlm bench train` (mini-1m:4096:128:16, alternating
/// runs on one machine): 5,630-5,700 tokens/s with `fma`, 7,310-7,650 with `avx512f` (1.3x;
/// the 1024^3 matmul ceiling 116-124 -> 247-281 GFLOP/s). Not the default, because every
/// committed run was trained by the `fma` kernels and must stay reproducible.
pub fn matmul_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512") && std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "fma";
        }
        "scalar"
    }
    #[cfg(not(target_arch = "x86_64"))]
    "other"
}

/// The kernels of runs and checkpoints recorded before they recorded any: `fma`, which every
/// build then ran on the machines they trained on.
pub fn kernels_before_recorded() -> String {
    "fma".into()
}

/// Refuse to `verb` (resume, reproduce) `what` in this process unless it computes as the one
/// that trained it: the same matmul kernels and, where recorded (not 0), the same number of
/// threads, since the matmuls split their sums by thread. `recorded` and `here` are (kernels,
/// threads).
pub fn check_same_arithmetic(
    what: &std::path::Path,
    verb: &str,
    recorded: (&str, usize),
    here: (&str, usize),
) -> anyhow::Result<()> {
    let ((k, t), (k_here, t_here)) = (recorded, here);
    if k != k_here || (t != 0 && t != t_here) {
        anyhow::bail!(
            "{}: trained by the `{k}` matmul kernels on {t} threads, this process runs `{k_here}` on {t_here}; their sums round differently, so {verb} with the same build (`avx512f`: `--features avx512`) and RAYON_NUM_THREADS={t}",
            what.display()
        );
    }
    Ok(())
}

/// Threads used for matmuls and fused kernels.
pub fn threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// The 1-minute load average (`/proc/loadavg`), where the system has one: recorded beside a
/// timing so that a reader sees whether other work shared the cores.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
