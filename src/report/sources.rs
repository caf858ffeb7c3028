//! Held-out sets read source by source. Bits per byte weighs every byte the same, so a set
//! whose bytes sit in a few documents of one source (the second design's held-out real text:
//! 12 effective documents, 41.5% of its bytes from five Python documentation pages) is mostly
//! a score on that source. The table gives each source's bits per byte, and the mean over
//! sources with every source weighing the same: a verdict that holds on both readings does
//! not hang on one source.

use crate::experiments::exp1::SourceRow;
use crate::report::tables::{col, num, pct};
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;

/// Mean-over-sources differences smaller than this (bits per byte) are reported as level: the
/// table has no interval, and the per-source means rest on few documents.
const LEVEL: f64 = 0.02;

/// The models of the table, in column order: each condition's student, then its best
/// Kneser-Ney model (the bigram rows stay in the results for readers who want them).
fn columns(rows: &[SourceRow], set: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in rows.iter().filter(|r| r.set == set && r.model != "bigram") {
        let k = (r.condition.clone(), r.model.clone());
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// The mean over sources of each (condition, model) on `set`, sources weighing the same.
pub fn macro_means(rows: &[SourceRow], set: &str) -> BTreeMap<(String, String), f64> {
    let mut acc: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.set == set) {
        acc.entry((r.condition.clone(), r.model.clone()))
            .or_default()
            .push(r.bpb);
    }
    acc.into_iter()
        .map(|(k, v)| (k, crate::stats::mean(&v)))
        .collect()
}

/// One held-out set by source: documents, share of the set's bytes, then bits per byte of
/// every condition's student and best Kneser-Ney model; last, the mean over sources. None
/// when the set has one source or no rows.
pub fn table(rows: &[SourceRow], set: &str) -> Result<Option<DataFrame>> {
    let cols = columns(rows, set);
    let mut sources: Vec<(&str, usize, u64)> = Vec::new();
    for r in rows.iter().filter(|r| r.set == set) {
        if !sources.iter().any(|s| s.0 == r.source) {
            sources.push((&r.source, r.documents, r.bytes));
        }
    }
    if sources.len() < 2 || cols.is_empty() {
        return Ok(None);
    }
    let total: u64 = sources.iter().map(|s| s.2).sum();
    let mean_row = "mean over sources";
    let mut frame = vec![
        col(
            "source",
            sources
                .iter()
                .map(|s| s.0.to_string())
                .chain([mean_row.into()]),
        ),
        col(
            "documents",
            sources
                .iter()
                .map(|s| s.1.to_string())
                .chain([String::new()]),
        ),
        col(
            "share of bytes",
            sources
                .iter()
                .map(|s| pct(s.2 as f64 / total.max(1) as f64))
                .chain([String::new()]),
        ),
    ];
    let means = macro_means(rows, set);
    for (c, model) in &cols {
        let cell = |source: &str| {
            rows.iter()
                .find(|r| {
                    r.set == set && &r.condition == c && &r.model == model && r.source == source
                })
                .map_or("-".into(), |r| num(r.bpb))
        };
        frame.push(col(
            &format!("{model} ({c})"),
            sources.iter().map(|s| cell(s.0)).chain([means
                .get(&(c.clone(), model.clone()))
                .map_or("-".into(), |m| num(*m))]),
        ));
    }
    Ok(Some(DataFrame::new(frame)?))
}

/// What the mean over sources says, in a sentence: which condition's student is lowest, and
/// which students are below their own best Kneser-Ney model on that reading.
pub fn sentence(rows: &[SourceRow], set: &str) -> Option<String> {
    let means = macro_means(rows, set);
    let cols = columns(rows, set);
    let students: Vec<(&String, &String, f64)> = cols
        .iter()
        .filter(|(_, m)| !m.starts_with("kn-"))
        .filter_map(|(c, m)| means.get(&(c.clone(), m.clone())).map(|v| (c, m, *v)))
        .collect();
    let best = students.iter().min_by(|a, b| a.2.total_cmp(&b.2))?;
    let vs_kn: Vec<String> = students
        .iter()
        .filter_map(|(c, _, v)| {
            let kn = cols
                .iter()
                .find(|(c2, m)| c2 == *c && m.starts_with("kn-"))
                .and_then(|k| means.get(k))?;
            // No interval here: a difference this small is called level, not a win.
            let verdict = match v - kn {
                d if d.abs() < LEVEL => "level with",
                d if d < 0.0 => "below",
                _ => "above",
            };
            Some(format!(
                "{c} {verdict} its Kneser-Ney model ({})",
                num(v - kn)
            ))
        })
        .collect();
    Some(format!(
        "With every source of held-out {set} text weighing the same, training on {} gives the lowest bits per byte ({}); students against the best Kneser-Ney model of their own tokens on that reading: {}.",
        best.0,
        num(best.2),
        vs_kn.join("; ")
    ))
}

/// Each set's share of its text bytes and of its tokens per source (documents in brackets),
/// one column per set of `sets`: what "real" and each half of a blend are made of. A half
/// taken by bytes is not a half by tokens when its sources differ in bytes per token, so both
/// shares are given where the results recorded tokens per source. None when the results did
/// not record bytes per source.
pub fn composition_table(
    sets: &[crate::experiments::results::SetRecord],
) -> Result<Option<DataFrame>> {
    if sets.iter().all(|s| s.size.source_bytes.is_empty()) {
        return Ok(None);
    }
    let mut sources: Vec<&String> = sets
        .iter()
        .flat_map(|s| s.size.source_bytes.keys())
        .collect();
    sources.sort();
    sources.dedup();
    let share = |part: Option<&u64>, whole: &BTreeMap<String, u64>| {
        let total: u64 = whole.values().sum();
        part.map(|b| pct(*b as f64 / total.max(1) as f64))
    };
    let mut frame = vec![col("source", sources.iter().map(|s| s.to_string()))];
    for set in sets {
        let z = &set.size;
        let cell = |src: &String| match share(z.source_bytes.get(src), &z.source_bytes) {
            Some(bytes) => {
                let docs = z.sources.get(src).copied().unwrap_or(0);
                match share(z.source_tokens.get(src), &z.source_tokens) {
                    Some(tokens) => format!("{bytes} / {tokens} ({docs})"),
                    None => format!("{bytes} ({docs})"),
                }
            }
            None => "-".into(),
        };
        frame.push(col(&set.label(), sources.iter().map(|s| cell(s))));
    }
    Ok(Some(DataFrame::new(frame)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: &str, bytes: u64, condition: &str, model: &str, bpb: f64) -> SourceRow {
        SourceRow {
            set: "real".into(),
            source: source.into(),
            documents: 2,
            bytes,
            student: "s".into(),
            condition: condition.into(),
            model: model.into(),
            bpb,
        }
    }

    /// One large source where `a` wins and two small ones where `b` does: by bytes `a` would
    /// lead, by sources `b` does, and the sentence says so.
    #[test]
    fn the_mean_over_sources_weighs_every_source_the_same() {
        let rows = vec![
            row("big", 900, "a", "s", 1.0),
            row("big", 900, "a", "kn-5", 1.2),
            row("big", 900, "b", "s", 1.5),
            row("big", 900, "b", "kn-5", 1.4),
            row("small1", 50, "a", "s", 2.0),
            row("small1", 50, "a", "kn-5", 1.9),
            row("small1", 50, "b", "s", 1.0),
            row("small1", 50, "b", "kn-5", 1.6),
            row("small2", 50, "a", "s", 2.0),
            row("small2", 50, "a", "kn-5", 1.9),
            row("small2", 50, "b", "s", 1.0),
            row("small2", 50, "b", "kn-5", 1.6),
            row("small2", 50, "b", "bigram", 3.0),
        ];
        let m = macro_means(&rows, "real");
        assert!((m[&("a".into(), "s".into())] - 5.0 / 3.0).abs() < 1e-12);
        assert!((m[&("b".into(), "s".into())] - 3.5 / 3.0).abs() < 1e-12);
        let t = table(&rows, "real").unwrap().unwrap();
        assert_eq!(t.height(), 4);
        assert_eq!(t.width(), 3 + 4, "bigram rows are not columns");
        let share = t
            .column("share of bytes")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap()
            .to_string();
        assert_eq!(share, "90.0%");
        let s = sentence(&rows, "real").unwrap();
        assert!(s.contains("training on b gives the lowest"), "{s}");
        // a: 5/3 against 5/3 (level); b: 3.5/3 against 4.6/3 (below).
        assert!(s.contains("a level with") && s.contains("b below"), "{s}");
        assert!(
            table(&rows[..4], "real").unwrap().is_none(),
            "one source: no table"
        );
    }

    #[test]
    fn composition_gives_each_sets_byte_and_token_shares_and_is_absent_for_old_results() {
        use crate::experiments::prepare::CorpusSize;
        use crate::experiments::results::SetRecord;
        let set = |name: &str, bytes: &[(&str, u64)]| SetRecord {
            role: "train".into(),
            name: name.into(),
            size: CorpusSize {
                documents: 0,
                tokens: 0,
                text_bytes: 0,
                sources: bytes.iter().map(|(s, _)| (s.to_string(), 3)).collect(),
                source_bytes: bytes.iter().map(|(s, b)| (s.to_string(), *b)).collect(),
                source_tokens: bytes.iter().map(|(s, b)| (s.to_string(), b / 2)).collect(),
            },
        };
        let sets = [
            set("real", &[("a", 600), ("b", 400)]),
            set("blend", &[("b", 100)]),
        ];
        let t = composition_table(&sets).unwrap().unwrap();
        let cells_of = |t: &DataFrame, c: &str| -> Vec<String> {
            t.column(c)
                .unwrap()
                .str()
                .unwrap()
                .into_no_null_iter()
                .map(String::from)
                .collect()
        };
        let cells = |c: &str| cells_of(&t, c);
        assert_eq!(cells("source"), ["a", "b"]);
        assert_eq!(
            cells("train: real"),
            ["60.0% / 60.0% (3)", "40.0% / 40.0% (3)"]
        );
        assert_eq!(cells("train: blend"), ["-", "100.0% / 100.0% (3)"]);
        // Equal bytes, unequal tokens: the two shares part.
        let mut even = set("blend", &[("a", 500), ("b", 500)]);
        even.size.source_tokens.insert("a".into(), 300);
        let t = composition_table(&[even.clone()]).unwrap().unwrap();
        assert_eq!(
            cells_of(&t, "train: blend"),
            ["50.0% / 54.5% (3)", "50.0% / 45.5% (3)"]
        );
        // Results written before tokens per source were recorded give bytes alone.
        even.size.source_tokens.clear();
        let t = composition_table(&[even]).unwrap().unwrap();
        assert_eq!(cells_of(&t, "train: blend"), ["50.0% (3)", "50.0% (3)"]);
        let old = [set("real", &[])];
        assert!(composition_table(&old).unwrap().is_none());
    }
}
