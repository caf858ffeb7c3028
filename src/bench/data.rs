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

/// `synthlm bench data`: bare tokenizer encode against the load-tokenize-pack pipeline, with 1
/// and 2 threads, and peak memory on the whole and half the corpus; each measurement in a fresh
/// process (`exe data-worker`). Returns the tables to print.
pub fn report(work: &Path, mb: u64, vocab_size: usize) -> anyhow::Result<String> {
    let mut out = String::new();
    let (corpus, tok) = crate::bench::data::prepare(work, mb, vocab_size)?;
    let docs = std::fs::read_to_string(&corpus)?.lines().count();
    let exe = std::env::current_exe()?;
    let arg = |mode: &str, threads: usize, max: Option<usize>| -> Vec<String> {
        let mut v: Vec<String> = [
            "--mode",
            mode,
            "--threads",
            &threads.to_string(),
            "--corpus",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(corpus.display().to_string());
        v.extend([
            "--tokenizer".to_string(),
            tok.display().to_string(),
            "--out".into(),
            work.join("packed").display().to_string(),
        ]);
        if let Some(m) = max {
            v.extend(["--max-docs".to_string(), m.to_string()]);
        }
        v
    };
    let mut rows = Vec::new();
    for threads in [1, 2] {
        for mode in ["bare", "pipeline"] {
            eprintln!("measuring {mode} with {threads} thread(s) ...");
            rows.push(crate::bench::run_worker::<crate::bench::data::Measurement>(
                &exe,
                "data-worker",
                &arg(mode, threads, None),
            )?);
        }
    }
    eprintln!("measuring the pipeline on half the corpus (memory vs size) ...");
    let half = crate::bench::run_worker::<crate::bench::data::Measurement>(
        &exe,
        "data-worker",
        &arg("pipeline", 2, Some(docs / 2)),
    )?;
    out += &format!("\nData pipeline benchmark: {docs} documents, {:.1} MB of text, vocab {vocab_size}, {} cores\n", rows[0].text_bytes as f64 / 1e6, std::thread::available_parallelism()?.get());
    out +=
        "| mode | threads | MB/s | tokens/s | seconds | peak RSS MB |\n|---|---|---|---|---|---|\n";
    for r in rows.iter().chain([&half]) {
        out += &format!(
            "| {} | {} | {:.3} | {:.0} | {:.1} | {:.0} |\n",
            r.mode,
            r.threads,
            r.mb_per_s(),
            r.tokens_per_s(),
            r.seconds,
            r.peak_rss_bytes as f64 / 1e6
        );
    }
    let (b1, p1, b2, p2) = (&rows[0], &rows[1], &rows[2], &rows[3]);
    out += &format!(
        "\npipeline / bare encode: {:.1}% (1 thread), {:.1}% (2 threads)   [target >= 90%]\n",
        100.0 * p1.mb_per_s() / b1.mb_per_s(),
        100.0 * p2.mb_per_s() / b2.mb_per_s()
    );
    out += &format!(
        "2 threads / 1 thread: pipeline {:.2}x, bare {:.2}x   [target >= 1.8x]\n",
        p2.mb_per_s() / p1.mb_per_s(),
        b2.mb_per_s() / b1.mb_per_s()
    );
    out += &format!("peak RSS, pipeline 2 threads: {:.0} MB for {:.1} MB of text, {:.0} MB for {:.1} MB   [target: flat]\n", half.peak_rss_bytes as f64 / 1e6, half.text_bytes as f64 / 1e6, p2.peak_rss_bytes as f64 / 1e6, p2.text_bytes as f64 / 1e6);
    Ok(out)
}
