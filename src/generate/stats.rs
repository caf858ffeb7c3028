//! A first look at generated (or any) corpora: size, length, duplication and diversity, one row
//! per corpus, as a polars table. The quality experiments start from these numbers.

use crate::data::document::Document;
use crate::eval::diversity::distinct_n;
use crate::filter::dedup::{exact_duplicate_rate, near_duplicate_rate};
use anyhow::Result;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// The first-look numbers of one corpus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FirstLook {
    pub corpus: String,
    pub documents: u64,
    pub mean_words: f64,
    pub p50_words: f64,
    pub p90_words: f64,
    pub exact_dup_rate: f64,
    /// MinHash, Jaccard >= 0.8.
    pub near_dup_rate: f64,
    pub distinct_1: f64,
    pub distinct_2: f64,
    pub distinct_3: f64,
}

/// Documents, words (mean, p50, p90), exact and near-duplicate rates (MinHash, Jaccard >= 0.8),
/// distinct-1/2/3 of each named corpus.
pub fn first_look_rows(corpora: &[(String, Vec<Document>)]) -> Vec<FirstLook> {
    corpora
        .iter()
        .map(|(name, docs)| {
            let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
            let mut lens: Vec<f64> = texts
                .iter()
                .map(|t| t.split_whitespace().count() as f64)
                .collect();
            lens.sort_by(f64::total_cmp);
            let q = |p: f64| {
                if lens.is_empty() {
                    0.0
                } else {
                    lens[((lens.len() - 1) as f64 * p).round() as usize]
                }
            };
            FirstLook {
                corpus: name.clone(),
                documents: docs.len() as u64,
                mean_words: lens.iter().sum::<f64>() / lens.len().max(1) as f64,
                p50_words: q(0.5),
                p90_words: q(0.9),
                exact_dup_rate: exact_duplicate_rate(&texts),
                near_dup_rate: near_duplicate_rate(&texts, 0.8),
                distinct_1: distinct_n(&texts, 1),
                distinct_2: distinct_n(&texts, 2),
                distinct_3: distinct_n(&texts, 3),
            }
        })
        .collect()
}

/// The first look as a polars table, one row per corpus.
pub fn first_look_frame(rows: &[FirstLook]) -> Result<DataFrame> {
    let f = |get: fn(&FirstLook) -> f64| rows.iter().map(get).collect::<Vec<f64>>();
    Ok(DataFrame::new(vec![
        Column::new(
            "corpus".into(),
            rows.iter().map(|r| r.corpus.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "documents".into(),
            rows.iter().map(|r| r.documents).collect::<Vec<_>>(),
        ),
        Column::new("mean_words".into(), f(|r| r.mean_words)),
        Column::new("p50_words".into(), f(|r| r.p50_words)),
        Column::new("p90_words".into(), f(|r| r.p90_words)),
        Column::new("exact_dup_rate".into(), f(|r| r.exact_dup_rate)),
        Column::new("near_dup_rate".into(), f(|r| r.near_dup_rate)),
        Column::new("distinct_1".into(), f(|r| r.distinct_1)),
        Column::new("distinct_2".into(), f(|r| r.distinct_2)),
        Column::new("distinct_3".into(), f(|r| r.distinct_3)),
    ])?)
}

/// One row per named corpus (see [`first_look_rows`]), as a polars table.
pub fn first_look(corpora: &[(String, Vec<Document>)]) -> Result<DataFrame> {
    first_look_frame(&first_look_rows(corpora))
}
