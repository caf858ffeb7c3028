//! The real-data baseline: human-written English from documents that Debian packages ship,
//! extracted offline with a provenance manifest. The texts are not committed; this code and
//! `data/real/manifest.json` are (package, version, licence, file, SHA-256, documents, bytes).
//!
//! | corpus | package | licence | what becomes a document |
//! |---|---|---|---|
//! | `real/debian-handbook` | debian-handbook | GPL-2+ or CC-BY-SA-3.0 | one HTML page (en-US) |
//! | `real/python-docs` | python3.11-doc | PSF licence (docs) | one HTML page |
//! | `real/fortunes` | fortunes | BSD-style (fortune-mod) and various | one fortune |
//!
//! HTML pages keep headings, paragraphs, list items and code blocks in document order; navigation,
//! banners and footers are left out.

use crate::data::document::Document;
use anyhow::{bail, Context, Result};
use scraper::{Html, Selector};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One extracted input file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealFile {
    pub path: String,
    pub sha256: String,
    pub documents: usize,
    pub text_bytes: u64,
}

/// One package's part of the corpus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealPackage {
    pub source: String,
    pub package: String,
    pub version: String,
    pub licence: String,
    pub documents: usize,
    pub text_bytes: u64,
    pub files: Vec<RealFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealManifest {
    pub format: String,
    pub packages: Vec<RealPackage>,
    /// SHA-256 of the extracted documents file.
    pub documents_sha256: String,
}

/// The Debian packages the real corpus needs (installed by `scripts/setup.sh real-data`).
pub const PACKAGES: [&str; 3] = ["debian-handbook", "python3.11-doc", "fortunes"];

/// Fortune files left out: pictures made of characters, and material not meant as prose.
const FORTUNES_SKIPPED: [&str; 5] = ["art", "ascii-art", "translate-me", "ethnic", "men-women"];

pub fn package_version(package: &str) -> Result<String> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .context("running dpkg-query")?;
    if !out.status.success() {
        bail!("Debian package `{package}` is not installed; run `bash scripts/setup.sh real-data` (apt-get install {})", PACKAGES.join(" "));
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if keep(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Text of the main content of an HTML page: headings, paragraphs, list items, code blocks.
pub fn html_to_text(html: &str, main: &str) -> String {
    let doc = Html::parse_document(html);
    let root_sel = Selector::parse(main).expect("valid selector");
    let blocks = Selector::parse("h1, h2, h3, h4, div.para, p:not(#title), pre, dt")
        .expect("valid selector");
    let mut parts: Vec<String> = Vec::new();
    for root in doc.select(&root_sel) {
        for el in root.select(&blocks) {
            let raw: String = el.text().collect();
            let text = if el.value().name() == "pre" {
                raw.trim_end().to_string()
            } else {
                raw.split_whitespace().collect::<Vec<_>>().join(" ")
            };
            let text = text
                .trim_start_matches('¶')
                .trim_end_matches('¶')
                .trim()
                .to_string();
            if !text.is_empty() {
                parts.push(text);
            }
        }
    }
    parts.join("\n\n")
}

/// Split a fortune file into fortunes (separated by lines holding only `%`).
pub fn split_fortunes(text: &str) -> Vec<String> {
    text.split("\n%\n")
        .map(|f| {
            f.trim_matches(|c: char| c == '%' || c.is_whitespace())
                .to_string()
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// Extract the whole corpus from the installed packages: documents (JSON Lines) at
/// `documents_path`, and the manifest.
pub fn extract(documents_path: &Path) -> Result<(Vec<Document>, RealManifest)> {
    type Extract = fn(&str) -> Vec<String>;
    // (corpus, package, licence, folder, which files, how a file becomes texts)
    type Source = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Box<dyn Fn(&Path) -> bool>,
        Extract,
    );
    let sources: [Source; 3] = [
        (
            "real/debian-handbook",
            "debian-handbook",
            "GPL-2.0+ or CC-BY-SA-3.0",
            "/usr/share/doc/debian-handbook/html/en-US",
            Box::new(|p: &Path| p.extension().is_some_and(|e| e == "html")),
            |h| vec![html_to_text(h, "body")],
        ),
        (
            "real/python-docs",
            "python3.11-doc",
            "PSF-2.0 (Python documentation licence)",
            "/usr/share/doc/python3.11/html",
            Box::new(|p: &Path| {
                p.extension().is_some_and(|e| e == "html") && !p.to_string_lossy().contains("/_")
            }),
            |h| vec![html_to_text(h, "div[role=main]")],
        ),
        (
            "real/fortunes",
            "fortunes",
            "BSD-3-Clause (fortune-mod) and various, see /usr/share/doc/fortunes/copyright",
            "/usr/share/games/fortunes",
            Box::new(|p: &Path| {
                p.extension().is_none()
                    && !FORTUNES_SKIPPED
                        .iter()
                        .any(|s| p.file_name().is_some_and(|n| n == *s))
            }),
            |t| split_fortunes(t),
        ),
    ];
    let mut docs = Vec::new();
    let mut packages = Vec::new();
    for (source, package, licence, dir, keep, extract) in sources {
        let version = package_version(package)?;
        let mut pkg = RealPackage {
            source: source.into(),
            package: package.into(),
            version,
            licence: licence.into(),
            documents: 0,
            text_bytes: 0,
            files: vec![],
        };
        for path in files_under(Path::new(dir), &*keep)? {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            let mut file = RealFile {
                path: path.display().to_string(),
                sha256: crate::io::sha256_hex(&bytes),
                documents: 0,
                text_bytes: 0,
            };
            for (i, t) in extract(&text).into_iter().enumerate() {
                // Pages that are only a title or a table of contents carry too little prose.
                if t.split_whitespace().count() < 8 {
                    continue;
                }
                file.documents += 1;
                file.text_bytes += t.len() as u64;
                docs.push(
                    Document::text(format!("{rel}#{i}"), source, t)
                        .with_meta("package", package)
                        .with_meta("file", rel.clone()),
                );
            }
            pkg.documents += file.documents;
            pkg.text_bytes += file.text_bytes;
            if file.documents > 0 {
                pkg.files.push(file);
            }
        }
        packages.push(pkg);
    }
    crate::data::read::write_documents(documents_path, &docs)?;
    let manifest = RealManifest {
        format: "synthlm-real-corpus/1".into(),
        packages,
        documents_sha256: crate::io::sha256_file(documents_path)?,
    };
    Ok((docs, manifest))
}
