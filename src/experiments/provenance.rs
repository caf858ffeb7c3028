//! What a results file needs to be reproduced: the software and machine that produced it, and
//! the identity of every input (counts and SHA-256). The reproducibility chapter of the book is
//! generated from these records.

use crate::generate::jobs::Generator;
use crate::generate::shards::{GenManifest, MANIFEST};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Software and hardware of the call that wrote a results file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub synthlm: String,
    /// `git describe --always --dirty` of the checkout, if it is one.
    pub git: String,
    pub rustc: String,
    pub candle: String,
    pub cpu: String,
    pub cores: usize,
    pub os: String,
}

/// Read this machine's environment (best effort: what cannot be read is left empty).
pub fn environment() -> Environment {
    let command = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let field = |path: &str, key: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_once(['=', ':']))
                    .map(|(_, v)| v.trim().trim_matches('"').to_string())
            })
            .unwrap_or_default()
    };
    // The candle version this binary was built with, from the lock file it was built from.
    let lock = include_str!("../../Cargo.lock");
    let candle = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"candle-core\""))
        .and_then(|p| p.lines().find(|l| l.starts_with("version = ")))
        .map(|l| {
            l.trim_start_matches("version = ")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_default();
    Environment {
        synthlm: env!("CARGO_PKG_VERSION").into(),
        git: command("git", &["describe", "--always", "--dirty"]),
        rustc: command("rustc", &["--version"]),
        candle,
        cpu: field("/proc/cpuinfo", "model name"),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        os: field("/etc/os-release", "PRETTY_NAME"),
    }
}

/// One input of an experiment: a name, what it holds, and a SHA-256 that pins it down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputRecord {
    pub name: String,
    pub detail: String,
    pub sha256: String,
}

/// The generated families (their manifests: settings, counts, shard hashes; `generated` is
/// relative to `root`, and named so in the record) and the real corpus (the documents file
/// used, and its provenance manifest if there is one).
pub fn local_inputs(
    root: &Path,
    generated: &Path,
    real_documents: &Path,
    real_manifest: &Path,
) -> Result<Vec<InputRecord>> {
    let mut out = Vec::new();
    for g in Generator::ALL {
        let path = root.join(generated).join(g.name()).join(MANIFEST);
        let m: GenManifest = crate::io::read_json(&path)?;
        out.push(InputRecord {
            name: format!("{}", generated.join(g.name()).display()),
            detail: format!(
                "{} records ({} dropped), {} teacher tokens, {} shards, {:.1} h of generation; teacher SHA-256 {}",
                m.records,
                m.dropped.len(),
                m.teacher_tokens,
                m.shards.len(),
                m.seconds / 3600.0,
                &m.settings.teacher_sha256[..m.settings.teacher_sha256.len().min(12)]
            ),
            sha256: crate::io::sha256_file(&path)?,
        });
    }
    let documents_sha256 = crate::io::sha256_file(real_documents)?;
    let mut detail = "the real documents used (extracted, not committed)".to_string();
    if real_manifest.exists() {
        let m: crate::data::real::RealManifest = crate::io::read_json(real_manifest)?;
        out.push(InputRecord {
            name: "data/real/manifest.json".into(),
            detail: m
                .packages
                .iter()
                .map(|p| format!("{} {} ({} documents)", p.package, p.version, p.documents))
                .collect::<Vec<_>>()
                .join(", "),
            sha256: crate::io::sha256_file(real_manifest)?,
        });
        detail += if m.documents_sha256 == documents_sha256 {
            "; as recorded in data/real/manifest.json"
        } else {
            "; NOT the extraction recorded in data/real/manifest.json"
        };
    }
    out.push(InputRecord {
        name: "real documents".into(),
        detail,
        sha256: documents_sha256,
    });
    Ok(out)
}

/// The project's root (where this crate's Cargo.toml is): configs and committed data live
/// under it.
pub fn project_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
