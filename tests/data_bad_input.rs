//! Bad input gets an error naming the file and the row, or is skipped and counted where that
//! is the policy. Nothing panics.

mod common;

use proptest::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use synthlm::data::document::{Document, Role};
use synthlm::data::read::{DocStream, LoadOptions, OnBadRow};
use synthlm::data::sources::{Dataset, SourceSpec};

fn load(
    file: &Path,
    dataset: Dataset,
    on_bad_row: OnBadRow,
) -> (Result<Vec<Document>, String>, DocStream) {
    let mut s = DocStream::new(
        vec![file.to_path_buf()],
        SourceSpec::new(dataset).parser(),
        LoadOptions {
            on_bad_row,
            ..Default::default()
        },
    );
    let r = s
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string());
    (r, s)
}

fn err(file: &Path, dataset: Dataset) -> String {
    load(file, dataset, OnBadRow::Fail)
        .0
        .expect_err("must fail")
}

fn tmpfile(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn malformed_json_line_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let f = tmpfile(&d, "bad.jsonl");
    std::fs::write(
        &f,
        "{\"text\": \"fine\"}\n\n{\"text\": \"broken\n{\"text\": \"after\"}\n",
    )
    .unwrap();
    let e = err(&f, Dataset::FinewebEdu);
    assert!(e.contains("bad.jsonl: line 3: malformed JSON"), "{e}");
}

#[test]
fn invalid_utf8_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let f = tmpfile(&d, "utf8.jsonl");
    let mut bytes = b"{\"text\": \"ok\"}\n{\"text\": \"caf".to_vec();
    bytes.extend_from_slice(&[0xC3, 0x28]);
    bytes.extend_from_slice(b"\"}\n");
    std::fs::write(&f, bytes).unwrap();
    let e = err(&f, Dataset::FinewebEdu);
    assert!(e.contains("utf8.jsonl: line 2: invalid UTF-8"), "{e}");
}

#[test]
fn missing_and_mistyped_fields_name_file_and_row() {
    let d = tempfile::tempdir().unwrap();
    let f = tmpfile(&d, "types.jsonl");
    common::write_jsonl(&f, &[json!({"text": "ok"}), json!({"text": 42})]);
    let e = err(&f, Dataset::FinewebEdu);
    assert!(
        e.contains("types.jsonl: line 2: field `text` should be a string, found a number"),
        "{e}"
    );

    let f = tmpfile(&d, "missing.parquet");
    common::write_parquet(
        &f,
        &[json!({"body": "no text column"}), json!({"body": "x"})],
    );
    let e = err(&f, Dataset::Cosmopedia);
    assert!(
        e.contains("missing.parquet: row 1: missing field `text`"),
        "{e}"
    );

    let f = tmpfile(&d, "wrongtype.parquet");
    common::write_parquet(
        &f,
        &[
            json!({"text": "a"}),
            json!({"text": "b"}),
            json!({"text": "c"}),
        ],
    );
    common::write_parquet(
        &f,
        &[json!({"text": 1}), json!({"text": 2}), json!({"text": 3})],
    );
    let e = err(&f, Dataset::Cosmopedia);
    assert!(
        e.contains("wrongtype.parquet: row 1: field `text` should be a string, found a number"),
        "{e}"
    );

    let f = tmpfile(&d, "roles.jsonl");
    common::write_jsonl(
        &f,
        &[
            json!({"uuid": "u", "conversations": [{"from": "human", "value": "hi"}, {"from": "tool", "value": "x"}]}),
        ],
    );
    let e = err(&f, Dataset::MagpiePro);
    assert!(
        e.contains("roles.jsonl: line 1: conversations[1]: unknown role `tool`"),
        "{e}"
    );

    let f = tmpfile(&d, "convtype.jsonl");
    common::write_jsonl(&f, &[json!({"conversations": "not a list"})]);
    let e = err(&f, Dataset::OpenHermes);
    assert!(
        e.contains(
            "convtype.jsonl: line 1: field `conversations` should be an array, found a string"
        ),
        "{e}"
    );
}

#[test]
fn truncated_parquet_names_the_file() {
    let d = tempfile::tempdir().unwrap();
    let f = tmpfile(&d, "trunc.parquet");
    common::write_parquet(&f, &common::cosmopedia_rows(20));
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let e = err(&f, Dataset::Cosmopedia);
    assert!(
        e.contains("trunc.parquet") && e.contains("not a readable Parquet file"),
        "{e}"
    );
}

#[test]
fn truncated_json_array_names_the_element() {
    let d = tempfile::tempdir().unwrap();
    let f = tmpfile(&d, "openhermes2_5.json");
    let full = serde_json::to_string(&common::openhermes_rows()).unwrap();
    std::fs::write(&f, &full[..full.len() - 40]).unwrap();
    let (r, s) = load(&f, Dataset::OpenHermes, OnBadRow::Fail);
    let e = r.expect_err("must fail");
    assert!(
        e.contains("openhermes2_5.json: element 4: truncated"),
        "{e}"
    );
    assert_eq!(
        s.report().documents,
        2,
        "the complete elements before it were read (one was empty)"
    );
}

#[test]
fn empty_text_is_skipped_and_counted_and_skip_policy_counts_bad_rows() {
    let d = tempfile::tempdir().unwrap();
    let f = tmpfile(&d, "mixed.jsonl");
    let mut content = String::new();
    content.push_str("{\"text\": \"one\"}\n");
    content.push_str("{\"text\": \"\"}\n");
    content.push_str("{\"text\": \"   \\n\"}\n");
    content.push_str("not json\n");
    content.push_str("[1, 2]\n");
    content.push_str("{\"text\": null}\n");
    content.push_str("{\"text\": \"two\"}\n");
    std::fs::write(&f, content).unwrap();
    let (r, s) = load(&f, Dataset::FinewebEdu, OnBadRow::Skip);
    let docs = r.unwrap();
    assert_eq!(
        docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    let rep = s.report();
    assert_eq!(
        (rep.skipped_empty, rep.skipped_bad, rep.documents),
        (2, 3, 2)
    );
    assert!(
        rep.bad_examples[0].contains("mixed.jsonl: line 4: malformed JSON"),
        "{:?}",
        rep.bad_examples
    );
    assert!(rep.bad_examples[1].contains("line 5: expected a JSON object, found an array"));
    assert!(rep.bad_examples[2].contains("line 6: field `text` should be a string, found null"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Arbitrary bytes as a JSONL file: the reader returns documents or errors, never panics,
    /// and every error names the file.
    #[test]
    fn jsonl_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("fuzz.jsonl");
        std::fs::write(&f, &bytes).unwrap();
        for ds in Dataset::ALL {
            if let Err(e) = load(&f, ds, OnBadRow::Fail).0 {
                prop_assert!(e.contains("fuzz.jsonl"), "{}", e);
            }
            let _ = load(&f, ds, OnBadRow::Skip);
        }
    }

    /// Conversations written in the ShareGPT schema come back as the same turns, rendered once.
    #[test]
    fn sharegpt_round_trip(turns in proptest::collection::vec((0..3usize, "\\PC{0,40}"), 1..6)) {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("conv.jsonl");
        let names = ["system", "human", "gpt"];
        let convs: Vec<_> = turns.iter().map(|(r, v)| json!({"from": names[*r], "value": v})).collect();
        common::write_jsonl(&f, &[json!({"uuid": "x", "conversations": convs})]);
        let (r, s) = load(&f, Dataset::MagpiePro, OnBadRow::Fail);
        let docs = r.unwrap();
        let all_empty = turns.iter().all(|(_, v)| v.trim().is_empty());
        prop_assert_eq!(docs.len(), usize::from(!all_empty));
        prop_assert_eq!(s.report().skipped_empty, usize::from(all_empty));
        if let Some(doc) = docs.first() {
            let chat = doc.chat.as_ref().unwrap();
            let roles = [Role::System, Role::User, Role::Assistant];
            for ((r, v), m) in turns.iter().zip(chat) {
                prop_assert_eq!(m.role, roles[*r]);
                prop_assert_eq!(&m.content, v);
            }
            prop_assert_eq!(&doc.text, &synthlm::data::document::render_chat(chat));
        }
    }
}
