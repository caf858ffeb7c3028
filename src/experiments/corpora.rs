//! The corpora the experiments draw on: the generated synthetic families (`data/generated/*`)
//! and the real baseline (extracted from Debian packages), with deterministic train/held-out
//! splits by hashed document id, so every experiment and profile holds out the same documents.

use crate::data::document::Document;
use crate::data::read::{DocStream, LoadOptions};
use crate::data::sources::SourceSpec;
use crate::generate::jobs::Generator;
use crate::generate::shards::{GenManifest, MANIFEST};
use crate::hash::{avalanche, fnv1a};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Held-out share of every corpus (by document).
pub const HELD_OUT_PERCENT: u64 = 5;

/// FNV-1a of a salt, a document's source and its id: a stable pseudo-random number per document.
fn doc_hash(salt: &str, doc: &Document) -> u64 {
    fnv1a(
        salt.bytes()
            .chain(doc.source.bytes())
            .chain([0u8])
            .chain(doc.id.bytes()),
    )
}

/// Whether a document is held out: the hash of its source and id, modulo 100.
pub fn is_held_out(doc: &Document) -> bool {
    doc_hash("", doc) % 100 < HELD_OUT_PERCENT
}

/// Share of a training set, in percent, that the learning-rate sweep sets aside as its dev
/// split ([`super::sweep`]).
pub const DEV_PERCENT: u64 = 5;

/// Whether a training document is in the sweep's dev split (a hash with its own salt, so the
/// dev split is not the held-out split).
pub fn is_dev(doc: &Document) -> bool {
    doc_hash("dev", doc) % 100 < DEV_PERCENT
}

/// Put documents in a fixed pseudo-random order (by a salted hash of source and id), so that
/// any prefix — a byte cap, half of a blend, an evaluation sample — draws on every source in
/// proportion, instead of on whichever source was read first.
pub fn mix(docs: &mut [Document]) {
    // FNV's top bits barely depend on the last bytes (ids often differ only there), so
    // finish with a full avalanche before sorting.
    docs.sort_by_cached_key(|d| {
        (
            avalanche(doc_hash("mix", d)),
            d.source.clone(),
            d.id.clone(),
        )
    });
}

/// Split documents into (train, held-out), each in [`mix`] order.
pub fn split(docs: Vec<Document>) -> (Vec<Document>, Vec<Document>) {
    let (mut train, mut held_out): (Vec<_>, Vec<_>) =
        docs.into_iter().partition(|d| !is_held_out(d));
    mix(&mut train);
    mix(&mut held_out);
    (train, held_out)
}

/// All records a generator has written so far, as documents whose `source` is `gen/NAME`.
pub fn generated(root: &Path, generator: Generator) -> Result<Vec<Document>> {
    let dir = root.join(generator.name());
    let manifest: GenManifest = crate::io::read_json(&dir.join(MANIFEST)).with_context(|| {
        format!(
            "generated corpus {} (run `synthlm generate run --generator {}`)",
            dir.display(),
            generator.name()
        )
    })?;
    // A shard that differs from the hash its manifest recorded (cut short by a copy, edited,
    // damaged) is an error naming it, before any of it is read; nothing is removed.
    for s in &manifest.shards {
        let path = dir.join(&s.file);
        let sha = crate::io::sha256_file(&path)
            .with_context(|| format!("{}: a shard listed in its manifest", path.display()))?;
        if sha != s.sha256 {
            bail!(
                "{}: its content differs from what {} recorded (sha256 {}…, recorded {}…): the shard is damaged or was changed; restore it (git checkout) or delete the folder and generate again",
                path.display(),
                dir.join(MANIFEST).display(),
                &sha[..12],
                &s.sha256[..s.sha256.len().min(12)]
            );
        }
    }
    let files = manifest.shards.iter().map(|s| dir.join(&s.file)).collect();
    let spec: SourceSpec = generator.schema().parse().map_err(anyhow::Error::msg)?;
    let mut docs: Vec<Document> =
        DocStream::new(files, spec.parser(), LoadOptions::default()).collect::<Result<_, _>>()?;
    for d in &mut docs {
        d.source = format!("gen/{}", generator.name());
    }
    Ok(docs)
}

/// The real corpus of a project `root` (`.work/real/documents.jsonl`), extracted from the
/// installed Debian packages first if it is not there yet.
pub fn real_of_project(root: &Path) -> Result<Vec<Document>> {
    let path = root.join(".work/real/documents.jsonl");
    if !path.exists() {
        crate::data::real::extract(&path)?;
    }
    real(&path)
}

/// The real corpus extracted by `synthlm data real` (documents JSON Lines).
pub fn real(path: &Path) -> Result<Vec<Document>> {
    let docs = crate::data::read::document_files(vec![path.to_path_buf()], LoadOptions::default())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("real corpus {} (run `synthlm data real`)", path.display()))?;
    Ok(docs)
}

/// Take documents in order until `bytes` of text (at least one document).
pub fn take_bytes(docs: &[Document], bytes: u64) -> Vec<Document> {
    let mut out = Vec::new();
    let mut n = 0u64;
    for d in docs {
        if n >= bytes && !out.is_empty() {
            break;
        }
        n += d.text.len() as u64;
        out.push(d.clone());
    }
    out
}
