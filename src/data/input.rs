//! Naming inputs on the command line and in configs: a file or folder of records, or a dataset
//! in the Hugging Face cache.
//!
//! - an existing path: a file, or a folder of `.parquet`/`.jsonl`/`.json` files, read with a
//!   schema (default: our own [`Document`](crate::data::document::Document) records; or one of
//!   the dataset schemas, e.g. `openhermes`);
//! - otherwise a dataset spec such as `cosmopedia/stories` or `fineweb-edu/sample-10BT@main`,
//!   read from the hub cache (see [`hub`](crate::data::hub)).

use crate::data::hub::{self, HubOptions};
use crate::data::read::{self, DataError, DocStream, Format, LoadOptions};
use crate::data::sources::{Dataset, SourceSpec};
use std::path::{Path, PathBuf};

/// All data files under a path (the file itself, or a folder's files, recursively, sorted;
/// `manifest.json` files describe data and are not data).
pub fn data_files(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| DataError::File {
            file: dir.clone(),
            msg: e.to_string(),
        })?;
        for e in entries {
            let p = e
                .map_err(|e| DataError::File {
                    file: dir.clone(),
                    msg: e.to_string(),
                })?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| Format::is_data_file(n) && n != "manifest.json")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(DataError::File {
            file: path.to_path_buf(),
            msg: "no .parquet, .jsonl or .json files here".into(),
        });
    }
    Ok(out)
}

/// Open one input as a document stream. `schema`: how to read local files (`None`: documents).
pub fn open(
    input: &str,
    schema: Option<Dataset>,
    hub: &HubOptions,
    opts: LoadOptions,
) -> Result<DocStream, DataError> {
    let path = Path::new(input);
    if path.exists() {
        let files = data_files(path)?;
        return Ok(match schema {
            None => read::document_files(files, opts),
            Some(d) => {
                let spec = SourceSpec::new(d);
                DocStream::new(files, spec.parser(), opts)
            }
        });
    }
    let spec: SourceSpec = input.parse().map_err(|e| {
        DataError::NotAvailable(format!(
            "`{input}` is neither an existing path nor a dataset: {e}"
        ))
    })?;
    hub::load(&spec, hub, opts)
}
