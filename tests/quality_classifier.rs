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
    let run = |sheet: &Path| {
        synthlm::commands::classify(
            sheet,
            &d.join("ann.jsonl"),
            &d.join("gen"),
            &d.join("quality"),
            &d.join("classifier.json"),
        )
        .map_err(|e| format!("{e:#}"))
    };
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
