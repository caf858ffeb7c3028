//! Corpus statistics with polars, from a packed directory's per-document lengths.

use crate::data::pack::{Manifest, DOC_LENGTHS, MANIFEST};
use anyhow::{bail, Context, Result};
use polars::prelude::*;
use std::path::Path;

/// One row per document: `source`, `bytes`, `tokens` (tokens include the end-of-text token).
pub fn doc_lengths(packed_dir: &Path) -> Result<DataFrame> {
    let manifest: Manifest = crate::io::read_json(&packed_dir.join(MANIFEST))?;
    let path = packed_dir.join(DOC_LENGTHS);
    let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if raw.len() % 12 != 0 || raw.len() / 12 != manifest.documents as usize {
        bail!(
            "{}: expected {} records of 12 bytes, file has {} bytes",
            path.display(),
            manifest.documents,
            raw.len()
        );
    }
    let n = raw.len() / 12;
    let (mut src, mut bytes, mut toks) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for rec in raw.chunks_exact(12) {
        let f = |i: usize| u32::from_le_bytes(rec[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let name = manifest
            .source_order
            .get(f(0) as usize)
            .with_context(|| format!("{}: bad source index", path.display()))?;
        src.push(name.as_str());
        bytes.push(f(1) as u64);
        toks.push(f(2) as u64);
    }
    Ok(df!("source" => src, "bytes" => bytes, "tokens" => toks)?)
}

/// Per-source table: documents, tokens, bytes, bytes per token, and token-length mean and
/// percentiles (p50, p90, p99, max). Sorted by source.
pub fn corpus_stats(packed_dir: &Path) -> Result<DataFrame> {
    let q = |p: f64| col("tokens").quantile(lit(p), QuantileMethod::Linear);
    Ok(doc_lengths(packed_dir)?
        .lazy()
        .group_by([col("source")])
        .agg([
            len().alias("documents"),
            col("tokens").sum().alias("tokens"),
            col("bytes").sum().alias("bytes"),
            col("tokens").mean().alias("mean_tokens"),
            q(0.5).alias("p50_tokens"),
            q(0.9).alias("p90_tokens"),
            q(0.99).alias("p99_tokens"),
            col("tokens").max().alias("max_tokens"),
        ])
        .with_column(
            (col("bytes").cast(DataType::Float64) / col("tokens").cast(DataType::Float64))
                .alias("bytes_per_token"),
        )
        .sort(["source"], Default::default())
        .collect()?)
}
