//! Duplicate detection and diversity measures on constructed cases.

mod common;

use synthlm::data::document::Document;
use synthlm::eval::diversity::distinct_n;
use synthlm::filter::dedup::{exact_duplicate_rate, near_duplicates};

#[test]
fn exact_and_near_duplicates_are_found_and_distinct_texts_are_not() {
    let base: Vec<String> = (0..40).map(|i| common::english(10, i)).collect();
    let mut texts: Vec<String> = base.clone();
    texts.push(base[3].to_uppercase().replace(' ', "  ")); // exact after normalisation
    let mut near = base[7].clone();
    near.push_str(" The end."); // one changed shingle in ~40
    texts.push(near);
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    assert!((exact_duplicate_rate(&refs) - 1.0 / 42.0).abs() < 1e-9);
    let nd = near_duplicates(&refs, 0.8);
    assert_eq!(nd[40], Some(3));
    assert_eq!(nd[41], Some(7));
    assert!(
        nd[..40].iter().all(|d| d.is_none()),
        "independent texts are not near-duplicates: {nd:?}"
    );
}

#[test]
fn distinct_n_separates_repetitive_from_varied_text() {
    let repetitive = vec!["the cat sat on the mat"; 50];
    let varied: Vec<String> = (0..50).map(|i| common::english(2, i)).collect();
    let varied: Vec<&str> = varied.iter().map(|s| s.as_str()).collect();
    assert!((distinct_n(&repetitive, 2) - 5.0 / 250.0).abs() < 1e-12); // 5 distinct of 250 bigrams
    assert!(distinct_n(&varied, 3) > 5.0 * distinct_n(&repetitive, 3));
    assert_eq!(distinct_n(&["a b c d"], 1), 1.0);
}

#[test]
fn first_look_table_has_a_row_per_corpus() {
    let a: Vec<Document> = (0..20)
        .map(|i| Document::text(format!("{i}"), "a", common::english(5, i)))
        .collect();
    let b: Vec<Document> = (0..10)
        .map(|i| Document::text(format!("{i}"), "b", "same text every time".to_string()))
        .collect();
    let df = synthlm::generate::stats::first_look(&[("a".into(), a), ("b".into(), b)]).unwrap();
    assert_eq!(df.height(), 2);
    let exact = df.column("exact_dup_rate").unwrap().f64().unwrap();
    assert_eq!(exact.get(0), Some(0.0));
    assert_eq!(exact.get(1), Some(0.9));
}
