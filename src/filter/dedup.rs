//! Exact and near-duplicate detection.
//!
//! Exact: texts equal after lower-casing and collapsing whitespace. Near: MinHash signatures of
//! word 5-gram shingles (128 hash functions), banded LSH (32 bands x 4 rows) to find candidate
//! pairs, kept when the estimated Jaccard similarity is at least the threshold (0.8 by default,
//! as in Lee et al. 2022 and the FineWeb pipeline). A document counts as a duplicate when it
//! matches an *earlier* one, so the rate is the fraction a deduplication would remove.

use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

const PERMS: usize = 128;
const BANDS: usize = 32;
const ROWS: usize = PERMS / BANDS;
const SHINGLE: usize = 5;
const MERSENNE: u64 = (1 << 61) - 1;

fn fnv(bytes: &[u8]) -> u64 {
    crate::hash::fnv1a(bytes.iter().copied())
}

/// Text normalised for exact matching.
pub fn normalize(text: &str) -> String {
    text.split_whitespace()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fraction of texts that equal an earlier text after normalisation.
pub fn exact_duplicate_rate(texts: &[&str]) -> f64 {
    let mut seen = HashSet::new();
    let dups = texts
        .iter()
        .filter(|t| !seen.insert(fnv(normalize(t).as_bytes())))
        .count();
    dups as f64 / texts.len().max(1) as f64
}

fn hash_params() -> Vec<(u64, u64)> {
    // Fixed pseudo-random (a, b) pairs for h(x) = (a·x + b) mod (2^61 − 1).
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..PERMS)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = (x >> 3) % (MERSENNE - 1) + 1;
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (a, (x >> 3) % MERSENNE)
        })
        .collect()
}

/// MinHash signature of a text's word 5-gram shingles (short texts: one shingle of all words).
pub fn signature(text: &str, params: &[(u64, u64)]) -> Vec<u64> {
    let words: Vec<String> = text.split_whitespace().map(|w| w.to_lowercase()).collect();
    let shingles: Vec<u64> = if words.len() < SHINGLE {
        vec![fnv(words.join(" ").as_bytes())]
    } else {
        words
            .windows(SHINGLE)
            .map(|w| fnv(w.join(" ").as_bytes()) % MERSENNE)
            .collect()
    };
    params
        .iter()
        .map(|&(a, b)| {
            shingles
                .iter()
                .map(|&s| ((a as u128 * s as u128 + b as u128) % MERSENNE as u128) as u64)
                .min()
                .unwrap_or(u64::MAX)
        })
        .collect()
}

/// Estimated Jaccard similarity of two signatures.
pub fn similarity(a: &[u64], b: &[u64]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// For each text, the index of an earlier text it near-duplicates (Jaccard >= threshold).
pub fn near_duplicates(texts: &[&str], threshold: f64) -> Vec<Option<usize>> {
    let params = hash_params();
    let sigs: Vec<Vec<u64>> = texts.par_iter().map(|t| signature(t, &params)).collect();
    let mut buckets: Vec<HashMap<u64, Vec<usize>>> = vec![HashMap::new(); BANDS];
    let mut out = vec![None; texts.len()];
    for (i, sig) in sigs.iter().enumerate() {
        for (band, bucket) in buckets.iter_mut().enumerate() {
            let key = fnv(&sig[band * ROWS..(band + 1) * ROWS]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>());
            let entry = bucket.entry(key).or_default();
            if out[i].is_none() {
                out[i] = entry
                    .iter()
                    .copied()
                    .find(|&j| similarity(&sigs[j], sig) >= threshold);
            }
            entry.push(i);
        }
    }
    out
}

/// Fraction of texts that near-duplicate an earlier one.
pub fn near_duplicate_rate(texts: &[&str], threshold: f64) -> f64 {
    near_duplicates(texts, threshold)
        .iter()
        .filter(|d| d.is_some())
        .count() as f64
        / texts.len().max(1) as f64
}
