//! The experiments of the book, one module each: a function from a profile to results files
//! under `data/results/expN/PROFILE/`, nothing else. Notebooks, book and paper read those files.

pub mod corpora;
pub mod exp1;
pub mod provenance;
