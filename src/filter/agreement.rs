//! How well one grader of record quality agrees with another (a hand label, the LLM annotator,
//! the learned classifier), on the 0-5 rubric of `data/labels/GUIDE.md`: quadratic-weighted
//! kappa on the integer grades, Spearman on the scores, and F1 of "grade >= 3" (FineWeb-Edu's
//! threshold for keeping a record), each with a 95% percentile bootstrap interval over records
//! (2,000 resamples, seed 0).

use crate::stats::{bootstrap_paired, quadratic_kappa, spearman};
use serde::{Deserialize, Serialize};

/// The grade FineWeb-Edu keeps a record at, and F1 is computed at.
pub const KEEP_AT: u8 = 3;

/// One grader's verdict on a record: an integer grade 0-5 and a score on the same scale (a
/// hand label is both; the annotator's digit and its expected score; the classifier's rounded
/// and raw prediction).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graded {
    pub grade: u8,
    pub score: f64,
}

impl Graded {
    /// A hand label: its grade is its score.
    pub fn label(grade: u8) -> Graded {
        Graded {
            grade,
            score: grade as f64,
        }
    }

    /// A score on the 0-5 scale, graded by rounding (clamped to the scale).
    pub fn score(score: f64) -> Graded {
        Graded {
            grade: score.round().clamp(0.0, 5.0) as u8,
            score,
        }
    }
}

/// Agreement of a grader with a reference grader over the same records. A statistic that is
/// undefined on these records is `None` (JSON null), as is an interval no resample defines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub n: usize,
    /// Quadratic-weighted Cohen's kappa of the grades (undefined when both sides give one
    /// grade throughout).
    pub kappa: Option<f64>,
    pub kappa_ci: Option<(f64, f64)>,
    /// Spearman correlation of the scores (undefined when either side is constant).
    pub spearman: Option<f64>,
    pub spearman_ci: Option<(f64, f64)>,
    /// F1 of grade >= [`KEEP_AT`] against the reference's (undefined when neither side has a
    /// record at or above it).
    pub f1: Option<f64>,
    pub f1_ci: Option<(f64, f64)>,
    /// Records the reference / the grader put at or above [`KEEP_AT`].
    pub reference_keeps: usize,
    pub grader_keeps: usize,
    /// Share of records with the same grade.
    pub exact: f64,
}

fn f1(p: &[(Graded, Graded)]) -> f64 {
    let keep = |g: &Graded| g.grade >= KEEP_AT;
    let tp = p.iter().filter(|(r, g)| keep(r) && keep(g)).count() as f64;
    let (refs, grads) = (
        p.iter().filter(|(r, _)| keep(r)).count() as f64,
        p.iter().filter(|(_, g)| keep(g)).count() as f64,
    );
    if refs + grads == 0.0 {
        f64::NAN
    } else {
        2.0 * tp / (refs + grads)
    }
}

/// `(reference, grader)` verdicts on the same records.
type Pairs = [(Graded, Graded)];

/// Agreement over `(reference, grader)` pairs; `None` without pairs.
pub fn agreement(pairs: &[(Graded, Graded)]) -> Option<Agreement> {
    if pairs.is_empty() {
        return None;
    }
    let kappa = |p: &[(Graded, Graded)]| {
        let (r, g): (Vec<u8>, Vec<u8>) = p.iter().map(|(r, g)| (r.grade, g.grade)).unzip();
        quadratic_kappa(&r, &g, 5)
    };
    let rho = |p: &[(Graded, Graded)]| {
        let (r, g): (Vec<f64>, Vec<f64>) = p.iter().map(|(r, g)| (r.score, g.score)).unzip();
        spearman(&r, &g)
    };
    let defined = |x: f64| x.is_finite().then_some(x);
    let ci = |stat: &dyn Fn(&Pairs) -> f64| {
        let (lo, hi) = bootstrap_paired(pairs, stat, 0.95, 2000, 0);
        (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
    };
    Some(Agreement {
        n: pairs.len(),
        kappa: defined(kappa(pairs)),
        kappa_ci: ci(&kappa),
        spearman: defined(rho(pairs)),
        spearman_ci: ci(&rho),
        f1: defined(f1(pairs)),
        f1_ci: ci(&f1),
        reference_keeps: pairs.iter().filter(|(r, _)| r.grade >= KEEP_AT).count(),
        grader_keeps: pairs.iter().filter(|(_, g)| g.grade >= KEEP_AT).count(),
        exact: pairs.iter().filter(|(r, g)| r.grade == g.grade).count() as f64 / pairs.len() as f64,
    })
}

/// A statistic with its interval, or why it has none.
fn stat(name: &str, x: Option<f64>, ci: Option<(f64, f64)>, undefined: &str) -> String {
    match (x, ci) {
        (Some(x), Some((lo, hi))) => format!("{name} {x:.2} [{lo:.2}, {hi:.2}]"),
        (Some(x), None) => format!("{name} {x:.2}"),
        (None, _) => format!("{name} undefined ({undefined})"),
    }
}

impl Agreement {
    /// One line for a report: kappa, Spearman and F1 with their intervals.
    pub fn line(&self) -> String {
        let f1_name = format!("F1 at grade >= {KEEP_AT}");
        // F1 is 0 whenever one side keeps nothing, whatever the other does: say so, not "0.00"
        let f1 = match (self.reference_keeps, self.grader_keeps) {
            (0, 0) => stat(&f1_name, None, None, "no record graded that high by either"),
            (0, _) | (_, 0) => format!(
                "{f1_name} not informative (the {} keeps no record)",
                if self.grader_keeps == 0 {
                    "grader"
                } else {
                    "reference"
                }
            ),
            _ => stat(&f1_name, self.f1, self.f1_ci, ""),
        };
        format!(
            "{} records: {}, {}, {} (reference keeps {}, grader keeps {}), same grade {:.0}% (95% bootstrap intervals)",
            self.n,
            stat("quadratic kappa", self.kappa, self.kappa_ci, "one grade throughout"),
            stat("Spearman", self.spearman, self.spearman_ci, "a constant score"),
            f1,
            self.reference_keeps,
            self.grader_keeps,
            100.0 * self.exact
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_chance_and_inverted_graders() {
        let refs: Vec<u8> = (0..60).map(|i| (i % 6) as u8).collect();
        let same: Vec<_> = refs
            .iter()
            .map(|&g| (Graded::label(g), Graded::score(g as f64 + 0.2)))
            .collect();
        let a = agreement(&same).unwrap();
        assert_eq!(
            (a.kappa, a.spearman, a.f1, a.exact),
            (Some(1.0), Some(1.0), Some(1.0), 1.0)
        );
        assert_eq!((a.reference_keeps, a.grader_keeps), (30, 30));
        let inverted: Vec<_> = refs
            .iter()
            .map(|&g| (Graded::label(g), Graded::label(5 - g)))
            .collect();
        let b = agreement(&inverted).unwrap();
        assert!(
            b.kappa.unwrap() < -0.9 && b.spearman.unwrap() < -0.99,
            "{b:?}"
        );
        assert!(b.kappa_ci.unwrap().1 < 0.0 && b.spearman_ci.unwrap().1 < 0.0);
        // half of the records at >= 3 on each side, crossed: F1 = 2·tp/(refs+grads) = 0
        assert_eq!(b.f1, Some(0.0));
        // a grader that keeps nothing: F1 is 0 by construction, and the line says so
        let none_kept: Vec<_> = (0..10)
            .map(|i| (Graded::label(3 + i % 2), Graded::score(1.0)))
            .collect();
        let n = agreement(&none_kept).unwrap();
        assert_eq!(n.f1, Some(0.0));
        assert!(
            n.line()
                .contains("not informative (the grader keeps no record)"),
            "{}",
            n.line()
        );
        // nobody keeps anything: F1 undefined, said so
        let low: Vec<_> = (0..10)
            .map(|i| (Graded::label(i % 2), Graded::score(1.4)))
            .collect();
        let c = agreement(&low).unwrap();
        assert_eq!((c.f1, c.f1_ci), (None, None));
        assert!(
            c.line().contains("F1 at grade >= 3 undefined"),
            "{}",
            c.line()
        );
        // and it survives JSON (where NaN would have become null and failed to read back)
        let back: Agreement = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(agreement(&[]).is_none());
        // scores round to grades on the scale
        assert_eq!(Graded::score(2.5).grade, 3);
        assert_eq!(Graded::score(7.0).grade, 5);
        assert_eq!(Graded::score(-1.0).grade, 0);
    }
}
