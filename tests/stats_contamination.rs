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

use synthlm::stats::{
    bootstrap_reaches, holm, paired_docs, seed_doc_interval, DocScores, IntervalKind,
};

/// One document of `bits` bits and 1 byte per seed: bits per byte = `bits`.
fn one_doc(bits: f64) -> DocScores {
    DocScores {
        bits: vec![bits],
        bytes: vec![1],
    }
}

#[test]
fn three_seeds_allow_only_min_max_and_say_so() {
    // 3^-3 = 3.7% > 2.5%: a 95% bootstrap over 3 seeds would stop at the extreme seeds.
    assert!(!bootstrap_reaches(3, 0.95) && bootstrap_reaches(4, 0.95));
    let seeds = [one_doc(2.0), one_doc(2.3), one_doc(2.9)];
    let e = seed_doc_interval(&seeds, 0.95, 1000, 1);
    assert_eq!((e.lo, e.hi), (2.0, 2.9));
    assert!((e.mean - 2.4).abs() < 1e-12);
    assert_eq!(e.interval, IntervalKind::MinMax { n: 3 });
    assert_eq!(e.interval.label(), "min-max over 3 seeds");
}

#[test]
fn one_seed_gets_its_documents_bootstrap_not_a_zero_width_range() {
    // One run: the only interval is over its documents, the interval the paired comparisons
    // use (`bpb_interval`); a "min-max over 1 seed" would print [x, x].
    let d = DocScores {
        bits: vec![10.0, 30.0, 20.0, 50.0, 5.0],
        bytes: vec![10, 10, 20, 20, 5],
    };
    let e = seed_doc_interval(std::slice::from_ref(&d), 0.95, 2000, 4);
    assert!((e.mean - d.bpb()).abs() < 1e-12);
    assert_eq!(
        (e.lo, e.hi),
        synthlm::stats::bpb_interval(&d, 0.95, 2000, 4)
    );
    assert!(e.lo < e.mean && e.mean < e.hi, "{e:?}");
    assert_eq!(e.interval.label(), "95% bootstrap over 5 documents");
}

#[test]
fn the_hierarchical_interval_matches_the_exact_bootstrap_distribution() {
    // Four seeds of one document each: resampling documents changes nothing, so the
    // statistic is the mean of 4 seeds drawn with replacement, whose exact distribution is the
    // 4^4 = 256 equally likely draws. Computed by hand (enumeration) below.
    let v = [1.0, 2.0, 3.0, 4.0];
    let mut means = Vec::new();
    for a in v {
        for b in v {
            for c in v {
                for d in v {
                    means.push((a + b + c + d) / 4.0);
                }
            }
        }
    }
    means.sort_by(f64::total_cmp);
    // The 2.5% and 97.5% quantiles of 256 values (linear interpolation, as the bootstrap).
    let q = |p: f64| {
        let pos = p * 255.0;
        let (i, f) = (pos.floor() as usize, pos - pos.floor());
        means[i] + (means[i + 1] - means[i]) * f
    };
    let seeds: Vec<DocScores> = v.iter().map(|&x| one_doc(x)).collect();
    let e = seed_doc_interval(&seeds, 0.95, 200_000, 3);
    assert!(matches!(
        e.interval,
        IntervalKind::HierarchicalBootstrap { seeds: 4, .. }
    ));
    assert!(
        (e.lo - q(0.025)).abs() <= 0.25 && (e.hi - q(0.975)).abs() <= 0.25,
        "{e:?} vs [{}, {}]",
        q(0.025),
        q(0.975)
    );
    assert_eq!((q(0.025), q(0.975)), (1.5, 3.5));
    // With documents that vary within seeds, the interval widens.
    let noisy: Vec<DocScores> = v
        .iter()
        .map(|&x| DocScores {
            bits: vec![x - 1.0, x + 1.0, x],
            bytes: vec![1, 1, 1],
        })
        .collect();
    let n = seed_doc_interval(&noisy, 0.95, 20_000, 3);
    assert!(n.hi - n.lo > e.hi - e.lo, "{n:?} vs {e:?}");
}

#[test]
fn holm_matches_a_hand_computed_example() {
    // p = [0.01, 0.04, 0.03, 0.20]: sorted 0.01, 0.03, 0.04, 0.20 times 4, 3, 2, 1 =
    // 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.20.
    let adj = holm(&[0.01, 0.04, 0.03, 0.20]);
    let want = [0.04, 0.09, 0.09, 0.20];
    for (a, w) in adj.iter().zip(want) {
        assert!((a - w).abs() < 1e-12, "{adj:?}");
    }
    assert_eq!(holm(&[0.5, 0.6]), vec![1.0, 1.0], "capped at 1");
}

#[test]
fn paired_documents_detect_a_consistent_difference_and_not_noise() {
    let n = 200;
    let bytes = vec![100u64; n];
    let base: Vec<f64> = (0..n).map(|i| 200.0 + (i % 7) as f64 * 10.0).collect();
    let a = DocScores {
        bits: base.iter().map(|b| b - 5.0).collect(),
        bytes: bytes.clone(),
    };
    let b = DocScores {
        bits: base.clone(),
        bytes: bytes.clone(),
    };
    let t = paired_docs(&a, &b, 0.95, 5000, 1);
    assert!(
        (t.diff.mean + 0.05).abs() < 1e-12 && t.diff.hi < 0.0,
        "{t:?}"
    );
    assert!(
        t.p_value <= 1.0 / 5001.0 + 1e-12,
        "at the floor: {}",
        t.p_value
    );
    // Differences of alternating sign: no evidence.
    let c = DocScores {
        bits: base
            .iter()
            .enumerate()
            .map(|(i, b)| if i % 2 == 0 { b + 3.0 } else { b - 3.0 })
            .collect(),
        bytes,
    };
    let t2 = paired_docs(&c, &b, 0.95, 5000, 1);
    assert!(
        t2.p_value > 0.5 && t2.diff.lo < 0.0 && t2.diff.hi > 0.0,
        "{t2:?}"
    );
}

#[test]
fn effective_documents_weigh_documents_by_their_bytes() {
    let set = |bytes: Vec<u64>| DocScores {
        bits: vec![0.0; bytes.len()],
        bytes,
    };
    assert!((set(vec![50; 8]).effective_documents() - 8.0).abs() < 1e-12);
    // One document with nearly all the bytes: a set of 101 documents counts as about one.
    let skewed = set([vec![100_000], vec![10; 100]].concat());
    let n = skewed.effective_documents();
    assert!(n > 1.0 && n < 1.03, "{n}");
    // Two long and two short: (2a + 2b)^2 / (2a^2 + 2b^2).
    let n = set(vec![300, 300, 100, 100]).effective_documents();
    assert!((n - 64.0 / 20.0).abs() < 1e-12, "{n}");
    assert_eq!(set(vec![]).effective_documents(), 0.0);
}

/// Documents are averaged over seeds one by one; seeds scored on other documents are refused.
#[test]
fn mean_over_seeds_averages_documents_and_refuses_other_documents() {
    let seed = |bits: [f64; 2], bytes: [u64; 2]| DocScores {
        bits: bits.to_vec(),
        bytes: bytes.to_vec(),
    };
    let m = synthlm::stats::mean_over_seeds(&[seed([1.0, 4.0], [2, 3]), seed([3.0, 8.0], [2, 3])]);
    assert_eq!((m.bits, m.bytes), (vec![2.0, 6.0], vec![2, 3]));
    for other in [
        seed([1.0, 4.0], [2, 4]),
        DocScores {
            bits: vec![1.0],
            bytes: vec![2],
        },
    ] {
        let r = std::panic::catch_unwind(|| {
            synthlm::stats::mean_over_seeds(&[seed([1.0, 4.0], [2, 3]), other.clone()])
        });
        let msg = r
            .err()
            .and_then(|e| e.downcast_ref::<&str>().map(|s| s.to_string()));
        assert_eq!(
            msg.as_deref(),
            Some("mean over seeds of scores on different documents")
        );
    }
}
