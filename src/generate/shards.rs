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

use crate::generate::jobs::{GenSettings, Tally};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
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
    /// Of those, the tokens whose text is in the records.
    #[serde(default)]
    pub kept_tokens: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenManifest {
    pub format: String,
    pub settings: GenSettings,
    /// Records asked for (indices 0..target).
    pub target: u64,
    pub shards: Vec<GenShard>,
    /// Indices dropped, with the reason (`class: detail`), so a restart skips them.
    pub dropped: Vec<(u64, String)>,
    pub records: u64,
    /// Teacher tokens generated for the kept records (all stages and continuations).
    pub teacher_tokens: u64,
    /// Of those, the tokens whose text is in the records (recipe 2).
    #[serde(default)]
    pub kept_tokens: u64,
    /// Teacher tokens spent on dropped records (recipe 2).
    #[serde(default)]
    pub dropped_tokens: u64,
    /// Kept records with each [`Tally`] flag set: `mid_sentence`, `required_words`,
    /// `preamble`, `title`, `continued`, `evolution_rejected` (recipe 2).
    #[serde(default)]
    pub flagged: BTreeMap<String, u64>,
    /// Dropped records by reason class (derived from `dropped`).
    #[serde(default)]
    pub dropped_by: BTreeMap<String, u64>,
    /// Kept records that end mid-sentence (rule: [`crate::filter::checks::ends_mid_sentence`]).
    #[serde(default)]
    pub truncated_share: f64,
    /// Stories: kept records that use all three required words.
    #[serde(default)]
    pub required_words_share: Option<f64>,
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

    fn count_flags(&mut self, t: &Tally) {
        let flags = [
            ("mid_sentence", t.mid_sentence),
            ("required_words", t.required_words == Some(true)),
            ("preamble", t.preamble),
            ("title", t.title),
            ("continued", t.continued),
            ("evolution_rejected", t.evolution_rejected),
        ];
        for (k, on) in flags {
            *self.flagged.entry(k.to_string()).or_default() += on as u64;
        }
    }

    /// Recompute the derived fields: drops by class, and the shares over kept records.
    fn derive_shares(&mut self) {
        self.dropped_by.clear();
        for (_, reason) in &self.dropped {
            let class = reason.split(':').next().unwrap_or(reason).trim();
            *self.dropped_by.entry(class.to_string()).or_default() += 1;
        }
        let n = self.records.max(1) as f64;
        let flag = |k: &str| self.flagged.get(k).copied().unwrap_or(0) as f64;
        self.truncated_share = flag("mid_sentence") / n;
        self.required_words_share = (self.settings.generator
            == crate::generate::jobs::Generator::Stories)
            .then(|| flag("required_words") / n);
    }
}

/// Writes finished records into shards and keeps the manifest current.
pub struct ShardedWriter {
    dir: PathBuf,
    pub manifest: GenManifest,
    shard_records: usize,
    pending: Vec<(u64, Value, Tally)>,
    pending_dropped: Vec<(u64, String, u64)>,
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
                format: format!("synthlm-generated/{}", settings.recipe),
                settings: settings.clone(),
                target,
                shards: vec![],
                dropped: vec![],
                records: 0,
                teacher_tokens: 0,
                kept_tokens: 0,
                dropped_tokens: 0,
                flagged: BTreeMap::new(),
                dropped_by: BTreeMap::new(),
                truncated_share: 0.0,
                required_words_share: None,
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
    pub fn add(&mut self, index: u64, record: Value, tally: Tally) -> Result<()> {
        self.pending.push((index, record, tally));
        if self.pending.len() >= self.shard_records {
            self.flush()?;
        }
        Ok(())
    }

    /// Record a dropped index, why (a class and a detail) and the teacher tokens it cost
    /// (saved with the next shard).
    pub fn drop_record(&mut self, index: u64, class: String, detail: String, tokens: u64) {
        self.pending_dropped
            .push((index, format!("{class}: {detail}"), tokens));
    }

    /// Write pending records as a shard (if any) and the manifest.
    pub fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            let name = format!("part-{:05}.parquet", self.manifest.shards.len());
            let path = self.dir.join(&name);
            let rows: Vec<Value> = self.pending.iter().map(|p| p.1.clone()).collect();
            crate::data::write::write_parquet_rows(&path, &rows, 64)?;
            let tokens: u64 = self.pending.iter().map(|p| p.2.teacher_tokens).sum();
            let kept: u64 = self.pending.iter().map(|p| p.2.kept_tokens).sum();
            self.manifest.shards.push(GenShard {
                file: name,
                records: rows.len(),
                indices: self.pending.iter().map(|p| p.0).collect(),
                teacher_tokens: tokens,
                kept_tokens: kept,
                sha256: crate::io::sha256_file(&path)?,
            });
            self.manifest.records += rows.len() as u64;
            self.manifest.teacher_tokens += tokens;
            self.manifest.kept_tokens += kept;
            for (_, _, t) in &self.pending {
                self.manifest.count_flags(t);
            }
            self.pending.clear();
        }
        for (i, reason, tokens) in self.pending_dropped.drain(..) {
            self.manifest.dropped.push((i, reason));
            self.manifest.dropped_tokens += tokens;
        }
        self.manifest.derive_shares();
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
