//! Lexical diversity: distinct-n (Li et al. 2016), the number of distinct word n-grams divided
//! by the number of n-grams, over a whole corpus. 1.0 means no n-gram repeats; template-like
//! synthetic data scores low.

use std::collections::HashSet;

/// Lower-cased words, punctuation kept attached (cheap and deterministic).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace().map(|w| w.to_lowercase())
}

/// distinct-n over all texts.
pub fn distinct_n(texts: &[&str], n: usize) -> f64 {
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut total = 0usize;
    for t in texts {
        let w: Vec<String> = words(t).collect();
        for g in w.windows(n) {
            total += 1;
            seen.insert(g.to_vec());
        }
    }
    seen.len() as f64 / total.max(1) as f64
}
