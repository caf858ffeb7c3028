//! Writing records in the datasets' own schemas (Parquet), atomically. Used by the generators
//! (which stand in for the seed datasets) and by tests that build fixtures in the HF layout.

use anyhow::{Context, Result};
use polars::prelude::*;
use std::io::Cursor;
use std::path::Path;

/// Write JSON objects as a Parquet file; nested values (e.g. `conversations: [{from, value}]`)
/// become list/struct columns, as in the datasets on the Hub. `row_group_rows` bounds the
/// memory a reader needs.
pub fn write_parquet_rows(
    path: &Path,
    rows: &[serde_json::Value],
    row_group_rows: usize,
) -> Result<()> {
    let mut ndjson = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut ndjson, r)?;
        ndjson.push(b'\n');
    }
    let mut df = JsonReader::new(Cursor::new(ndjson))
        .with_json_format(JsonFormat::JsonLines)
        .infer_schema_len(None)
        .finish()
        .context("building a table from rows")?;
    crate::io::atomic_write(path, |w| {
        ParquetWriter::new(w)
            .with_row_group_size(Some(row_group_rows.max(1)))
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)?;
        Ok(())
    })
}
