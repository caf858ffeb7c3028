//! The committed `mini` results, book pages and paper agree number for number: regenerating the
//! report from `data/results/exp1/mini/` reproduces the committed generated files, and the
//! committed PDF prints the numbers of the results file.
//!
//! Markdown, LaTeX and SVG are compared byte for byte. PNGs are rasterised with whatever fonts
//! the machine's fontconfig picks, so for them the test compares names and pixel sizes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use synthlm::experiments::exp1;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[1..4], b"PNG");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

fn assert_same(regenerated: &Path, committed: &Path) {
    let (new, old) = (files(regenerated), files(committed));
    assert_eq!(
        new.keys().collect::<Vec<_>>(),
        old.keys().collect::<Vec<_>>(),
        "files in {} (run `synthlm report --profile mini`)",
        committed.display()
    );
    for (name, bytes) in &new {
        if name.ends_with(".png") {
            assert_eq!(png_size(bytes), png_size(&old[name]), "{name}");
        } else {
            assert!(
                bytes == &old[name],
                "{}/{name} differs from what `synthlm report --profile mini` writes from the committed results",
                committed.display()
            );
        }
    }
}

#[test]
fn committed_pages_are_regenerated_from_committed_results() {
    let results = root().join("data/results/exp1/mini");
    let r = exp1::load_results(&results).expect("committed mini results");
    assert_eq!(
        r.profile,
        exp1::profile("mini").unwrap(),
        "results of the mini profile as defined"
    );
    assert_eq!(r.runs.len(), r.profile.runs());
    let tmp = tempfile::tempdir().unwrap();
    synthlm::report::exp1::book_markdown(&r, &results, &tmp.path().join("book")).unwrap();
    synthlm::report::exp1::paper_tex(&r, &results, &tmp.path().join("paper")).unwrap();
    assert_same(&tmp.path().join("book"), &root().join("book/src/generated"));
    assert_same(&tmp.path().join("paper"), &root().join("paper/generated"));
}

#[test]
#[ignore = "needs pdftotext (poppler-utils): scripts/setup.sh paper"]
fn committed_pdf_prints_the_committed_numbers() {
    let r = exp1::load_results(&root().join("data/results/exp1/mini")).unwrap();
    let pdf = root().join("paper/synthlm.pdf");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (scripts/setup.sh paper)");
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    let flat: String = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for c in &r.cells {
        for eval in exp1::EVAL_SETS {
            for v in [&c.loss[eval], &c.bpb[eval]] {
                let cell = synthlm::report::tables::mean_ci(v.mean, v.lo, v.hi);
                assert!(
                    flat.contains(&cell),
                    "{cell} ({} / {} / {eval}) is in {}",
                    c.student,
                    c.condition,
                    pdf.display()
                );
            }
        }
    }
    for cmp in &r.comparisons {
        let p = synthlm::report::tables::num(cmp.test.p_value);
        assert!(flat.contains(&p), "p = {p} is in the PDF");
    }
}
