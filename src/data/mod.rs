//! Data: the one record type, the four seed datasets, the HF cache, streaming readers,
//! the tokenizer, packed token shards and corpus statistics.

pub mod document;
pub mod hub;
pub mod input;
pub mod pack;
pub mod read;
pub mod real;
pub mod sources;
pub mod stats;
pub mod tokenizer;
pub mod write;
