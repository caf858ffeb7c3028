//! Report sections every experiment of the harness can show, each only when its results hold
//! it: the learning-rate sweep, the learning curve and what decontamination removed.

use crate::experiments::curve::{trained_enough, CurvePoint, Gain, Verdict, ENOUGH};
use crate::experiments::results::Results;
use crate::report::plots::{Figure, Series};
use crate::report::tables::{col, int, num};
use crate::report::Block;
use anyhow::Result;
use polars::prelude::*;

/// The sweep's table: dev bits per byte per student and rate, the chosen rate marked.
pub fn sweep(r: &Results) -> Result<Vec<Block>> {
    let Some(first) = r.sweep.first() else {
        return Ok(vec![]);
    };
    let chosen = |st: &str| {
        r.scale
            .students
            .iter()
            .find(|s| s.name == st)
            .and_then(|s| s.lr)
    };
    let mut p: Vec<_> = r.sweep.iter().collect();
    p.sort_by(|a, b| a.student.cmp(&b.student).then(a.lr.total_cmp(&b.lr)));
    let frame = DataFrame::new(vec![
        col("student", p.iter().map(|x| x.student.clone())),
        col(
            "peak learning rate",
            p.iter().map(|x| format!("{:e}", x.lr)),
        ),
        col("dev bits per byte", p.iter().map(|x| num(x.dev_bpb))),
        col(
            "chosen",
            p.iter().map(|x| {
                if chosen(&x.student) == Some(x.lr) {
                    "yes"
                } else {
                    ""
                }
            }),
        ),
    ])?;
    Ok(vec![
        Block::Heading(3, "Learning rate".into()),
        Block::Text(format!("Each student's peak learning rate was chosen before the grid ran, by training it at each rate on `{}` for the full token budget (first seed) and scoring a dev split of that condition's training documents (5%, by hash; never a held-out set). The lowest dev bits per byte wins.{}", first.condition, sweep_edges(&p))),
        Block::Table { name: "sweep".into(), caption: "The learning-rate sweep on the dev split.".into(), frame },
    ])
}

/// A sentence for each student whose best rate is the lowest or highest it was swept at: the
/// sweep then bounds the optimum on one side only, and the reader should know by how much the
/// edge beat its neighbour. `p`: sorted by student, then rate.
fn sweep_edges(p: &[&crate::experiments::sweep::SweepPoint]) -> String {
    let mut students: Vec<&str> = p.iter().map(|x| x.student.as_str()).collect();
    students.dedup();
    let mut out = String::new();
    for st in students {
        let same: Vec<_> = p.iter().filter(|y| y.student == st).collect();
        let Some(best) =
            (0..same.len()).min_by(|&a, &b| same[a].dev_bpb.total_cmp(&same[b].dev_bpb))
        else {
            continue;
        };
        let (edge, next) = match best {
            _ if same.len() < 2 => continue,
            0 => ("lowest", same[1]),
            b if b + 1 == same.len() => ("highest", same[b - 1]),
            _ => continue,
        };
        out += &format!(
            " For `{st}` the best rate is the {edge} swept ({:e}), {:.4} bits per byte below the next ({:e}) on one seed; rates beyond it were not tried.",
            same[best].lr,
            next.dev_bpb - same[best].dev_bpb,
            next.lr
        );
    }
    out
}

/// The learning curve: a table of every point with its n-gram baselines, the "trained enough"
/// verdicts, and one figure per student and held-out set; table and figures named with
/// `prefix` (a second results file's curve on the same page).
pub fn curve(r: &Results, color: fn(&str) -> usize, prefix: &str) -> Result<Vec<Block>> {
    if r.curve.is_empty() {
        return Ok(vec![]);
    }
    let mut c: Vec<_> = r.curve.iter().collect();
    c.sort_by(|a, b| {
        (&a.student, &a.condition, &a.eval_set, a.multiple)
            .partial_cmp(&(&b.student, &b.condition, &b.eval_set, b.multiple))
            .expect("finite multiples")
    });
    let frame = DataFrame::new(vec![
        col("student", c.iter().map(|x| x.student.clone())),
        col("trained on", c.iter().map(|x| x.condition.clone())),
        col("held-out set", c.iter().map(|x| x.eval_set.clone())),
        col("x budget", c.iter().map(|x| num(x.multiple))),
        col("tokens", c.iter().map(|x| int(x.tokens))),
        col("student bpb", c.iter().map(|x| num(x.bpb))),
        col(
            "bigram",
            c.iter()
                .map(|x| x.baselines.get("bigram").map_or("-".into(), |v| num(*v))),
        ),
        col("best KN", c.iter().map(|x| num(best_kn(&x.baselines)))),
    ])?;
    let verdicts: Vec<String> = trained_enough(&r.curve)
        .iter()
        .map(|g| verdict(r, g))
        .collect();
    let caption = match c.iter().any(|x| x.eval_set == "neutral") {
        true => format!("Learning curve: bits per byte on whole held-out sets (the neutral set without the {} documents left out of every neutral score).", r.neutral_excluded.len()),
        false => "Learning curve: bits per byte on whole held-out sets.".into(),
    };
    let mut b = vec![
        Block::Heading(
            3,
            match prefix {
                "" => "Learning curve".into(),
                _ => format!("Learning curve of `{}`", r.scale.profile),
            },
        ),
        Block::Text(format!("Seed {} of every student and training set trained again on other multiples of the token budget, each a finished run with its own warmup and cosine schedule (not a snapshot taken mid-run), beside n-gram models counted on exactly the tokens each run saw.", c[0].seed)),
        Block::Table { name: format!("{prefix}curve"), caption, frame },
    ];
    if !verdicts.is_empty() {
        b.push(Block::List(verdicts));
    }
    for st in r.distinct(|h| &h.student) {
        let sets: Vec<String> = c
            .iter()
            .filter(|x| x.student == st)
            .map(|x| x.eval_set.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for e in sets {
            b.push(Block::Figure {
                name: format!("{prefix}budget-{st}-{e}"),
                caption: format!("`{st}` on held-out {e} text against the tokens each run trained on: the student (solid, one finished run per point) and the best Kneser-Ney model counted on the same tokens (dashed); one colour per training set. The bigram is in the table."),
                figure: curve_figure(r, &st, &e, color),
            });
        }
    }
    Ok(b)
}

/// One cell's 2x verdict in a sentence, with the spread of the budget's seeds beside it (the
/// curve has one seed: a change smaller than that spread may be seed noise).
fn verdict(r: &Results, g: &Gain) -> String {
    let (st, cond, set, gain, v) = g;
    let seeds = crate::report::bar::value(r, st, cond, set)
        .filter(|h| h.n_seeds > 1)
        .map_or(String::new(), |h| {
            format!(
                " At the budget its {} seeds span {} to {}.",
                h.n_seeds,
                num(h.lo),
                num(h.hi)
            )
        });
    let what = match v {
        Verdict::StillLearning => format!("twice the tokens gained {} bits per byte: still learning (the rule: a gain under {ENOUGH} is trained enough).", num(*gain)),
        Verdict::Enough => format!("twice the tokens gained {} bits per byte: trained enough (a gain under {ENOUGH}).", num(*gain)),
        Verdict::Worse => format!("twice the tokens did not gain: {} bits per byte worse than the run on the budget (not counted as trained enough).", num(-gain)),
    };
    format!("`{st}` trained on {cond}, held-out {set}: {what}{seeds}")
}

/// A multiple of the token budget in words: `1/4 of the budget`, `the budget`, `2x the budget`.
fn of_budget(m: f64) -> String {
    let inv = 1.0 / m;
    if m == 1.0 {
        "the budget".into()
    } else if m < 1.0 && (inv - inv.round()).abs() < 1e-9 {
        format!("1/{} of the budget", inv.round())
    } else {
        format!("{m}x the budget")
    }
}

/// The lowest Kneser-Ney baseline of a curve point (infinite when it has none).
fn best_kn(b: &std::collections::BTreeMap<String, f64>) -> f64 {
    b.iter()
        .filter(|(k, _)| k.starts_with("kn-"))
        .map(|(_, v)| *v)
        .fold(f64::INFINITY, f64::min)
}

/// The learning curve in sentences, for the paper's text: per held-out set and multiple of the
/// budget, the range over training sets of the student's distance from its best Kneser-Ney
/// model; then what the 2x runs did, by verdict. Empty without a curve.
pub fn curve_sentence(points: &[CurvePoint]) -> String {
    let mut multiples: Vec<f64> = points.iter().map(|x| x.multiple).collect();
    multiples.sort_by(f64::total_cmp);
    multiples.dedup();
    let sets: std::collections::BTreeSet<&str> =
        points.iter().map(|x| x.eval_set.as_str()).collect();
    let per_set: Vec<String> = sets
        .iter()
        .filter_map(|set| {
            let gaps: Vec<String> = multiples
                .iter()
                .filter_map(|m| {
                    let d = points
                        .iter()
                        .filter(|x| x.multiple == *m && x.eval_set == *set)
                        .map(|x| x.bpb - best_kn(&x.baselines))
                        .filter(|d| d.is_finite());
                    span(d).map(|range| format!("{range} at {}", of_budget(*m)))
                })
                .collect();
            (!gaps.is_empty()).then(|| format!("on held-out {set} text, {}", gaps.join(", ")))
        })
        .collect();
    if per_set.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "On the learning curve (seed {}), the student's bits per byte minus its best Kneser-Ney model's, over training sets: {}.",
        points[0].seed,
        per_set.join("; ")
    );
    out += &verdict_sentence(&trained_enough(points));
    out
}

/// What the 2x runs did, in one or two sentences (empty without 2x runs): the range of the
/// gains, how many cells were still learning, trained enough or worse, and which were worse.
fn verdict_sentence(v: &[Gain]) -> String {
    let Some(gained) = span(v.iter().map(|x| x.3)) else {
        return String::new();
    };
    let count = |k: Verdict| v.iter().filter(|x| x.4 == k).count();
    let (still, enough, worse) = (
        count(Verdict::StillLearning),
        count(Verdict::Enough),
        count(Verdict::Worse),
    );
    let verdict = if still == v.len() {
        "the students were still learning".to_string()
    } else if enough == v.len() {
        "the students were trained enough".to_string()
    } else {
        format!("still learning in {still}, trained enough in {enough}, worse in {worse}")
    };
    let mut out = format!(
        " From the budget to twice the budget the student gained {gained} bits per byte across {} cells (a gain under {ENOUGH} counts as trained enough; a negative one is worse): {verdict}.",
        v.len()
    );
    let named: Vec<String> = v
        .iter()
        .filter(|x| x.4 == Verdict::Worse)
        .map(|x| {
            format!(
                "`{}` trained on {} and scored on {} text, by {}",
                x.0,
                x.1,
                x.2,
                num(-x.3)
            )
        })
        .collect();
    if !named.is_empty() {
        out += &format!(" Worse at twice the budget: {}.", named.join("; "));
    }
    out
}

/// `lo to hi` of some numbers (one number when they are all equal); `None` when there are none.
fn span(v: impl Iterator<Item = f64>) -> Option<String> {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    match (lo.is_finite(), lo == hi) {
        (false, _) => None,
        (true, true) => Some(num(lo)),
        (true, false) => Some(format!("{} to {}", num(lo), num(hi))),
    }
}

fn curve_figure(r: &Results, student: &str, eval: &str, color: fn(&str) -> usize) -> Figure {
    let max = r.curve.iter().map(|x| x.tokens).max().unwrap_or(0);
    let (unit, x_label) = if max >= 1_000_000 {
        (1e6, "training tokens (millions)")
    } else {
        (1e3, "training tokens (thousands)")
    };
    let mut series = Vec::new();
    // In colour order, which is the report's order of training sets (the legend of every
    // figure lists them the same way).
    let mut conds: Vec<&str> = r.curve.iter().map(|x| x.condition.as_str()).collect();
    conds.sort_by_key(|c| (color(c), c.to_string()));
    conds.dedup();
    for cond in conds {
        let mut pts: Vec<_> = r
            .curve
            .iter()
            .filter(|x| x.student == student && x.eval_set == eval && x.condition == cond)
            .collect();
        pts.sort_by_key(|x| x.tokens);
        let line = |f: &dyn Fn(&crate::experiments::curve::CurvePoint) -> f64| {
            pts.iter()
                .map(|x| (x.tokens as f64 / unit, f(x), f(x), f(x)))
                .collect::<Vec<_>>()
        };
        series.push(Series {
            label: format!("trained on {cond}"),
            points: line(&|x| x.bpb),
            color: color(cond),
            dashed: false,
        });
        series.push(Series {
            label: format!("best KN on {cond}"),
            points: line(&|x| best_kn(&x.baselines)),
            color: color(cond),
            dashed: true,
        });
    }
    Figure::Lines {
        title: format!("{student}: held-out {eval} text"),
        x_label: x_label.into(),
        y_label: "bits per byte".into(),
        series,
    }
}

/// What decontamination removed, per set.
pub fn decontamination(r: &Results) -> Result<Vec<Block>> {
    let d = &r.decontamination;
    if d.is_empty() {
        return Ok(vec![]);
    }
    let frame = DataFrame::new(vec![
        col("role", d.iter().map(|x| x.role.clone())),
        col("set", d.iter().map(|x| x.set.clone())),
        col("against", d.iter().map(|x| x.against.clone())),
        col("rule", d.iter().map(|x| x.rule.clone())),
        col(
            "documents removed",
            d.iter().map(|x| int(x.documents as u64)),
        ),
        col("bytes removed", d.iter().map(|x| int(x.text_bytes))),
    ])?;
    Ok(vec![
        Block::Heading(3, "Decontamination".into()),
        Block::Table { name: "decontamination".into(), caption: "What the harness removed before training: training documents sharing a word 13-gram with a fixed evaluation set, and held-out documents with over 5% of their 13-grams in the training sets.".into(), frame },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::sweep::SweepPoint;

    #[test]
    fn a_best_rate_at_the_edge_of_the_sweep_is_said_and_an_inner_one_is_not() {
        let point = |student: &str, lr: f64, dev_bpb: f64| SweepPoint {
            student: student.into(),
            lr,
            condition: "blend".into(),
            dev_bpb,
            tokens: 0,
        };
        // The second design's sweep: best at the top, 0.002 below 4e-3.
        let top = [
            point("a", 2e-3, 1.701),
            point("a", 4e-3, 1.678),
            point("a", 8e-3, 1.676),
        ];
        let inner = [
            point("b", 1e-3, 1.9),
            point("b", 2e-3, 1.8),
            point("b", 4e-3, 1.85),
        ];
        let low = [point("c", 1e-3, 1.7), point("c", 2e-3, 1.8)];
        let all: Vec<&SweepPoint> = top.iter().chain(&inner).chain(&low).collect();
        let s = sweep_edges(&all);
        assert!(s.contains("For `a` the best rate is the highest swept (8e-3), 0.0020 bits per byte below the next (4e-3) on one seed"), "{s}");
        assert!(!s.contains("`b`"), "{s}");
        assert!(
            s.contains("For `c` the best rate is the lowest swept (1e-3)"),
            "{s}"
        );
        assert!(sweep_edges(&top[..1].iter().collect::<Vec<_>>()).is_empty());
    }

    #[test]
    fn the_curve_sentence_gives_each_multiples_distance_from_kn_and_the_2x_verdict() {
        let point = |condition: &str, multiple: f64, bpb: f64, kn: f64| CurvePoint {
            student: "s".into(),
            condition: condition.into(),
            seed: 0,
            multiple,
            steps: 0,
            tokens: 0,
            eval_set: "real".into(),
            bpb,
            baselines: [("bigram".to_string(), 9.0), ("kn-3".to_string(), kn)].into(),
        };
        let mut p = vec![
            point("a", 0.25, 2.3, 2.1),
            point("b", 0.25, 2.25, 2.1),
            point("a", 1.0, 1.9, 1.95),
            point("b", 1.0, 2.0, 1.95),
            point("a", 2.0, 1.85, 1.9),
        ];
        let s = curve_sentence(&p);
        assert!(s.contains("seed 0"), "{s}");
        assert!(s.contains("over training sets: on held-out real text, 0.150 to 0.200 at 1/4 of the budget, -0.050 to 0.050 at the budget, -0.050 at 2x the budget."), "{s}");
        assert!(s.contains("the student gained 0.050 bits per byte across 1 cells (a gain under 0.02 counts as trained enough; a negative one is worse): the students were still learning."), "{s}");
        p.push(point("b", 2.0, 1.995, 1.9));
        let s = curve_sentence(&p);
        assert!(
            s.contains("still learning in 1, trained enough in 1, worse in 0."),
            "{s}"
        );
        assert!(!s.contains("Worse at"), "{s}");
        // a loss at 2x is its own verdict, named, not counted as trained enough
        p.last_mut().unwrap().bpb = 2.03;
        let s = curve_sentence(&p);
        assert!(s.contains("still learning in 1, trained enough in 0, worse in 1. Worse at twice the budget: `s` trained on b and scored on real text, by 0.030."), "{s}");
        // held-out sets are given one by one
        p.push(CurvePoint {
            eval_set: "neutral".into(),
            ..point("a", 1.0, 2.5, 2.4)
        });
        let s = curve_sentence(&p);
        assert!(s.contains("over training sets: on held-out neutral text, 0.100 at the budget; on held-out real text, 0.150"), "{s}");
        assert!(curve_sentence(&[]).is_empty());
    }
}
