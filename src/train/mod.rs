//! Training: AdamW with saveable state, the learning-rate schedule, checkpoints with exact
//! resume, the metrics files (the results schema), and the loop itself.

pub mod checkpoint;
pub mod collective;
pub mod gpu;
pub mod grads;
pub mod interrupt;
pub mod metrics;
#[cfg(feature = "nccl")]
pub mod nccl;
pub mod optim;
pub mod process_group;
pub mod schedule;
pub mod trainer;
pub mod zero;

pub use trainer::{train, TrainOptions, TrainOutcome};
