//! # Generation: the teacher LLM that writes synthetic data
//!
//! - [`teacher`]: finds the SmolLM2 GGUF, rebuilds its tokenizer from the file's metadata,
//!   renders ChatML prompts.
//! - [`engine`]: continuous batching over slots with per-slot KV caches; the API callers use
//!   ([`Engine::run`](engine::Engine::run) with [`Request`](engine::Request)s).
//! - [`llama`]: the llama forward pass over a batch of rows, weights dequantized once to f32.
//! - [`kernels`]: packed AVX-512 matmul, attention, SwiGLU, RMSNorm, RoPE; batch-invariant.
//! - [`sampling`]: temperature, top-k, top-p, repetition penalty with per-request seeded RNGs.
//! - [`seeds`], [`jobs`]: the seed taxonomies and the four generators (one state machine per
//!   record); [`driver`] keeps the engine's batch full; [`serve`] connects the two;
//!   [`shards`] writes resumable, atomic output; [`stats`] takes a first look at it.

pub mod driver;
pub mod engine;
pub mod gguf;
pub mod jobs;
pub mod kernels;
pub mod llama;
pub mod sampling;
pub mod seeds;
pub mod serve;
pub mod shards;
pub mod stats;
pub mod summary;
pub mod teacher;

pub use driver::{generate, Backend};
pub use engine::{Completion, Engine, Request, RunOptions, Stats, StopReason};
pub use jobs::{GenSettings, Generator};
pub use sampling::Sampling;
pub use teacher::{tokenizer_from_gguf, Teacher};
