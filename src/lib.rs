//! # synthlm — can small language models be trained well on synthetic data alone?
//!
//! A literate experiment book. Data flows one way:
//!
//! ```text
//! sources / generation -> filter -> tokenize + pack -> train -> evaluate -> results
//!                                                                     |
//!                                       notebooks, book and paper read the same results
//! ```
//!
//! Module names mirror the paper's sections: [`data`] (sources, records, tokenizer, packing,
//! corpus statistics), [`model`] (fused CPU kernels with backward for GPT-2-style training).
//! Everything a notebook calls lives here; notebooks hold only narrative.

pub mod bench;
pub mod budget;
pub mod commands;
pub mod config;
pub mod cpu;
pub mod data;
pub mod eval;
pub mod experiments;
pub mod filter;
pub mod generate;
pub mod hash;
pub mod io;
pub mod model;
pub mod progress;
pub mod report;
pub mod stats;
pub mod train;

/// What a notebook usually needs, in one `use synthlm::prelude::*;`.
pub mod prelude {
    pub use crate::data::document::{render_chat, Document, Message, Role};
    pub use crate::data::pack::{pack_documents, Manifest, PackOptions, TokenShards};
    pub use crate::data::read::{LoadOptions, LoadReport, OnBadRow, Sampling};
    pub use crate::data::sources::{Dataset, SourceSpec};
    pub use crate::data::stats::corpus_stats;
    pub use crate::data::tokenizer::{train_bpe, BpeOptions, TextTokenizer};
}
