//! Fixtures made by the tests themselves: HF-cache layouts in the datasets' real schemas, and a
//! small English corpus.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Create `datasets--ORG--NAME/{refs/main, snapshots/COMMIT}` and return the snapshot folder.
pub fn hf_snapshot(cache: &Path, repo_id: &str) -> PathBuf {
    let repo_dir = cache.join(format!("datasets--{}", repo_id.replace('/', "--")));
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), COMMIT).unwrap();
    let snap = repo_dir.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snap).unwrap();
    snap
}

pub fn write_jsonl(path: &Path, rows: &[Value]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let s: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, s).unwrap();
}

pub fn write_parquet(path: &Path, rows: &[Value]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    synthlm::data::write::write_parquet_rows(path, rows, 2).unwrap();
}

/// A deterministic pseudo-English corpus: sentences from a small grammar.
pub fn english(n_sentences: usize, seed: u64) -> String {
    let subjects = [
        "The cat",
        "A small robot",
        "My teacher",
        "The river",
        "Every student",
        "Our neighbour",
        "The old map",
        "A bright star",
    ];
    let verbs = [
        "finds",
        "explains",
        "carries",
        "remembers",
        "draws",
        "follows",
        "counts",
        "builds",
    ];
    let objects = [
        "a red ball",
        "the hidden door",
        "three apples",
        "the long story",
        "a quiet song",
        "the broken clock",
        "two blue birds",
        "the answer",
    ];
    let tails = [
        "before dinner.",
        "in the garden.",
        "with great care.",
        "every morning.",
        "near the school.",
        "after the rain.",
        "at night.",
        "for a friend.",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |n: usize| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) as usize) % n
    };
    (0..n_sentences)
        .map(|_| {
            format!(
                "{} {} {} {}",
                subjects[next(8)],
                verbs[next(8)],
                objects[next(8)],
                tails[next(8)]
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn openhermes_rows() -> Vec<Value> {
    vec![
        json!({"conversations": [{"from": "system", "value": "You are helpful.", "weight": null}, {"from": "human", "value": "What is 2+2?", "weight": 0.0}, {"from": "gpt", "value": "4", "weight": 1.0}], "source": "airoboros2.2", "category": "orca", "id": null}),
        json!({"conversations": [{"from": "human", "value": "Name a colour.", "weight": 0.0}, {"from": "gpt", "value": "Blue.", "weight": 1.0}], "source": "CamelAI", "category": null, "id": "abc-1"}),
        json!({"conversations": [{"from": "human", "value": "", "weight": 0.0}, {"from": "gpt", "value": "  ", "weight": 1.0}], "source": "x", "id": "empty"}),
        json!({"conversations": [{"from": "human", "value": "Say hi.", "weight": 0.0}, {"from": "gpt", "value": "Hi! 👋", "weight": 1.0}], "source": "glaive", "id": "abc-3"}),
    ]
}

pub fn cosmopedia_rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"prompt": format!("Write a story about topic {i}."), "text": if i == 1 { String::new() } else { english(5, i as u64) }, "text_token_length": 60 + i, "seed_data": "stories", "format": "story", "audience": "young children"}))
        .collect()
}

pub fn magpie_rows(n: usize, offset: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"uuid": format!("uuid-{}", i + offset), "model": "meta-llama/Meta-Llama-3-70B-Instruct", "conversations": [{"from": "human", "value": format!("Question {}?", i + offset)}, {"from": "gpt", "value": english(3, (10_000 + i + offset) as u64)}], "task_category": "Information seeking", "difficulty": "easy", "input_quality": "good"}))
        .collect()
}

pub fn fineweb_rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"text": english(6, 20_000 + i as u64), "id": format!("<urn:uuid:{i}>"), "dump": "CC-MAIN-2024-10", "url": format!("https://example.org/{i}"), "file_path": "s3://x", "language": "en", "language_score": 0.97, "token_count": 80, "score": 3.2, "int_score": 3}))
        .collect()
}

/// Build all four datasets in an HF cache at `cache`. Returns expected document counts.
pub fn build_hf_cache(cache: &Path) -> [(String, usize); 4] {
    let snap = hf_snapshot(cache, "teknium/OpenHermes-2.5");
    let rows = openhermes_rows();
    std::fs::write(
        snap.join("openhermes2_5.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    )
    .unwrap();

    let snap = hf_snapshot(cache, "HuggingFaceTB/cosmopedia");
    write_parquet(
        &snap.join("data/stories/train-00000-of-00001.parquet"),
        &cosmopedia_rows(7),
    );
    write_parquet(
        &snap.join("data/wikihow/train-00000-of-00001.parquet"),
        &cosmopedia_rows(3),
    );

    let snap = hf_snapshot(cache, "Magpie-Align/Magpie-Pro-300K-Filtered");
    write_parquet(
        &snap.join("data/train-00000-of-00002.parquet"),
        &magpie_rows(5, 0),
    );
    write_parquet(
        &snap.join("data/train-00001-of-00002.parquet"),
        &magpie_rows(4, 5),
    );

    let snap = hf_snapshot(cache, "HuggingFaceFW/fineweb-edu");
    write_parquet(
        &snap.join("sample/10BT/000_00000.parquet"),
        &fineweb_rows(6),
    );
    [
        ("openhermes".into(), 3),
        ("cosmopedia/stories".into(), 6),
        ("magpie-pro".into(), 9),
        ("fineweb-edu/sample-10BT".into(), 6),
    ]
}

/// A packed fixture corpus for training tests: tokenizer (vocab 256 + 3 specials + merges),
/// a train set and a held-out set of the same grammar. Returns a smoke-profile config whose
/// run directory is `dir/run`.
pub fn training_fixture(dir: &Path, vocab: usize) -> synthlm::config::RunConfig {
    use synthlm::data::document::Document;
    use synthlm::data::pack::{pack_documents, PackOptions};
    use synthlm::data::read::DataError;
    let docs = |range: std::ops::Range<u64>| -> Vec<Document> {
        range
            .map(|i| Document::text(format!("d{i}"), "grammar", english(12, i)))
            .collect()
    };
    let train_docs = docs(0..400);
    let tok = synthlm::data::tokenizer::train_bpe(
        train_docs.iter().map(|d| d.text.clone()),
        &synthlm::data::tokenizer::BpeOptions {
            vocab_size: vocab,
            min_frequency: 2,
        },
    )
    .unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path).unwrap();
    let pack = |name: &str, d: Vec<Document>| {
        let out = dir.join(name);
        pack_documents(
            d.into_iter().map(Ok::<_, DataError>),
            &tok,
            &out,
            &PackOptions::default(),
            serde_json::Value::Null,
            None,
        )
        .unwrap();
        out
    };
    let mut cfg = synthlm::config::profile("smoke").unwrap();
    cfg.data.train = pack("train", train_docs);
    cfg.data
        .val
        .insert("grammar".into(), pack("val", docs(10_000..10_040)));
    cfg.data.tokenizer = Some(tok_path);
    cfg.out_dir = dir.join("run");
    cfg
}

// ---------------------------------------------------------------------------------------------
// A stand-in teacher for generation tests.

use synthlm::generate::driver::{Answer, Backend};
use synthlm::generate::jobs::Ask;

/// Answers from a hash of the call's seed, shaped like what the recipes ask for: an
/// instruction for the pre-query template, the rest of a task after its prefilled verb, a story
/// that uses its required verb except one time in five, long texts otherwise. One long text in
/// seven stops at its token cap (and its continuation ends it); it can be told to crash after
/// `fail_after` answers.
pub struct FakeTeacher {
    pub answered: usize,
    pub fail_after: Option<usize>,
    pub prompts: Vec<String>,
}

/// What the stand-in teacher writes for a prompt (and whether it ended).
pub fn fake_answer(prompt: &str, id: u64, seed: u64) -> (String, bool) {
    let long = format!(
        "Output {} for record {id}. {}",
        seed % 997,
        english(8, seed)
    );
    if prompt.ends_with("<|im_start|>user\n") {
        (
            format!("Why does record {id} matter to the whole world?"),
            true,
        )
    } else if prompt.contains("Write only the task")
        || prompt.contains("Rewrite the following task")
    {
        (" the passage in two sentences.".into(), true)
    } else if let Some(rest) = prompt.split("must use the verb \"").nth(1) {
        let verb = rest.split('"').next().unwrap_or("");
        let story = if seed.is_multiple_of(5) {
            format!(" {}", english(6, seed))
        } else {
            format!(" Then they {verb} together. {}", english(6, seed))
        };
        (story, true)
    } else {
        // A continuation ends; one first call in seven stops at the cap mid-sentence.
        let cut =
            seed % 7 == 3 && !prompt.ends_with("before dinner") && !prompt.contains("Output ");
        if cut {
            (format!("{long} And then the"), false)
        } else {
            (long, true)
        }
    }
}

impl FakeTeacher {
    pub fn new(fail_after: Option<usize>) -> Self {
        FakeTeacher {
            answered: 0,
            fail_after,
            prompts: vec![],
        }
    }
}

impl Backend for FakeTeacher {
    fn serve(
        &mut self,
        next: &mut dyn FnMut() -> Option<(u64, Ask)>,
        done: &mut dyn FnMut(u64, Answer) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // Keep up to 3 prompts in flight and answer them out of order, like a batching engine.
        let mut flight: Vec<(u64, Ask)> = Vec::new();
        loop {
            while flight.len() < 3 {
                match next() {
                    Some(x) => flight.push(x),
                    None => break,
                }
            }
            let Some((id, ask)) = flight.pop() else {
                return Ok(());
            };
            if self.fail_after == Some(self.answered) {
                anyhow::bail!("teacher crashed");
            }
            self.answered += 1;
            self.prompts.push(ask.prompt.clone());
            let (text, finished) = fake_answer(&ask.prompt, id, ask.seed);
            done(
                id,
                Answer {
                    text,
                    tokens: 40,
                    finished,
                    logprob: -40.0,
                },
            )?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Hugging Face export check (scripts/check_hf_export.py), shared by tests/hf_export.rs and
// tests/cuda.rs.

use std::path::Path as HfPath;

/// The Python with numpy, safetensors and tokenizers (`SYNTHLM_PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("SYNTHLM_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Run scripts/check_hf_export.py on `dir` against synthlm's ids and logits: whether it
/// passed, and what it printed.
pub fn hf_run(dir: &HfPath, text: &str, ids: &[u32], want: &[Vec<f32>]) -> (bool, String) {
    let exp = dir.join("expected.json");
    let v = serde_json::json!({"text": text, "ids": ids, "logits": want});
    std::fs::write(&exp, v.to_string()).unwrap();
    // the checkout's own copy when run from its root (a test binary carried to another
    // machine), else the one beside the sources it was built from
    let here = HfPath::new("scripts/check_hf_export.py");
    let script = if here.exists() {
        here.to_path_buf()
    } else {
        HfPath::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_hf_export.py")
    };
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg(dir)
        .arg(&exp)
        .output()
        .expect("python3 (run `bash scripts/setup.sh python-hf`)");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

/// [`hf_run`], which must pass.
pub fn hf_check(dir: &HfPath, text: &str, ids: &[u32], want: &[Vec<f32>]) -> String {
    let (ok, out) = hf_run(dir, text, ids, want);
    assert!(
        ok,
        "check_hf_export.py failed (missing packages: `bash scripts/setup.sh python-hf`):\n{out}"
    );
    out
}
