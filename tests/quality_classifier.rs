//! The learned quality classifier end to end through `synthlm classify`'s library call: fitted
//! on annotations of a sheet drawn from generated corpora, scored against the annotator
//! (held out) and the hand labels, written with its score of every record into the quality
//! files; and the bad inputs that must stop it (a quality file of another pool, an annotated
//! record that is not in the pool) stop it with the file named.

mod common;

use std::path::Path;
use synthlm::filter::annotator::{Annotation, SheetAnnotation};
use synthlm::filter::heuristics::Thresholds;
use synthlm::filter::signals::{self, QualityFile};
use synthlm::generate::seeds::Seeds;
use synthlm::generate::{generate, GenSettings, Generator};

const FAMILIES: [Generator; 2] = [Generator::ALL[0], Generator::ALL[1]];

/// Two generated families in `dir/gen`, their quality files in `dir/quality`, a sheet of 30
/// records per family with every third hand-labelled, and annotations that grade a record
/// by the length of its judged text (a grader the signals can learn), spread over 1-4.
fn fixture(dir: &Path) -> std::path::PathBuf {
    let seeds = Seeds::committed().unwrap();
    let mut pools = Vec::new();
    let mut words = std::collections::HashMap::new();
    for g in FAMILIES {
        let out = dir.join("gen").join(g.name());
        let mut teacher = common::FakeTeacher::new(None);
        generate(
            &GenSettings::new(g, 1),
            &seeds,
            &out,
            60,
            20,
            &mut teacher,
            None,
        )
        .unwrap();
        let docs = synthlm::experiments::corpora::generated(&dir.join("gen"), g).unwrap();
        let q = signals::score(
            &docs,
            &out.display().to_string(),
            &Thresholds::default(),
            None,
            &indicatif::ProgressBar::hidden(),
        );
        for r in &q.records {
            words.insert(
                (g.name().to_string(), r.id.clone()),
                r.signals.values["words"],
            );
        }
        let path = dir.join("quality").join(format!("{}.json", g.name()));
        synthlm::io::write_json(&path, &q).unwrap();
        pools.push((g.name().to_string(), docs));
    }
    let mut rows = synthlm::filter::labels::draw(&pools, 30, 1, &Default::default());
    let length = |r: &synthlm::filter::labels::LabelRow| words[&(r.family.clone(), r.id.clone())];
    let (lo, hi) = rows
        .iter()
        .map(length)
        .fold((f64::MAX, f64::MIN), |(a, b), w| (a.min(w), b.max(w)));
    let mut lines = String::new();
    for (i, r) in rows.iter_mut().enumerate() {
        let expected = 1.0 + 3.0 * (length(r) - lo) / (hi - lo).max(1.0);
        if i % 3 == 0 {
            r.label = Some(expected.round() as u8);
        }
        let a = SheetAnnotation {
            id: r.id.clone(),
            family: r.family.clone(),
            annotator: "test".into(),
            prompt: String::new(),
            annotation: Annotation {
                probs: [0.0; 6],
                expected,
                label: expected.round() as u8,
                digit_mass: 1.0,
            },
        };
        lines += &(serde_json::to_string(&a).unwrap() + "\n");
    }
    let sheet = dir.join("sheet.jsonl");
    synthlm::filter::labels::write_sheet(&sheet, &rows).unwrap();
    std::fs::write(dir.join("ann.jsonl"), lines).unwrap();
    sheet
}

#[test]
fn the_classifier_learns_the_annotator_and_scores_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sheet = fixture(d);
    let out = d.join("classifier.json");
    let text = synthlm::commands::classify(
        &sheet,
        &d.join("ann.jsonl"),
        &d.join("gen"),
        &d.join("quality"),
        &out,
    )
    .unwrap();
    assert!(
        text.contains("against the annotator it learns from, over 60 records"),
        "{text}"
    );
    assert!(
        text.contains("annotator against the hand labels, over 20 records"),
        "{text}"
    );
    assert!(
        text.contains("classifier against the hand labels, over 20 records"),
        "{text}"
    );
    let model: serde_json::Value = synthlm::io::read_json(&out).unwrap();
    let rho = model["held_out_agreement_with_annotator"]["spearman"]
        .as_f64()
        .unwrap();
    assert!(
        rho > 0.8,
        "length is in the signals: held-out Spearman {rho}"
    );
    let sha = synthlm::io::sha256_file(&out).unwrap();
    for g in FAMILIES {
        let q: QualityFile =
            synthlm::io::read_json(&d.join("quality").join(format!("{}.json", g.name()))).unwrap();
        assert_eq!(q.classifier.as_deref(), Some(sha.as_str()));
        assert!(q
            .records
            .iter()
            .all(|r| r.classifier.is_some_and(|s| (0.0..=5.0).contains(&s))));
    }
}

#[test]
fn a_stale_quality_file_or_a_record_outside_the_pool_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sheet = fixture(d);
    let run = |sheet: &Path| classify(d, sheet).map_err(|e| format!("{e:#}"));
    // an annotated record the pool does not have
    let mut rows = synthlm::filter::labels::read_sheet(&sheet).unwrap();
    rows[0].id = "part-99999:0".into();
    let other = d.join("other-sheet.jsonl");
    synthlm::filter::labels::write_sheet(&other, &rows).unwrap();
    let ann = std::fs::read_to_string(d.join("ann.jsonl")).unwrap();
    let first_id = synthlm::filter::labels::read_sheet(&sheet).unwrap()[0]
        .id
        .clone();
    std::fs::write(
        d.join("ann.jsonl"),
        ann.replacen(&first_id, "part-99999:0", 1),
    )
    .unwrap();
    let e = run(&other).unwrap_err();
    assert!(
        e.contains("part-99999:0") && e.contains("not in the pool"),
        "{e}"
    );
    std::fs::write(d.join("ann.jsonl"), ann).unwrap();
    // the pool grew after it was scored: its quality file no longer matches it
    let g = FAMILIES[0];
    let mut teacher = common::FakeTeacher::new(None);
    let out = d.join("gen").join(g.name());
    generate(
        &GenSettings::new(g, 1),
        &Seeds::committed().unwrap(),
        &out,
        80,
        20,
        &mut teacher,
        None,
    )
    .unwrap();
    let e = run(&sheet).unwrap_err();
    assert!(
        e.contains(&format!("{}.json", g.name())) && e.contains("another pool"),
        "{e}"
    );
    assert!(
        !d.join("classifier.json").exists(),
        "nothing written on a bad input"
    );
}

/// `synthlm corpora`'s inputs over the fixture once `classify` has run: the families of
/// `dir/gen`, their quality files copied to where it reads them (`dir/q/gen/FAMILY.json`).
fn corpora_inputs(d: &Path, sheet: &Path) -> synthlm::commands::CorporaInputs {
    for g in FAMILIES {
        let to = d.join("q").join("gen").join(format!("{}.json", g.name()));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(d.join("quality").join(format!("{}.json", g.name())), to).unwrap();
    }
    synthlm::commands::CorporaInputs {
        dirs: vec![d.join("gen")],
        quality: d.join("q"),
        sheet: sheet.to_path_buf(),
        second_pass: None,
        annotations: d.join("ann.jsonl"),
        classifier: d.join("classifier.json"),
        time_annotator: false,
        time_teacher: false,
    }
}

fn classify(d: &Path, sheet: &Path) -> anyhow::Result<()> {
    synthlm::commands::classify(
        sheet,
        &d.join("ann.jsonl"),
        &d.join("gen"),
        &d.join("quality"),
        &d.join("classifier.json"),
    )
    .map(drop)
}

/// The summary copies the classifier file's agreement, so `corpora` refuses a classifier file
/// fitted on another sheet or other annotations than those it is given, naming the file.
#[test]
fn corpora_refuses_a_classifier_not_fitted_on_this_sheet_and_these_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sheet = fixture(d);
    classify(d, &sheet).unwrap();
    let i = corpora_inputs(d, &sheet);
    let out = d.join("summary.json");
    synthlm::commands::corpora(&i, &out).unwrap();
    let s: synthlm::generate::summary::CorporaSummary = synthlm::io::read_json(&out).unwrap();
    assert_eq!(s.classifier.as_ref().unwrap().records, 60);
    // model signals not timed in this run say so, never a time of 0
    for signal in ["teacher NLL", "LLM annotator (Gemma 3 270M)"] {
        let c = s.costs.iter().find(|c| c.signal == signal).unwrap();
        assert_eq!((c.us_per_record, c.records), (None, 0), "{c:?}");
        assert!(c.note.starts_with("not timed in this run"), "{c:?}");
    }
    let c = s
        .costs
        .iter()
        .find(|c| c.signal == "learned classifier")
        .unwrap();
    assert!(c.note.contains("computing them excluded"), "{c:?}");
    // the quality files the summary is computed from are among its inputs, with the hash of
    // their scores: the same whatever the timings say
    for g in FAMILIES {
        let q = d.join("q").join("gen").join(format!("{}.json", g.name()));
        let key = format!("{}{}", q.display(), synthlm::generate::summary::SCORES_KEY);
        let mut file: synthlm::filter::signals::QualityFile = synthlm::io::read_json(&q).unwrap();
        let sha = file.scores_sha256().unwrap();
        assert_eq!(s.inputs.get(&key), Some(&sha), "{:?}", s.inputs.keys());
        file.seconds.insert("rules".into(), 1e9);
        file.load_average = Some(99.0);
        assert_eq!(file.scores_sha256().unwrap(), sha, "timings are not scores");
        file.records[0].signals.fails.push("made-up rule".into());
        assert_ne!(
            file.scores_sha256().unwrap(),
            sha,
            "a changed score changes the hash"
        );
    }
    // the same rows, one annotation's score changed after the classifier was fitted
    let ann = std::fs::read_to_string(d.join("ann.jsonl")).unwrap();
    let a: SheetAnnotation = serde_json::from_str(ann.lines().next().unwrap()).unwrap();
    let mut b = a.clone();
    b.annotation.expected += 0.5;
    let changed = ann.replacen(
        &serde_json::to_string(&a).unwrap(),
        &serde_json::to_string(&b).unwrap(),
        1,
    );
    assert_ne!(changed, ann);
    std::fs::write(d.join("ann.jsonl"), &changed).unwrap();
    let e = format!("{:#}", synthlm::commands::corpora(&i, &out).unwrap_err());
    assert!(
        e.contains("classifier.json was not fitted on the current") && e.contains("ann.jsonl"),
        "{e}"
    );
    std::fs::write(d.join("ann.jsonl"), &ann).unwrap();
    // a hand label added to the sheet after the classifier was fitted
    let mut rows = synthlm::filter::labels::read_sheet(&sheet).unwrap();
    let r = rows.iter_mut().find(|r| r.label.is_none()).unwrap();
    r.label = Some(3);
    std::fs::remove_file(&sheet).unwrap();
    synthlm::filter::labels::write_sheet(&sheet, &rows).unwrap();
    let e = format!("{:#}", synthlm::commands::corpora(&i, &out).unwrap_err());
    assert!(
        e.contains("was not fitted on the current") && e.contains("sheet.jsonl"),
        "{e}"
    );
}

/// A sheet row whose record is not in the pool's quality file is an error naming the sheet,
/// the quality file and the record, not a row the summary silently leaves out.
#[test]
fn corpora_with_a_sheet_row_outside_its_pool_is_an_error_naming_the_files_and_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sheet = fixture(d);
    let mut rows = synthlm::filter::labels::read_sheet(&sheet).unwrap();
    let mut stranger = rows.iter().find(|r| r.label.is_none()).unwrap().clone();
    stranger.id = "part-99999:0".into();
    let family = stranger.family.clone();
    rows.push(stranger);
    std::fs::remove_file(&sheet).unwrap();
    synthlm::filter::labels::write_sheet(&sheet, &rows).unwrap();
    // not annotated, not labelled: `classify` fits on the other rows
    classify(d, &sheet).unwrap();
    let i = corpora_inputs(d, &sheet);
    let e = format!(
        "{:#}",
        synthlm::commands::corpora(&i, &d.join("summary.json")).unwrap_err()
    );
    let quality = Path::new("q").join("gen").join(format!("{family}.json"));
    assert!(
        e.contains("sheet.jsonl")
            && e.contains("part-99999:0")
            && e.contains(&quality.display().to_string())
            && e.contains("is not in"),
        "{e}"
    );
    assert!(!d.join("summary.json").exists(), "nothing written");
}
