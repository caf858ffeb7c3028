//! Resumable, sharded, atomic output for generation runs.
//!
//! ```text
//! OUT/manifest.json      settings, shard list, which record indices are done or dropped
//! OUT/part-00000.parquet records in the dataset schema (zstd), a few hundred per shard
//! ```
//!
//! Records finish out of order (continuous batching), so the manifest lists the *indices* each
//! shard holds. A shard file is written atomically, then the manifest is replaced atomically:
//! killed at any moment, a run loses only records not yet in a shard, and a restart regenerates
//! exactly those (same seeds, so the same records): nothing lost, nothing duplicated. A shard
//! file not named in the manifest (killed between the two writes) is overwritten on restart.

use crate::generate::jobs::GenSettings;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenShard {
    pub file: String,
    pub records: usize,
    /// Record indices in this shard, in file order.
    pub indices: Vec<u64>,
    /// Teacher tokens generated for these records (all stages).
    pub teacher_tokens: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenManifest {
    pub format: String,
    pub settings: GenSettings,
    /// Records asked for (indices 0..target).
    pub target: u64,
    pub shards: Vec<GenShard>,
    /// Indices dropped (e.g. by the self-check), with the reason, so a restart skips them.
    pub dropped: Vec<(u64, String)>,
    pub records: u64,
    pub teacher_tokens: u64,
    /// Seconds spent generating, over all sessions.
    pub seconds: f64,
}

impl GenManifest {
    /// Indices that are finished (in a shard) or dropped.
    pub fn settled(&self) -> BTreeSet<u64> {
        self.shards
            .iter()
            .flat_map(|s| s.indices.iter().copied())
            .chain(self.dropped.iter().map(|d| d.0))
            .collect()
    }

    pub fn is_complete(&self) -> bool {
        self.settled().len() as u64 >= self.target
    }
}

/// Writes finished records into shards and keeps the manifest current.
pub struct ShardedWriter {
    dir: PathBuf,
    pub manifest: GenManifest,
    shard_records: usize,
    pending: Vec<(u64, Value, u64)>,
    pending_dropped: Vec<(u64, String)>,
}

impl ShardedWriter {
    /// Open `dir`, resuming its manifest if there is one (the settings must be the same).
    pub fn open(
        dir: &Path,
        settings: &GenSettings,
        target: u64,
        shard_records: usize,
    ) -> Result<ShardedWriter> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(MANIFEST);
        let manifest = if path.exists() {
            let mut m: GenManifest = crate::io::read_json(&path)?;
            if &m.settings != settings {
                bail!(
                    "{} was generated with other settings ({}); use another output folder",
                    path.display(),
                    serde_json::to_string(&m.settings).unwrap_or_default()
                );
            }
            m.target = m.target.max(target);
            m
        } else {
            GenManifest {
                format: "synthlm-generated/1".into(),
                settings: settings.clone(),
                target,
                shards: vec![],
                dropped: vec![],
                records: 0,
                teacher_tokens: 0,
                seconds: 0.0,
            }
        };
        Ok(ShardedWriter {
            dir: dir.to_path_buf(),
            manifest,
            shard_records: shard_records.max(1),
            pending: Vec::new(),
            pending_dropped: Vec::new(),
        })
    }

    /// Indices still to generate, in order.
    pub fn todo(&self) -> Vec<u64> {
        let settled = self.manifest.settled();
        (0..self.manifest.target)
            .filter(|i| !settled.contains(i))
            .collect()
    }

    /// Add a finished record (written once a shard fills).
    pub fn add(&mut self, index: u64, record: Value, teacher_tokens: u64) -> Result<()> {
        self.pending.push((index, record, teacher_tokens));
        if self.pending.len() >= self.shard_records {
            self.flush()?;
        }
        Ok(())
    }

    /// Record a dropped index (saved with the next shard).
    pub fn drop_record(&mut self, index: u64, reason: String) {
        self.pending_dropped.push((index, reason));
    }

    /// Write pending records as a shard (if any) and the manifest.
    pub fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            let name = format!("part-{:05}.parquet", self.manifest.shards.len());
            let path = self.dir.join(&name);
            let rows: Vec<Value> = self.pending.iter().map(|p| p.1.clone()).collect();
            crate::data::write::write_parquet_rows(&path, &rows, 64)?;
            let tokens: u64 = self.pending.iter().map(|p| p.2).sum();
            self.manifest.shards.push(GenShard {
                file: name,
                records: rows.len(),
                indices: self.pending.iter().map(|p| p.0).collect(),
                teacher_tokens: tokens,
                sha256: crate::io::sha256_file(&path)?,
            });
            self.manifest.records += rows.len() as u64;
            self.manifest.teacher_tokens += tokens;
            self.pending.clear();
        }
        self.manifest.dropped.append(&mut self.pending_dropped);
        crate::io::write_json(&self.dir.join(MANIFEST), &self.manifest)
    }

    /// Add to the time spent (kept across sessions).
    pub fn add_seconds(&mut self, s: f64) {
        self.manifest.seconds += s;
    }

    /// The shard files, in order.
    pub fn files(&self) -> Vec<PathBuf> {
        self.manifest
            .shards
            .iter()
            .map(|s| self.dir.join(&s.file))
            .collect()
    }
}
