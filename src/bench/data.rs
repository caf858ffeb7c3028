//! `synthlm bench data`: load + tokenize + pack throughput beside the bare `tokenizers` encode
//! throughput of the same tokenizer on the same text, for 1 and 2 threads, plus peak memory for
//! the whole corpus and for half of it (memory must not grow with corpus size).

use crate::data::document::Document;
use crate::data::pack::{pack_documents, PackOptions};
use crate::data::read::{document_files, LoadOptions};
use crate::data::tokenizer::{train_bpe, BpeOptions, TextTokenizer};
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One measurement, as printed by a worker process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub mode: String,
    pub threads: usize,
    pub text_bytes: u64,
    pub tokens: u64,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
}

impl Measurement {
    pub fn mb_per_s(&self) -> f64 {
        self.text_bytes as f64 / 1e6 / self.seconds
    }
    pub fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }
}

/// Build a benchmark corpus of at least `min_bytes` of text as document JSON Lines, from the
/// text and source files found under `roots` (sorted, so a machine builds the same corpus each
/// time), cut into ~2 KB documents at line boundaries. Returns (documents, bytes).
pub fn build_corpus(out: &Path, roots: &[PathBuf], min_bytes: u64) -> Result<(u64, u64)> {
    let mut files = Vec::new();
    for r in roots {
        collect_text_files(r, &mut files);
    }
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no text files under {roots:?}");
    let (mut docs, mut bytes) = (0u64, 0u64);
    crate::io::atomic_write(out, |w| {
        // Cycle over the files if they hold less than asked for.
        'outer: for pass in 0.. {
            for f in &files {
                let Ok(text) = std::fs::read_to_string(f) else {
                    continue;
                };
                let mut chunk = String::new();
                for line in text.lines() {
                    chunk.push_str(line);
                    chunk.push('\n');
                    if chunk.len() >= 2048 {
                        let d = Document::text(
                            format!("{pass}:{docs}"),
                            "bench",
                            std::mem::take(&mut chunk),
                        );
                        bytes += d.text.len() as u64;
                        docs += 1;
                        serde_json::to_writer(&mut *w, &d)?;
                        w.write_all(b"\n")?;
                        if bytes >= min_bytes {
                            break 'outer;
                        }
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok((docs, bytes))
}

fn collect_text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_text_files(&p, out);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("md" | "txt" | "rst" | "py" | "rs")
        ) {
            out.push(p);
        }
    }
}

/// Read the texts of a document JSONL file (first `max_docs` when given).
pub fn read_texts(corpus: &Path, max_docs: Option<usize>) -> Result<Vec<String>> {
    let f = std::io::BufReader::new(std::fs::File::open(corpus)?);
    let mut out = Vec::new();
    for line in f.lines() {
        if max_docs.is_some_and(|m| out.len() >= m) {
            break;
        }
        let d: Document = serde_json::from_str(&line?)?;
        out.push(d.text);
    }
    Ok(out)
}

/// Worker: bare `tokenizers` encode of texts already in memory, on `threads` threads.
pub fn measure_bare(
    corpus: &Path,
    tok: &TextTokenizer,
    threads: usize,
    max_docs: Option<usize>,
) -> Result<Measurement> {
    let texts = read_texts(corpus, max_docs)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let inner = tok.inner();
    let t0 = Instant::now();
    let tokens: usize = pool.install(|| {
        texts
            .par_iter()
            .map(|t| {
                inner
                    .encode_fast(t.as_str(), false)
                    .map(|e| e.get_ids().len())
                    .unwrap_or(0)
            })
            .sum()
    });
    let seconds = t0.elapsed().as_secs_f64();
    Ok(Measurement {
        mode: "bare-encode".into(),
        threads,
        text_bytes: texts.iter().map(|t| t.len() as u64).sum(),
        tokens: tokens as u64,
        seconds,
        peak_rss_bytes: crate::io::peak_rss_bytes().unwrap_or(0),
    })
}

/// Worker: the real pipeline — stream records from disk, tokenize in parallel, write shards.
pub fn measure_pipeline(
    corpus: &Path,
    tok: &TextTokenizer,
    threads: usize,
    max_docs: Option<usize>,
    out: &Path,
) -> Result<Measurement> {
    let opts = PackOptions {
        threads: Some(threads),
        ..Default::default()
    };
    let t0 = Instant::now();
    let docs = document_files(
        vec![corpus.to_path_buf()],
        LoadOptions {
            limit: max_docs,
            ..Default::default()
        },
    );
    let m = pack_documents(docs, tok, out, &opts, serde_json::Value::Null, None)?;
    let seconds = t0.elapsed().as_secs_f64();
    Ok(Measurement {
        mode: "load+tokenize+pack".into(),
        threads,
        text_bytes: m.text_bytes,
        tokens: m.tokens - m.documents, // exclude the end-of-text tokens, as the bare figure does
        seconds,
        peak_rss_bytes: crate::io::peak_rss_bytes().unwrap_or(0),
    })
}

/// Prepare corpus and tokenizer in `work` (reused when present).
pub fn prepare(work: &Path, min_mb: u64, vocab: usize) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(work)?;
    let corpus = work.join(format!("corpus-{min_mb}mb.jsonl"));
    if !corpus.exists() {
        let mut roots = vec![];
        if let Some(home) = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        {
            roots.push(home.join("registry/src"));
        }
        roots.push(PathBuf::from("/usr/share/doc"));
        roots.push(PathBuf::from("/usr/lib/python3"));
        eprintln!("building a {min_mb} MB corpus from text and source files under {roots:?} ...");
        let (d, b) = build_corpus(&corpus, &roots, min_mb * 1_000_000)?;
        eprintln!("  {d} documents, {:.1} MB", b as f64 / 1e6);
    }
    let tok_path = work.join(format!("tokenizer-{vocab}.json"));
    if !tok_path.exists() {
        eprintln!("training a {vocab}-token byte-level BPE on the first 4000 documents ...");
        let texts = read_texts(&corpus, Some(4000))?;
        train_bpe(
            texts.into_iter(),
            &BpeOptions {
                vocab_size: vocab,
                min_frequency: 2,
            },
        )?
        .save(&tok_path)?;
    }
    Ok((corpus, tok_path))
}
