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

/// distinct-n over the first `words` words of `texts` (in the order given), so that corpora of
/// different sizes are compared on equal samples: distinct-n falls as a corpus grows, so a
/// whole-corpus figure mostly measures size. `None` if the texts hold fewer words.
pub fn distinct_n_at(texts: &[&str], n: usize, words_wanted: usize) -> Option<f64> {
    let mut sample: Vec<String> = Vec::with_capacity(words_wanted);
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut total = 0usize;
    for t in texts {
        // n-grams do not cross document boundaries.
        let w: Vec<String> = words(t).take(words_wanted - sample.len()).collect();
        for g in w.windows(n) {
            total += 1;
            seen.insert(g.to_vec());
        }
        sample.extend(w);
        if sample.len() >= words_wanted {
            return Some(seen.len() as f64 / total.max(1) as f64);
        }
    }
    None
}
