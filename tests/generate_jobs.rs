//! Generators, sharded output and resume, driven by a deterministic stand-in teacher. (The
//! real engine on a tiny GGUF is tested in tests/teacher.rs.)

mod common;

use std::path::Path;
use synthlm::data::read::{DocStream, LoadOptions};
use synthlm::data::sources::SourceSpec;
use synthlm::generate::seeds::Seeds;
use synthlm::generate::shards::ShardedWriter;
use synthlm::generate::{generate, GenSettings, Generator};

use common::FakeTeacher;

fn load(files: Vec<std::path::PathBuf>, schema: &str) -> Vec<synthlm::data::document::Document> {
    let spec: SourceSpec = schema.parse().unwrap();
    DocStream::new(files, spec.parser(), LoadOptions::default())
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn the_committed_seeds_load() {
    let s = Seeds::committed().unwrap();
    assert!(s.topics.len() >= 250, "{} topics", s.topics.len());
    assert!(
        s.story.nouns.len() >= 100 && s.story.verbs.len() >= 80 && s.story.adjectives.len() >= 60
    );
    assert!(s.skills.skills.len() >= 15);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topics.txt"), "maths without a bar\n").unwrap();
    let e = Seeds::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("topics.txt: line 1: expected `SUBJECT | TOPIC`"),
        "{e}"
    );
}

#[test]
fn every_generator_writes_its_datasets_schema_and_the_loaders_read_it() {
    let seeds = Seeds::committed().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for g in Generator::ALL {
        let out = dir.path().join(g.name());
        let settings = GenSettings::new(g, 3);
        let mut t = FakeTeacher::new(None);
        let r = generate(&settings, &seeds, &out, 10, 4, &mut t, None).unwrap();
        assert_eq!(r.records + r.dropped, 10, "{}", g.name());
        let w = ShardedWriter::open(&out, &settings, 10, 4).unwrap();
        let docs = load(w.files(), g.schema());
        assert_eq!(docs.len() as u64, r.records, "{}", g.name());
        for d in &docs {
            let prov = d
                .meta
                .get("synthlm")
                .unwrap_or_else(|| panic!("{}: meta {:?}", g.name(), d.meta));
            assert_eq!(prov["generator"], g.name());
            assert_eq!(prov["seed"], 3);
        }
        match g {
            Generator::Magpie | Generator::Instruct => {
                let chat = docs[0].chat.as_ref().unwrap();
                assert_eq!(chat.len(), 2);
                assert!(docs[0].text.starts_with("<|im_start|>user\n"));
                if g == Generator::Magpie {
                    // The instruction came from the pre-query template alone.
                    assert!(t
                        .prompts
                        .iter()
                        .any(|p| p.ends_with("<|im_end|>\n<|im_start|>user\n")));
                } else {
                    assert!(
                        t.prompts.iter().any(|p| p.contains("more challenging")),
                        "evolution stage ran"
                    );
                    // The user turn holds the passage, then the task its verb started.
                    let user = &chat[0].content;
                    assert!(user.starts_with("Output "), "{user}");
                    assert!(
                        user.trim_end().ends_with("the passage in two sentences."),
                        "{user}"
                    );
                }
            }
            Generator::Cosmo => {
                assert!(docs[0].chat.is_none());
                assert!(docs[0].text.starts_with("Output "));
            }
            Generator::Stories => {
                assert_eq!(docs[0].meta["format"], "story");
                assert!(t.prompts[0].contains("3 to 4 year old"));
                // The teacher continued the seeded opening, which carries the adjective and noun.
                let attrs = &docs[0].meta["synthlm"]["attributes"];
                let opening = attrs["opening"].as_str().unwrap();
                assert!(docs[0].text.starts_with(opening), "{}", docs[0].text);
                assert!(opening.contains(attrs["noun"].as_str().unwrap()));
            }
        }
    }
}

fn indices(out: &Path, settings: &GenSettings) -> (Vec<u64>, Vec<u64>) {
    let w = ShardedWriter::open(out, settings, 0, 4).unwrap();
    let mut done: Vec<u64> = w
        .manifest
        .shards
        .iter()
        .flat_map(|s| s.indices.clone())
        .collect();
    done.sort();
    let mut dropped: Vec<u64> = w.manifest.dropped.iter().map(|d| d.0).collect();
    dropped.sort();
    (done, dropped)
}

#[test]
fn a_crashed_run_resumes_without_loss_or_duplication_and_matches_an_uninterrupted_run() {
    let seeds = Seeds::committed().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = GenSettings::new(Generator::Instruct, 9);
    let whole = dir.path().join("whole");
    generate(
        &settings,
        &seeds,
        &whole,
        23,
        4,
        &mut FakeTeacher::new(None),
        None,
    )
    .unwrap();

    let parts = dir.path().join("parts");
    let e = generate(
        &settings,
        &seeds,
        &parts,
        23,
        4,
        &mut FakeTeacher::new(Some(37)),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("teacher crashed"));
    let (done_before, _) = indices(&parts, &settings);
    assert!(
        !done_before.is_empty() && done_before.len() < 23,
        "some shards were kept: {done_before:?}"
    );
    // A stray shard from a kill between shard and manifest writes is not trusted.
    let next_name = format!(
        "part-{:05}.parquet",
        ShardedWriter::open(&parts, &settings, 23, 4)
            .unwrap()
            .manifest
            .shards
            .len()
    );
    std::fs::write(parts.join(next_name), b"half-written").unwrap();
    generate(
        &settings,
        &seeds,
        &parts,
        23,
        4,
        &mut FakeTeacher::new(None),
        None,
    )
    .unwrap();

    let (a_done, a_dropped) = indices(&whole, &settings);
    let (b_done, b_dropped) = indices(&parts, &settings);
    assert_eq!(a_done, b_done, "same records");
    assert_eq!(a_dropped, b_dropped, "same drops");
    let mut all: Vec<u64> = b_done.iter().chain(&b_dropped).copied().collect();
    all.sort();
    assert_eq!(all, (0..23).collect::<Vec<_>>(), "every index exactly once");
    // Same content, record by record.
    let by_id = |out: &Path| -> std::collections::BTreeMap<String, String> {
        load(
            ShardedWriter::open(out, &settings, 0, 4).unwrap().files(),
            "openhermes",
        )
        .into_iter()
        .map(|d| (d.id, d.text))
        .collect()
    };
    assert_eq!(by_id(&whole), by_id(&parts));
    // Other settings in the same folder are refused.
    let mut other = settings.clone();
    other.temperature = 0.5;
    let e = generate(
        &other,
        &seeds,
        &parts,
        23,
        4,
        &mut FakeTeacher::new(None),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("other settings"), "{e}");
}

/// Stories carry their three words (seeded in the opening); a text cut at the cap is continued
/// once and kept when the continuation ends it; the manifest's shares say so.
#[test]
fn recipe_checks_drop_what_they_should_and_the_manifest_counts_it() {
    let seeds = Seeds::committed().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = GenSettings::new(Generator::Stories, 5);
    let out = dir.path().join("stories");
    generate(
        &settings,
        &seeds,
        &out,
        40,
        8,
        &mut FakeTeacher::new(None),
        None,
    )
    .unwrap();
    let w = ShardedWriter::open(&out, &settings, 0, 8).unwrap();
    let m = w.manifest.clone();
    assert_eq!(m.records + m.dropped.len() as u64, 40);
    assert!(m.records > 20, "{:?}", m.dropped_by);
    for d in load(w.files(), "cosmopedia") {
        let a = &d.meta["synthlm"]["attributes"];
        for k in ["noun", "verb", "adjective"] {
            assert!(d.text.contains(a[k].as_str().unwrap()), "{k}: {}", d.text);
        }
    }
    assert_eq!(m.required_words_share, Some(1.0));
    assert_eq!(m.truncated_share, 0.0);
    assert!(m.kept_tokens > 0 && m.kept_tokens <= m.teacher_tokens);

    let settings = GenSettings::new(Generator::Cosmo, 5);
    let out = dir.path().join("cosmo");
    let mut t = FakeTeacher::new(None);
    generate(&settings, &seeds, &out, 30, 8, &mut t, None).unwrap();
    let m = ShardedWriter::open(&out, &settings, 0, 8).unwrap().manifest;
    let continued = m.flagged.get("continued").copied().unwrap_or(0);
    assert!(
        continued > 0,
        "some texts needed their continuation: {:?}",
        m.flagged
    );
    assert!(
        t.prompts.iter().any(|p| p.ends_with("And then the")),
        "continuation prompt"
    );
    let docs = load(
        ShardedWriter::open(&out, &settings, 0, 8).unwrap().files(),
        "cosmopedia",
    );
    for d in &docs {
        assert!(
            !synthlm::filter::checks::ends_mid_sentence(&d.text),
            "{}",
            d.text
        );
    }
}

/// A generated shard cut short or changed after its manifest recorded it is an error naming
/// the shard (and its manifest), not a silently shorter or different corpus; nothing is removed.
#[test]
fn a_damaged_shard_is_an_error_naming_it() {
    let seeds = Seeds::committed().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = GenSettings::new(Generator::Stories, 5);
    let out = dir.path().join("stories");
    generate(
        &settings,
        &seeds,
        &out,
        20,
        8,
        &mut FakeTeacher::new(None),
        None,
    )
    .unwrap();
    let ok = synthlm::experiments::corpora::generated(dir.path(), Generator::Stories).unwrap();
    assert!(!ok.is_empty());
    let w = ShardedWriter::open(&out, &settings, 0, 8).unwrap();
    let shard = w.files()[0].clone();
    let bytes = std::fs::read(&shard).unwrap();
    let name = shard.file_name().unwrap().to_string_lossy().to_string();
    // cut short (a copy interrupted), then one byte changed in the middle
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x40;
    for damaged in [bytes[..bytes.len() / 2].to_vec(), flipped] {
        std::fs::write(&shard, &damaged).unwrap();
        let e =
            synthlm::experiments::corpora::generated(dir.path(), Generator::Stories).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains(&name) && e.contains("manifest.json"), "{e}");
        assert_eq!(std::fs::read(&shard).unwrap(), damaged, "nothing rewritten");
    }
    // a shard that is gone
    std::fs::remove_file(&shard).unwrap();
    let e = format!(
        "{:#}",
        synthlm::experiments::corpora::generated(dir.path(), Generator::Stories).unwrap_err()
    );
    assert!(e.contains(&name), "{e}");
}
