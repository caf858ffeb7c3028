//! Shared data preparation: an experiment's design (named training conditions and held-out
//! sets of documents) becomes one tokenizer, trained on the union of the training sets, and
//! one packed directory per set, each reused only while its inputs are unchanged; and the
//! record, next to the results, of what the runs there were trained on.

use crate::data::document::Document;
use crate::data::pack::{pack_documents, PackOptions, TokenShards};
use crate::data::read::DataError;
use crate::data::tokenizer::{train_bpe, BpeOptions, TextTokenizer};
use crate::experiments::provenance::InputRecord;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// What an experiment trains on and evaluates on, for one scale.
pub struct Design {
    /// Training conditions, in order. The tokenizer is trained on their union (each document
    /// once, in this order).
    pub conditions: Vec<(String, Vec<Document>)>,
    /// Held-out sets, in order.
    pub eval_sets: Vec<(String, Vec<Document>)>,
    /// The corpora behind them, by identity.
    pub inputs: Vec<InputRecord>,
}

/// Size of one packed set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusSize {
    pub documents: u64,
    pub tokens: u64,
    pub text_bytes: u64,
    /// Documents per source.
    pub sources: BTreeMap<String, u64>,
    /// Text bytes per source (results written before it was recorded lack it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_bytes: BTreeMap<String, u64>,
    /// Tokens per source, each document's end-of-text token included (results written before
    /// it was recorded lack it). A set balanced by bytes is not balanced by tokens when its
    /// sources differ in bytes per token.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_tokens: BTreeMap<String, u64>,
}

impl CorpusSize {
    /// The size of documents that are scored without being packed (the neutral domain),
    /// counted as packing counts them: each document's tokens plus its end-of-text token.
    pub fn of_documents(docs: &[&Document], tokenizer: &TextTokenizer) -> Result<Self> {
        let mut s = CorpusSize {
            documents: 0,
            tokens: 0,
            text_bytes: 0,
            sources: BTreeMap::new(),
            source_bytes: BTreeMap::new(),
            source_tokens: BTreeMap::new(),
        };
        for d in docs {
            let tokens = tokenizer.encode(&d.text)?.len() as u64 + 1;
            let bytes = d.text.len() as u64;
            s.documents += 1;
            s.tokens += tokens;
            s.text_bytes += bytes;
            *s.sources.entry(d.source.clone()).or_default() += 1;
            *s.source_bytes.entry(d.source.clone()).or_default() += bytes;
            *s.source_tokens.entry(d.source.clone()).or_default() += tokens;
        }
        Ok(s)
    }
}

/// A packed set and the documents in it.
pub struct PackedSet {
    pub name: String,
    pub dir: PathBuf,
    pub docs: Vec<Document>,
    pub size: CorpusSize,
}

/// Tokenizer and packed sets of a design.
pub struct Prepared {
    pub tokenizer: TextTokenizer,
    pub tokenizer_path: PathBuf,
    pub train: Vec<PackedSet>,
    pub eval: Vec<PackedSet>,
}

impl Prepared {
    pub fn train_set(&self, name: &str) -> &PackedSet {
        self.train
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no training set `{name}`"))
    }
}

/// SHA-256 over the ids and texts of documents, in order.
pub fn fingerprint(docs: &[Document]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for d in docs {
        h.update(d.id.as_bytes());
        h.update([0]);
        h.update(d.text.as_bytes());
        h.update([0]);
    }
    format!("{:x}", h.finalize())
}

fn size(dir: &Path) -> Result<CorpusSize> {
    let m = TokenShards::open(dir)?.manifest;
    Ok(CorpusSize {
        documents: m.documents,
        tokens: m.tokens,
        text_bytes: m.text_bytes,
        sources: m
            .sources
            .iter()
            .map(|(k, v)| (k.clone(), v.documents))
            .collect(),
        source_bytes: m
            .sources
            .iter()
            .map(|(k, v)| (k.clone(), v.text_bytes))
            .collect(),
        source_tokens: m
            .sources
            .iter()
            .map(|(k, v)| (k.clone(), v.tokens))
            .collect(),
    })
}

/// Train (or reuse) the tokenizer on the union of the training sets.
fn tokenizer(design: &Design, vocab_size: usize, work: &Path) -> Result<(TextTokenizer, PathBuf)> {
    let mut seen = HashSet::new();
    let union: Vec<&Document> = design
        .conditions
        .iter()
        .flat_map(|(_, docs)| docs)
        .filter(|d| seen.insert((d.source.clone(), d.id.clone())))
        .collect();
    let owned: Vec<Document> = union.iter().map(|d| (*d).clone()).collect();
    let path = work.join("tokenizer.json");
    let inputs_path = work.join("tokenizer.inputs");
    let inputs = format!(
        "vocab {vocab_size} min_frequency 2 texts {}",
        fingerprint(&owned)
    );
    if path.exists() && std::fs::read_to_string(&inputs_path).is_ok_and(|s| s == inputs) {
        return Ok((TextTokenizer::load(&path)?, path));
    }
    let tok = train_bpe(
        owned.into_iter().map(|d| d.text),
        &BpeOptions {
            vocab_size,
            min_frequency: 2,
        },
    )?;
    tok.save(&path)?;
    crate::io::write_bytes(&inputs_path, inputs.as_bytes())?;
    Ok((tok, path))
}

/// Pack (or reuse) one set under `work/packed/NAME`.
fn pack(
    experiment: &str,
    name: &str,
    docs: &[Document],
    tok: &TextTokenizer,
    work: &Path,
) -> Result<PackedSet> {
    let dir = work.join("packed").join(name);
    let inputs = serde_json::json!({"experiment": experiment, "set": name, "documents_sha256": fingerprint(docs)});
    let fresh = TokenShards::open(&dir)
        .map(|s| s.manifest.tokenizer_sha256 == tok.sha256() && s.manifest.inputs == inputs)
        .unwrap_or(false);
    if !fresh {
        pack_documents(
            docs.iter().cloned().map(Ok::<_, DataError>),
            tok,
            &dir,
            &PackOptions::default(),
            inputs,
            None,
        )?;
    }
    Ok(PackedSet {
        name: name.to_string(),
        size: size(&dir)?,
        dir,
        docs: docs.to_vec(),
    })
}

/// Tokenizer and packed sets of `design` under `work`, reusing what was made from the same
/// texts. Training sets are packed as `train-NAME`, held-out sets as `eval-NAME`.
pub fn prepare(
    experiment: &str,
    design: &Design,
    vocab_size: usize,
    work: &Path,
) -> Result<Prepared> {
    std::fs::create_dir_all(work)?;
    let (tok, tokenizer_path) = tokenizer(design, vocab_size, work)?;
    let pack_all = |prefix: &str, sets: &[(String, Vec<Document>)]| -> Result<Vec<PackedSet>> {
        sets.iter()
            .map(|(name, docs)| {
                let mut s = pack(experiment, &format!("{prefix}-{name}"), docs, &tok, work)?;
                s.name = name.clone();
                Ok(s)
            })
            .collect()
    };
    let train = pack_all("train", &design.conditions)?;
    let eval = pack_all("eval", &design.eval_sets)?;
    Ok(Prepared {
        tokenizer: tok,
        tokenizer_path,
        train,
        eval,
    })
}

/// The identity of what runs are trained and evaluated on: the tokenizer's SHA-256 and each
/// packed set's content SHA-256, by name (`tokenizer`, `train-NAME`, `eval-NAME`).
pub fn input_hashes(p: &Prepared) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    out.insert("tokenizer".to_string(), p.tokenizer.sha256().to_string());
    for s in p.train.iter().chain(&p.eval) {
        let name = s
            .dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        out.insert(name, TokenShards::open(&s.dir)?.manifest.content_sha256);
    }
    Ok(out)
}

pub const INPUTS: &str = "inputs.json";

/// Finished runs are reused only if they were trained on these inputs: `inputs.json` in the
/// results folder records them. Scratch results (the `smoke` profile's) are cleared when their
/// inputs change; others are an error that says what changed.
pub fn check_inputs(
    results: &Path,
    scratch: bool,
    p: &Prepared,
) -> Result<BTreeMap<String, String>> {
    let current = input_hashes(p)?;
    let path = results.join(INPUTS);
    std::fs::create_dir_all(results)?;
    if !path.exists() {
        anyhow::ensure!(
            !results.join("runs").exists() || scratch,
            "{}: runs exist but no record of the inputs they were trained on; move that folder away to start the experiment over",
            results.display()
        );
        std::fs::remove_dir_all(results.join("runs")).ok();
        crate::io::write_json(&path, &current)?;
        return Ok(current);
    }
    let before: BTreeMap<String, String> = crate::io::read_json(&path)?;
    if before != current {
        let changed: Vec<&String> = current
            .keys()
            .chain(before.keys())
            .filter(|k| before.get(*k) != current.get(*k))
            .collect();
        anyhow::ensure!(
            scratch,
            "{}: the runs here were trained on other inputs (changed: {changed:?}); move that folder away to start the experiment over",
            path.display()
        );
        eprintln!(
            "{}: inputs changed; clearing these scratch results",
            results.display()
        );
        std::fs::remove_dir_all(results.join("runs")).ok();
        crate::io::write_json(&path, &current)?;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set sized without packing (the neutral domain, the sweep's dev split) counts what
    /// packing the same documents counts: documents, tokens with their end-of-text token, and
    /// bytes, per source.
    #[test]
    fn unpacked_documents_are_sized_as_packing_sizes_them() {
        let docs: Vec<Document> = (0..12)
            .map(|i| {
                let source = if i % 3 == 0 { "a/x" } else { "b/y" };
                let text = format!("Document {i} says {} things.", "several ".repeat(i + 1));
                Document::text(format!("d{i}"), source, text)
            })
            .collect();
        let opts = BpeOptions {
            vocab_size: 300,
            min_frequency: 2,
        };
        let tok = train_bpe(docs.iter().map(|d| d.text.clone()), &opts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("packed");
        let stream = docs.iter().cloned().map(Ok);
        pack_documents(
            stream,
            &tok,
            &out,
            &PackOptions::default(),
            serde_json::json!({}),
            None,
        )
        .unwrap();
        let packed = size(&out).unwrap();
        let refs: Vec<&Document> = docs.iter().collect();
        let counted = CorpusSize::of_documents(&refs, &tok).unwrap();
        assert_eq!(counted, packed);
        assert_eq!(counted.sources["a/x"], 4);
        assert_eq!(counted.source_tokens.values().sum::<u64>(), counted.tokens);
    }
}
