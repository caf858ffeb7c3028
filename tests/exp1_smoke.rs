//! Experiment 1 end to end at the smoke scale, on corpora made here (a stand-in teacher for the
//! synthetic families, grammar text for the real side): every run, table cell, test,
//! contamination figure and sample is produced, and a second call reuses the finished runs.

mod common;

use synthlm::data::document::Document;
use synthlm::experiments::exp1::{self, Exp1Paths};
use synthlm::generate::seeds::Seeds;
use synthlm::generate::{generate, GenSettings, Generator};

#[test]
fn smoke_profile_runs_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = Seeds::committed().unwrap();
    let generated = dir.path().join("generated");
    for g in Generator::ALL {
        generate(
            &GenSettings::new(g, 1),
            &seeds,
            &generated.join(g.name()),
            60,
            20,
            &mut common::FakeTeacher::new(None),
            None,
        )
        .unwrap();
    }
    let real: Vec<Document> = (0..400)
        .map(|i| {
            Document::text(
                format!("r{i}"),
                "real/grammar",
                common::english(10, 7000 + i),
            )
        })
        .collect();
    let real_path = dir.path().join("real.jsonl");
    synthlm::data::read::write_documents(&real_path, &real).unwrap();
    let paths = Exp1Paths {
        generated,
        real: real_path,
        real_manifest: dir.path().join("real-manifest.json"),
        hub: synthlm::data::hub::HubOptions::offline(dir.path().join("no-hub")),
        work: dir.path().join("work"),
        results: dir.path().join("results"),
    };
    let p = exp1::profile("smoke").unwrap();

    let r = exp1::run(&p, &paths, false).unwrap();
    let n_runs = p.students.len() * 3 * p.seeds.len();
    assert_eq!(r.runs.len(), n_runs);
    assert_eq!(r.cells.len(), p.students.len() * 3);
    assert_eq!(r.comparisons.len(), p.students.len() * 2);
    assert_eq!(r.contamination.len(), 3 * 2);
    assert_eq!(r.samples.len(), n_runs * exp1::PROMPTS.len());
    for c in &r.cells {
        for (set, ci) in &c.loss {
            assert!(
                ci.mean.is_finite() && ci.lo <= ci.mean && ci.mean <= ci.hi,
                "{} {} {set}: {ci:?}",
                c.student,
                c.condition
            );
        }
    }
    // The check discriminates: the stand-in teacher's repetitive text overlaps its own held-out
    // split, while the synthetic training set shares nothing with the real held-out text.
    let overlap = |t: &str, e: &str| {
        r.contamination
            .iter()
            .find(|c| c.train == t && c.eval == e)
            .unwrap()
            .ngram_overlap
    };
    assert!(r
        .contamination
        .iter()
        .all(|c| (0.0..=1.0).contains(&c.ngram_overlap) && c.eval_ngrams > 0));
    assert_eq!(overlap("synthetic", "real"), 0.0);
    assert!(
        overlap("synthetic", "synthetic") > overlap("real", "synthetic"),
        "{:?}",
        r.contamination
    );
    // The blend holds both kinds of text, and its synthetic half, like the synthetic held-out
    // sample, draws on every family (not just on the first ones read).
    for set in [&r.train_sets["blend"], &r.eval_sets["synthetic"]] {
        for g in Generator::ALL {
            assert!(
                set.sources.contains_key(&format!("gen/{}", g.name())),
                "{:?}",
                set.sources
            );
        }
    }
    assert!(r.train_sets["blend"].sources.contains_key("real/grammar"));
    // Every run wrote the results schema, without committing checkpoints to results.json.
    for run in &r.runs {
        let s = synthlm::train::metrics::read_summary(&paths.results.join(&run.dir)).unwrap();
        assert_eq!(s.steps, p.steps);
        assert!(s.final_val.contains_key("synthetic") && s.final_val.contains_key("real"));
    }
    // A second call finds every run finished and reproduces the same results.
    let again = exp1::run(&p, &paths, false).unwrap();
    assert_eq!(again.cells, r.cells);
    assert_eq!(again.samples, r.samples);
    assert_eq!(exp1::load_results(&paths.results).unwrap().cells, r.cells);
    // Checkpoints are not committed: without them, finished runs keep their recorded samples.
    for run in &r.runs {
        std::fs::remove_dir_all(paths.results.join(&run.dir).join("checkpoints")).unwrap();
    }
    let committed = exp1::run(&p, &paths, false).unwrap();
    assert_eq!(committed.samples, r.samples);
    assert_eq!(committed.cells, r.cells);

    // The report: book Markdown with SVG figures, paper LaTeX with PNG figures, same numbers.
    let book = dir.path().join("book");
    let paper = dir.path().join("paper");
    synthlm::report::exp1::book_markdown(&r, &paths.results, &book).unwrap();
    synthlm::report::exp1::paper_tex(&r, &paths.results, &paper).unwrap();
    let md = std::fs::read_to_string(book.join("exp1.md")).unwrap();
    let tex = std::fs::read_to_string(paper.join("exp1-results.tex")).unwrap();
    for c in &r.cells {
        let cell = synthlm::report::tables::mean_ci(
            c.loss["real"].mean,
            c.loss["real"].lo,
            c.loss["real"].hi,
        );
        assert!(md.contains(&cell) && tex.contains(&cell), "{cell} in both");
    }
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule"));
    // Findings: one generated paragraph per student, naming the best training data per set
    // (the lowest mean bits per byte in the table).
    let findings = synthlm::report::exp1::findings(&r);
    assert_eq!(findings.len(), p.students.len());
    for (f, (student, _)) in findings.iter().zip(&p.students) {
        let best = |eval: &str| {
            r.cells
                .iter()
                .filter(|c| &c.student == student)
                .min_by(|a, b| a.bpb[eval].mean.total_cmp(&b.bpb[eval].mean))
                .unwrap()
                .condition
                .clone()
        };
        for eval in ["real", "synthetic"] {
            let claim = format!("on held-out {eval} text, training on {} gives", best(eval));
            assert!(f.contains(&claim), "{f}");
        }
        assert!(md.contains(f.as_str()));
    }
    // The data and reproducibility parts: statistics and an example per source, and every
    // input pinned by its hash (the generated families' manifests, tokenizer, packed sets).
    let data_md = std::fs::read_to_string(book.join("exp1-data.md")).unwrap();
    let repro = std::fs::read_to_string(book.join("exp1-reproducibility.md")).unwrap();
    for source in [
        "gen/stories",
        "gen/cosmo",
        "gen/magpie",
        "gen/instruct",
        "real/grammar",
    ] {
        assert!(
            data_md.matches(source).count() >= 2,
            "{source}: table row and example"
        );
    }
    for g in Generator::ALL {
        let sha = synthlm::io::sha256_file(&paths.generated.join(g.name()).join("manifest.json"))
            .unwrap();
        assert!(repro.contains(&sha[..16]), "{}", g.name());
    }
    assert!(repro.contains(&r.tokenizer_sha256[..16]) && repro.contains("train-blend"));
    for s in ["tiny", "tiny-wide"] {
        for f in [
            format!("exp1-curves-{s}-real"),
            format!("exp1-curves-{s}-synthetic"),
            format!("exp1-bars-{s}"),
        ] {
            let svg =
                std::fs::read_to_string(book.join("figures").join(format!("{f}.svg"))).unwrap();
            assert!(
                svg.contains("<svg") && svg.contains("nats/token") || svg.contains("bits per byte"),
                "{f}"
            );
            let png = std::fs::read(paper.join("figures").join(format!("{f}.png"))).unwrap();
            assert_eq!(&png[1..4], b"PNG");
            assert!(md.contains(&format!("generated/figures/{f}.svg")));
        }
    }
    if let Ok(keep) = std::env::var("SYNTHLM_KEEP_REPORT") {
        for (from, to) in [(&book, "book"), (&paper, "paper")] {
            let dest = std::path::Path::new(&keep).join(to);
            std::fs::create_dir_all(dest.join("figures")).unwrap();
            for e in std::fs::read_dir(from.join("figures")).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), dest.join("figures").join(e.file_name())).unwrap();
            }
        }
        std::fs::copy(
            book.join("exp1.md"),
            std::path::Path::new(&keep).join("exp1.md"),
        )
        .unwrap();
    }

    // Finished runs are not reused for other inputs: change one real document and the call
    // refuses, naming the record of what the runs were trained on (the smoke profile's own
    // results are scratch and start over instead).
    let mut changed = real.clone();
    let train_doc = changed
        .iter_mut()
        .find(|d| !synthlm::experiments::corpora::is_held_out(d))
        .unwrap();
    train_doc.text.push_str(" A new sentence.");
    synthlm::data::read::write_documents(&paths.real, &changed).unwrap();
    let kept = exp1::Exp1Profile {
        name: "smoke-kept".into(),
        ..p.clone()
    };
    let err = format!("{:#}", exp1::run(&kept, &paths, false).unwrap_err());
    assert!(
        err.contains("inputs.json") && err.contains("train-real"),
        "{err}"
    );
    let again = exp1::run(&p, &paths, false).unwrap();
    assert_eq!(again.runs.len(), r.runs.len());
    let packed = |r: &exp1::Exp1Results| {
        r.inputs
            .iter()
            .find(|i| i.name == "train-real")
            .unwrap()
            .sha256
            .clone()
    };
    assert_ne!(packed(&again), packed(&r), "repacked from the new texts");
}

/// The paper profile's data path: synthetic and real corpora read from seed datasets in the
/// Hugging Face cache (a local fixture in the real schemas), at the smoke scale.
#[test]
fn hub_corpora_feed_the_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let snap = common::hf_snapshot(&cache, "HuggingFaceTB/cosmopedia");
    common::write_parquet(
        &snap.join("data/stories/train-00000-of-00001.parquet"),
        &common::cosmopedia_rows(200),
    );
    let snap = common::hf_snapshot(&cache, "Magpie-Align/Magpie-Pro-300K-Filtered");
    common::write_parquet(
        &snap.join("data/train-00000-of-00001.parquet"),
        &common::magpie_rows(200, 0),
    );
    let snap = common::hf_snapshot(&cache, "HuggingFaceFW/fineweb-edu");
    common::write_parquet(
        &snap.join("sample/10BT/000_00000.parquet"),
        &common::fineweb_rows(400),
    );
    let paths = Exp1Paths {
        generated: dir.path().join("absent"),
        real: dir.path().join("absent.jsonl"),
        real_manifest: dir.path().join("absent-manifest.json"),
        hub: synthlm::data::hub::HubOptions::offline(&cache),
        work: dir.path().join("work"),
        results: dir.path().join("results"),
    };
    let per_source = 150;
    let p = exp1::Exp1Profile {
        corpora: exp1::Corpora::Hub {
            synthetic: vec!["cosmopedia/stories".into(), "magpie-pro".into()],
            real: vec!["fineweb-edu/sample-10BT".into()],
            docs_per_source: per_source,
        },
        ..exp1::profile("smoke").unwrap()
    };
    let r = exp1::run(&p, &paths, false).unwrap();
    let docs = |set: &str, source: &str| {
        r.train_sets[set].sources.get(source).copied().unwrap_or(0)
            + r.eval_sets
                .get(set)
                .map_or(0, |e| e.sources.get(source).copied().unwrap_or(0))
    };
    for s in ["cosmopedia/stories", "magpie-pro"] {
        let n = docs("synthetic", s);
        assert!(n > 100 && n <= per_source as u64, "{s}: {n} documents");
        assert!(
            r.train_sets["blend"].sources.contains_key(s),
            "{s}: {:?}",
            r.train_sets
        );
    }
    assert_eq!(docs("real", "fineweb-edu/sample-10BT"), per_source as u64);
    assert!(r.cells.iter().all(|c| c.loss["real"].mean.is_finite()));

    // Without the dataset in the cache, the error says what to fetch.
    let mut missing = p.clone();
    missing.corpora = exp1::Corpora::Hub {
        synthetic: vec!["openhermes".into()],
        real: vec!["fineweb-edu/sample-10BT".into()],
        docs_per_source: per_source,
    };
    let err = format!("{:#}", exp1::run(&missing, &paths, false).unwrap_err());
    assert!(err.contains("openhermes"), "{err}");
}
