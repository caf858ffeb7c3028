//! # Generation: the teacher LLM that writes synthetic data
//!
//! - [`teacher`]: finds the SmolLM2 GGUF, rebuilds its tokenizer from the file's metadata,
//!   renders ChatML prompts.
//! - [`engine`]: continuous batching over slots with per-slot KV caches; the API callers use
//!   ([`Engine::run`](engine::Engine::run) with [`Request`](engine::Request)s).
//! - [`llama`]: the llama forward pass over a batch of rows, weights dequantized once to f32.
//! - [`kernels`]: packed AVX-512 matmul, attention, SwiGLU, RMSNorm, RoPE; batch-invariant.
//! - [`sampling`]: temperature, top-k, top-p, repetition penalty with per-request seeded RNGs.
//!
//! ```no_run
//! use synthlm::data::document::{Message, Role};
//! use synthlm::generate::{Request, RunOptions, Sampling, Teacher};
//!
//! let teacher = Teacher::load()?; // $SYNTHLM_TEACHER_GGUF or ~/.cache/synthlm/tools/teacher
//! let topics = ["rabbits", "volcanoes", "friendship"];
//! let requests = topics.iter().enumerate().map(|(i, topic)| Request {
//!     id: i as u64,
//!     prompt: teacher.chat_prompt(&[Message::new(Role::User, format!("Write a short story about {topic}."))]).unwrap(),
//!     max_new_tokens: 256,
//!     sampling: Sampling::default(),
//!     stop: vec![teacher.eos],
//!     seed: i as u64,
//! });
//! let opts = RunOptions { slots: 32, ..RunOptions::default() };
//! let stats = teacher.engine.run(requests, &opts, |done| {
//!     println!("{}: {}", done.id, teacher.decode(&done.tokens)?);
//!     Ok(())
//! })?;
//! println!("{:.0} tokens/s", stats.tokens_per_second());
//! # anyhow::Ok(())
//! ```

pub mod engine;
pub mod kernels;
pub mod llama;
pub mod sampling;
pub mod teacher;

pub use engine::{Completion, Engine, Request, RunOptions, Stats, StopReason};
pub use sampling::Sampling;
pub use teacher::{tokenizer_from_gguf, Teacher};
