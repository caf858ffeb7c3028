//! Tokenize documents in parallel and pack them into token shards; read shards back through
//! memory maps.
//!
//! Layout of a packed directory:
//!
//! ```text
//! manifest.json        counts, source mix, tokenizer hash, content hash, shard list
//! shard-00000.bin      32-byte header + tokens (u16 if vocab <= 65536, else u32), little-endian
//! doc_lengths.bin      per document: (source index u32, text bytes u32, tokens u32), for stats
//! ```
//!
//! Header: magic `SYNTOKv1` (8 bytes), token width in bytes (u32), reserved (u32), token count
//! (u64), reserved (u64). Every document is followed by the end-of-text token.
//!
//! Atomicity: everything is written (streamed, so memory does not grow with shard or corpus
//! size) into a sibling staging directory, and only a complete directory (manifest last) is
//! renamed into place. The reader checks each shard's header and
//! size against the manifest, so a truncated or foreign file is an error, never data.

use crate::data::document::Document;
use crate::data::read::DataError;
use crate::data::tokenizer::TextTokenizer;
use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use memmap2::Mmap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SYNTOKv1";
const HEADER_BYTES: usize = 32;
pub const MANIFEST: &str = "manifest.json";
pub const DOC_LENGTHS: &str = "doc_lengths.bin";

/// One shard file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub file: String,
    pub tokens: u64,
    /// Documents whose end-of-text token lies in this shard.
    pub documents: u64,
    /// SHA-256 of the token payload (the bytes after the 32-byte header).
    pub sha256: String,
}

/// Totals for one source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceCount {
    pub documents: u64,
    /// Tokens including each document's end-of-text token.
    pub tokens: u64,
    pub text_bytes: u64,
}

/// What a packed directory holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub tokenizer_sha256: String,
    pub vocab_size: usize,
    pub eot_id: u32,
    /// 2 (u16) or 4 (u32).
    pub token_bytes: usize,
    pub documents: u64,
    pub tokens: u64,
    pub text_bytes: u64,
    /// Per source, in order of first appearance (indices used by `doc_lengths.bin`).
    pub source_order: Vec<String>,
    pub sources: BTreeMap<String, SourceCount>,
    pub shards: Vec<ShardInfo>,
    /// SHA-256 of the token stream as u32 little-endian, independent of shard size and width.
    pub content_sha256: String,
    /// Free-form description of the inputs and settings, recorded by the caller.
    #[serde(default)]
    pub inputs: serde_json::Value,
}

/// Packing settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackOptions {
    /// Tokens per shard (the last shard may be shorter).
    pub shard_tokens: usize,
    /// Threads for tokenisation (`None`: rayon's default, one per core).
    pub threads: Option<usize>,
    /// Text bytes gathered before each parallel tokenisation step.
    pub batch_bytes: usize,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            shard_tokens: 1 << 24,
            threads: None,
            batch_bytes: 4 << 20,
        }
    }
}

/// Streams tokens into shard files in the staging directory: memory stays at one small
/// buffer whatever the shard or corpus size. The header's token count is patched on close.
struct ShardWriter {
    dir: PathBuf,
    width: usize,
    shard_tokens: usize,
    open: Option<OpenShard>,
    shards: Vec<ShardInfo>,
    content: Sha256,
    scratch: Vec<u8>,
    scratch32: Vec<u8>,
}

struct OpenShard {
    name: String,
    file: BufWriter<File>,
    tokens: u64,
    docs: u64,
    hash: Sha256,
}

impl ShardWriter {
    fn push_document(&mut self, ids: &[u32], eot: u32) -> Result<()> {
        // Encode the document once as u32 (for the content hash) and at shard width, then hand
        // whole slices to the hashers and the file: per-token calls would dominate the cost.
        self.scratch32.clear();
        self.scratch.clear();
        for &t in ids.iter().chain(std::iter::once(&eot)) {
            self.scratch32.extend_from_slice(&t.to_le_bytes());
            if self.width == 2 {
                self.scratch.extend_from_slice(&(t as u16).to_le_bytes());
            } else {
                self.scratch.extend_from_slice(&t.to_le_bytes());
            }
        }
        self.content.update(&self.scratch32);
        let scratch = std::mem::take(&mut self.scratch);
        let mut rest = &scratch[..];
        while !rest.is_empty() {
            if self.open.is_none() {
                let name = format!("shard-{:05}.bin", self.shards.len());
                let mut file =
                    BufWriter::with_capacity(1 << 20, File::create(self.dir.join(&name))?);
                file.write_all(&[0u8; HEADER_BYTES])?; // patched in close()
                self.open = Some(OpenShard {
                    name,
                    file,
                    tokens: 0,
                    docs: 0,
                    hash: Sha256::new(),
                });
            }
            let s = self.open.as_mut().expect("opened above");
            let room = (self.shard_tokens - s.tokens as usize) * self.width;
            let (now, later) = rest.split_at(room.min(rest.len()));
            s.hash.update(now);
            s.file.write_all(now)?;
            s.tokens += (now.len() / self.width) as u64;
            // A document belongs to the shard holding its end-of-text token.
            if later.is_empty() {
                s.docs += 1;
            }
            if s.tokens as usize == self.shard_tokens {
                self.close()?;
            }
            rest = later;
        }
        self.scratch = scratch;
        Ok(())
    }

    /// Finish the open shard: write the real header and make it durable.
    fn close(&mut self) -> Result<()> {
        let Some(s) = self.open.take() else {
            return Ok(());
        };
        let mut file = s.file.into_inner().map_err(|e| e.into_error())?;
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&(self.width as u32).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&s.tokens.to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes());
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.sync_all()?;
        self.shards.push(ShardInfo {
            file: s.name,
            tokens: s.tokens,
            documents: s.docs,
            sha256: hex::encode(s.hash.finalize()),
        });
        Ok(())
    }
}

/// Tokenize `docs` (in parallel batches) and write a packed directory at `out_dir`, replacing
/// any previous one only once the new one is complete. `inputs` is recorded in the manifest.
pub fn pack_documents<I>(
    docs: I,
    tok: &TextTokenizer,
    out_dir: &Path,
    opts: &PackOptions,
    inputs: serde_json::Value,
    progress: Option<&ProgressBar>,
) -> Result<Manifest>
where
    I: Iterator<Item = Result<Document, DataError>> + Send,
{
    if opts.shard_tokens == 0 {
        bail!("shard_tokens must be at least 1");
    }
    let staging = sibling(out_dir, "partial");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing stale {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()?;
    let width = if tok.vocab_size() <= 1 << 16 { 2 } else { 4 };
    let mut sink = PackSink {
        shards: ShardWriter {
            dir: staging.clone(),
            width,
            shard_tokens: opts.shard_tokens,
            open: None,
            shards: Vec::new(),
            content: Sha256::new(),
            scratch: Vec::new(),
            scratch32: Vec::new(),
        },
        lengths: BufWriter::new(File::create(staging.join(DOC_LENGTHS))?),
        source_order: Vec::new(),
        sources: BTreeMap::new(),
        eot: tok.eot_id(),
    };

    // Three stages so the tokenizer threads never wait: a reader thread parses the next batch
    // while the pool encodes this one, and a writer thread hashes and writes the previous one.
    // Bounded channels keep at most a few batches in memory.
    let batch_bytes = opts.batch_bytes;
    std::thread::scope(|scope| -> Result<()> {
        let (batch_tx, batch_rx) =
            std::sync::mpsc::sync_channel::<Result<Vec<Document>, DataError>>(1);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(Vec<Document>, Vec<Vec<u32>>)>(1);
        scope.spawn(move || {
            let mut docs = docs;
            loop {
                let (mut batch, mut bytes) = (Vec::new(), 0);
                while bytes < batch_bytes {
                    match docs.next() {
                        Some(Ok(d)) => {
                            bytes += d.text.len();
                            batch.push(d);
                        }
                        Some(Err(e)) => {
                            let _ = batch_tx.send(Err(e));
                            return;
                        }
                        None => break,
                    }
                }
                if batch.is_empty() || batch_tx.send(Ok(batch)).is_err() {
                    return;
                }
            }
        });
        let writer = scope.spawn(|| -> Result<()> {
            for (batch, encoded) in done_rx {
                for (doc, ids) in batch.iter().zip(&encoded) {
                    sink.add(doc, ids)?;
                }
                if let Some(pb) = progress {
                    pb.inc(batch.len() as u64);
                }
            }
            Ok(())
        });
        let encode = || -> Result<()> {
            for batch in batch_rx {
                let batch = batch?;
                let encoded = pool.install(|| {
                    batch
                        .par_iter()
                        .map(|d| tok.encode(&d.text))
                        .collect::<Result<Vec<_>>>()
                })?;
                if done_tx.send((batch, encoded)).is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Ok(())
        };
        let encoded = encode();
        drop(done_tx);
        writer.join().expect("writer thread panicked")?;
        encoded
    })?;

    let PackSink {
        mut shards,
        lengths,
        source_order,
        sources,
        ..
    } = sink;
    shards.close()?;
    lengths
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    let manifest = Manifest {
        format: "synthlm-token-shards/1".into(),
        tokenizer_sha256: tok.sha256().to_string(),
        vocab_size: tok.vocab_size(),
        eot_id: tok.eot_id(),
        token_bytes: width,
        documents: sources.values().map(|c| c.documents).sum(),
        tokens: shards.shards.iter().map(|s| s.tokens).sum(),
        text_bytes: sources.values().map(|c| c.text_bytes).sum(),
        source_order,
        sources,
        shards: shards.shards,
        content_sha256: hex::encode(shards.content.finalize()),
        inputs,
    };
    crate::io::write_json(&staging.join(MANIFEST), &manifest)?;
    replace_dir(&staging, out_dir)?;
    Ok(manifest)
}

/// Where encoded documents go: shards, per-document lengths, per-source totals.
struct PackSink {
    shards: ShardWriter,
    lengths: BufWriter<File>,
    source_order: Vec<String>,
    sources: BTreeMap<String, SourceCount>,
    eot: u32,
}

impl PackSink {
    fn add(&mut self, doc: &Document, ids: &[u32]) -> Result<()> {
        let idx = match self.source_order.iter().position(|s| s == &doc.source) {
            Some(i) => i,
            None => {
                self.source_order.push(doc.source.clone());
                self.source_order.len() - 1
            }
        };
        let c = self.sources.entry(doc.source.clone()).or_default();
        c.documents += 1;
        c.tokens += ids.len() as u64 + 1;
        c.text_bytes += doc.text.len() as u64;
        for v in [idx as u32, doc.text.len() as u32, ids.len() as u32 + 1] {
            self.lengths.write_all(&v.to_le_bytes())?;
        }
        self.shards.push_document(ids, self.eot)
    }
}

fn sibling(dir: &Path, tag: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    dir.with_file_name(format!(".{name}.{tag}"))
}

/// Move a finished directory into place, replacing an older one.
fn replace_dir(staging: &Path, out_dir: &Path) -> Result<()> {
    let old = sibling(out_dir, "old");
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if out_dir.exists() {
        std::fs::rename(out_dir, &old)
            .with_context(|| format!("moving aside {}", out_dir.display()))?;
    }
    std::fs::rename(staging, out_dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), out_dir.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

struct Shard {
    map: Mmap,
    tokens: u64,
}

/// A packed directory, memory-mapped.
pub struct TokenShards {
    pub dir: PathBuf,
    pub manifest: Manifest,
    shards: Vec<Shard>,
    /// Global token index where each shard starts.
    starts: Vec<u64>,
    width: usize,
}

impl TokenShards {
    /// Open and validate a packed directory (headers and sizes; see [`TokenShards::verify`]).
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest: Manifest = crate::io::read_json(&dir.join(MANIFEST)).with_context(|| {
            format!(
                "{} is not a packed token directory (no readable {MANIFEST})",
                dir.display()
            )
        })?;
        let width = manifest.token_bytes;
        if width != 2 && width != 4 {
            bail!(
                "{}: token_bytes must be 2 or 4, found {width}",
                dir.join(MANIFEST).display()
            );
        }
        let mut shards = Vec::new();
        let mut starts = Vec::new();
        let mut at = 0;
        for info in &manifest.shards {
            let path = dir.join(&info.file);
            let file =
                File::open(&path).with_context(|| format!("opening shard {}", path.display()))?;
            // SAFETY: shards are immutable once renamed into place; we never write through the map.
            let map = unsafe { Mmap::map(&file) }
                .with_context(|| format!("mapping {}", path.display()))?;
            let bad = |msg: String| anyhow::anyhow!("{}: corrupt shard: {msg}", path.display());
            if map.len() < HEADER_BYTES || &map[..8] != MAGIC {
                return Err(bad("missing SYNTOKv1 header".into()));
            }
            let w = u32::from_le_bytes(map[8..12].try_into()?) as usize;
            let n = u64::from_le_bytes(map[16..24].try_into()?);
            if w != width {
                return Err(bad(format!(
                    "token width {w} but the manifest says {width}"
                )));
            }
            if n != info.tokens {
                return Err(bad(format!(
                    "header says {n} tokens but the manifest says {}",
                    info.tokens
                )));
            }
            let expect = HEADER_BYTES as u64 + n * w as u64;
            if map.len() as u64 != expect {
                return Err(bad(format!(
                    "file is {} bytes, expected {expect} (truncated?)",
                    map.len()
                )));
            }
            starts.push(at);
            at += n;
            shards.push(Shard { map, tokens: n });
        }
        if at != manifest.tokens {
            bail!(
                "{}: shards hold {at} tokens but the manifest says {}",
                dir.display(),
                manifest.tokens
            );
        }
        Ok(TokenShards {
            dir: dir.to_path_buf(),
            manifest,
            shards,
            starts,
            width,
        })
    }

    /// Check every shard's SHA-256 and the content hash against the manifest.
    pub fn verify(&self) -> Result<()> {
        for (info, shard) in self.manifest.shards.iter().zip(&self.shards) {
            if crate::io::sha256_hex(&shard.map[HEADER_BYTES..]) != info.sha256 {
                bail!(
                    "{}: SHA-256 does not match the manifest",
                    self.dir.join(&info.file).display()
                );
            }
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u32; 1 << 16];
        let mut at = 0;
        while at < self.len() {
            let n = (self.len() - at).min(buf.len() as u64) as usize;
            self.copy_tokens(at, &mut buf[..n]);
            for t in &buf[..n] {
                h.update(t.to_le_bytes());
            }
            at += n as u64;
        }
        if hex::encode(h.finalize()) != self.manifest.content_sha256 {
            bail!(
                "{}: content hash does not match the manifest",
                self.dir.display()
            );
        }
        Ok(())
    }

    /// Total tokens.
    pub fn len(&self) -> u64 {
        self.manifest.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copy tokens `[start, start + out.len())` of the whole stream (may span shards).
    pub fn copy_tokens(&self, start: u64, out: &mut [u32]) {
        assert!(
            start + out.len() as u64 <= self.len(),
            "token range out of bounds"
        );
        let mut shard = self.starts.partition_point(|&s| s <= start) - 1;
        let mut pos = start - self.starts[shard];
        let mut filled = 0;
        while filled < out.len() {
            let s = &self.shards[shard];
            let take = ((s.tokens - pos) as usize).min(out.len() - filled);
            let bytes = &s.map[HEADER_BYTES + pos as usize * self.width..];
            let dst = &mut out[filled..filled + take];
            if self.width == 2 {
                for (d, c) in dst.iter_mut().zip(bytes.chunks_exact(2)) {
                    *d = u16::from_le_bytes([c[0], c[1]]) as u32;
                }
            } else {
                for (d, c) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
                    *d = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            filled += take;
            shard += 1;
            pos = 0;
        }
    }

    /// The whole token stream (for tests and small corpora).
    pub fn all_tokens(&self) -> Vec<u32> {
        let mut out = vec![0; self.len() as usize];
        self.copy_tokens(0, &mut out);
        out
    }

    /// Training batch: `batch` windows of `len + 1` tokens (inputs and shifted targets) at
    /// uniformly random offsets. Stateless: the windows depend only on (seed, step), so a resumed
    /// run draws exactly the batches an uninterrupted run would.
    pub fn random_windows(&self, seed: u64, step: u64, batch: usize, len: usize) -> Vec<u32> {
        self.rank_windows(seed, step, batch, len, 0, 1)
    }

    /// Rank `rank`'s share of that batch in a data-parallel job of `world` ranks: rows
    /// `[rank·batch/world, (rank+1)·batch/world)` of the same global batch, so N ranks together
    /// see exactly the windows one process would.
    pub fn rank_windows(
        &self,
        seed: u64,
        step: u64,
        batch: usize,
        len: usize,
        rank: usize,
        world: usize,
    ) -> Vec<u32> {
        assert!(
            world > 0 && batch.is_multiple_of(world) && rank < world,
            "batch {batch} over rank {rank} of {world}"
        );
        let rows = batch / world;
        let starts = self.window_starts(seed, step, batch, len);
        let mut out = vec![0u32; rows * (len + 1)];
        for (w, &start) in out
            .chunks_exact_mut(len + 1)
            .zip(&starts[rank * rows..(rank + 1) * rows])
        {
            self.copy_tokens(start, w);
        }
        out
    }

    /// Where the windows of [`TokenShards::random_windows`] start: what a run saw, for the
    /// n-gram baselines counted on exactly those tokens.
    pub fn window_starts(&self, seed: u64, step: u64, batch: usize, len: usize) -> Vec<u64> {
        assert!(
            self.len() > len as u64,
            "corpus of {} tokens is too short for windows of {}",
            self.len(),
            len + 1
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(step);
        (0..batch)
            .map(|_| rng.gen_range(0..=self.len() - (len as u64 + 1)))
            .collect()
    }

    /// Every document as a range of the token stream (ending with its end-of-text token), and
    /// its UTF-8 text bytes, from `doc_lengths.bin`.
    pub fn documents(&self) -> Result<(Vec<std::ops::Range<usize>>, Vec<u64>)> {
        let df = crate::data::stats::doc_lengths(&self.dir)?;
        let bytes: Vec<u64> = df.column("bytes")?.u64()?.into_no_null_iter().collect();
        let tokens: Vec<u64> = df.column("tokens")?.u64()?.into_no_null_iter().collect();
        let mut start = 0usize;
        let ranges = tokens
            .iter()
            .map(|&t| {
                let r = start..start + t as usize;
                start = r.end;
                r
            })
            .collect();
        anyhow::ensure!(
            start as u64 == self.len(),
            "{}: document lengths sum to {start} tokens, the shards hold {}",
            self.dir.display(),
            self.len()
        );
        Ok((ranges, bytes))
    }

    /// Number of evaluation windows for [`TokenShards::sequential_window`].
    pub fn sequential_windows(&self, len: usize) -> u64 {
        if self.len() <= len as u64 {
            0
        } else {
            (self.len() - 1) / len as u64
        }
    }

    /// Evaluation window `i`: tokens `[i*len, i*len + len + 1)`. Consecutive windows overlap by
    /// one token, so every token after the first is predicted exactly once over a full pass.
    pub fn sequential_window(&self, i: u64, len: usize) -> Vec<u32> {
        let mut out = vec![0u32; len + 1];
        self.copy_tokens(i * len as u64, &mut out);
        out
    }
}
