//! The neutral held-out domain: Ambrose Bierce's *The Devil's Dictionary* (1881-1906, public
//! domain), as Debian's `dict-devil` ships it for the dict server. Satirical definitions and
//! verse, written by a person a century before any of our training text, it is in neither
//! training set: not children's stories, textbooks or chat (the synthetic families), not
//! technical documentation or fortunes (the real corpus). Its limits: archaic American English
//! of one author, and some of it is verse.
//!
//! Each entry is a document (its headword is its id). The text is extracted offline from the
//! installed package and checked against `data/eval/neutral.json` (package version, file
//! SHA-256, documents and their hash), so every machine scores the same documents.

use crate::data::document::Document;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

pub const PACKAGE: &str = "dict-devil";
pub const SOURCE: &str = "neutral/devils-dictionary";
const DICT: &str = "/usr/share/dictd/devil.dict.dz";
const INDEX: &str = "/usr/share/dictd/devil.index";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeutralManifest {
    pub format: String,
    pub package: String,
    pub version: String,
    pub licence: String,
    pub dict_sha256: String,
    pub index_sha256: String,
    pub documents: usize,
    pub text_bytes: u64,
    /// SHA-256 over the documents' ids and texts, in order.
    pub documents_sha256: String,
}

/// A number in the dict format's base 64 (`A`-`Z`, `a`-`z`, `0`-`9`, `+`, `/`).
fn b64(s: &str) -> Option<usize> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    s.chars()
        .try_fold(0usize, |n, c| Some(n * 64 + ALPHABET.find(c)?))
}

/// Entries (headword, text) of a dict database: `index` lines `headword TAB offset TAB length`
/// into the uncompressed `text`; the `00-database-*` metadata entries are left out.
pub fn parse_dict(index: &str, text: &[u8]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, line) in index.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(off), Some(len)) = (f.get(1).and_then(|x| b64(x)), f.get(2).and_then(|x| b64(x)))
        else {
            bail!(
                "index line {}: expected `headword TAB offset TAB length`",
                i + 1
            );
        };
        if f[0].starts_with("00database") || f[0].starts_with("00-database") {
            continue;
        }
        let body = text
            .get(off..off + len)
            .with_context(|| format!("index line {}: entry beyond the end of the text", i + 1))?;
        let entry = String::from_utf8_lossy(body).trim().to_string();
        if entry.split_whitespace().count() >= 3 {
            out.push((f[0].to_string(), entry));
        }
    }
    Ok(out)
}

/// Extract the documents from the installed package, and their manifest.
pub fn extract() -> Result<(Vec<Document>, NeutralManifest)> {
    let version = crate::data::real::package_version(PACKAGE)
        .with_context(|| "the neutral held-out set (run `bash scripts/setup.sh real-data`)")?;
    let dz = std::fs::read(DICT).with_context(|| format!("reading {DICT}"))?;
    let index = std::fs::read_to_string(INDEX).with_context(|| format!("reading {INDEX}"))?;
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&dz[..])
        .read_to_end(&mut text)
        .with_context(|| format!("decompressing {DICT}"))?;
    let docs: Vec<Document> = parse_dict(&index, &text)?
        .into_iter()
        .map(|(id, t)| Document::text(id, SOURCE, t).with_meta("package", PACKAGE))
        .collect();
    let manifest = NeutralManifest {
        format: "synthlm-neutral/1".into(),
        package: PACKAGE.into(),
        version,
        licence: "public domain (copyright expired; see /usr/share/doc/dict-devil/copyright)"
            .into(),
        dict_sha256: crate::io::sha256_hex(&dz),
        index_sha256: crate::io::sha256_hex(index.as_bytes()),
        documents: docs.len(),
        text_bytes: docs.iter().map(|d| d.text.len() as u64).sum(),
        documents_sha256: crate::experiments::prepare::fingerprint(&docs),
    };
    Ok((docs, manifest))
}

/// The neutral documents, checked against the committed manifest `manifest_path`.
pub fn load(manifest_path: &Path) -> Result<Vec<Document>> {
    let want: NeutralManifest = crate::io::read_json(manifest_path)?;
    let (docs, got) = extract()?;
    if got.documents_sha256 != want.documents_sha256 {
        bail!(
            "the installed {PACKAGE} {} gives other documents than {} records ({} {}, {} documents): install that version, or rebuild the evaluation items",
            got.version,
            manifest_path.display(),
            want.package,
            want.version,
            want.documents
        );
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dict_index_numbers_and_entries() {
        assert_eq!(super::b64("A"), Some(0));
        assert_eq!(super::b64("BA"), Some(64));
        assert_eq!(super::b64("/"), Some(63));
        assert_eq!(super::b64("?"), None);
        let text = b"ABSURDITY, n.  A statement.\nBORE, n.  A person who talks.";
        let index = "00databaseshort\tA\tC\nabsurdity\tA\tb\nbore\tc\td\n";
        let e = super::parse_dict(index, text).unwrap();
        assert_eq!(
            e[0],
            ("absurdity".into(), "ABSURDITY, n.  A statement.".into())
        );
        assert_eq!(e[1].1, "BORE, n.  A person who talks.");
        assert!(super::parse_dict("x\tA\n", text).is_err());
        assert!(super::parse_dict("x\tA\tZZZ\n", text)
            .unwrap_err()
            .to_string()
            .contains("beyond"));
    }
}
