//! The real-data baseline: human-written English from documents that Debian packages ship,
//! extracted offline with a provenance manifest. The texts are not committed; this code and
//! `data/real/manifest.json` are (package, version, licence, file, SHA-256, documents, bytes).
//!
//! | corpus | packages | what becomes a document |
//! |---|---|---|
//! | `real/debian-docs` | debian-handbook, debian-reference-en, debian-faq, debian-policy, developers-reference | one HTML page |
//! | `real/gnu-manuals` | the Info manuals of coreutils, findutils, grep, sed, diffutils, gzip, wget, gettext, ed, bc, time | one Info node |
//! | `real/python-docs` | python3.11-doc | one HTML page |
//! | `real/fortunes` | fortunes | one fortune |
//!
//! HTML pages keep headings, paragraphs, list items and code blocks in document order; navigation,
//! banners and footers are left out. Info nodes keep their prose (lines re-joined into
//! paragraphs) and examples; menus, the indexes and the licence node are left out.
//!
//! No corpus is more than [`MAX_SOURCE_SHARE`] of the text bytes: Python's documentation alone is
//! 9 MB, which made v1 of this corpus 73% Python reference pages. A corpus over the share keeps
//! its documents in a fixed pseudo-random order (the experiments' `mix` order) up to the cap,
//! and the manifest records what the cap left out. Before the cap, documents that near-duplicate
//! an earlier one (MinHash Jaccard >= 0.8) are dropped and counted.

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
    /// Documents and text bytes kept (after the share cap).
    pub documents: usize,
    pub text_bytes: u64,
    /// Documents and text bytes the share cap left out.
    #[serde(default)]
    pub capped_documents: usize,
    #[serde(default)]
    pub capped_bytes: u64,
    /// Documents dropped as near-duplicates of an earlier document (of any package).
    #[serde(default)]
    pub duplicate_documents: usize,
    /// Every file read, with what it gave before the cap.
    pub files: Vec<RealFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealManifest {
    pub format: String,
    /// The most any one corpus (`source`) may hold of the text bytes.
    #[serde(default)]
    pub max_source_share: Option<f64>,
    pub packages: Vec<RealPackage>,
    /// SHA-256 of the extracted documents file.
    pub documents_sha256: String,
}

impl RealManifest {
    /// Text bytes kept per corpus (`source`), sorted by name.
    pub fn source_bytes(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for p in &self.packages {
            *out.entry(p.source.clone()).or_insert(0) += p.text_bytes;
        }
        out
    }
}

/// No corpus of the real baseline holds more than this share of its text bytes.
pub const MAX_SOURCE_SHARE: f64 = 0.4;

/// How a package's files become documents.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// HTML pages ending in `suffix`; the text of the elements matching `main`.
    Html {
        suffix: &'static str,
        main: &'static str,
    },
    /// The Info manual `manual` (`/usr/share/info/MANUAL.info*.gz`), one document per node.
    Info { manual: &'static str },
    /// Fortune files, one document per fortune.
    Fortunes,
}

/// One package's share of a corpus.
struct Part {
    source: &'static str,
    package: &'static str,
    licence: &'static str,
    dir: &'static str,
    kind: Kind,
}

const SPHINX: Kind = Kind::Html {
    suffix: ".html",
    main: "div[role=main]",
};
const DOCBOOK_EN: Kind = Kind::Html {
    suffix: ".en.html",
    main: "body",
};
const GFDL: &str = "GFDL-1.3+ (no invariant sections)";
const INFO: &str = "/usr/share/info";

const fn info(package: &'static str, manual: &'static str) -> Part {
    Part {
        source: "real/gnu-manuals",
        package,
        licence: GFDL,
        dir: INFO,
        kind: Kind::Info { manual },
    }
}

/// Every part of the real corpus, in extraction order.
const PARTS: [Part; 17] = [
    Part {
        source: "real/debian-docs",
        package: "debian-handbook",
        licence: "GPL-2.0+ or CC-BY-SA-3.0",
        dir: "/usr/share/doc/debian-handbook/html/en-US",
        kind: Kind::Html {
            suffix: ".html",
            main: "body",
        },
    },
    Part {
        source: "real/debian-docs",
        package: "debian-reference-en",
        licence: "GPL-2.0+",
        dir: "/usr/share/debian-reference",
        kind: DOCBOOK_EN,
    },
    Part {
        source: "real/debian-docs",
        package: "debian-faq",
        licence: "GPL-2.0+",
        dir: "/usr/share/doc/debian/FAQ",
        kind: DOCBOOK_EN,
    },
    Part {
        source: "real/debian-docs",
        package: "debian-policy",
        licence: "GPL-2.0+",
        dir: "/usr/share/doc/debian-policy/policy.html",
        kind: SPHINX,
    },
    Part {
        source: "real/debian-docs",
        package: "developers-reference",
        licence: "MIT",
        dir: "/usr/share/developers-reference",
        kind: SPHINX,
    },
    info("coreutils", "coreutils"),
    info("findutils", "find"),
    info("grep", "grep"),
    info("sed", "sed"),
    info("diffutils", "diffutils"),
    info("gzip", "gzip"),
    info("wget", "wget"),
    info("gettext", "gettext"),
    info("ed", "ed"),
    info("bc", "bc"),
    Part {
        source: "real/python-docs",
        package: "python3.11-doc",
        licence: "PSF-2.0 (Python documentation licence)",
        dir: "/usr/share/doc/python3.11/html",
        kind: SPHINX,
    },
    Part {
        source: "real/fortunes",
        package: "fortunes",
        licence: "BSD-3-Clause (fortune-mod) and various, see /usr/share/doc/fortunes/copyright",
        dir: "/usr/share/games/fortunes",
        kind: Kind::Fortunes,
    },
];

/// The Debian packages the real corpus and the neutral held-out set need (installed by
/// `scripts/setup.sh real-data`).
pub fn packages() -> Vec<&'static str> {
    let mut out: Vec<&str> = PARTS.iter().map(|p| p.package).collect();
    out.push(crate::eval::neutral::PACKAGE);
    out
}

/// HTML pages left out: indexes, search pages, and the developers' reference on one page (it
/// repeats the reference's chapters, which are read one page each).
const SKIPPED_PAGES: [&str; 3] = ["genindex.html", "search.html", "developers-reference.html"];

/// Fortune files left out: pictures made of characters, and material not meant as prose.
const FORTUNES_SKIPPED: [&str; 5] = ["art", "ascii-art", "translate-me", "ethnic", "men-women"];

pub fn package_version(package: &str) -> Result<String> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .context("running dpkg-query")?;
    if !out.status.success() {
        bail!("Debian package `{package}` is not installed; run `bash scripts/setup.sh real-data` (apt-get install {})", packages().join(" "));
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

/// Reflow one Info paragraph: prose lines are joined with single spaces; an indented block
/// (an example: every line indented by five spaces or more) keeps its lines, less the indent.
fn info_paragraph(par: &str) -> String {
    let lines: Vec<&str> = par.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    if lines.iter().all(|l| indent(l) >= 5) {
        let cut = lines.iter().map(|l| indent(l)).min().unwrap_or(0);
        return lines
            .iter()
            .map(|l| &l[cut..])
            .collect::<Vec<_>>()
            .join("\n");
    }
    par.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a line only underlines a heading (`*****`, `=====`, `-----`, `.....`).
fn is_underline(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.chars().all(|c| "*=-.".contains(c))
}

/// The nodes of an Info file as (node name, text): menus, the indirect and tag tables, the
/// indexes and the licence are left out; headings lose their underlines.
pub fn split_info(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in text.split('\x1f') {
        let chunk = chunk.trim_start_matches('\n');
        let Some((header, body)) = chunk.split_once('\n') else {
            continue;
        };
        let Some(node) = header
            .split(",  ")
            .find_map(|f| f.trim().strip_prefix("Node: "))
        else {
            continue; // the preamble, `Indirect:` and `Tag Table:`
        };
        let skip = [
            "Index",
            "GNU Free Documentation License",
            "Copying This Manual",
        ];
        if skip.iter().any(|s| node.contains(s)) {
            continue;
        }
        // A menu runs from `* Menu:` to the end of the node.
        let body = body.split("\n* Menu:").next().unwrap_or("");
        let kept: Vec<&str> = body.lines().filter(|l| !is_underline(l)).collect();
        let text = kept
            .join("\n")
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(info_paragraph)
            .collect::<Vec<_>>()
            .join("\n\n");
        out.push((node.to_string(), text));
    }
    out
}

/// Texts of one file of a part, in order.
fn texts(kind: Kind, bytes: &[u8]) -> Result<Vec<String>> {
    Ok(match kind {
        Kind::Html { main, .. } => vec![html_to_text(&String::from_utf8_lossy(bytes), main)],
        Kind::Info { .. } => {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut raw)?;
            split_info(&String::from_utf8_lossy(&raw))
                .into_iter()
                .map(|(_, t)| t)
                .collect()
        }
        Kind::Fortunes => split_fortunes(&String::from_utf8_lossy(bytes)),
    })
}

/// Which files of a part's folder it reads.
fn wanted(kind: Kind, path: &Path) -> bool {
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().to_string());
    match kind {
        Kind::Html { suffix, .. } => {
            name.ends_with(suffix)
                && !path.to_string_lossy().contains("/_")
                && !SKIPPED_PAGES.contains(&name.as_str())
        }
        Kind::Info { manual } => {
            name.ends_with(".gz")
                && (name.starts_with(&format!("{manual}.info."))
                    || name.starts_with(&format!("{manual}.info-")))
        }
        Kind::Fortunes => path.extension().is_none() && !FORTUNES_SKIPPED.contains(&name.as_str()),
    }
}

/// Read one part: its documents, and its manifest entry before the cap.
fn extract_part(part: &Part) -> Result<(Vec<Document>, RealPackage)> {
    let mut pkg = RealPackage {
        source: part.source.into(),
        package: part.package.into(),
        version: package_version(part.package)?,
        licence: part.licence.into(),
        documents: 0,
        text_bytes: 0,
        capped_documents: 0,
        capped_bytes: 0,
        duplicate_documents: 0,
        files: vec![],
    };
    let mut docs = Vec::new();
    let kind = part.kind;
    let dir = Path::new(part.dir);
    for path in files_under(dir, &|p: &Path| wanted(kind, p))? {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
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
        let texts = texts(kind, &bytes).with_context(|| format!("reading {}", path.display()))?;
        for (i, t) in texts.into_iter().enumerate() {
            // Pages that are only a title or a table of contents carry too little prose.
            if t.split_whitespace().count() < 8 {
                continue;
            }
            file.documents += 1;
            file.text_bytes += t.len() as u64;
            docs.push(
                Document::text(format!("{rel}#{i}"), part.source, t)
                    .with_meta("package", part.package)
                    .with_meta("file", rel.clone()),
            );
        }
        pkg.documents += file.documents;
        pkg.text_bytes += file.text_bytes;
        if file.documents > 0 {
            pkg.files.push(file);
        }
    }
    anyhow::ensure!(
        pkg.documents > 0,
        "package {} gave no documents under {} (is it installed? `bash scripts/setup.sh real-data`)",
        part.package,
        part.dir
    );
    Ok((docs, pkg))
}

/// The byte cap `c` that leaves no corpus above `max_share`: with the largest corpora capped at
/// `c` and the rest whole, `c = max_share * (k c + rest)`. `None` if no corpus is over.
fn byte_cap(bytes: &[u64], max_share: f64) -> Result<Option<u64>> {
    let mut b = bytes.to_vec();
    b.sort_unstable_by(|x, y| y.cmp(x));
    let total: u64 = b.iter().sum();
    if b.is_empty() || b[0] as f64 <= max_share * total as f64 {
        return Ok(None);
    }
    for k in 1..b.len() {
        anyhow::ensure!(
            (k as f64) * max_share < 1.0,
            "no corpus may hold more than {max_share} of the bytes, but {} corpora cannot share them so",
            b.len()
        );
        let rest: u64 = b[k..].iter().sum();
        let c = max_share * rest as f64 / (1.0 - k as f64 * max_share);
        if b[k] as f64 <= c && c <= b[k - 1] as f64 {
            return Ok(Some(c as u64));
        }
    }
    anyhow::bail!(
        "no corpus may hold more than {max_share} of the bytes, but {} corpora cannot share them so",
        b.len()
    )
}

/// Cap every corpus (`source`) so that none holds more than `max_share` of the text bytes:
/// the corpora over the cap keep their documents in [`mix`](crate::experiments::corpora::mix)
/// order up to it (so which documents stay does not depend on the order they were read in).
/// The packages' counts become what is kept, and what the cap left out is recorded.
pub fn cap_sources(
    docs: Vec<Document>,
    packages: &mut [RealPackage],
    max_share: f64,
) -> Result<Vec<Document>> {
    let mut docs = docs;
    crate::experiments::corpora::mix(&mut docs);
    let mut bytes: std::collections::BTreeMap<String, u64> = Default::default();
    for d in &docs {
        *bytes.entry(d.source.clone()).or_insert(0) += d.text.len() as u64;
    }
    let Some(cap) = byte_cap(&bytes.values().copied().collect::<Vec<_>>(), max_share)? else {
        return Ok(docs);
    };
    let mut kept: std::collections::BTreeMap<String, u64> = Default::default();
    docs.retain(|d| {
        let n = d.text.len() as u64;
        let k = kept.entry(d.source.clone()).or_insert(0);
        if bytes[&d.source] <= cap || *k + n <= cap {
            *k += n;
            return true;
        }
        let package = d.meta.get("package").and_then(|v| v.as_str());
        if let Some(p) = packages
            .iter_mut()
            .find(|p| p.source == d.source && Some(p.package.as_str()) == package)
        {
            p.documents -= 1;
            p.text_bytes -= n;
            p.capped_documents += 1;
            p.capped_bytes += n;
        }
        false
    });
    Ok(docs)
}

/// Near-duplicate Jaccard threshold for the real corpus (the MinHash rule of
/// [`crate::filter::dedup`]): fortunes repeat across fortune files, and manuals repeat pages.
pub const DUPLICATE_JACCARD: f64 = 0.8;

/// Drop documents that near-duplicate an earlier one, counting them against their package.
fn drop_duplicates(docs: Vec<Document>, packages: &mut [RealPackage]) -> Vec<Document> {
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    let dup = crate::filter::dedup::near_duplicates(&texts, DUPLICATE_JACCARD);
    let mut out = Vec::with_capacity(docs.len());
    for (d, dup) in docs.into_iter().zip(dup) {
        if dup.is_none() {
            out.push(d);
            continue;
        }
        let package = d.meta.get("package").and_then(|v| v.as_str());
        if let Some(p) = packages
            .iter_mut()
            .find(|p| Some(p.package.as_str()) == package)
        {
            p.documents -= 1;
            p.text_bytes -= d.text.len() as u64;
            p.duplicate_documents += 1;
        }
    }
    out
}

/// Extract the whole corpus from the installed packages: documents (JSON Lines, in `mix`
/// order) at `documents_path`, and the manifest.
pub fn extract(documents_path: &Path) -> Result<(Vec<Document>, RealManifest)> {
    let mut docs = Vec::new();
    let mut packages = Vec::new();
    for part in &PARTS {
        let (d, p) = extract_part(part)?;
        docs.extend(d);
        packages.push(p);
    }
    let docs = drop_duplicates(docs, &mut packages);
    let docs = cap_sources(docs, &mut packages, MAX_SOURCE_SHARE)?;
    crate::data::read::write_documents(documents_path, &docs)?;
    let manifest = RealManifest {
        format: "synthlm-real-corpus/2".into(),
        max_source_share: Some(MAX_SOURCE_SHARE),
        packages,
        documents_sha256: crate::io::sha256_file(documents_path)?,
    };
    Ok((docs, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO_FILE: &str = "This is x.info, produced by makeinfo.\n\nINFO-DIR-SECTION Text\n\x1f\nFile: x.info,  Node: Top,  Next: Intro,  Up: (dir)\n\nx\n*\n\n   This manual is for x.\n\n* Menu:\n\n* Intro::   Introduction.\n\x1f\nFile: x.info,  Node: Intro,  Prev: Top,  Up: Top\n\n1 Introduction\n**************\n\nGiven one or more patterns, x searches\ninput files for matches.\n\n     x -e foo\n       bar\n\x1f\nFile: x.info,  Node: Index,  Prev: Intro,  Up: Top\n\n* foo: Intro.  1\n\x1f\nTag Table:\nNode: Top\x7f10\n\x1f\nEnd Tag Table\n";

    #[test]
    fn info_nodes_become_paragraphs_without_menus_or_indexes() {
        let nodes = split_info(INFO_FILE);
        let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Top", "Intro"]);
        assert_eq!(nodes[0].1, "x\n\nThis manual is for x.");
        assert_eq!(
            nodes[1].1,
            "1 Introduction\n\nGiven one or more patterns, x searches input files for matches.\n\nx -e foo\n  bar"
        );
    }

    fn doc(source: &str, id: usize, bytes: usize) -> Document {
        Document::text(format!("{id}"), source, "a".repeat(bytes)).with_meta("package", source)
    }

    fn package(source: &str, docs: &[Document]) -> RealPackage {
        let mine: Vec<&Document> = docs.iter().filter(|d| d.source == source).collect();
        RealPackage {
            source: source.into(),
            package: source.into(),
            version: "1".into(),
            licence: "x".into(),
            documents: mine.len(),
            text_bytes: mine.iter().map(|d| d.text.len() as u64).sum(),
            capped_documents: 0,
            capped_bytes: 0,
            duplicate_documents: 0,
            files: vec![],
        }
    }

    fn corpus(big: usize, others: &[(&str, usize)]) -> Vec<Document> {
        let mut docs: Vec<Document> = (0..big).map(|i| doc("big", i, 100)).collect();
        for (s, n) in others {
            docs.extend((0..*n).map(|i| doc(s, i, 100)));
        }
        docs
    }

    #[test]
    fn the_cap_keeps_every_source_within_its_share_and_records_the_rest() {
        let docs = corpus(100, &[("mid", 20), ("small", 10)]);
        let mut pkgs = ["big", "mid", "small"].map(|s| package(s, &docs));
        let kept = cap_sources(docs, &mut pkgs, 0.4).unwrap();
        let bytes = |s: &str| -> u64 {
            kept.iter()
                .filter(|d| d.source == s)
                .map(|d| d.text.len() as u64)
                .sum()
        };
        let total = bytes("big") + bytes("mid") + bytes("small");
        assert!(
            bytes("big") as f64 <= 0.4 * total as f64,
            "{} of {total}",
            bytes("big")
        );
        // 2/3 of the other 3,000 bytes: 20 documents of `big` kept, 80 left out.
        assert_eq!((pkgs[0].documents, pkgs[0].capped_documents), (20, 80));
        assert_eq!((pkgs[0].text_bytes, pkgs[0].capped_bytes), (2000, 8000));
        assert_eq!((pkgs[1].documents, pkgs[1].capped_documents), (20, 0));
        // Which documents survive does not depend on the order they came in.
        let mut rev = corpus(100, &[("mid", 20), ("small", 10)]);
        rev.reverse();
        let mut pkgs2 = ["big", "mid", "small"].map(|s| package(s, &rev));
        let ids = |d: &[Document]| {
            d.iter()
                .map(|x| (x.source.clone(), x.id.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&cap_sources(rev, &mut pkgs2, 0.4).unwrap()), ids(&kept));
    }

    #[test]
    fn two_corpora_over_the_share_are_both_capped_and_an_impossible_share_is_refused() {
        // 100, 90, 10 at 0.4: both large ones capped at c = 0.4 (2c + 10), c = 20.
        assert_eq!(byte_cap(&[100, 90, 10], 0.4).unwrap(), Some(20));
        assert_eq!(byte_cap(&[40, 30, 30], 0.4).unwrap(), None);
        let err = byte_cap(&[100, 10], 0.4).unwrap_err().to_string();
        assert!(err.contains("2 corpora cannot"), "{err}");
    }
}
