//! Filtering: duplicates now; rules, judges and thresholds join with Experiment 2.

pub mod checks;
pub mod dedup;
