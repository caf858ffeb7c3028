//! CPU threading, set once per process before any tensor work.
//!
//! candle 0.11 runs elementwise ops on its own spinning "barrier pool", beside the rayon pool
//! that gemm and our fused kernels use. On a 2-core machine the two pools fight: a barrier-pool
//! thread spinning on one core starves the rayon task it waits for. Measured with `synthlm
//! bench train` (mini-1m): 4,038 tokens/s with both pools, 9,496 with the barrier pool off. So
//! we give the barrier pool no workers (`CANDLE_NUM_THREADS=1`: elementwise ops run on the
//! calling thread, and are light next to the matmuls) and leave rayon at one thread per core.

/// Configure threading for this process. Call first thing (the `synthlm` binary and the
/// notebooks' setup cell do); an explicit `CANDLE_NUM_THREADS` is respected.
pub fn configure() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Safe in edition 2021; done before any other thread exists.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
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
