//! Experiment 1 end to end at the smoke scale, on corpora made here (a stand-in teacher for the
//! synthetic families, grammar text for the real side): every run, headline row, baseline,
//! comparison, contamination figure and sample is produced, a second call reuses the finished
//! runs, and the report renders to book and paper.

mod common;

use std::path::Path;
use synthlm::data::document::Document;
use synthlm::experiments::exp1::{self, Exp1};
use synthlm::experiments::results::SeedSpread;
use synthlm::experiments::scale::{Corpora, Scale};
use synthlm::experiments::{self as ex, Experiment, Paths};
use synthlm::generate::seeds::Seeds;
use synthlm::generate::{generate, GenSettings, Generator};

/// A project root in `dir` with generated families and a real corpus of grammar text.
fn fixture(dir: &Path) -> (Scale, Paths, Vec<Document>) {
    let seeds = Seeds::committed().unwrap();
    for g in Generator::ALL {
        let out = dir.join("gen").join(g.name());
        generate(
            &GenSettings::new(g, 1),
            &seeds,
            &out,
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
    let paths = Paths {
        root: dir.to_path_buf(),
        real: dir.join("real.jsonl"),
        real_manifest: dir.join("real-manifest.json"),
        hub: synthlm::data::hub::HubOptions::offline(dir.join("no-hub")),
        work: dir.join("work"),
        results: dir.join("results"),
    };
    synthlm::data::read::write_documents(&paths.real, &real).unwrap();
    let mut s = Scale::standard(
        &synthlm::experiments::provenance::project_root(),
        1,
        "smoke",
    )
    .unwrap();
    s.corpora = Corpora::Local {
        generated: "gen".into(),
    };
    (s, paths, real)
}

#[test]
fn smoke_scale_runs_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (s, paths, real) = fixture(dir.path());
    let r = ex::run(&Exp1, &s, &paths, false).unwrap();
    let n_runs = s.students.len() * 3 * s.seeds.len();
    assert_eq!(r.runs.len(), n_runs);
    // One bits-per-byte row per (student, condition, held-out set), over whole sets.
    assert_eq!(r.headline.len(), s.students.len() * 3 * 2);
    for h in &r.headline {
        assert_eq!((h.metric.as_str(), h.n_seeds), ("bpb", 3));
        assert!(
            h.lo <= h.mean && h.mean <= h.hi && h.mean.is_finite(),
            "{h:?}"
        );
        assert!(
            h.interval.starts_with("min-max over 3 seeds; whole set"),
            "{}",
            h.interval
        );
    }
    // Six n-gram baselines per training set and held-out set.
    assert_eq!(r.baselines.len(), 6 * 3 * 2);
    for name in ["unigram", "bigram", "kn-2", "kn-3", "kn-4", "kn-5"] {
        let b = r.baseline(name, "real", "real").unwrap();
        assert!(b.is_finite() && b > 0.0, "{name}: {b}");
    }
    // The grammar text is predictable from local context: kn-3 beats the unigram on it.
    assert!(
        r.baseline("kn-3", "real", "real").unwrap()
            < r.baseline("unigram", "real", "real").unwrap()
    );
    // Comparisons: three condition pairs per student and set, each student against the bigram
    // and its best KN per condition and set, all Holm-adjusted (never below the raw p-value).
    // (No suite at the smoke scale: the neutral set is not compared.)
    assert_eq!(
        r.comparisons.len(),
        s.students.len() * (2 * exp1::CONDITION_PAIRS.len() + 3 * 2 * 2)
    );
    for c in &r.comparisons {
        assert!(
            c.p_holm >= c.p_value && c.p_holm <= 1.0 && c.p_value >= c.p_floor,
            "{c:?}"
        );
    }
    assert_eq!(r.samples.len(), n_runs * exp1::PROMPTS.len());
    bar_follows_its_comparisons(&r);
    let a = exp1::analysis(&r).unwrap();
    assert_eq!(a.contamination.len(), 3 * 2);
    // The harness decontaminated the held-out sets: the stand-in teacher's repetitive text
    // repeats its own training split, so synthetic held-out documents went, and what is left
    // overlaps every training set by no more than the rule allows, document by document and
    // so in total.
    let removed = |set: &str| {
        r.decontamination
            .iter()
            .filter(|x| x.role == "eval" && x.set == set)
            .map(|x| x.documents)
            .sum::<usize>()
    };
    assert!(removed("synthetic") > 0, "{:?}", r.decontamination);
    let limit = synthlm::eval::contamination::MAX_HELD_OUT_OVERLAP;
    assert!(
        a.contamination
            .iter()
            .all(|c| (0.0..=limit).contains(&c.ngram_overlap) && c.eval_ngrams > 0),
        "{:?}",
        a.contamination
    );
    // The blend draws on every family and on the real side.
    let blend = r.set("train", "blend").unwrap();
    for g in Generator::ALL {
        assert!(
            blend.sources.contains_key(&format!("gen/{}", g.name())),
            "{:?}",
            blend.sources
        );
    }
    assert!(blend.sources.contains_key("real/grammar"));
    // Each run recorded its provenance when it was trained; a second call reuses every run and
    // rewrites none of those records.
    let prov = |r: &synthlm::experiments::results::Results| {
        r.runs
            .iter()
            .map(|x| x.provenance.clone())
            .collect::<Vec<_>>()
    };
    let again = ex::run(&Exp1, &s, &paths, false).unwrap();
    assert_eq!(again.headline, r.headline);
    assert_eq!(prov(&again), prov(&r));
    assert_eq!(again.samples, r.samples);
    // Checkpoints are not committed: without them, runs keep their scores and samples.
    for run in &r.runs {
        std::fs::remove_dir_all(paths.results.join(&run.dir).join("checkpoints")).unwrap();
    }
    let committed = ex::run(&Exp1, &s, &paths, false).unwrap();
    assert_eq!(
        (committed.headline, committed.samples),
        (r.headline.clone(), r.samples.clone())
    );

    // The report: book pages with SVG figures, paper pieces with PNG figures, same numbers.
    let rep = Exp1.report(&r, &paths.results).unwrap();
    let (book, paper) = (dir.path().join("book"), dir.path().join("paper"));
    rep.write_book(&book).unwrap();
    rep.write_paper(&paper).unwrap();
    let md = std::fs::read_to_string(book.join("exp1.md")).unwrap();
    let tex = std::fs::read_to_string(paper.join("exp1-results.tex")).unwrap();
    for h in &r.headline {
        let cell = synthlm::report::tables::mean_ci(h.mean, h.lo, h.hi);
        assert!(md.contains(&cell) && tex.contains(&cell), "{cell} in both");
    }
    for f in synthlm::report::exp1::findings(&r) {
        assert!(md.contains(&f), "{f}");
    }
    for st in ["tiny", "tiny-wide"] {
        for f in [format!("curves-{st}-real"), format!("bars-{st}")] {
            let svg = std::fs::read_to_string(book.join("figures/exp1").join(format!("{f}.svg")))
                .unwrap();
            assert!(svg.contains("<svg") && svg.contains("bits per byte"), "{f}");
            let png = std::fs::read(paper.join("figures/exp1").join(format!("{f}.png"))).unwrap();
            assert_eq!(&png[1..4], b"PNG");
            assert!(md.contains(&format!("generated/figures/exp1/{f}.svg")));
        }
    }
    let repro = std::fs::read_to_string(book.join("exp1-reproducibility.md")).unwrap();
    for g in Generator::ALL {
        let sha =
            synthlm::io::sha256_file(&dir.path().join("gen").join(g.name()).join("manifest.json"))
                .unwrap();
        assert!(repro.contains(&sha[..16]), "{}", g.name());
    }

    // Finished runs are not reused for other inputs: change one real training document and a
    // non-scratch profile refuses, naming what changed.
    let mut changed = real.clone();
    changed
        .iter_mut()
        .find(|d| !synthlm::experiments::corpora::is_held_out(d))
        .unwrap()
        .text
        .push_str(" A new sentence.");
    synthlm::data::read::write_documents(&paths.real, &changed).unwrap();
    let kept = Scale {
        profile: "smoke-kept".into(),
        ..s.clone()
    };
    let err = format!("{:#}", ex::run(&Exp1, &kept, &paths, false).unwrap_err());
    assert!(
        err.contains("inputs.json") && err.contains("train-real"),
        "{err}"
    );
}

/// The paper scale's data path: synthetic and real corpora read from seed datasets in the
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
    let paths = Paths {
        root: dir.path().to_path_buf(),
        real: dir.path().join("absent.jsonl"),
        real_manifest: dir.path().join("absent-manifest.json"),
        hub: synthlm::data::hub::HubOptions::offline(&cache),
        work: dir.path().join("work"),
        results: dir.path().join("results"),
    };
    let per_source = 150;
    let mut s = Scale::standard(
        &synthlm::experiments::provenance::project_root(),
        1,
        "smoke",
    )
    .unwrap();
    s.corpora = Corpora::Hub {
        synthetic: vec!["cosmopedia/stories".into(), "magpie-pro".into()],
        real: vec!["fineweb-edu/sample-10BT".into()],
        docs_per_source: per_source,
    };
    let r = ex::run(&Exp1, &s, &paths, false).unwrap();
    let docs = |set: &str, source: &str| {
        ["train", "eval"]
            .iter()
            .map(|role| {
                r.set(role, set)
                    .map_or(0, |x| x.sources.get(source).copied().unwrap_or(0))
            })
            .sum::<u64>()
    };
    for src in ["cosmopedia/stories", "magpie-pro"] {
        let n = docs("synthetic", src);
        assert!(n > 100 && n <= per_source as u64, "{src}: {n} documents");
        assert!(r.set("train", "blend").unwrap().sources.contains_key(src));
    }
    assert_eq!(docs("real", "fineweb-edu/sample-10BT"), per_source as u64);
    assert!(r.headline.iter().all(|h| h.mean.is_finite()));
    // Without the dataset in the cache, the error says what to fetch.
    s.corpora = Corpora::Hub {
        synthetic: vec!["openhermes".into()],
        real: vec!["fineweb-edu/sample-10BT".into()],
        docs_per_source: per_source,
    };
    let err = format!("{:#}", ex::run(&Exp1, &s, &paths, false).unwrap_err());
    assert!(err.contains("openhermes"), "{err}");
}

#[test]
fn scales_are_validated_with_the_key_named() {
    let root = synthlm::experiments::provenance::project_root();
    for p in ["smoke", "mini", "mini-v1", "paper"] {
        let s = Scale::standard(&root, 1, p).unwrap();
        assert_eq!((s.experiment, s.profile.as_str()), (1, p));
    }
    let text = std::fs::read_to_string(root.join("configs/experiments/exp1/smoke.toml")).unwrap();
    let e = Scale::from_toml_str(&format!("{text}\nbatch_sise = 3\n"), "x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("x.toml") && e.contains("batch_sise"), "{e}");
    let e = Scale::from_toml_str(&text.replace("seq_len = 32", "seq_len = 0"), "y.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("seq_len"), "{e}");
    for bad in ["[1.0]", "[0.5, -2.0]"] {
        let with = text.replace("experiment = 1", &format!("experiment = 1\ncurve = {bad}"));
        let e = format!("{:#}", Scale::from_toml_str(&with, "c.toml").unwrap_err());
        assert!(e.contains("key `curve`"), "{e}");
    }
    // The suite on the curve's runs needs both a suite and a curve.
    for with in [
        "curve_suite = true",
        "curve_suite = true\ncurve = [2.0]",
        "curve_suite = true\nsuite = true",
    ] {
        let with = text.replace("experiment = 1", &format!("experiment = 1\n{with}"));
        let e = format!("{:#}", Scale::from_toml_str(&with, "s.toml").unwrap_err());
        assert!(e.contains("key `curve_suite`"), "{e}");
    }
    let e =
        Scale::from_toml_str(&format!("{text}\n[design]\nblend_share = 0.3\n"), "z.toml").unwrap();
    let err = Exp1
        .design(&e, &Paths::standard(&root, 1, "smoke"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("design.blend_share"), "{err}");
    assert!(synthlm::experiments::find(42)
        .err()
        .unwrap()
        .to_string()
        .contains("no experiment 42"));
}

/// The bar reads each cell's comparisons: it is met exactly when the bigram difference is at
/// most -0.10 and the best KN's interval and every seed's own difference are below 0, and a
/// missing comparison never passes.
fn bar_follows_its_comparisons(r: &synthlm::experiments::results::Results) {
    use synthlm::report::bar;
    let cells = bar::cells(r, &exp1::CONDITIONS, &exp1::BAR_SETS);
    assert_eq!(cells.len(), r.scale.students.len() * 3 * 3);
    for c in &cells {
        let compared = c.set != "neutral";
        assert_eq!(c.bigram.is_some() && c.kn.is_some(), compared, "{}", c.set);
        assert!(compared || !c.misses().is_empty());
    }
    let (st, cond) = (r.scale.students[0].name.clone(), "real");
    let mut r = r.clone();
    let set = |r: &mut synthlm::experiments::results::Results, ngram: &str, diff: f64, hi: f64| {
        for x in r.comparisons.iter_mut().filter(|x| {
            x.eval_set == "real" && x.label.starts_with(&format!("{st} on {cond} - {ngram}"))
        }) {
            (x.diff, x.lo, x.hi) = (diff, diff - 0.01, hi);
            x.seeds = Some(SeedSpread {
                lo: diff - 0.02,
                hi: diff + 0.02,
                pairs: 2,
            });
        }
    };
    let misses = |r: &synthlm::experiments::results::Results| {
        bar::cells(r, &[cond], &["real"])
            .into_iter()
            .find(|c| c.student == st)
            .unwrap()
            .misses()
    };
    set(&mut r, "bigram", -0.2, -0.19);
    set(&mut r, "kn-", -0.05, -0.01);
    assert!(misses(&r).is_empty(), "{:?}", misses(&r));
    set(&mut r, "kn-", -0.05, 0.01);
    assert!(misses(&r)[0].contains("kn-"), "{:?}", misses(&r));
    set(&mut r, "kn-", -0.05, -0.01);
    // Below on documents, but one seed above its own n-gram model: not met.
    for x in r
        .comparisons
        .iter_mut()
        .filter(|x| x.eval_set == "real" && x.label.starts_with(&format!("{st} on {cond} - kn-")))
    {
        x.seeds.as_mut().unwrap().hi = 0.01;
    }
    assert!(misses(&r)[0].contains("per seed"), "{:?}", misses(&r));
    set(&mut r, "kn-", -0.05, -0.01);
    assert!(misses(&r).is_empty(), "{:?}", misses(&r));
    set(&mut r, "bigram", -0.05, -0.04);
    assert!(misses(&r)[0].contains("bigram"), "{:?}", misses(&r));
    let text = bar::summary(&bar::cells(&r, &[cond], &["real"]));
    assert!(text.contains("Missed") && text.contains(&st), "{text}");
}

/// With the evaluation suite (as the mini design runs it): neutral bits per byte, minimal
/// pairs and proxy tasks in the headline, the neutral set in the bar, suite comparisons in
/// Holm families of their own, the frames, a neutral document that a training set quotes left
/// out of every neutral score, and the report's tables for all of it.
#[test]
fn the_suite_runs_through_experiment_one_and_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, paths, mut real) = fixture(dir.path());
    s.suite = true;
    s.students.truncate(1);
    // One seed: the suite scores every run twice (10% and final) and dominates the test's time.
    s.seeds = vec![0];
    // A real training document quotes ten words of a neutral entry: fewer than the 13 that
    // would remove it from training, enough for the 8-word near-copy rule.
    let root = synthlm::experiments::provenance::project_root();
    let neutral =
        synthlm::eval::neutral::load(&root.join("data/eval").join(synthlm::eval::items::NEUTRAL))
            .unwrap();
    let (quoted, entry) = neutral
        .iter()
        .enumerate()
        .find(|(_, d)| d.text.split_whitespace().count() >= 30)
        .unwrap();
    let words: Vec<&str> = entry.text.split_whitespace().skip(10).take(10).collect();
    let doc = real
        .iter_mut()
        .find(|d| !synthlm::experiments::corpora::is_held_out(d))
        .unwrap();
    doc.text = format!("{} {}", doc.text, words.join(" "));
    synthlm::data::read::write_documents(&paths.real, &real).unwrap();

    let r = ex::run(&Exp1, &s, &paths, false).unwrap();
    assert!(
        r.neutral_excluded.contains(&quoted),
        "{:?}",
        r.neutral_excluded
    );
    let removed = r
        .decontamination
        .iter()
        .find(|x| x.set == "neutral")
        .unwrap();
    assert_eq!(removed.documents, r.neutral_excluded.len());
    for c in exp1::CONDITIONS {
        for metric in ["neutral_bpb", "minimal_pairs_acc", "proxy_acc"] {
            assert!(
                r.headline
                    .iter()
                    .any(|h| h.condition == c && h.metric == metric && h.n_seeds == 1),
                "{c} {metric}"
            );
        }
    }
    // The neutral set is in the bar, compared with the n-grams of the same tokens.
    let cells = synthlm::report::bar::cells(&r, &exp1::CONDITIONS, &exp1::BAR_SETS);
    assert!(cells
        .iter()
        .filter(|x| x.set == "neutral")
        .all(|x| x.value.is_some() && x.bigram.is_some() && x.kn.is_some()));
    // Suite comparisons: Holm within each metric, apart from the bits-per-byte family.
    let family = |m: &str| -> Vec<f64> {
        let mut p: Vec<f64> = r
            .comparisons
            .iter()
            .filter(|c| c.metric == m)
            .map(|c| c.p_value)
            .collect();
        p.sort_by(f64::total_cmp);
        p
    };
    let suite: Vec<_> = r
        .comparisons
        .iter()
        .filter(|c| c.metric == "minimal_pairs_acc")
        .collect();
    assert!(!suite.is_empty());
    let p = family("minimal_pairs_acc");
    let holm = synthlm::stats::holm(&p);
    for c in &suite {
        let i = p.iter().position(|x| *x == c.p_value).unwrap();
        assert!((c.p_holm - holm[i]).abs() < 1e-12, "{c:?}");
    }
    let frames = exp1::analysis(&r).unwrap().frames;
    assert!(frames.iter().any(|f| f.model == "unigram"));
    assert!(frames
        .iter()
        .all(|f| (0.0..=1.0).contains(&f.accuracy) && f.pairs > 0));

    // The report: the held-out table counts the neutral set without the quoted entry, and the
    // suite's tables are there.
    let rep = Exp1.report(&r, &paths.results).unwrap();
    for name in [
        "held-out",
        "suite-accuracy",
        "suite-comparisons",
        "suite-frames",
    ] {
        assert!(rep.names().contains(&name.to_string()), "{name}");
    }
    let held = rep.table("held-out").unwrap();
    let sets: Vec<String> = held
        .column("held-out set")
        .unwrap()
        .str()
        .unwrap()
        .into_no_null_iter()
        .map(String::from)
        .collect();
    assert_eq!(sets, ["synthetic", "real", "neutral"]);
    let docs = held.column("documents").unwrap().u64().unwrap().get(2);
    assert_eq!(
        docs,
        Some((neutral.len() - r.neutral_excluded.len()) as u64)
    );
    assert!(!rep.names().contains(&"probe-bar".to_string()));

    // A finished probe of a larger student beside the results (profile `PROFILE-probe`): its own
    // bar table, with the design's students' distance from their best Kneser-Ney model beside.
    let mut probe = r.clone();
    probe.scale.profile = format!("{}-probe", r.scale.profile);
    for x in probe.headline.iter_mut() {
        x.student = "bigger".into();
    }
    for x in probe.comparisons.iter_mut() {
        x.label = x.label.replace(&s.students[0].name, "bigger");
    }
    for x in probe.runs.iter_mut() {
        x.student = "bigger".into();
    }
    for x in probe.samples.iter_mut() {
        x.student = "bigger".into();
    }
    probe.scale.students[0].name = "bigger".into();
    let probe_dir = paths.results.with_file_name(&probe.scale.profile);
    // A learning curve: a 2x run of seed 0 on the neutral set and on synthetic text, with its
    // provenance (the curve's runs are not among `runs`; the reproducibility page reads them).
    let curve_point = |eval_set: &str, bpb: f64| synthlm::experiments::curve::CurvePoint {
        student: "bigger".into(),
        condition: "synthetic".into(),
        seed: 0,
        multiple: 2.0,
        steps: 2 * s.steps,
        tokens: 2 * s.tokens_per_run(),
        eval_set: eval_set.into(),
        bpb,
        baselines: [("bigram".to_string(), 3.0), ("kn-3".to_string(), 2.5)].into(),
    };
    probe.curve = vec![curve_point("neutral", 2.7), curve_point("synthetic", 2.0)];
    let curve_run = probe_dir.join(synthlm::experiments::curve::run_dir(
        "bigger",
        "synthetic",
        0,
        2 * s.steps,
    ));
    let mut prov: synthlm::experiments::grid::RunProvenance =
        synthlm::io::read_json(&paths.results.join(&r.runs[0].dir).join("provenance.json"))
            .unwrap();
    prov.note = Some("adopted from elsewhere".into());
    // its own checkout and time, so that the page's curve line is seen to read this record
    prov.environment.git = "c0ffee1".into();
    prov.wall_s = 6.0 * 60.0 * 1234.5;
    synthlm::io::write_json(&curve_run.join("provenance.json"), &prov).unwrap();
    synthlm::io::write_json(&probe_dir.join("results.json"), &probe).unwrap();
    // A probe without its runs' scores cannot be compared document by document: refused, named.
    let err = Exp1.report(&r, &paths.results).err().unwrap();
    assert!(format!("{err:#}").contains("scores"), "{err:#}");
    // Its runs: the same runs' records (the files the comparison reads) under the probe's name.
    for run in &r.runs {
        let (from, to) = (paths.results.join(&run.dir), probe_dir.join(&run.dir));
        std::fs::create_dir_all(&to).unwrap();
        for f in ["scores.json", "suite.json"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
    let rep = Exp1.report(&r, &paths.results).unwrap();
    // The reproducibility page says how the probe was made too: its seeds and where it was
    // aggregated.
    let repro = rep
        .pages
        .iter()
        .find(|p| p.name == "exp1-reproducibility")
        .unwrap();
    let items: Vec<&String> = repro
        .blocks
        .iter()
        .flat_map(|b| match b {
            synthlm::report::Block::List(v) => v.iter().collect(),
            _ => vec![],
        })
        .collect();
    let probe_items = format!("Probe (`{}`): ", probe.scale.profile);
    assert!(items
        .iter()
        .any(|x| x.starts_with(&probe_items) && x.contains("Seeds: [0]")));
    assert!(items
        .iter()
        .any(|x| x.starts_with(&probe_items) && x.contains("Aggregated")));
    // Its curve's run, with its note, read from the run's own record.
    let curve_items = format!("{probe_items}Learning curve: ");
    assert!(
        items.iter().any(|x| x.starts_with(&curve_items)
            && x.contains("1 training run besides the grid's")
            && x.contains("`c0ffee1`")
            && x.contains("7407.0 min")),
        "{items:?}"
    );
    assert!(items
        .iter()
        .any(|x| *x == &format!("{curve_items}Note: adopted from elsewhere")));
    // The findings say the curve was decided after the results, that a run carries a note,
    // and what the curve shows (here one 2x point and no 1x point: no verdict).
    assert!(rep.pages[0].blocks.iter().any(|b| matches!(b,
        synthlm::report::Block::List(v) if v.iter().any(|x| x.starts_with(
            "The probe's learning curve was decided after these results. 1 of its 1 runs carry a note")
            && x.contains("on held-out neutral text, 0.200 at 2x the budget")))));
    // Its curve's table and figures sit beside the design's under names of their own.
    assert_eq!(rep.table("probe-curve").unwrap().height(), 2);
    for f in [
        "probe-budget-bigger-neutral",
        "probe-budget-bigger-synthetic",
    ] {
        assert!(rep.figure(f).is_ok(), "{f}");
    }
    // The probe's own comparisons of training sets are the design's under the probe's name
    // (the same runs), and nothing else of its comparisons (not its bar's); its suite tables
    // sit beside the design's under names of their own.
    let rows = |name: &str| -> Vec<String> {
        let t = rep.table(name).unwrap();
        let c = |n: &str| t.column(n).unwrap().str().unwrap().clone();
        let (l, e, d, h) = (
            c("comparison (a - b)"),
            c("held-out set"),
            c("difference, bits/byte [interval]"),
            c("p (Holm)"),
        );
        (0..t.height())
            .map(|i| {
                let v = [&l, &e, &d, &h].map(|x| x.get(i).unwrap().to_string());
                v.join(" | ")
            })
            .collect()
    };
    let between = format!("{}: ", s.students[0].name);
    let expect: Vec<String> = rows("comparisons")
        .into_iter()
        .filter(|x| x.starts_with(&between))
        .map(|x| x.replacen(&between, "bigger: ", 1))
        .collect();
    assert_eq!(expect.len(), 9);
    assert_eq!(rows("probe-comparisons"), expect);
    for t in ["suite-accuracy", "suite-generation", "suite-comparisons"] {
        let (design, probe_t) = (
            rep.table(t).unwrap(),
            rep.table(&format!("probe-{t}")).unwrap(),
        );
        assert_eq!(design.height(), probe_t.height(), "{t}");
        // Built from the probe's results, not the design's: its student names its columns or
        // its comparisons.
        let names = format!("{:?}{}", probe_t.get_column_names(), probe_t);
        assert!(names.contains("bigger"), "{t}: {names}");
        assert!(!names.contains(&s.students[0].name), "{t}: {names}");
    }
    // And its samples, under its student's name.
    let probe_samples = rep.pages[0].blocks.iter().any(|b| {
        matches!(b, synthlm::report::Block::List(v)
            if !v.is_empty() && v.iter().all(|x| x.starts_with("**bigger / trained on ")))
    });
    assert!(!r.samples.is_empty() && probe_samples);
    // The page's findings say what the probe met too.
    let probe_finding = format!(
        "The probe of a larger student (profile `{}`",
        probe.scale.profile
    );
    assert!(rep.pages[0]
        .blocks
        .iter()
        .any(|b| matches!(b, synthlm::report::Block::List(v)
        if v.iter().any(|x| x.starts_with(&probe_finding) && x.contains(" cells")))));
    // The two students against each other: the same runs under two names differ by exactly 0 on
    // every training set and held-out set, neutral included.
    let vs = rep.table("probe-vs-design").unwrap();
    assert_eq!(vs.height(), 9);
    let sets = vs.column("held-out set").unwrap().str().unwrap();
    assert_eq!(
        sets.into_no_null_iter().filter(|x| *x == "neutral").count(),
        3
    );
    let d = vs
        .column("difference, bits/byte [interval]")
        .unwrap()
        .str()
        .unwrap();
    assert!(
        d.into_no_null_iter().all(|x| x == "0.000 [0.000, 0.000]"),
        "{vs}"
    );
    // One probe run made worse on one held-out set by a quarter bit per byte of every document:
    // that row alone moves, by exactly +0.250 (the probe is a, so worse is positive).
    let worse = probe_dir.join(&r.runs[0].dir).join("scores.json");
    worsen(&worse, 0.25);
    let vs = Exp1
        .report(&r, &paths.results)
        .unwrap()
        .table("probe-vs-design")
        .unwrap();
    let labels = vs.column("comparison (a - b)").unwrap().str().unwrap();
    let sets = vs.column("held-out set").unwrap().str().unwrap();
    let d = vs
        .column("difference, bits/byte [interval]")
        .unwrap()
        .str()
        .unwrap();
    let moved = format!("on {} -", r.runs[0].condition);
    for ((l, set), x) in labels
        .into_no_null_iter()
        .zip(sets.into_no_null_iter())
        .zip(d.into_no_null_iter())
    {
        let expect = if l.contains(&moved) && set == "synthetic" {
            "0.250 [0.250, 0.250]"
        } else {
            "0.000 [0.000, 0.000]"
        };
        assert_eq!(x, expect, "{l} on {set}");
    }
    std::fs::copy(
        paths.results.join(&r.runs[0].dir).join("scores.json"),
        &worse,
    )
    .unwrap();
    let table = rep.table("probe-bar").unwrap();
    // Its heading counts the probe's seeds.
    let heading = match probe.scale.seeds.len() {
        1 => "A larger student, 1 seed".to_string(),
        n => format!("A larger student, {n} seeds"),
    };
    assert!(rep
        .pages
        .iter()
        .flat_map(|p| &p.blocks)
        .any(|b| matches!(b, synthlm::report::Block::Heading(_, h) if *h == heading)));
    let student = table.column("student").unwrap().str().unwrap();
    assert!(student.into_no_null_iter().all(|x| x == "bigger"));
    let beside = format!("{} - best KN, per seed", s.students[0].name);
    let main = table.column(&beside).unwrap().str().unwrap();
    let own = table.column("- best KN").unwrap().str().unwrap();
    let own_seeds = table.column("per seed, KN").unwrap().str().unwrap();
    // The same runs under two names: the column beside repeats the probe's own difference and
    // its per-seed range.
    for ((m, o), range) in main
        .into_no_null_iter()
        .zip(own.into_no_null_iter())
        .zip(own_seeds.into_no_null_iter())
    {
        assert_ne!(m, "-");
        let diff = o.split(' ').next().unwrap();
        assert_eq!(m, format!("{diff} ({range})"));
    }
    // A probe trained for other steps, at a seed the design lacks, or scored without other
    // neutral documents did not see the design's tokens or documents: refused, named.
    let refuse = |p: &synthlm::experiments::results::Results| {
        synthlm::io::write_json(&probe_dir.join("results.json"), p).unwrap();
        let err = Exp1.report(&r, &paths.results).err().unwrap().to_string();
        assert!(err.contains("did not train on the data"), "{err}");
    };
    let mut other = probe.clone();
    other.scale.steps += 1;
    refuse(&other);
    let mut other = probe.clone();
    other.scale.seeds = vec![99];
    refuse(&other);
    let mut other = probe.clone();
    other.neutral_excluded.push(usize::MAX);
    refuse(&other);

    two_seeds(&r, &probe, &paths.results, &probe_dir, &moved);
}

/// Add `by` bits per byte to every document of held-out synthetic text in a run's `scores.json`.
fn worsen(scores: &Path, by: f64) {
    let mut sc: std::collections::BTreeMap<String, synthlm::stats::DocScores> =
        synthlm::io::read_json(scores).unwrap();
    let d = sc.get_mut("synthetic").unwrap();
    for (b, &n) in d.bits.iter_mut().zip(&d.bytes) {
        *b += by * n as f64;
    }
    synthlm::io::write_json(scores, &sc).unwrap();
}

/// Every run of `res` again as seed 1 (files copied to `RUN-again` under `base`).
fn again_as_seed_one(res: &mut synthlm::experiments::results::Results, base: &Path) {
    let again: Vec<_> = res
        .runs
        .iter()
        .map(|x| {
            let mut y = x.clone();
            (y.seed, y.dir) = (1, format!("{}-again", x.dir));
            std::fs::create_dir_all(base.join(&y.dir)).unwrap();
            for f in std::fs::read_dir(base.join(&x.dir)).unwrap() {
                let f = f.unwrap().path();
                if f.is_file() {
                    std::fs::copy(&f, base.join(&y.dir).join(f.file_name().unwrap())).unwrap();
                }
            }
            y
        })
        .collect();
    res.runs.extend(again);
    res.scale.seeds = vec![0, 1];
}

/// The probe at two seeds: the design's and the probe's runs again as seed 1; on the first
/// training set, the probe's seed-1 run a quarter bit per byte worse on held-out synthetic and
/// the design's a tenth. Against the design each document is averaged over the seeds (that row
/// +0.075, every other 0) and each seed pair's whole-set difference is given: 0 and +0.150 (a
/// pairing of the wrong seeds would give -0.100 and +0.250).
fn two_seeds(
    r: &synthlm::experiments::results::Results,
    probe: &synthlm::experiments::results::Results,
    results: &Path,
    probe_dir: &Path,
    moved: &str,
) {
    let (mut r2, mut probe2) = (r.clone(), probe.clone());
    again_as_seed_one(&mut r2, results);
    again_as_seed_one(&mut probe2, probe_dir);
    // The probe's seed-1 runs trained on another machine: both machines are named, with counts.
    let per_seed = probe.runs.len();
    for x in probe2.runs.iter_mut().filter(|x| x.seed == 1) {
        x.provenance.environment.cpu = "Other CPU".into();
    }
    synthlm::io::write_json(&probe_dir.join("results.json"), &probe2).unwrap();
    let first = format!("{}-again", r.runs[0].dir);
    worsen(&probe_dir.join(&first).join("scores.json"), 0.25);
    worsen(&results.join(&first).join("scores.json"), 0.1);
    let rep = Exp1.report(&r2, results).unwrap();
    let blocks: Vec<_> = rep.pages.iter().flat_map(|p| &p.blocks).collect();
    assert!(blocks.iter().any(
        |b| matches!(b, synthlm::report::Block::Heading(_, h) if h == "A larger student, 2 seeds")
    ));
    assert!(blocks.iter().any(|b| matches!(b, synthlm::report::Block::Text(t)
        if t.contains("seeds 0, 1;") && t.contains("Its intervals and every-seed condition are the bar's"))));
    let machines = format!(
        "Other CPU, {} cores, ",
        probe.runs[0].provenance.environment.cores
    );
    assert!(blocks
        .iter()
        .any(|b| matches!(b, synthlm::report::Block::List(items)
        if items.iter().any(|t| t.contains("Probe (") && t.contains(&machines)
            && t.matches(&format!(" ({per_seed} runs)")).count() == 2))));
    let vs = rep.table("probe-vs-design").unwrap();
    assert_eq!(vs.height(), 9);
    let col = |name: &str| -> Vec<String> {
        let c = vs.column(name).unwrap().str().unwrap().clone();
        c.into_no_null_iter().map(String::from).collect()
    };
    let rows = col("comparison (a - b)")
        .into_iter()
        .zip(col("held-out set"))
        .zip(col("difference, bits/byte [interval]"))
        .zip(col("per seed pairing"));
    let mut moved_rows = 0;
    for (((l, set), x), per_seed) in rows {
        let (expect, range) = if l.contains(moved) && set == "synthetic" {
            moved_rows += 1;
            ("0.075 [0.075, 0.075]", "0.000 to 0.150 (2)")
        } else {
            ("0.000 [0.000, 0.000]", "0.000 to 0.000 (2)")
        };
        assert_eq!(
            (x.as_str(), per_seed.as_str()),
            (expect, range),
            "{l} on {set}"
        );
    }
    assert_eq!(moved_rows, 1);
}
