//! Synthetic data generation with a teacher LLM: seed taxonomies, the four generators, a
//! resumable sharded writer, and the driver that feeds the teacher.

pub mod driver;
pub mod jobs;
pub mod seeds;
pub mod shards;
pub mod stats;

pub use driver::{generate, Backend};
pub use jobs::{GenSettings, Generator};
