//! Statistics for reporting results: bootstrap confidence intervals, a paired test, and rank
//! correlation. All resampling is seeded, so a report is reproducible number for number.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A mean with a percentile-bootstrap confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Mean of `x` with a `level` (e.g. 0.95) percentile-bootstrap interval from `resamples`
/// resamples. With few values (3 seeds) the interval is wide and honest about it.
pub fn bootstrap_mean_ci(x: &[f64], level: f64, resamples: usize, seed: u64) -> MeanCi {
    assert!(!x.is_empty(), "bootstrap of no values");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            (0..x.len())
                .map(|_| x[rng.gen_range(0..x.len())])
                .sum::<f64>()
                / x.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let a = (1.0 - level) / 2.0;
    MeanCi {
        mean: mean(x),
        lo: quantile_sorted(&means, a),
        hi: quantile_sorted(&means, 1.0 - a),
        n: x.len(),
    }
}

/// Result of a paired comparison of `a` and `b` (same seeds / same eval sets).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    /// Mean of a - b.
    pub mean_diff: f64,
    pub ci: MeanCi,
    /// Two-sided p-value of the exact sign-flip permutation test (all 2^n flips for n <= 20).
    pub p_value: f64,
    pub n: usize,
}

/// Paired permutation test on differences `a[i] - b[i]`: under the null each difference is as
/// likely positive as negative. Exact over all 2^n sign patterns (n <= 20), else 100,000
/// seeded random flips. With n = 3 the smallest possible p-value is 0.25: say so, don't hide it.
pub fn paired_test(a: &[f64], b: &[f64], seed: u64) -> PairedTest {
    assert_eq!(a.len(), b.len(), "paired samples differ in length");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len();
    let observed = mean(&d).abs();
    let eps = 1e-12 * observed.max(1e-300);
    let (extreme, total) = if n <= 20 {
        let mut extreme = 0u64;
        for mask in 0u64..(1 << n) {
            let s: f64 = d
                .iter()
                .enumerate()
                .map(|(i, v)| if mask >> i & 1 == 1 { -v } else { *v })
                .sum();
            if (s / n as f64).abs() >= observed - eps {
                extreme += 1;
            }
        }
        (extreme, 1u64 << n)
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let trials = 100_000u64;
        let extreme = (0..trials)
            .filter(|_| {
                let s: f64 = d
                    .iter()
                    .map(|v| if rng.gen::<bool>() { -v } else { *v })
                    .sum();
                (s / n as f64).abs() >= observed - eps
            })
            .count() as u64;
        (extreme, trials)
    };
    PairedTest {
        mean_diff: mean(&d),
        ci: bootstrap_mean_ci(&d, 0.95, 10_000, seed),
        p_value: extreme as f64 / total as f64,
        n,
    }
}

/// Cohen's kappa with quadratic weights for labels 0..=`max` (the ordinal form: a 4 against a
/// 5 costs less than a 0 against a 5). 1 = perfect agreement, 0 = what chance gives.
pub fn quadratic_kappa(a: &[u8], b: &[u8], max: u8) -> f64 {
    let k = max as usize + 1;
    let n = a.len().min(b.len()) as f64;
    let (mut obs, mut ra, mut rb) = (vec![0.0; k * k], vec![0.0; k], vec![0.0; k]);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x.min(max) as usize, y.min(max) as usize);
        obs[x * k + y] += 1.0;
        ra[x] += 1.0;
        rb[y] += 1.0;
    }
    let w = |i: usize, j: usize| ((i as f64 - j as f64) / max.max(1) as f64).powi(2);
    let (mut o, mut e) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            o += w(i, j) * obs[i * k + j];
            e += w(i, j) * ra[i] * rb[j] / n.max(1.0);
        }
    }
    if e == 0.0 {
        return f64::NAN; // one label throughout: agreement beyond chance is undefined
    }
    1.0 - o / e
}

/// A percentile bootstrap interval of `stat` over paired items (resampled together).
pub fn bootstrap_paired<T: Clone>(
    items: &[T],
    stat: impl Fn(&[T]) -> f64,
    level: f64,
    resamples: usize,
    seed: u64,
) -> (f64, f64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<f64> = (0..resamples)
        .map(|_| {
            let s: Vec<T> = (0..items.len())
                .map(|_| items[rng.gen_range(0..items.len())].clone())
                .collect();
            stat(&s)
        })
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    (q((1.0 - level) / 2.0), q((1.0 + level) / 2.0))
}

/// Spearman rank correlation (average ranks for ties).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            for k in i..=j {
                r[idx[k]] = (i + j) as f64 / 2.0 + 1.0;
            }
            i = j + 1;
        }
        r
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let (mx, my) = (mean(&rx), mean(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

// ---------------------------------------------------------------------------------------------
// Intervals that say what they are, for results over seeds and held-out documents.

/// What an interval's bounds are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum IntervalKind {
    /// The smallest and largest of `n` per-seed values: all that few seeds allow.
    MinMax { n: usize },
    /// Percentile bootstrap at `level`, resampling seeds and then, within each, documents.
    HierarchicalBootstrap {
        level: f64,
        seeds: usize,
        documents: usize,
        resamples: usize,
    },
    /// Percentile bootstrap at `level` over documents (paired comparisons, one model each).
    DocumentBootstrap {
        level: f64,
        documents: usize,
        resamples: usize,
    },
}

impl IntervalKind {
    /// A label for tables: "min-max over 3 seeds", "95% hierarchical bootstrap (5 seeds x 412
    /// documents)", ...
    pub fn label(&self) -> String {
        match self {
            IntervalKind::MinMax { n } => format!("min-max over {n} seeds"),
            IntervalKind::HierarchicalBootstrap {
                level,
                seeds,
                documents,
                ..
            } => format!(
                "{:.0}% hierarchical bootstrap ({seeds} seeds x {documents} documents)",
                level * 100.0
            ),
            IntervalKind::DocumentBootstrap {
                level, documents, ..
            } => format!("{:.0}% bootstrap over {documents} documents", level * 100.0),
        }
    }
}

/// A value with an interval, and what the interval is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    pub interval: IntervalKind,
}

/// Per-document results of one model on one held-out set: negative log-likelihood in bits and
/// UTF-8 bytes of each document, in the set's order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DocScores {
    pub bits: Vec<f64>,
    pub bytes: Vec<u64>,
}

impl DocScores {
    /// Bits per byte over the whole set.
    pub fn bpb(&self) -> f64 {
        self.bits.iter().sum::<f64>() / self.bytes.iter().sum::<u64>().max(1) as f64
    }
    pub fn len(&self) -> usize {
        self.bits.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }
    /// Kish's effective number of its documents, weighted by bytes ([`effective_documents`]).
    pub fn effective_documents(&self) -> f64 {
        effective_documents(&self.bytes)
    }
}

/// Kish's effective number of documents when each is weighted by its bytes, as bits per byte
/// weights them: (sum b)^2 / sum b^2. Documents of equal length give their count; a set whose
/// bytes sit in a few long documents gives about that few, and a bootstrap over its documents
/// is then as noisy as one over those few, however many the set holds.
pub fn effective_documents(bytes: &[u64]) -> f64 {
    let (s, s2) = bytes.iter().fold((0.0, 0.0), |(s, s2), &b| {
        let b = b as f64;
        (s + b, s2 + b * b)
    });
    if s2 == 0.0 {
        0.0
    } else {
        s * s / s2
    }
}

/// Whether a percentile bootstrap over `n` seeds can reach `level`: the resample that repeats
/// the lowest seed `n` times has probability `n^-n`, and it must be rarer than the tail
/// `(1 - level) / 2`, or the interval's end is just the lowest (highest) seed. For 95%: n >= 4
/// (3^-3 = 3.7% > 2.5%).
pub fn bootstrap_reaches(n: usize, level: f64) -> bool {
    (n as f64).powi(n as i32).recip() < (1.0 - level) / 2.0
}

/// Bits per byte of a model over seeds, with an interval that says what it is: the mean of the
/// per-seed values; for one seed, a bootstrap over its documents (the weights held fixed: the
/// only interval one run has, and the one its neutral-set score gets from the suite); min-max
/// when the seeds are more than one but too few for a `level` bootstrap ([`bootstrap_reaches`]);
/// otherwise a hierarchical bootstrap (seeds, then documents within
/// each, with replacement; the statistic is the mean over resampled seeds of each one's
/// resampled bits per byte).
pub fn seed_doc_interval(
    per_seed: &[DocScores],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Estimate {
    assert!(!per_seed.is_empty(), "no seeds");
    let values: Vec<f64> = per_seed.iter().map(DocScores::bpb).collect();
    let n = values.len();
    let m = mean(&values);
    if n == 1 {
        let (lo, hi) = bpb_interval(&per_seed[0], level, resamples, seed);
        return Estimate {
            mean: m,
            lo,
            hi,
            interval: IntervalKind::DocumentBootstrap {
                level,
                documents: per_seed[0].len(),
                resamples,
            },
        };
    }
    if !bootstrap_reaches(n, level) {
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |a, &v| (a.0.min(v), a.1.max(v)));
        return Estimate {
            mean: m,
            lo,
            hi,
            interval: IntervalKind::MinMax { n },
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| {
            (0..n)
                .map(|_| {
                    let s = &per_seed[rng.gen_range(0..n)];
                    let (mut bits, mut bytes) = (0.0, 0u64);
                    for _ in 0..s.len() {
                        let d = rng.gen_range(0..s.len());
                        bits += s.bits[d];
                        bytes += s.bytes[d];
                    }
                    bits / bytes.max(1) as f64
                })
                .sum::<f64>()
                / n as f64
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let a = (1.0 - level) / 2.0;
    Estimate {
        mean: m,
        lo: quantile_sorted(&stats, a),
        hi: quantile_sorted(&stats, 1.0 - a),
        interval: IntervalKind::HierarchicalBootstrap {
            level,
            seeds: n,
            documents: per_seed[0].len(),
            resamples,
        },
    }
}

/// Model A against model B on the same documents: the difference in bits per byte (A - B;
/// negative: A is better), its document-bootstrap interval, and the two-sided p-value of a
/// sign-flip permutation test on the per-document differences (under the null each document's
/// difference is as likely positive as negative). Per-document bits are first averaged over
/// each model's seeds. The smallest p-value it can report is `1 / (trials + 1)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedDocs {
    pub diff: Estimate,
    pub p_value: f64,
    pub trials: usize,
    pub documents: usize,
}

/// Per-document bits averaged over seeds (all seeds score the same documents).
pub fn mean_over_seeds(per_seed: &[DocScores]) -> DocScores {
    // Averaging document by document is only meaningful over the same documents: a seed scored
    // on other ones is refused by name (it used to index out of range, or drop documents).
    assert!(
        per_seed.windows(2).all(|w| w[0].bytes == w[1].bytes),
        "mean over seeds of scores on different documents"
    );
    let n = per_seed.len().max(1) as f64;
    let docs = per_seed.first().map_or(0, DocScores::len);
    DocScores {
        bits: (0..docs)
            .map(|d| per_seed.iter().map(|s| s.bits[d]).sum::<f64>() / n)
            .collect(),
        bytes: per_seed
            .first()
            .map(|s| s.bytes.clone())
            .unwrap_or_default(),
    }
}

pub fn paired_docs(
    a: &DocScores,
    b: &DocScores,
    level: f64,
    trials: usize,
    seed: u64,
) -> PairedDocs {
    assert_eq!(
        a.bytes, b.bytes,
        "paired comparison over different documents"
    );
    let total: f64 = a.bytes.iter().sum::<u64>().max(1) as f64;
    let d: Vec<f64> = a.bits.iter().zip(&b.bits).map(|(x, y)| x - y).collect();
    let observed = d.iter().sum::<f64>() / total;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Bootstrap over documents for the interval.
    let mut boots: Vec<f64> = (0..trials.min(10_000))
        .map(|_| {
            let (mut s, mut by) = (0.0, 0u64);
            for _ in 0..d.len() {
                let i = rng.gen_range(0..d.len());
                s += d[i];
                by += a.bytes[i];
            }
            s / by.max(1) as f64
        })
        .collect();
    boots.sort_by(f64::total_cmp);
    let q = (1.0 - level) / 2.0;
    // Sign flips for the p-value.
    let eps = 1e-12 * observed.abs().max(1e-300);
    let extreme = (0..trials)
        .filter(|_| {
            let s: f64 = d
                .iter()
                .map(|v| if rng.gen::<bool>() { -v } else { *v })
                .sum();
            (s / total).abs() >= observed.abs() - eps
        })
        .count();
    PairedDocs {
        diff: Estimate {
            mean: observed,
            lo: quantile_sorted(&boots, q),
            hi: quantile_sorted(&boots, 1.0 - q),
            interval: IntervalKind::DocumentBootstrap {
                level,
                documents: d.len(),
                resamples: boots.len(),
            },
        },
        p_value: (extreme + 1) as f64 / (trials + 1) as f64,
        trials,
        documents: d.len(),
    }
}

/// Holm's step-down adjustment of `p` (family-wise error control over all the comparisons
/// made): sorted ascending, `p_(i) * (m - i)`, made monotone, capped at 1; returned in the
/// input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max((p[i] * (m - rank) as f64).min(1.0));
        out[i] = running;
    }
    out
}

/// Percentile bootstrap interval at `level` of the bits per byte of a set of documents
/// (documents resampled with replacement).
pub fn bpb_interval(d: &DocScores, level: f64, resamples: usize, seed: u64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = d.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut v: Vec<f64> = (0..resamples)
        .map(|_| {
            let (mut b, mut by) = (0.0, 0u64);
            for _ in 0..n {
                let i = rng.gen_range(0..n);
                b += d.bits[i];
                by += d.bytes[i];
            }
            b / by.max(1) as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    let a = (1.0 - level) / 2.0;
    (quantile_sorted(&v, a), quantile_sorted(&v, 1.0 - a))
}

/// Exact two-sided sign test of paired differences `d` (zeros dropped): the probability, if
/// positive and negative differences were equally likely, of a split at least as uneven as the
/// one seen. 1 when no difference is non-zero.
pub fn sign_test(d: &[f64]) -> f64 {
    let pos = d.iter().filter(|&&x| x > 0.0).count();
    let n = pos + d.iter().filter(|&&x| x < 0.0).count();
    if n == 0 {
        return 1.0;
    }
    let k = pos.min(n - pos);
    // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (n may be thousands).
    let ln_choose = |n: usize, i: usize| -> f64 {
        (1..=i)
            .map(|j| ((n - i + j) as f64).ln() - (j as f64).ln())
            .sum()
    };
    let tail: f64 = (0..=k)
        .map(|i| (ln_choose(n, i) - n as f64 * std::f64::consts::LN_2).exp())
        .sum();
    (2.0 * tail).min(1.0)
}

/// Solve `a · x = b` for a small dense square system (Gaussian elimination with partial
/// pivoting); `None` when `a` is singular to working precision. For the normal equations of
/// a ridge regression over tens of features, where a linear-algebra crate would be all cost.
pub fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (i, r) in rest.iter_mut().enumerate() {
            let f = r[col] / pivot_row[col];
            for (x, p) in r[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + i] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}
