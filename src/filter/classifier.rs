//! The learned quality classifier: a ridge regression from a record's cheap signals to a 0-5
//! quality score, trained on graded records (the LLM annotator's expected score on a sample, or
//! hand labels) so that the whole pool gets a score for the price of its signals. FineWeb-Edu's
//! recipe (an LLM grades a sample, a small model learns the grades and scores everything) with
//! a linear model on our signals in place of a regression head on embeddings: with ~200 graded
//! records, a model with more than a few dozen weights would learn the sample, not the grader.
//!
//! Inputs: every numeric value of the heuristic rules ([`crate::filter::heuristics`]: word
//! counts, mean word length, symbol, bullet and ellipsis ratios, stop words, duplicate lines
//! and n-gram shares, our own preamble/title/truncation checks), the teacher's NLL per token,
//! the real-text reference n-gram's bits per byte and the number of rules failed. Each is
//! standardised on the training records; a missing value (a v1 record has no teacher NLL)
//! counts as the training mean. The ridge penalty is chosen from [`LAMBDAS`] by 5-fold
//! cross-validation on the training records. Cost: the signals' (~20 us per record per core
//! plus the reference n-gram), then one dot product per record; fitting takes milliseconds.

use crate::filter::signals::RecordSignals;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Ridge penalties tried (on standardised inputs, so comparable across features).
pub const LAMBDAS: [f64; 6] = [0.1, 1.0, 10.0, 100.0, 1_000.0, 10_000.0];
/// Folds of the cross-validation (assigned by a hash of the record's key, not its position).
pub const FOLDS: u64 = 5;
/// Fewest graded records a classifier is fitted on.
pub const MIN_RECORDS: usize = 20;

/// A fitted classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classifier {
    /// Input names, in weight order.
    pub features: Vec<String>,
    /// Training mean and standard deviation of each input (1 where it did not vary).
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
    pub lambda: f64,
    /// Graded records it was fitted on.
    pub n: usize,
}

/// A graded record for training: a key unique in the sample (family/id), its signals and the
/// score to learn.
pub struct Example<'a> {
    pub key: String,
    pub signals: &'a RecordSignals,
    pub target: f64,
}

/// The inputs the classifier reads from `r`, by name.
fn input(r: &RecordSignals, name: &str) -> Option<f64> {
    match name {
        "teacher_nll" => r.teacher_nll,
        "real_kn_bpb" => r.real_kn_bpb,
        "rules_failed" => Some(r.signals.fails.len() as f64),
        _ => r.signals.values.get(name).copied(),
    }
    .filter(|x| x.is_finite())
}

/// Input names: every rule value any example has, then the record-level signals.
fn feature_names(ex: &[Example]) -> Vec<String> {
    let mut names: std::collections::BTreeSet<String> = ex
        .iter()
        .flat_map(|e| e.signals.signals.values.keys().cloned())
        .collect();
    names.retain(|n| ex.iter().any(|e| input(e.signals, n).is_some()));
    let mut out: Vec<String> = names.into_iter().collect();
    for extra in ["teacher_nll", "real_kn_bpb", "rules_failed"] {
        if ex.iter().any(|e| input(e.signals, extra).is_some()) {
            out.push(extra.into());
        }
    }
    out
}

/// The fold of an example (a hash of its key, so folds do not follow the file's order).
fn fold(key: &str) -> u64 {
    crate::hash::fnv1a(b"classifier-fold".iter().copied().chain(key.bytes())) % FOLDS
}

impl Classifier {
    /// Fit on `ex`, choosing the penalty by cross-validation.
    pub fn fit(ex: &[Example]) -> Result<Classifier> {
        if ex.len() < MIN_RECORDS {
            bail!(
                "{} graded records are too few to fit a classifier (at least {MIN_RECORDS})",
                ex.len()
            );
        }
        let names = feature_names(ex);
        let cv_error = |lambda: f64| -> f64 {
            (0..FOLDS)
                .map(|k| {
                    let (test, train): (Vec<&Example>, Vec<&Example>) =
                        ex.iter().partition(|e| fold(&e.key) == k);
                    let c = Classifier::fit_with(&train, &names, lambda);
                    test.iter()
                        .map(|e| (c.predict(e.signals) - e.target).powi(2))
                        .sum::<f64>()
                })
                .sum()
        };
        // each penalty's CV error once (`min_by` on the closure would refit per comparison)
        let (lambda, _) = LAMBDAS
            .into_iter()
            .map(|l| (l, cv_error(l)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("LAMBDAS is not empty");
        let all: Vec<&Example> = ex.iter().collect();
        Ok(Classifier::fit_with(&all, &names, lambda))
    }

    /// Ridge regression on standardised inputs with penalty `lambda` (the bias unpenalised).
    fn fit_with(ex: &[&Example], names: &[String], lambda: f64) -> Classifier {
        let p = names.len();
        let col = |j: usize| -> Vec<f64> {
            ex.iter()
                .filter_map(|e| input(e.signals, &names[j]))
                .collect()
        };
        let (mut mean, mut scale) = (vec![0.0; p], vec![1.0; p]);
        for j in 0..p {
            let v = col(j);
            if !v.is_empty() {
                mean[j] = crate::stats::mean(&v);
                let var = v.iter().map(|x| (x - mean[j]).powi(2)).sum::<f64>() / v.len() as f64;
                scale[j] = if var > 1e-12 { var.sqrt() } else { 1.0 };
            }
        }
        let mut c = Classifier {
            features: names.to_vec(),
            mean,
            scale,
            weights: vec![0.0; p],
            bias: 0.0,
            lambda,
            n: ex.len(),
        };
        let x: Vec<Vec<f64>> = ex.iter().map(|e| c.standardised(e.signals)).collect();
        let ybar = ex.iter().map(|e| e.target).sum::<f64>() / ex.len().max(1) as f64;
        // Normal equations (X'X + lambda I) w = X'(y - ybar); the inputs are centred, so the
        // bias is the mean target.
        let mut a = vec![vec![0.0; p]; p];
        let mut b = vec![0.0; p];
        for (row, e) in x.iter().zip(ex) {
            for i in 0..p {
                b[i] += row[i] * (e.target - ybar);
                for j in 0..p {
                    a[i][j] += row[i] * row[j];
                }
            }
        }
        for (i, r) in a.iter_mut().enumerate() {
            r[i] += lambda;
        }
        c.weights = crate::stats::solve(a, b).unwrap_or_else(|| vec![0.0; p]);
        c.bias = ybar;
        c
    }

    fn standardised(&self, r: &RecordSignals) -> Vec<f64> {
        self.features
            .iter()
            .enumerate()
            .map(|(j, n)| input(r, n).map_or(0.0, |x| (x - self.mean[j]) / self.scale[j]))
            .collect()
    }

    /// The unclamped prediction.
    fn predict(&self, r: &RecordSignals) -> f64 {
        let x = self.standardised(r);
        self.bias + x.iter().zip(&self.weights).map(|(a, w)| a * w).sum::<f64>()
    }

    /// A record's quality score on the rubric's 0-5 scale.
    pub fn score(&self, r: &RecordSignals) -> f64 {
        self.predict(r).clamp(0.0, 5.0)
    }

    /// The inputs by the size of their standardised weight, largest first.
    pub fn strongest(&self, n: usize) -> Vec<(String, f64)> {
        let mut w: Vec<(String, f64)> = self
            .features
            .iter()
            .cloned()
            .zip(self.weights.iter().copied())
            .collect();
        w.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        w.truncate(n);
        w
    }
}

/// Every example's score from a classifier fitted without its fold (each fitted as
/// [`Classifier::fit`] fits, penalty chosen inside the training folds): held-out predictions
/// for agreement.
pub fn out_of_fold(ex: &[Example]) -> Result<Vec<f64>> {
    let mut pred = vec![f64::NAN; ex.len()];
    for k in 0..FOLDS {
        let train: Vec<Example> = ex
            .iter()
            .filter(|e| fold(&e.key) != k)
            .map(|e| Example {
                key: e.key.clone(),
                signals: e.signals,
                target: e.target,
            })
            .collect();
        let c = Classifier::fit(&train)?;
        for (i, e) in ex.iter().enumerate() {
            if fold(&e.key) == k {
                pred[i] = c.score(e.signals);
            }
        }
    }
    Ok(pred)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::heuristics::Signals;

    fn record(i: usize, a: f64, b: f64, noise: f64) -> RecordSignals {
        let mut values = std::collections::BTreeMap::new();
        values.insert("a".to_string(), a);
        values.insert("b".to_string(), b);
        values.insert("constant".to_string(), 7.0);
        values.insert("noise".to_string(), noise);
        RecordSignals {
            id: format!("r{i}"),
            teacher_nll: (!i.is_multiple_of(3)).then_some(1.0 + noise),
            real_kn_bpb: None,
            teacher_tokens: None,
            signals: Signals {
                values,
                fails: vec![],
            },
            classifier: None,
        }
    }

    /// A target that is a linear function of two inputs is learned: held-out predictions
    /// track it, the weights point the right way, a constant input does no harm, and
    /// predictions stay on the 0-5 scale.
    #[test]
    fn learns_a_linear_grader_and_predicts_held_out_records() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let recs: Vec<RecordSignals> = (0..200)
            .map(|i| {
                record(
                    i,
                    rng.gen_range(0.0..1.0),
                    rng.gen_range(0.0..1.0),
                    rng.gen(),
                )
            })
            .collect();
        let target = |r: &RecordSignals| {
            let v = &r.signals.values;
            1.0 + 3.0 * v["a"] - 1.0 * v["b"] + 0.6
        };
        let ex: Vec<Example> = recs
            .iter()
            .map(|r| Example {
                key: r.id.clone(),
                signals: r,
                target: target(r),
            })
            .collect();
        let c = Classifier::fit(&ex).unwrap();
        assert!(c.features.contains(&"teacher_nll".to_string()));
        assert!(
            !c.features.contains(&"real_kn_bpb".to_string()),
            "never present"
        );
        let w = |n: &str| c.weights[c.features.iter().position(|f| f == n).unwrap()];
        assert!(
            w("a") > 0.5 && w("b") < -0.1 && w("noise").abs() < 0.05,
            "{c:?}"
        );
        assert_eq!(w("constant"), 0.0);
        assert_eq!(c.strongest(1)[0].0, "a");
        let oof = out_of_fold(&ex).unwrap();
        let truth: Vec<f64> = ex.iter().map(|e| e.target).collect();
        assert!(crate::stats::spearman(&oof, &truth) > 0.95);
        let far = record(999, 10.0, -10.0, 0.0);
        assert_eq!(c.score(&far), 5.0);
        // too few graded records: a clear error
        let e = Classifier::fit(&ex[..5]).unwrap_err().to_string();
        assert!(e.contains("too few"), "{e}");
    }
}
