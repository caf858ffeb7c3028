//! The evaluation suite's fixed items, built once and committed under `data/eval/` before any
//! experiment uses them: minimal pairs, proxy-task items, generation prompts, and the record of
//! the neutral held-out set. `manifest.json` pins every file by SHA-256; loading checks it,
//! and a malformed line is an error naming the file and the line.

use crate::data::document::Document;
use crate::eval::grammar::{self, Lexicon, Pair};
use crate::eval::proxy::{self, Choice};
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub const PAIRS: &str = "minimal_pairs.jsonl";
pub const PROXY: &str = "proxy_tasks.jsonl";
pub const PROMPTS: &str = "prompts.json";
pub const NEUTRAL: &str = "neutral.json";
pub const MANIFEST: &str = "manifest.json";

/// A fixed generation prompt; a story's continuation should keep using `required`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// `story`, `explanation` or `chat`.
    pub kind: String,
    pub prompt: String,
    #[serde(default)]
    pub required: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemsManifest {
    pub format: String,
    pub seed: u64,
    /// Words must occur at least this often in each kind of training text.
    pub min_count: usize,
    /// What the word frequencies came from: name -> SHA-256 over its documents.
    pub frequencies_from: BTreeMap<String, String>,
    /// The lexicon left after the frequency filter.
    pub lexicon: Lexicon,
    /// File -> SHA-256.
    pub files: BTreeMap<String, String>,
    /// Items per file (pairs per phenomenon, items per task, prompts).
    pub counts: BTreeMap<String, usize>,
}

/// The fixed prompts: stories to continue with their characters, explanations, chat turns.
pub fn prompts() -> Vec<Prompt> {
    let story = |p: &str, req: &[&str]| Prompt {
        kind: "story".into(),
        prompt: p.into(),
        required: req.iter().map(|s| s.to_string()).collect(),
    };
    let plain = |kind: &str, p: &str| Prompt {
        kind: kind.into(),
        prompt: p.into(),
        required: vec![],
    };
    let chat = |q: &str| {
        plain(
            "chat",
            &format!("<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"),
        )
    };
    // 20 more stories from a fixed template, so that the share of samples keeping their
    // characters rests on 30 stories rather than 10.
    let names = [
        "Lucy", "Leo", "Ella", "Tim", "Zoe", "Nick", "Rosa", "Dan", "Kate", "Owen",
    ];
    let things = [
        ("kitten", "in the garden"),
        ("shell", "on the beach"),
        ("key", "under a rock"),
        ("map", "in the attic"),
        ("puppy", "near the farm"),
        ("coin", "in the sand"),
        ("boat", "by the lake"),
        ("drum", "at the fair"),
        ("book", "in the library"),
        ("bell", "on the hill"),
    ];
    let more = (0..20).map(|i| {
        let (name, (thing, place)) = (names[i % 10], things[(i * 3 + i / 10) % 10]);
        story(
            &format!("{name} found a little {thing} {place}. {name} smiled and picked it up."),
            &[name, thing],
        )
    });
    let mut out = vec![
        story(
            "Once upon a time, a little girl named Lily found a red ball in the park.",
            &["Lily", "ball"],
        ),
        story(
            "Tom had a small dog called Max. One day, Max ran away.",
            &["Tom", "Max"],
        ),
        story(
            "There was a big tree next to the school. A bird lived in the tree.",
            &["bird", "tree"],
        ),
        story(
            "Anna wanted to bake a cake for her mother.",
            &["Anna", "cake"],
        ),
        story(
            "A little fox lived in the forest. The fox was hungry.",
            &["fox"],
        ),
        story(
            "Ben and his sister found an old box under the bed.",
            &["Ben", "box"],
        ),
        story(
            "The sun was hot, so Sam went to the river to swim.",
            &["Sam", "river"],
        ),
        story(
            "Mia had a new kite. She took it to the hill.",
            &["Mia", "kite"],
        ),
        story(
            "One morning, a small frog jumped into the pond.",
            &["frog", "pond"],
        ),
        story(
            "Jack lost his blue hat on the way to school.",
            &["Jack", "hat"],
        ),
        plain("explanation", "The water cycle is"),
        plain("explanation", "Plants need sunlight because"),
        plain("explanation", "A computer program is"),
        plain("explanation", "To keep your teeth healthy, you should"),
        plain("explanation", "The moon changes its shape because"),
        plain("explanation", "A good way to learn a new language is"),
        plain("explanation", "Rain falls from clouds when"),
        plain("explanation", "To install a package on Debian, you"),
        plain("explanation", "Fractions are numbers that"),
        plain("explanation", "Exercise is important because"),
        chat("How do I boil an egg?"),
        chat("Why is the sky blue?"),
        chat("Can you give me three tips for studying?"),
        chat("What is a prime number?"),
        chat("How can I save money each month?"),
        chat("Write a short poem about the sea."),
        chat("What should I pack for a trip to the mountains?"),
        chat("Explain what a file system is."),
        chat("How do plants make food?"),
        chat("What is the difference between weather and climate?"),
    ];
    out.extend(more);
    out
}

/// Lower-cased word counts of documents.
fn counts(docs: &[Document]) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for d in docs {
        for w in d
            .text
            .split(|ch: char| !ch.is_alphabetic())
            .filter(|w| !w.is_empty())
        {
            *c.entry(w.to_lowercase()).or_default() += 1;
        }
    }
    c
}

fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<String> {
    let mut s = String::new();
    for r in rows {
        s += &serde_json::to_string(r)?;
        s.push('\n');
    }
    crate::io::write_bytes(path, s.as_bytes())?;
    crate::io::sha256_file(path)
}

/// Build every item file under `dir` from the two kinds of training text (for word
/// frequencies) and the neutral documents (for the cloze), and write the manifest.
pub fn build(
    dir: &Path,
    synthetic: &[Document],
    real: &[Document],
    neutral: &[Document],
    seed: u64,
    per_task: usize,
) -> Result<ItemsManifest> {
    let (cs, cr) = (counts(synthetic), counts(real));
    let min_count = 5;
    let frequent = |w: &str| {
        let w = w.to_lowercase();
        cs.get(&w).copied().unwrap_or(0) >= min_count
            && cr.get(&w).copied().unwrap_or(0) >= min_count
    };
    let lexicon = Lexicon::candidates().filtered(&frequent);
    lexicon.check()?;
    std::fs::create_dir_all(dir)?;
    let pairs = grammar::pairs(&lexicon, per_task.max(300), seed)?;
    let words: Vec<String> = lexicon.nouns.iter().map(|n| n.0.clone()).collect();
    let texts: Vec<String> = neutral.iter().map(|d| d.text.clone()).collect();
    let items = proxy::all(per_task, &words, &texts, seed);
    let mut files = BTreeMap::new();
    files.insert(PAIRS.to_string(), write_jsonl(&dir.join(PAIRS), &pairs)?);
    files.insert(PROXY.to_string(), write_jsonl(&dir.join(PROXY), &items)?);
    crate::io::write_json(&dir.join(PROMPTS), &prompts())?;
    files.insert(
        PROMPTS.to_string(),
        crate::io::sha256_file(&dir.join(PROMPTS))?,
    );
    let mut n = BTreeMap::new();
    for p in &pairs {
        *n.entry(format!("pairs/{}", p.phenomenon)).or_default() += 1;
    }
    for c in &items {
        *n.entry(format!("proxy/{}", c.task)).or_default() += 1;
    }
    n.insert("prompts".into(), prompts().len());
    let fp = crate::experiments::prepare::fingerprint;
    let m = ItemsManifest {
        format: "synthlm-eval-items/1".into(),
        seed,
        min_count,
        frequencies_from: BTreeMap::from([
            ("synthetic".into(), fp(synthetic)),
            ("real".into(), fp(real)),
            ("neutral".into(), fp(neutral)),
        ]),
        lexicon,
        files,
        counts: n,
    };
    crate::io::write_json(&dir.join(MANIFEST), &m)?;
    Ok(m)
}

/// Check a file against the manifest, then parse it line by line.
fn load_jsonl<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Vec<T>> {
    let path = dir.join(name);
    check(dir, name)?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}: line {}: not a valid item", path.display(), i + 1))
        })
        .collect()
}

/// The file must be the one the manifest pins.
fn check(dir: &Path, name: &str) -> Result<()> {
    let m: ItemsManifest = crate::io::read_json(&dir.join(MANIFEST))
        .with_context(|| format!("{}: the items' manifest", dir.display()))?;
    let path = dir.join(name);
    let got =
        crate::io::sha256_file(&path).with_context(|| format!("reading {}", path.display()))?;
    match m.files.get(name) {
        Some(want) if *want == got => Ok(()),
        Some(want) => bail!("{}: SHA-256 {got} is not the {want} recorded in {}; the items are fixed: restore the file or rebuild every item", path.display(), dir.join(MANIFEST).display()),
        None => bail!("{}: not in {}", path.display(), dir.join(MANIFEST).display()),
    }
}

pub fn load_pairs(dir: &Path) -> Result<Vec<Pair>> {
    load_jsonl(dir, PAIRS)
}

pub fn load_proxy(dir: &Path) -> Result<Vec<Choice>> {
    let items: Vec<Choice> = load_jsonl(dir, PROXY)?;
    for (i, c) in items.iter().enumerate() {
        anyhow::ensure!(
            c.answer < c.choices.len(),
            "{}: item {}: answer {} of {} choices",
            dir.join(PROXY).display(),
            i + 1,
            c.answer,
            c.choices.len()
        );
    }
    Ok(items)
}

pub fn load_prompts(dir: &Path) -> Result<Vec<Prompt>> {
    check(dir, PROMPTS)?;
    crate::io::read_json(&dir.join(PROMPTS))
}
