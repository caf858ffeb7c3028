//! Hand labels of record quality against the rubric in `data/labels/GUIDE.md`. A sheet of
//! records is drawn per family (the same seed draws the same sheet), people fill in the labels,
//! and the sheet is read back with every label checked. The annotator and the classifier are
//! validated against these labels before anyone trusts them.

use crate::data::document::Document;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One row of a labelling sheet (JSON Lines).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRow {
    pub id: String,
    pub family: String,
    /// The text judged (a conversation's user turn, then its assistant turn).
    pub text: String,
    /// 0-5 by the rubric; empty until labelled.
    pub label: Option<u8>,
    pub labeller: Option<String>,
    pub note: Option<String>,
}

/// What a labeller sees of a record: the task and the answer for a conversation, else the text.
fn shown(d: &Document) -> String {
    match &d.chat {
        Some(turns) => turns
            .iter()
            .map(|m| format!("[{}]\n{}", m.role.as_str(), m.content))
            .collect::<Vec<_>>()
            .join("\n\n"),
        None => d.text.clone(),
    }
}

/// `per_family` records of each family, chosen by a seeded hash of their ids (independent of
/// the pool's order and size: records added later do not move the ones drawn before unless
/// they hash lower).
pub fn draw(pools: &[(String, Vec<Document>)], per_family: usize, seed: u64) -> Vec<LabelRow> {
    let mut out = Vec::new();
    for (family, docs) in pools {
        let mut order: Vec<(u64, &Document)> = docs
            .iter()
            .map(|d| {
                (
                    crate::hash::fnv1a(seed.to_le_bytes().into_iter().chain(d.id.bytes())),
                    d,
                )
            })
            .collect();
        order.sort_by_key(|(h, d)| (*h, d.id.clone()));
        out.extend(order.into_iter().take(per_family).map(|(_, d)| LabelRow {
            id: d.id.clone(),
            family: family.clone(),
            text: shown(d),
            label: None,
            labeller: None,
            note: None,
        }));
    }
    out
}

/// Write a new sheet; an existing sheet is never overwritten (it may hold labels).
pub fn write_sheet(path: &Path, rows: &[LabelRow]) -> Result<()> {
    if path.exists() {
        bail!(
            "{} exists (it may hold labels); choose another path or move it away",
            path.display()
        );
    }
    let mut s = String::new();
    for r in rows {
        s += &serde_json::to_string(r)?;
        s.push('\n');
    }
    crate::io::write_bytes(path, s.as_bytes())
}

/// Read a sheet back: every line a row, every label 0-5; errors name the file and the line.
pub fn read_sheet(path: &Path) -> Result<Vec<LabelRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: LabelRow = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a label row", path.display(), i + 1))?;
        if let Some(l) = r.label.filter(|l| *l > 5) {
            bail!(
                "{} line {}: label {l} is outside 0-5",
                path.display(),
                i + 1
            );
        }
        rows.push(r);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheets_are_drawn_reproducibly_never_overwritten_and_checked_on_reading() {
        let doc = |id: &str| Document {
            id: id.into(),
            source: "gen/stories".into(),
            text: format!("Story {id}."),
            chat: None,
            meta: Default::default(),
        };
        let pool: Vec<Document> = (0..50).map(|i| doc(&format!("s{i}"))).collect();
        let a = draw(&[("stories".into(), pool.clone())], 5, 1);
        let mut reversed = pool.clone();
        reversed.reverse();
        assert_eq!(
            a,
            draw(&[("stories".into(), reversed)], 5, 1),
            "independent of the pool's order"
        );
        assert_ne!(a, draw(&[("stories".into(), pool)], 5, 2));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sheet.jsonl");
        write_sheet(&path, &a).unwrap();
        assert!(write_sheet(&path, &a)
            .unwrap_err()
            .to_string()
            .contains("exists"));
        assert_eq!(read_sheet(&path).unwrap(), a);
        let mut labelled = a[0].clone();
        labelled.label = Some(7);
        std::fs::write(&path, serde_json::to_string(&labelled).unwrap()).unwrap();
        let e = read_sheet(&path).unwrap_err().to_string();
        assert!(
            e.contains("sheet.jsonl line 1") && e.contains("outside 0-5"),
            "{e}"
        );
        std::fs::write(&path, "{\"id\": 3}").unwrap();
        assert!(read_sheet(&path)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }
}
