//! The student: a GPT-2-style decoder-only transformer in candle, its presets and counts, the
//! fused CPU kernels it trains with, and sampling with a KV cache.

pub mod device_ops;
pub mod gpt;
pub mod hf;
pub mod kernels;
pub mod sample;
pub mod student;

pub use gpt::{Gpt, ModelConfig};
