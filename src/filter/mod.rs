//! Filtering: record checks, heuristic quality rules, duplicates.

pub mod agreement;
pub mod annotator;
pub mod checks;
pub mod classifier;
pub mod dedup;
pub mod heuristics;
pub mod labels;
pub mod reference;
pub mod signals;
pub mod vs_labels;
