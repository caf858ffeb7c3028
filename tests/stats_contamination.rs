//! Reporting statistics and contamination checks on cases with known answers.

mod common;

use synthlm::data::document::Document;
use synthlm::eval::contamination::{contamination, ngram_set};
use synthlm::stats::{bootstrap_mean_ci, paired_test, spearman};

#[test]
fn bootstrap_interval_contains_the_mean_and_narrows_with_more_data() {
    let few = [2.0, 2.5, 3.0];
    let ci = bootstrap_mean_ci(&few, 0.95, 5000, 1);
    assert!((ci.mean - 2.5).abs() < 1e-12 && ci.lo <= 2.5 && 2.5 <= ci.hi);
    assert!(
        ci.lo >= 2.0 && ci.hi <= 3.0,
        "a bootstrap of means stays within the data: {ci:?}"
    );
    let many: Vec<f64> = (0..300).map(|i| 2.0 + (i % 3) as f64 * 0.5).collect();
    let ci2 = bootstrap_mean_ci(&many, 0.95, 5000, 1);
    assert!(ci2.hi - ci2.lo < (ci.hi - ci.lo) / 3.0);
    assert_eq!(bootstrap_mean_ci(&few, 0.95, 5000, 1), ci, "seeded");
}

#[test]
fn paired_test_p_values_are_exact() {
    // Three positive differences: only the all-positive and all-negative sign patterns are as
    // extreme, so p = 2/8.
    let t = paired_test(&[3.0, 3.1, 3.2], &[2.0, 2.0, 2.0], 0);
    assert!((t.p_value - 0.25).abs() < 1e-12, "{t:?}");
    assert!((t.mean_diff - 1.1).abs() < 1e-12);
    // No difference at all: p = 1.
    assert_eq!(paired_test(&[1.0, 2.0], &[1.0, 2.0], 0).p_value, 1.0);
    // Ten consistent differences: p = 2/1024.
    let a: Vec<f64> = (0..10).map(|i| 1.0 + i as f64).collect();
    let b: Vec<f64> = a.iter().map(|x| x - 0.5).collect();
    assert!((paired_test(&a, &b, 0).p_value - 2.0 / 1024.0).abs() < 1e-12);
}

#[test]
fn spearman_of_monotone_and_reversed_orders() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert!((spearman(&x, &[10.0, 20.0, 30.0, 40.0, 80.0]) - 1.0).abs() < 1e-12);
    assert!((spearman(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
}

#[test]
fn contamination_finds_copied_passages_only() {
    let train: Vec<Document> = (0..30)
        .map(|i| Document::text(format!("t{i}"), "train", common::english(6, i)))
        .collect();
    let set = ngram_set(&train);
    let clean: Vec<Document> = (0..10)
        .map(|i| Document::text(format!("e{i}"), "eval", common::english(6, 500 + i)))
        .collect();
    let c = contamination("train", &set, "clean", &clean);
    // The fixture grammar is tiny, so short phrases repeat, but 13-grams across sentences
    // rarely do.
    assert!(c.ngram_overlap < 0.05, "{c:?}");
    let mut dirty = clean.clone();
    dirty[0].text = train[4].text.clone();
    let d = contamination("train", &set, "dirty", &dirty);
    assert!(
        d.docs_flagged >= 0.1 && d.ngram_overlap > c.ngram_overlap + 0.05,
        "{d:?}"
    );
}
