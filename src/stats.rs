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
