//! Streaming readers for Parquet, JSON Lines and JSON arrays, in bounded memory.
//!
//! Every format is turned into the same thing: a stream of JSON objects ([`Row`]), each with its
//! location ([`RowLoc`]: file and 1-based row). Parquet is read one row group at a time by polars
//! and re-emitted as JSON Lines, so one parser (and one set of error messages) serves every
//! format; that costs far less than tokenisation and keeps the semantics identical.
//!
//! Policy for bad input (see [`OnBadRow`]): by default a malformed row stops the load with an
//! error naming the file and the row; with `OnBadRow::Skip` it is skipped and counted in the
//! [`LoadReport`]. Rows whose text is empty are always skipped and counted: they carry nothing to
//! train on. Nothing panics on bad data.

use crate::data::document::Document;
use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One record as a JSON object, whatever the file format.
pub type Row = serde_json::Map<String, Value>;

/// One row with its location, or the error reading it.
pub type LocatedRow = Result<(RowLoc, Row), DataError>;

/// A stream of located rows.
pub type RowIter = Box<dyn Iterator<Item = Result<(RowLoc, Row), DataError>> + Send>;

/// Where a row came from. `row` is 1-based: the line number for JSON Lines, the element number
/// for JSON arrays, the row number for Parquet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowLoc {
    pub file: PathBuf,
    pub row: usize,
    pub unit: &'static str,
}

impl fmt::Display for RowLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.file.display(), self.unit, self.row)
    }
}

/// Errors of the data layer. Each names the file, and the row where there is one.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {msg}", file.display())]
    File { file: PathBuf, msg: String },
    #[error("{loc}: {msg}")]
    Row { loc: RowLoc, msg: String },
    #[error("{0}")]
    NotAvailable(String),
}

fn file_err(file: &Path, msg: impl fmt::Display) -> DataError {
    DataError::File {
        file: file.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// The formats we read, chosen by file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Parquet,
    /// JSON Lines; a `.json` file starting with `{` is read this way too.
    JsonLines,
    /// A single JSON array of objects (OpenHermes-2.5 ships this).
    JsonArray,
}

impl Format {
    /// Guess the format from the name (and, for `.json`, the first byte).
    pub fn of(path: &Path) -> Result<Format, DataError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".parquet") {
            Ok(Format::Parquet)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Ok(Format::JsonLines)
        } else if name.ends_with(".json") {
            let mut f = File::open(path).map_err(|e| file_err(path, e))?;
            let mut buf = [0u8; 256];
            let n = f.read(&mut buf).map_err(|e| file_err(path, e))?;
            match buf[..n].iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'[') => Ok(Format::JsonArray),
                _ => Ok(Format::JsonLines),
            }
        } else {
            Err(file_err(
                path,
                "unknown format (expected .parquet, .jsonl, .ndjson or .json)",
            ))
        }
    }

    /// Whether a file name looks like data we can read.
    pub fn is_data_file(name: &str) -> bool {
        [".parquet", ".jsonl", ".ndjson", ".json"]
            .iter()
            .any(|e| name.ends_with(e))
    }
}

/// Number of records in a file, when it is cheap to know (Parquet metadata; JSON Lines by
/// counting non-blank lines). Used to size progress bars.
pub fn count_rows(path: &Path) -> Result<Option<usize>, DataError> {
    match Format::of(path)? {
        Format::Parquet => {
            let f = File::open(path).map_err(|e| file_err(path, e))?;
            let n = ParquetReader::new(f)
                .num_rows()
                .map_err(|e| file_err(path, format!("not a readable Parquet file: {e}")))?;
            Ok(Some(n))
        }
        Format::JsonLines => {
            let mut r =
                BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| file_err(path, e))?);
            let (mut n, mut line) = (0, Vec::new());
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line)
                    .map_err(|e| file_err(path, e))?
                    == 0
                {
                    break;
                }
                if line.iter().any(|b| !b.is_ascii_whitespace()) {
                    n += 1;
                }
            }
            Ok(Some(n))
        }
        Format::JsonArray => Ok(None),
    }
}

/// Stream the rows of one file. Memory is bounded by one Parquet row group or one JSON line.
pub fn rows(path: &Path) -> Result<RowIter, DataError> {
    Ok(match Format::of(path)? {
        Format::Parquet => Box::new(ParquetRows::open(path)?),
        Format::JsonLines => Box::new(JsonLines::open(path)?),
        Format::JsonArray => Box::new(JsonArray::open(path)?),
    })
}

/// Parse one JSON text into an object row.
fn parse_object(bytes: &[u8], loc: &RowLoc) -> Result<Row, DataError> {
    let row_err = |msg: String| DataError::Row {
        loc: loc.clone(),
        msg,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        row_err(format!(
            "invalid UTF-8 at byte {} of the record",
            e.valid_up_to()
        ))
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(row_err(format!(
            "expected a JSON object, found {}",
            json_kind(&other)
        ))),
        Err(e) => Err(row_err(format!("malformed JSON: {e}"))),
    }
}

/// A short name for a JSON value's type, for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct JsonLines {
    path: PathBuf,
    reader: BufReader<File>,
    line_no: usize,
    buf: Vec<u8>,
}

impl JsonLines {
    fn open(path: &Path) -> Result<Self, DataError> {
        let f = File::open(path).map_err(|e| file_err(path, e))?;
        Ok(JsonLines {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, f),
            line_no: 0,
            buf: Vec::new(),
        })
    }
}

impl Iterator for JsonLines {
    type Item = Result<(RowLoc, Row), DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(file_err(&self.path, e))),
            }
            self.line_no += 1;
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let loc = RowLoc {
                file: self.path.clone(),
                row: self.line_no,
                unit: "line",
            };
            return Some(parse_object(&self.buf, &loc).map(|r| (loc, r)));
        }
    }
}

/// Streams the elements of a top-level JSON array without holding the array in memory: a small
/// scanner finds each element's bytes (tracking nesting and strings), then serde parses it.
struct JsonArray {
    path: PathBuf,
    bytes: std::io::Bytes<BufReader<File>>,
    element: usize,
    started: bool,
    done: bool,
}

impl JsonArray {
    fn open(path: &Path) -> Result<Self, DataError> {
        let f = File::open(path).map_err(|e| file_err(path, e))?;
        Ok(JsonArray {
            path: path.to_path_buf(),
            bytes: BufReader::with_capacity(1 << 20, f).bytes(),
            element: 0,
            started: false,
            done: false,
        })
    }

    fn next_byte(&mut self) -> Result<Option<u8>, DataError> {
        self.bytes
            .next()
            .transpose()
            .map_err(|e| file_err(&self.path, e))
    }

    fn next_non_ws(&mut self) -> Result<Option<u8>, DataError> {
        while let Some(b) = self.next_byte()? {
            if !b.is_ascii_whitespace() {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    fn next_element(&mut self) -> Result<Option<(RowLoc, Row)>, DataError> {
        if !self.started {
            self.started = true;
            if self.next_non_ws()? != Some(b'[') {
                return Err(file_err(&self.path, "expected a JSON array"));
            }
        }
        let truncated = |s: &Self| {
            file_err(
                &s.path,
                format!("truncated JSON array after element {}", s.element),
            )
        };
        let mut first = match self.next_non_ws()? {
            Some(b']') => return Ok(None),
            Some(b',') if self.element > 0 => self.next_non_ws()?.ok_or_else(|| truncated(self))?,
            Some(b) if self.element == 0 => b,
            Some(b) => {
                return Err(file_err(
                    &self.path,
                    format!(
                        "expected `,` or `]` after element {}, found `{}`",
                        self.element, b as char
                    ),
                ))
            }
            None => return Err(truncated(self)),
        };
        self.element += 1;
        let loc = RowLoc {
            file: self.path.clone(),
            row: self.element,
            unit: "element",
        };
        let mut buf = Vec::new();
        let (mut depth, mut in_str, mut escaped) = (0i64, false, false);
        loop {
            buf.push(first);
            if in_str {
                if escaped {
                    escaped = false;
                } else if first == b'\\' {
                    escaped = true;
                } else if first == b'"' {
                    in_str = false;
                }
            } else {
                match first {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => depth -= 1,
                    _ => {}
                }
            }
            if depth == 0 && !in_str {
                break;
            }
            first = match self.next_byte()? {
                Some(b) => b,
                None => {
                    return Err(DataError::Row {
                        loc,
                        msg: "truncated: the file ends inside this element".into(),
                    })
                }
            };
        }
        parse_object(&buf, &loc).map(|r| Some((loc, r)))
    }
}

impl Iterator for JsonArray {
    type Item = Result<(RowLoc, Row), DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_element() {
            Ok(Some(x)) => Some(Ok(x)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a Parquet file one row group at a time.
struct ParquetRows {
    path: PathBuf,
    metadata: polars::prelude::FileMetadataRef,
    group_rows: Vec<usize>,
    next_group: usize,
    first_row: usize,
    pending: std::vec::IntoIter<Result<(RowLoc, Row), DataError>>,
    failed: bool,
}

impl ParquetRows {
    fn open(path: &Path) -> Result<Self, DataError> {
        let f = File::open(path).map_err(|e| file_err(path, e))?;
        let mut reader = ParquetReader::new(f);
        let metadata = reader
            .get_metadata()
            .map_err(|e| {
                file_err(
                    path,
                    format!("not a readable Parquet file (truncated or corrupt?): {e}"),
                )
            })?
            .clone();
        let group_rows = metadata.row_groups.iter().map(|g| g.num_rows()).collect();
        Ok(ParquetRows {
            path: path.to_path_buf(),
            metadata,
            group_rows,
            next_group: 0,
            first_row: 0,
            pending: Vec::new().into_iter(),
            failed: false,
        })
    }

    fn read_group(&mut self) -> Result<Vec<LocatedRow>, DataError> {
        let n = self.group_rows[self.next_group];
        let (start, end) = (self.first_row + 1, self.first_row + n);
        let range_err = |e: PolarsError| file_err(&self.path, format!("rows {start}-{end}: {e}"));
        let f = File::open(&self.path).map_err(|e| file_err(&self.path, e))?;
        let mut reader = ParquetReader::new(f).with_slice(Some((self.first_row, n)));
        reader.set_metadata(self.metadata.clone());
        let mut df = reader.finish().map_err(range_err)?;
        let mut json = Vec::with_capacity(df.estimated_size() + 1024);
        JsonWriter::new(&mut json)
            .with_json_format(JsonFormat::JsonLines)
            .finish(&mut df)
            .map_err(range_err)?;
        let rows = json
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, line)| {
                let loc = RowLoc {
                    file: self.path.clone(),
                    row: self.first_row + i + 1,
                    unit: "row",
                };
                parse_object(line, &loc).map(|r| (loc, r))
            })
            .collect();
        self.first_row += n;
        self.next_group += 1;
        Ok(rows)
    }
}

impl Iterator for ParquetRows {
    type Item = Result<(RowLoc, Row), DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.pending.next() {
                return Some(r);
            }
            if self.failed || self.next_group >= self.group_rows.len() {
                return None;
            }
            match self.read_group() {
                Ok(rows) => self.pending = rows.into_iter(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field access with messages that say what was wrong.

/// A required string field.
pub fn str_field<'a>(row: &'a Row, key: &str) -> Result<&'a str, String> {
    match row.get(key) {
        None => Err(format!("missing field `{key}`")),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(format!(
            "field `{key}` should be a string, found {}",
            json_kind(v)
        )),
    }
}

/// An optional string field (absent or null is `None`; another type is an error).
pub fn opt_str_field<'a>(row: &'a Row, key: &str) -> Result<Option<&'a str>, String> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!(
            "field `{key}` should be a string, found {}",
            json_kind(v)
        )),
    }
}

/// A required array field.
pub fn array_field<'a>(row: &'a Row, key: &str) -> Result<&'a Vec<Value>, String> {
    match row.get(key) {
        None => Err(format!("missing field `{key}`")),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(format!(
            "field `{key}` should be an array, found {}",
            json_kind(v)
        )),
    }
}

/// Copy the scalar (string, number, boolean) and object fields of a row, except `skip`, into
/// metadata (objects carry e.g. generation settings; arrays are data, not metadata).
pub fn scalar_meta(row: &Row, skip: &[&str]) -> std::collections::BTreeMap<String, Value> {
    row.iter()
        .filter(|(k, v)| {
            !skip.contains(&k.as_str())
                && matches!(
                    v,
                    Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Object(_)
                )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rows -> Documents, with limit, sampling and the bad-row policy.

/// What to do with a row that cannot be read as a document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRow {
    /// Stop with an error naming the file and row (default: data problems should be seen).
    #[default]
    Fail,
    /// Skip it and count it in the [`LoadReport`] (the first few messages are kept).
    Skip,
}

/// Which documents to keep when a `limit` is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Sampling {
    /// The first `limit` documents in file order (streams; stops reading early).
    #[default]
    Head,
    /// A uniform random sample of `limit` documents over all files (reservoir sampling, memory
    /// bounded by `limit`), emitted in a seeded random order. Same seed, same files: same sample.
    Reservoir { seed: u64 },
}

/// How to load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadOptions {
    pub limit: Option<usize>,
    pub sampling: Sampling,
    pub on_bad_row: OnBadRow,
}

/// What a load saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub files: usize,
    pub rows: usize,
    pub documents: usize,
    pub skipped_empty: usize,
    pub skipped_bad: usize,
    /// The first few bad-row messages (with `OnBadRow::Skip`).
    pub bad_examples: Vec<String>,
}

/// Turns one row into a document; `Ok(None)` means "no text: skip and count as empty".
pub type ParseRow = dyn Fn(&Row, &RowLoc) -> Result<Option<Document>, String> + Send + Sync;

/// A stream of documents over files. Iterate it, then read [`DocStream::report`].
pub struct DocStream {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<RowIter>,
    parse: Box<ParseRow>,
    opts: LoadOptions,
    report: LoadReport,
    sampled: Option<std::vec::IntoIter<Document>>,
    failed: bool,
    total_rows: Option<usize>,
}

impl DocStream {
    pub fn new(files: Vec<PathBuf>, parse: Box<ParseRow>, opts: LoadOptions) -> Self {
        let total_rows = files.iter().map(|f| count_rows(f).ok().flatten()).sum();
        DocStream {
            files: files.into_iter(),
            current: None,
            parse,
            opts,
            report: LoadReport::default(),
            sampled: None,
            failed: false,
            total_rows,
        }
    }

    /// Rows in all files, when cheap to know (for progress bars).
    pub fn total_rows(&self) -> Option<usize> {
        self.total_rows
    }

    /// The number of documents this stream will yield at most, when known.
    pub fn expected_documents(&self) -> Option<usize> {
        match (self.total_rows, self.opts.limit) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, None) => t,
            (None, l) => l,
        }
    }

    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The next parsed document in file order, applying the bad-row and empty-text policies.
    fn next_in_order(&mut self) -> Option<Result<Document, DataError>> {
        loop {
            if self.current.is_none() {
                let file = self.files.next()?;
                self.report.files += 1;
                match rows(&file) {
                    Ok(it) => self.current = Some(it),
                    Err(e) => return Some(Err(e)),
                }
            }
            let item = self.current.as_mut().and_then(|it| it.next());
            let (loc, row) = match item {
                None => {
                    self.current = None;
                    continue;
                }
                Some(Ok(x)) => x,
                Some(Err(e)) => {
                    // Errors that concern one row can be skipped; file-level ones cannot.
                    if matches!(e, DataError::Row { .. }) && self.opts.on_bad_row == OnBadRow::Skip
                    {
                        self.note_bad(e.to_string());
                        continue;
                    }
                    return Some(Err(e));
                }
            };
            self.report.rows += 1;
            match (self.parse)(&row, &loc) {
                Ok(Some(doc)) if !doc.text.trim().is_empty() => return Some(Ok(doc)),
                Ok(_) => self.report.skipped_empty += 1,
                Err(msg) => {
                    let e = DataError::Row { loc, msg };
                    if self.opts.on_bad_row == OnBadRow::Skip {
                        self.note_bad(e.to_string());
                    } else {
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    fn note_bad(&mut self, msg: String) {
        self.report.skipped_bad += 1;
        if self.report.bad_examples.len() < 10 {
            self.report.bad_examples.push(msg);
        }
    }

    /// Reservoir sampling (Algorithm R) over the whole stream, then a seeded shuffle.
    fn sample(&mut self, limit: usize, seed: u64) -> Result<Vec<Document>, DataError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut keep: Vec<Document> = Vec::with_capacity(limit.min(1 << 16));
        let mut seen = 0usize;
        while let Some(doc) = self.next_in_order() {
            let doc = doc?;
            seen += 1;
            if keep.len() < limit {
                keep.push(doc);
            } else {
                let j = rng.gen_range(0..seen);
                if j < limit {
                    keep[j] = doc;
                }
            }
        }
        keep.shuffle(&mut rng);
        Ok(keep)
    }
}

impl Iterator for DocStream {
    type Item = Result<Document, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let out = match (self.opts.sampling, self.opts.limit) {
            (Sampling::Reservoir { seed }, Some(limit)) => {
                if self.sampled.is_none() {
                    match self.sample(limit, seed) {
                        Ok(v) => self.sampled = Some(v.into_iter()),
                        Err(e) => {
                            self.failed = true;
                            return Some(Err(e));
                        }
                    }
                }
                self.sampled.as_mut().and_then(|s| s.next()).map(Ok)
            }
            (_, limit) => {
                if limit.is_some_and(|l| self.report.documents >= l) {
                    return None;
                }
                self.next_in_order()
            }
        };
        match &out {
            Some(Ok(_)) => self.report.documents += 1,
            Some(Err(_)) => self.failed = true,
            None => {}
        }
        out
    }
}

/// Read our own interchange format: one serialised [`Document`] per JSON line.
pub fn parse_document_row(row: &Row, _loc: &RowLoc) -> Result<Option<Document>, String> {
    Document::deserialize(Value::Object(row.clone()))
        .map(Some)
        .map_err(|e| format!("not a document record: {e}"))
}

/// Stream documents from files of serialised [`Document`]s (JSON Lines or Parquet).
pub fn document_files(files: Vec<PathBuf>, opts: LoadOptions) -> DocStream {
    DocStream::new(files, Box::new(parse_document_row), opts)
}

/// Write documents as JSON Lines, atomically.
pub fn write_documents<'a>(
    path: &Path,
    docs: impl IntoIterator<Item = &'a Document>,
) -> anyhow::Result<usize> {
    crate::io::atomic_write(path, |w| {
        let mut n = 0;
        for d in docs {
            serde_json::to_writer(&mut *w, d)?;
            w.write_all(b"\n")?;
            n += 1;
        }
        Ok(n)
    })
}
