//! The four seed datasets load from an HF-cache layout, offline, through the real code path.

mod common;

use synthlm::data::document::{render_chat, Message, Role};
use synthlm::data::hub::{self, HubOptions};
use synthlm::data::read::{DataError, LoadOptions, Sampling};
use synthlm::data::sources::SourceSpec;

#[test]
fn four_datasets_load_from_the_hf_cache_with_the_chat_template() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = common::build_hf_cache(tmp.path());
    let hub = HubOptions::offline(tmp.path());
    for (spec, n) in expected {
        let spec: SourceSpec = spec.parse().unwrap();
        let mut stream = hub::load(&spec, &hub, LoadOptions::default()).unwrap();
        let docs: Vec<_> = stream.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(docs.len(), n, "{spec}: documents");
        assert_eq!(stream.report().documents, n);
        assert!(
            docs.iter()
                .all(|d| d.source == spec.to_string().replace("@main", "")),
            "{spec}: source names"
        );
        match spec.dataset.name() {
            "openhermes" => {
                // Empty conversation skipped and counted; the first keeps its system prompt.
                assert_eq!(stream.report().skipped_empty, 1);
                let want = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n";
                assert_eq!(docs[0].text, want);
                assert_eq!(
                    docs[0].chat.as_ref().unwrap()[1],
                    Message::new(Role::User, "What is 2+2?")
                );
                assert_eq!(docs[1].id, "abc-1");
                assert_eq!(docs[0].meta["source"], "airoboros2.2");
                assert!(docs[2].text.contains("Hi! 👋"));
            }
            "magpie-pro" => {
                // Two files, in order; uuid is the id; every text is a rendered conversation.
                assert_eq!(docs[0].id, "uuid-0");
                assert_eq!(docs[8].id, "uuid-8");
                assert!(docs
                    .iter()
                    .all(|d| d.text == render_chat(d.chat.as_ref().unwrap())));
                assert!(docs[0].text.starts_with(
                    "<|im_start|>user\nQuestion 0?<|im_end|>\n<|im_start|>assistant\n"
                ));
                assert_eq!(docs[0].meta["task_category"], "Information seeking");
            }
            "cosmopedia" => {
                assert_eq!(stream.report().skipped_empty, 1);
                assert_eq!(docs[0].meta["audience"], "young children");
                assert!(docs[0].chat.is_none());
            }
            "fineweb-edu" => {
                assert_eq!(docs[0].id, "<urn:uuid:0>");
                assert_eq!(docs[0].meta["int_score"], 3);
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn another_config_reads_its_own_folder() {
    let tmp = tempfile::tempdir().unwrap();
    common::build_hf_cache(tmp.path());
    let spec: SourceSpec = "cosmopedia/wikihow".parse().unwrap();
    let docs: Vec<_> = hub::load(
        &spec,
        &HubOptions::offline(tmp.path()),
        LoadOptions::default(),
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(docs.len(), 2); // 3 rows, one with empty text
    assert!(docs.iter().all(|d| d.source == "cosmopedia/wikihow"));
}

#[test]
fn missing_dataset_says_how_to_fetch_it() {
    let tmp = tempfile::tempdir().unwrap();
    let spec: SourceSpec = "fineweb-edu/sample-10BT".parse().unwrap();
    let err = hub::load(
        &spec,
        &HubOptions::offline(tmp.path()),
        LoadOptions::default(),
    )
    .err()
    .expect("must fail offline");
    let msg = err.to_string();
    assert!(matches!(err, DataError::NotAvailable(_)));
    assert!(
        msg.contains("HuggingFaceFW/fineweb-edu")
            && msg.contains("synthlm data fetch fineweb-edu/sample-10BT"),
        "{msg}"
    );
    assert!(msg.contains("SYNTHLM_DOWNLOAD=1"), "{msg}");
}

#[test]
fn limit_and_seeded_sampling_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    common::build_hf_cache(tmp.path());
    let hub = HubOptions::offline(tmp.path());
    let spec: SourceSpec = "magpie-pro".parse().unwrap();
    let ids = |opts: LoadOptions| -> Vec<String> {
        hub::load(&spec, &hub, opts)
            .unwrap()
            .map(|d| d.unwrap().id)
            .collect()
    };
    let head = ids(LoadOptions {
        limit: Some(3),
        ..Default::default()
    });
    assert_eq!(head, ["uuid-0", "uuid-1", "uuid-2"]);
    let s1 = ids(LoadOptions {
        limit: Some(4),
        sampling: Sampling::Reservoir { seed: 7 },
        ..Default::default()
    });
    let s2 = ids(LoadOptions {
        limit: Some(4),
        sampling: Sampling::Reservoir { seed: 7 },
        ..Default::default()
    });
    assert_eq!(s1, s2, "same seed, same sample");
    assert_eq!(s1.len(), 4);
    let others: Vec<Vec<String>> = (8..14)
        .map(|seed| {
            ids(LoadOptions {
                limit: Some(4),
                sampling: Sampling::Reservoir { seed },
                ..Default::default()
            })
        })
        .collect();
    assert!(
        others.iter().any(|o| o != &s1),
        "different seeds give different samples"
    );
    // A sample draws from both files.
    let all: std::collections::HashSet<_> = others.iter().flatten().collect();
    assert!(all.iter().any(|id| id.as_str() >= "uuid-5"));
}
