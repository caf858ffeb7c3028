//! Every quality signal against the labels of a sheet, per family and pooled: Spearman with a
//! 95% percentile bootstrap interval, and for a model grader (the annotator, the classifier) the
//! *paired* difference from each free signal (both correlations on the same resample of
//! records), which is what "does the model grader beat a free one" asks. Overlapping intervals
//! of two correlations measured on the same records are not that test.
//!
//! Per family, because pooling hides opposite signs: on the v2 sheet "fewer words" correlates
//! positively with the labels of stories and negatively with those of chat answers.

use crate::stats::{bootstrap_paired, spearman};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Resamples and seed of every interval here (as in [`super::agreement`]).
const RESAMPLES: usize = 2000;
const SEED: u64 = 0;

/// One labelled record and every signal's score of it (higher = better; a signal where lower
/// is better enters negated). A signal the record lacks is absent.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub family: String,
    pub label: f64,
    pub scores: BTreeMap<String, f64>,
}

/// A free signal, the difference of Spearmans (model grader minus it) and its paired interval.
pub type Difference = (String, f64, Option<(f64, f64)>);

/// One signal against the labels on one family (`all`: pooled).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VsLabels {
    pub signal: String,
    pub family: String,
    pub n: usize,
    pub spearman: Option<f64>,
    pub spearman_ci: Option<(f64, f64)>,
    /// Model graders only: each free signal, the difference of Spearmans (this one minus that
    /// one) and its paired 95% interval.
    #[serde(default)]
    pub minus_free: Vec<Difference>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn interval((lo, hi): (f64, f64)) -> Option<(f64, f64)> {
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

fn rho(pairs: &[(f64, f64)]) -> f64 {
    let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    spearman(&a, &b)
}

/// `model` against the labels minus `free` against them, over the records that have both.
fn difference(records: &[&Scored], model: &str, free: &str) -> Option<(f64, Option<(f64, f64)>)> {
    let triples: Vec<(f64, f64, f64)> = records
        .iter()
        .filter_map(|r| Some((r.label, *r.scores.get(model)?, *r.scores.get(free)?)))
        .collect();
    let diff = |t: &[(f64, f64, f64)]| {
        let m: Vec<(f64, f64)> = t.iter().map(|x| (x.0, x.1)).collect();
        let f: Vec<(f64, f64)> = t.iter().map(|x| (x.0, x.2)).collect();
        rho(&m) - rho(&f)
    };
    let d = finite(diff(&triples))?;
    Some((
        d,
        interval(bootstrap_paired(&triples, diff, 0.95, RESAMPLES, SEED)),
    ))
}

/// Every signal on every family and pooled; `models` are compared with every other signal.
pub fn vs_labels(records: &[Scored], models: &[&str]) -> Vec<VsLabels> {
    let signals: std::collections::BTreeSet<&String> =
        records.iter().flat_map(|r| r.scores.keys()).collect();
    let families: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.family.as_str()).collect();
    let mut out = Vec::new();
    for family in std::iter::once("all").chain(families) {
        let on: Vec<&Scored> = records
            .iter()
            .filter(|r| family == "all" || r.family == family)
            .collect();
        for s in &signals {
            let pairs: Vec<(f64, f64)> = on
                .iter()
                .filter_map(|r| Some((r.label, *r.scores.get(*s)?)))
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let minus_free = match models.contains(&s.as_str()) {
                true => signals
                    .iter()
                    .filter(|f| !models.contains(&f.as_str()))
                    .filter_map(|f| {
                        let (d, ci) = difference(&on, s, f)?;
                        Some((f.to_string(), d, ci))
                    })
                    .collect(),
                false => Vec::new(),
            };
            out.push(VsLabels {
                signal: s.to_string(),
                family: family.to_string(),
                n: pairs.len(),
                spearman: finite(rho(&pairs)),
                spearman_ci: interval(bootstrap_paired(&pairs, rho, 0.95, RESAMPLES, SEED)),
                minus_free,
            });
        }
    }
    out
}

/// Whether a model grader earns a place as a quality signal on a family: its Spearman with the
/// labels is above 0, and above every free signal's, each beyond its 95% (paired) interval.
pub fn validated(rows: &[VsLabels], signal: &str, family: &str) -> bool {
    let Some(r) = rows
        .iter()
        .find(|r| r.signal == signal && r.family == family)
    else {
        return false;
    };
    let above_zero = r.spearman_ci.is_some_and(|(lo, _)| lo > 0.0);
    let beats_free = !r.minus_free.is_empty()
        && r.minus_free
            .iter()
            .all(|(_, _, ci)| ci.is_some_and(|(lo, _)| lo > 0.0));
    above_zero && beats_free
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model grader that tracks the labels in one family and not in the other is validated
    /// on the first only; a free signal that tracks them as well as the model blocks it.
    #[test]
    fn per_family_paired_differences_decide_validation() {
        let mut records = Vec::new();
        for i in 0..60 {
            let label = (i % 6) as f64;
            let noise = ((i * 37) % 11) as f64 / 10.0;
            let mut a = BTreeMap::new();
            a.insert("model".to_string(), label + 0.2 * noise);
            a.insert("free".to_string(), noise);
            records.push(Scored {
                family: "good".into(),
                label,
                scores: a,
            });
            let mut b = BTreeMap::new();
            b.insert("model".to_string(), noise);
            b.insert("free".to_string(), label + 0.2 * noise);
            records.push(Scored {
                family: "bad".into(),
                label,
                scores: b,
            });
        }
        let rows = vs_labels(&records, &["model"]);
        let get = |s: &str, f: &str| {
            rows.iter()
                .find(|r| r.signal == s && r.family == f)
                .unwrap()
                .clone()
        };
        assert_eq!(get("model", "good").n, 60);
        assert_eq!(get("model", "all").n, 120);
        assert!(get("model", "good").spearman.unwrap() > 0.9);
        assert!(
            get("free", "good").minus_free.is_empty(),
            "free signals are not compared"
        );
        let (name, d, ci) = &get("model", "good").minus_free[0];
        assert_eq!(name, "free");
        assert!(*d > 0.5 && ci.unwrap().0 > 0.0);
        assert!(validated(&rows, "model", "good"));
        assert!(!validated(&rows, "model", "bad"));
        assert!(
            !validated(&rows, "model", "all"),
            "pooled, the free signal is as good"
        );
        assert!(!validated(&rows, "nobody", "good"));
    }
}
