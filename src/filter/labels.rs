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
    /// Whether the record was labelled before the LLM annotator scored it (`false`: the
    /// annotator's scores of it had been computed, and summarised, before it was labelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blind: Option<bool>,
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
/// they hash lower), skipping the ids in `exclude` (records already on a sheet).
///
/// The hash is FNV-1a passed through splitmix64's finaliser. Sorting by raw FNV-1a drew runs of
/// neighbouring ids (the first v2 sheet, drawn that way, holds records 140-199 of one cosmo
/// shard and ids 0-79 of magpie): FNV's top bits barely depend on an id's last characters.
pub fn draw(
    pools: &[(String, Vec<Document>)],
    per_family: usize,
    seed: u64,
    exclude: &std::collections::HashSet<(String, String)>,
) -> Vec<LabelRow> {
    let mut out = Vec::new();
    for (family, docs) in pools {
        let mut order: Vec<(u64, &Document)> = docs
            .iter()
            .filter(|d| !exclude.contains(&(family.clone(), d.id.clone())))
            .map(|d| {
                // the family is in the key: cosmo and stories share their id scheme, and
                // without it both families drew the same ids
                let key = seed
                    .to_le_bytes()
                    .into_iter()
                    .chain(family.bytes())
                    .chain([0]);
                let h = crate::hash::fnv1a(key.chain(d.id.bytes()));
                (crate::hash::avalanche(h), d)
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
            blind: None,
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
    crate::io::write_bytes(path, lines(rows)?.as_bytes())
}

/// Add `rows` after the rows of an existing sheet, which are kept byte for byte (labels and
/// all); the file is replaced atomically, so an interrupted append loses nothing.
pub fn append_to_sheet(path: &Path, rows: &[LabelRow]) -> Result<()> {
    let old = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} to append to it", path.display()))?;
    let on: std::collections::HashSet<(String, String)> = read_sheet(path)?
        .into_iter()
        .map(|r| (r.family, r.id))
        .collect();
    if let Some(r) = rows
        .iter()
        .find(|r| on.contains(&(r.family.clone(), r.id.clone())))
    {
        bail!(
            "{}: record {} ({}) is already on the sheet",
            path.display(),
            r.id,
            r.family
        );
    }
    let mut s = old;
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s += &lines(rows)?;
    crate::io::write_bytes(path, s.as_bytes())
}

/// Rows as JSON Lines, each ending in a newline.
fn lines(rows: &[LabelRow]) -> Result<String> {
    let mut s = String::new();
    for r in rows {
        s += &serde_json::to_string(r)?;
        s.push('\n');
    }
    Ok(s)
}

/// Read a sheet back: every line a row, every label 0-5; errors name the file and the line.
pub fn read_sheet(path: &Path) -> Result<Vec<LabelRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows: Vec<LabelRow> = Vec::new();
    let mut seen = std::collections::HashSet::new();
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
        if !seen.insert((r.family.clone(), r.id.clone())) {
            bail!(
                "{} line {}: record {} ({}) is on the sheet twice",
                path.display(),
                i + 1,
                r.id,
                r.family
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
        let none = Default::default();
        let a = draw(&[("stories".into(), pool.clone())], 5, 1, &none);
        let mut reversed = pool.clone();
        reversed.reverse();
        assert_eq!(
            a,
            draw(&[("stories".into(), reversed)], 5, 1, &none),
            "independent of the pool's order"
        );
        assert_ne!(a, draw(&[("stories".into(), pool)], 5, 2, &none));
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
        let line = serde_json::to_string(&a[0]).unwrap();
        std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
        let e = read_sheet(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        std::fs::write(&path, "{\"id\": 3}").unwrap();
        assert!(read_sheet(&path)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }

    fn pool(family: &str, n: usize) -> (String, Vec<Document>) {
        let docs = (0..n)
            .map(|i| Document {
                id: format!("{family}-1-{i}"),
                source: format!("gen/{family}"),
                text: format!("Record {i}."),
                chat: None,
                meta: Default::default(),
            })
            .collect();
        (family.to_string(), docs)
    }

    /// The regression that made the first v2 sheet: ids that differ in their last characters
    /// were drawn as runs of neighbours. 50 of 1,000 sequential ids must spread over the range.
    #[test]
    fn a_draw_spreads_over_sequential_ids() {
        let rows = draw(&[pool("magpie", 1000)], 50, 1, &Default::default());
        let mut idx: Vec<usize> = rows
            .iter()
            .map(|r| r.id.rsplit('-').next().unwrap().parse().unwrap())
            .collect();
        idx.sort();
        let tenths = idx
            .iter()
            .map(|i| i / 100)
            .collect::<std::collections::BTreeSet<_>>();
        assert!(tenths.len() >= 8, "drawn ids cluster: {idx:?}");
        let neighbours = idx.windows(2).filter(|w| w[1] - w[0] == 1).count();
        assert!(neighbours <= 10, "{neighbours} neighbouring pairs: {idx:?}");
        // two families with the same ids draw different ones
        let mut twin = pool("magpie", 1000);
        twin.0 = "stories".into();
        let other = draw(&[twin], 50, 1, &Default::default());
        let same = rows
            .iter()
            .filter(|r| other.iter().any(|o| o.id == r.id))
            .count();
        assert!(same < 10, "{same} of 50 ids drawn by both families");
    }

    #[test]
    fn appending_keeps_the_labelled_rows_and_draws_only_new_records() {
        let pools = [pool("stories", 40)];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sheet.jsonl");
        let mut first = draw(&pools, 10, 1, &Default::default());
        first[0].label = Some(2);
        first[0].labeller = Some("ab".into());
        write_sheet(&path, &first).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let on: std::collections::HashSet<_> = first
            .iter()
            .map(|r| (r.family.clone(), r.id.clone()))
            .collect();
        let more = draw(&pools, 10, 1, &on);
        assert_eq!(more.len(), 10);
        assert!(more
            .iter()
            .all(|r| !on.contains(&(r.family.clone(), r.id.clone()))));
        append_to_sheet(&path, &more).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(
            after.starts_with(&before),
            "the old rows are kept byte for byte"
        );
        let back = read_sheet(&path).unwrap();
        assert_eq!(back[..10], first[..]);
        assert_eq!(back[10..], more[..]);
        let again = append_to_sheet(&path, &more[..1]).unwrap_err().to_string();
        assert!(again.contains("already on the sheet"), "{again}");
        assert_eq!(read_sheet(&path).unwrap().len(), 20, "nothing written");
        std::fs::write(&path, "not json\n").unwrap();
        assert!(append_to_sheet(&path, &more).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "not json\n",
            "nothing lost"
        );
    }
}
