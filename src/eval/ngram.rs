//! n-gram baselines: what a student must beat to show it learned more than local statistics.
//!
//! Counted on exactly the tokens a student saw (the union of its training windows, each
//! position once: repeated epochs do not inflate counts) and scored per held-out document in
//! bits, like the students. Four kinds, named as in the results schema:
//!
//! | name | model |
//! |---|---|
//! | `unigram` | token frequencies, Witten-Bell-interpolated with the uniform distribution |
//! | `bigram` | interpolated Witten-Bell bigram |
//! | `kn-2` .. `kn-5` | interpolated modified Kneser-Ney (Chen & Goodman 1998) of that order |
//!
//! Kneser-Ney's lower orders use continuation counts (how many distinct tokens precede an
//! n-gram), and three discounts per order (for counts 1, 2, 3+) start from Chen & Goodman's
//! count-of-counts estimates, then are scaled by one factor chosen on a dev split carved out
//! of the training tokens (never on a held-out set). Every distribution ends in the uniform
//! one, so no token has probability 0, and each sums to 1 over the vocabulary (tested).

use crate::stats::DocScores;
use std::collections::HashMap;
use std::ops::Range;

/// Highest order counted.
pub const MAX_ORDER: usize = 5;

/// Key of an n-gram: its tokens, 16 bits each (vocabularies up to 65,536), in a u128.
fn key(tokens: &[u32]) -> u128 {
    tokens.iter().fold(0u128, |k, &t| (k << 16) | t as u128)
}

/// Totals of one context: the sum of its counts, and how many of its continuations have count
/// 1, 2 and 3 or more.
#[derive(Clone, Copy, Debug, Default)]
struct Ctx {
    total: u64,
    n1: u64,
    n2: u64,
    n3: u64,
}

impl Ctx {
    fn types(&self) -> u64 {
        self.n1 + self.n2 + self.n3
    }
}

/// Counts of one order: n-gram -> count, and context (its first n-1 tokens) -> totals.
#[derive(Default)]
struct Table {
    grams: HashMap<u128, u64>,
    ctxs: HashMap<u128, Ctx>,
    /// Count-of-counts n1..n4 (for the discount estimates).
    coc: [u64; 4],
}

impl Table {
    fn finish(&mut self, order: usize) {
        self.ctxs.clear();
        self.coc = [0; 4];
        for (&k, &c) in &self.grams {
            let ctx = self.ctxs.entry(k >> 16).or_default();
            ctx.total += c;
            match c {
                1 => ctx.n1 += 1,
                2 => ctx.n2 += 1,
                _ => ctx.n3 += 1,
            }
            if (1..=4).contains(&c) {
                self.coc[c as usize - 1] += 1;
            }
        }
        let _ = order;
    }

    fn count(&self, gram: &[u32]) -> u64 {
        self.grams.get(&key(gram)).copied().unwrap_or(0)
    }

    fn ctx(&self, ctx: &[u32]) -> Ctx {
        self.ctxs.get(&key(ctx)).copied().unwrap_or_default()
    }

    /// Chen & Goodman's estimates of the discounts for counts 1, 2 and 3+.
    fn discounts(&self) -> [f64; 3] {
        let [n1, n2, n3, n4] = self.coc.map(|x| x.max(1) as f64);
        let y = n1 / (n1 + 2.0 * n2);
        [
            (1.0 - 2.0 * y * n2 / n1).clamp(0.05, 0.95),
            (2.0 - 3.0 * y * n3 / n2).clamp(0.05, 1.95),
            (3.0 - 4.0 * y * n4 / n3).clamp(0.05, 2.95),
        ]
    }
}

/// Raw counts of orders 1..=MAX_ORDER and continuation counts of orders 1..MAX_ORDER, over the
/// token positions a model saw.
pub struct NgramCounts {
    vocab: usize,
    raw: Vec<Table>,
    cont: Vec<Table>,
    tokens: u64,
}

/// The union of `ranges` (sorted, overlapping or touching ones merged): each position once.
pub fn merge_ranges(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

impl NgramCounts {
    /// Count every n-gram (n <= MAX_ORDER) lying inside one of `covered` (merged first, so a
    /// position seen many times counts once) of the token stream `tokens`.
    pub fn count(tokens: &[u32], covered: Vec<Range<usize>>, vocab: usize) -> NgramCounts {
        assert!(vocab <= 1 << 16, "n-gram keys hold 16-bit tokens");
        let mut raw: Vec<Table> = (0..MAX_ORDER).map(|_| Table::default()).collect();
        let mut seen = 0u64;
        for r in merge_ranges(covered) {
            let span = &tokens[r.start..r.end.min(tokens.len())];
            seen += span.len() as u64;
            for (n, table) in raw.iter_mut().enumerate() {
                for g in span.windows(n + 1) {
                    *table.grams.entry(key(g)).or_default() += 1;
                }
            }
        }
        // Continuation counts of order n: distinct tokens seen before each n-gram.
        let mut cont: Vec<Table> = (0..MAX_ORDER - 1).map(|_| Table::default()).collect();
        for n in 1..MAX_ORDER {
            let mask = (1u128 << (16 * n)) - 1;
            let grams = &mut cont[n - 1].grams;
            for &k in raw[n].grams.keys() {
                *grams.entry(k & mask).or_default() += 1;
            }
        }
        for (n, t) in raw.iter_mut().enumerate() {
            t.finish(n + 1);
        }
        for (n, t) in cont.iter_mut().enumerate() {
            t.finish(n + 1);
        }
        NgramCounts {
            vocab,
            raw,
            cont,
            tokens: seen,
        }
    }

    /// Tokens counted (distinct positions).
    pub fn tokens(&self) -> u64 {
        self.tokens
    }
}

/// A smoothed n-gram model over [`NgramCounts`].
#[derive(Clone, Debug, PartialEq)]
pub enum Ngram {
    /// Witten-Bell interpolated, of order 1 (unigram) or 2 (bigram).
    WittenBell { order: usize },
    /// Interpolated modified Kneser-Ney of `order`, discounts scaled by `scale`.
    KneserNey { order: usize, scale: f64 },
}

impl Ngram {
    /// The name used in results: `unigram`, `bigram`, `kn-N`.
    pub fn name(&self) -> String {
        match self {
            Ngram::WittenBell { order: 1 } => "unigram".into(),
            Ngram::WittenBell { order: 2 } => "bigram".into(),
            Ngram::WittenBell { order } => format!("wb-{order}"),
            Ngram::KneserNey { order, .. } => format!("kn-{order}"),
        }
    }

    fn order(&self) -> usize {
        match self {
            Ngram::WittenBell { order } | Ngram::KneserNey { order, .. } => *order,
        }
    }

    /// P(w | context), the context being the tokens before w (only the last order-1 are used).
    pub fn prob(&self, c: &NgramCounts, context: &[u32], w: u32) -> f64 {
        let k = (self.order() - 1).min(context.len());
        let h = &context[context.len() - k..];
        match self {
            Ngram::WittenBell { .. } => witten_bell(c, h, w),
            Ngram::KneserNey { scale, .. } => kneser_ney(c, h, w, true, *scale),
        }
    }

    /// Bits of each document: `docs` are ranges of `tokens` (each ending with its end-of-text
    /// token); a document is predicted from an end-of-text token before it, with no context
    /// across documents. Bytes come from `bytes` (one per document).
    pub fn score(
        &self,
        c: &NgramCounts,
        tokens: &[u32],
        docs: &[Range<usize>],
        bytes: &[u64],
        eot: u32,
    ) -> DocScores {
        let bits = docs
            .iter()
            .map(|r| {
                let mut seq = Vec::with_capacity(r.len() + 1);
                seq.push(eot);
                seq.extend_from_slice(&tokens[r.clone()]);
                (1..seq.len())
                    .map(|i| -self.prob(c, &seq[..i], seq[i]).log2())
                    .sum::<f64>()
            })
            .collect();
        DocScores {
            bits,
            bytes: bytes.to_vec(),
        }
    }
}

/// Witten-Bell: P(w|h) = (c(h,w) + T(h) P(w|h')) / (c(h) + T(h)), T(h) the number of distinct
/// continuations of h; the empty context backs off to the uniform distribution.
fn witten_bell(c: &NgramCounts, h: &[u32], w: u32) -> f64 {
    let lower = if h.is_empty() {
        1.0 / c.vocab as f64
    } else {
        witten_bell(c, &h[1..], w)
    };
    let table = &c.raw[h.len()];
    let ctx = table.ctx(h);
    if ctx.total == 0 {
        return lower;
    }
    let mut g = h.to_vec();
    g.push(w);
    let t = ctx.types() as f64;
    (table.count(&g) as f64 + t * lower) / (ctx.total as f64 + t)
}

/// Interpolated modified Kneser-Ney. `top`: this is the highest order (raw counts); lower
/// orders use continuation counts.
fn kneser_ney(c: &NgramCounts, h: &[u32], w: u32, top: bool, scale: f64) -> f64 {
    let lower = if h.is_empty() {
        1.0 / c.vocab as f64
    } else {
        kneser_ney(c, &h[1..], w, false, scale)
    };
    let table = if top {
        &c.raw[h.len()]
    } else {
        &c.cont[h.len()]
    };
    let ctx = table.ctx(h);
    if ctx.total == 0 {
        return lower;
    }
    // Scaled, but never above the count it discounts (so each distribution still sums to 1).
    let d0 = table.discounts();
    let d = [
        (d0[0] * scale).min(1.0),
        (d0[1] * scale).min(2.0),
        (d0[2] * scale).min(3.0),
    ];
    let mut g = h.to_vec();
    g.push(w);
    let n = table.count(&g);
    let disc = match n {
        0 => 0.0,
        1 => d[0],
        2 => d[1],
        _ => d[2],
    };
    let total = ctx.total as f64;
    let gamma = (d[0] * ctx.n1 as f64 + d[1] * ctx.n2 as f64 + d[2] * ctx.n3 as f64) / total;
    (n as f64 - disc).max(0.0) / total + gamma * lower
}

/// The discount scales tried on the dev split.
pub const KN_SCALES: [f64; 7] = [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2];

/// Bits per byte of `model` on the dev documents.
fn dev_bpb(model: &Ngram, c: &NgramCounts, tokens: &[u32], dev: &[Range<usize>], eot: u32) -> f64 {
    // Bytes do not matter for choosing: equal across the candidates. Use tokens as the unit.
    let bytes: Vec<u64> = dev.iter().map(|r| r.len() as u64).collect();
    model.score(c, tokens, dev, &bytes, eot).bpb()
}

/// The baselines of one training stream: unigram, bigram and Kneser-Ney of orders 2..=5, the
/// KN discount scale of each order chosen on `dev` (documents of the stream held out of the
/// counts while choosing; the final counts include them). `covered`: the positions the student
/// saw.
pub fn fit_baselines(
    tokens: &[u32],
    covered: Vec<Range<usize>>,
    dev: &[Range<usize>],
    vocab: usize,
    eot: u32,
) -> (NgramCounts, Vec<Ngram>) {
    let without_dev: Vec<Range<usize>> = merge_ranges(covered.clone())
        .into_iter()
        .flat_map(|r| subtract(r, dev))
        .collect();
    let tuning = NgramCounts::count(tokens, without_dev, vocab);
    let mut models = vec![
        Ngram::WittenBell { order: 1 },
        Ngram::WittenBell { order: 2 },
    ];
    for order in 2..=MAX_ORDER {
        let best = KN_SCALES
            .iter()
            .map(|&scale| {
                let m = Ngram::KneserNey { order, scale };
                let b = if dev.is_empty() {
                    0.0
                } else {
                    dev_bpb(&m, &tuning, tokens, dev, eot)
                };
                (b, scale)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)))
            .map_or(1.0, |x| if dev.is_empty() { 1.0 } else { x.1 });
        models.push(Ngram::KneserNey { order, scale: best });
    }
    drop(tuning);
    (NgramCounts::count(tokens, covered, vocab), models)
}

/// `r` minus the ranges in `holes` (sorted, disjoint).
fn subtract(r: Range<usize>, holes: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = r.start;
    for h in holes {
        if h.end <= start || h.start >= r.end {
            continue;
        }
        if h.start > start {
            out.push(start..h.start);
        }
        start = start.max(h.end);
    }
    if start < r.end {
        out.push(start..r.end);
    }
    out
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one covered range is the common case
mod tests {
    use super::*;

    fn stream() -> Vec<u32> {
        let mut x = 7u64;
        (0..4000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // A skewed, slightly structured distribution over 50 tokens.
                ((x >> 33) % 50).min((x >> 40) % 50) as u32
            })
            .collect()
    }

    #[test]
    fn probabilities_sum_to_one_over_the_vocabulary() {
        let t = stream();
        let c = NgramCounts::count(&t, vec![0..t.len()], 64);
        let models = [
            Ngram::WittenBell { order: 1 },
            Ngram::WittenBell { order: 2 },
            Ngram::KneserNey {
                order: 2,
                scale: 1.0,
            },
            Ngram::KneserNey {
                order: 3,
                scale: 0.8,
            },
            Ngram::KneserNey {
                order: 5,
                scale: 1.2,
            },
        ];
        // Seen and unseen contexts.
        for ctx in [&t[100..104], &[63, 62, 61, 60][..], &t[7..9], &[][..]] {
            for m in &models {
                let s: f64 = (0..64).map(|w| m.prob(&c, ctx, w)).sum();
                assert!((s - 1.0).abs() < 1e-9, "{} after {ctx:?}: {s}", m.name());
            }
        }
    }

    #[test]
    fn a_position_counted_twice_counts_once() {
        let t = stream();
        let once = NgramCounts::count(&t, vec![0..2000], 64);
        let twice = NgramCounts::count(&t, vec![0..2000, 0..2000, 500..1500], 64);
        let m = Ngram::KneserNey {
            order: 4,
            scale: 1.0,
        };
        for i in 10..40 {
            assert_eq!(
                m.prob(&once, &t[i..i + 3], t[i + 3]),
                m.prob(&twice, &t[i..i + 3], t[i + 3])
            );
        }
        assert_eq!(once.tokens(), twice.tokens());
        assert_eq!(
            merge_ranges(vec![5..9, 0..3, 2..4, 9..10]),
            vec![0..4, 5..10]
        );
        assert_eq!(subtract(0..10, &[2..3, 5..7]), vec![0..2, 3..5, 7..10]);
    }

    #[test]
    fn higher_orders_fit_structured_text_better() {
        // A repeating pattern: a trigram predicts it, a unigram cannot.
        let t: Vec<u32> = (0..3000).map(|i| [1, 2, 3, 1, 4][i % 5]).collect();
        let c = NgramCounts::count(&t, vec![0..2500], 8);
        let docs = vec![2500..3000];
        let bytes = vec![500];
        let uni = Ngram::WittenBell { order: 1 }
            .score(&c, &t, &docs, &bytes, 0)
            .bpb();
        let kn3 = Ngram::KneserNey {
            order: 3,
            scale: 1.0,
        }
        .score(&c, &t, &docs, &bytes, 0)
        .bpb();
        assert!(kn3 < 0.2 * uni, "kn-3 {kn3} vs unigram {uni}");
    }
}
