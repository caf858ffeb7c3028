//! A first look at generated (or any) corpora: size, length, duplication and diversity, one row
//! per corpus, as a polars table. The quality experiments start from these numbers.

use crate::data::document::Document;
use crate::eval::diversity::distinct_n;
use crate::filter::dedup::{exact_duplicate_rate, near_duplicate_rate};
use anyhow::Result;
use polars::prelude::*;

/// One row per named corpus: documents, words (mean, p50, p90), exact and near-duplicate rates
/// (MinHash, Jaccard >= 0.8), distinct-1/2/3.
pub fn first_look(corpora: &[(String, Vec<Document>)]) -> Result<DataFrame> {
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 9];
    let mut names = Vec::new();
    for (name, docs) in corpora {
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
        let row = [
            docs.len() as f64,
            lens.iter().sum::<f64>() / lens.len().max(1) as f64,
            q(0.5),
            q(0.9),
            exact_duplicate_rate(&texts),
            near_duplicate_rate(&texts, 0.8),
            distinct_n(&texts, 1),
            distinct_n(&texts, 2),
            distinct_n(&texts, 3),
        ];
        for (c, v) in cols.iter_mut().zip(row) {
            c.push(v);
        }
        names.push(name.clone());
    }
    let labels = [
        "documents",
        "mean_words",
        "p50_words",
        "p90_words",
        "exact_dup_rate",
        "near_dup_rate",
        "distinct_1",
        "distinct_2",
        "distinct_3",
    ];
    let mut columns: Vec<Column> = vec![Column::new("corpus".into(), names)];
    for (l, c) in labels.iter().zip(cols) {
        columns.push(Column::new((*l).into(), c));
    }
    let df = DataFrame::new(columns)?;
    Ok(df
        .lazy()
        .with_column(col("documents").cast(DataType::UInt64))
        .collect()?)
}
