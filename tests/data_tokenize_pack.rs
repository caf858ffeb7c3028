//! Tokenizer round trips; packing then reading back gives exactly the token stream.

mod common;

use synthlm::data::document::{
    render_chat, Document, Message, Role, END_OF_TEXT, IM_END, IM_START,
};
use synthlm::data::pack::{pack_documents, PackOptions, TokenShards};
use synthlm::data::read::DataError;
use synthlm::data::stats::corpus_stats;
use synthlm::data::tokenizer::{train_bpe, BpeOptions, TextTokenizer};

fn corpus() -> Vec<Document> {
    let mut docs: Vec<Document> = (0..60)
        .map(|i| Document::text(format!("s{i}"), "stories", common::english(8, i)))
        .collect();
    docs.extend((0..30).map(|i| {
        Document::chat(
            format!("c{i}"),
            "chat",
            vec![
                Message::new(Role::User, format!("Question {i}: why?")),
                Message::new(Role::Assistant, common::english(3, 1000 + i)),
            ],
        )
    }));
    docs.push(Document::text(
        "u",
        "unicode",
        "Ünïcödé — naïve café, 日本語のテキスト, emoji 🦀🚀, tabs\tand\r\nnewlines  double  spaces",
    ));
    docs
}

fn tokenizer(vocab: usize) -> TextTokenizer {
    train_bpe(
        corpus().into_iter().map(|d| d.text),
        &BpeOptions {
            vocab_size: vocab,
            min_frequency: 2,
        },
    )
    .unwrap()
}

#[test]
fn bpe_round_trips_text_exactly_and_reserves_special_tokens() {
    let tok = tokenizer(400);
    assert_eq!(tok.vocab_size(), 400);
    assert_eq!(tok.token_id(END_OF_TEXT), Some(0));
    assert_eq!(tok.token_id(IM_START), Some(1));
    assert_eq!(tok.token_id(IM_END), Some(2));
    let held_out = [
        common::english(4, 99_999),
        "Text it never saw: Zebras quizzically jump 12,345 km!".to_string(),
        "  leading and trailing spaces  \n\n".to_string(),
        "Ünïcödé 🦀 and bytes it has no merges for: ÆØÅ ∑∫√ 𝔘𝔫𝔦".to_string(),
        render_chat(&[
            Message::new(Role::System, "Be brief."),
            Message::new(Role::User, "Hi"),
            Message::new(Role::Assistant, "Hello."),
        ]),
        String::new(),
    ];
    for text in &held_out {
        let ids = tok.encode(text).unwrap();
        assert_eq!(&tok.decode(&ids).unwrap(), text, "round trip of {text:?}");
    }
    // Chat control tokens are single tokens, not spelled out.
    let ids = tok.encode(&held_out[4]).unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 3);
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 3);
    // Training learned merges: English compresses well beyond one token per byte.
    let t = &held_out[0];
    assert!((t.len() as f64 / tok.encode(t).unwrap().len() as f64) > 2.0);
}

#[test]
fn tokenizer_saves_and_loads_as_tokenizer_json_with_the_same_hash() {
    let tok = tokenizer(350);
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("tokenizer.json");
    tok.save(&p).unwrap();
    let back = TextTokenizer::load(&p).unwrap();
    assert_eq!(back.sha256(), tok.sha256());
    let text = common::english(3, 5);
    assert_eq!(back.encode(&text).unwrap(), tok.encode(&text).unwrap());
    // It is a standard HF tokenizer.json.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(v["model"]["type"], "BPE");
    assert_eq!(v["pre_tokenizer"]["type"], "ByteLevel");
    assert!(train_bpe(
        std::iter::once("x".to_string()),
        &BpeOptions {
            vocab_size: 100,
            min_frequency: 1
        }
    )
    .is_err());
}

#[test]
fn packing_then_reading_gives_exactly_the_token_stream() {
    let tok = tokenizer(512);
    let docs = corpus();
    let mut expect = Vec::new();
    for d in &docs {
        expect.extend(tok.encode(&d.text).unwrap());
        expect.push(tok.eot_id());
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("packed");
    for threads in [1, 2] {
        // Small shards and batches so documents straddle shard boundaries.
        let opts = PackOptions {
            shard_tokens: 997,
            threads: Some(threads),
            batch_bytes: 3000,
        };
        let m = pack_documents(
            docs.clone().into_iter().map(Ok::<_, DataError>),
            &tok,
            &out,
            &opts,
            serde_json::json!({"test": true}),
            None,
        )
        .unwrap();
        let shards = TokenShards::open(&out).unwrap();
        shards.verify().unwrap();
        assert_eq!(shards.all_tokens(), expect, "{threads} threads");
        assert_eq!(m.tokens, expect.len() as u64);
        assert_eq!(m.documents, docs.len() as u64);
        assert_eq!(m.shards.len(), expect.len().div_ceil(997));
        assert_eq!(
            m.shards.iter().map(|s| s.documents).sum::<u64>(),
            docs.len() as u64
        );
        assert_eq!(m.sources["stories"].documents, 60);
        assert_eq!(m.sources["chat"].documents, 30);
        assert_eq!(m.sources.values().map(|s| s.tokens).sum::<u64>(), m.tokens);
        assert_eq!(
            m.text_bytes,
            docs.iter().map(|d| d.text.len() as u64).sum::<u64>()
        );
        assert_eq!(m.token_bytes, 2);
        assert_eq!(m.tokenizer_sha256, tok.sha256());
    }
    // No staging or old directories are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["packed"]);
}

#[test]
fn windows_are_seeded_in_bounds_and_sequential_windows_cover_the_stream() {
    let tok = tokenizer(512);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    pack_documents(
        corpus().into_iter().map(Ok::<_, DataError>),
        &tok,
        &out,
        &PackOptions {
            shard_tokens: 500,
            ..Default::default()
        },
        serde_json::Value::Null,
        None,
    )
    .unwrap();
    let s = TokenShards::open(&out).unwrap();
    let all = s.all_tokens();
    let (batch, len) = (4, 32);
    let a = s.random_windows(1, 10, batch, len);
    assert_eq!(
        a,
        s.random_windows(1, 10, batch, len),
        "same seed and step, same batch"
    );
    assert_ne!(
        a,
        s.random_windows(1, 11, batch, len),
        "next step, new batch"
    );
    assert_ne!(
        a,
        s.random_windows(2, 10, batch, len),
        "other seed, other batch"
    );
    for w in a.chunks(len + 1) {
        assert!(
            all.windows(len + 1).any(|x| x == w),
            "every window is a slice of the stream"
        );
    }
    let n = s.sequential_windows(len);
    let mut covered = vec![all[0]];
    for i in 0..n {
        let w = s.sequential_window(i, len);
        assert_eq!(w[0], *covered.last().unwrap());
        covered.extend_from_slice(&w[1..]);
    }
    assert_eq!(covered[..], all[..covered.len()]);
    assert!(all.len() - covered.len() < len);
}

#[test]
fn truncated_or_tampered_shards_are_rejected_with_the_file_named() {
    let tok = tokenizer(400);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    pack_documents(
        corpus().into_iter().map(Ok::<_, DataError>),
        &tok,
        &out,
        &PackOptions {
            shard_tokens: 800,
            ..Default::default()
        },
        serde_json::Value::Null,
        None,
    )
    .unwrap();
    let shard = out.join("shard-00001.bin");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 10]).unwrap();
    let e = TokenShards::open(&out).err().unwrap().to_string();
    assert!(
        e.contains("shard-00001.bin: corrupt shard") && e.contains("truncated"),
        "{e}"
    );

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xFF;
    std::fs::write(&shard, &flipped).unwrap();
    let s = TokenShards::open(&out).unwrap();
    let e = s.verify().err().unwrap().to_string();
    assert!(e.contains("shard-00001.bin: SHA-256 does not match"), "{e}");

    std::fs::write(&shard, b"garbage").unwrap();
    let e = TokenShards::open(&out).err().unwrap().to_string();
    assert!(e.contains("missing SYNTOKv1 header"), "{e}");

    std::fs::remove_file(out.join("manifest.json")).unwrap();
    let e = TokenShards::open(&out).err().unwrap().to_string();
    assert!(e.contains("not a packed token directory"), "{e}");
}

#[test]
fn corpus_stats_per_source_match_the_manifest() {
    let tok = tokenizer(400);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let m = pack_documents(
        corpus().into_iter().map(Ok::<_, DataError>),
        &tok,
        &out,
        &PackOptions::default(),
        serde_json::Value::Null,
        None,
    )
    .unwrap();
    let df = corpus_stats(&out).unwrap();
    assert_eq!(df.height(), 3);
    let sources: Vec<_> = df
        .column("source")
        .unwrap()
        .str()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(sources, ["chat", "stories", "unicode"]);
    let docs: Vec<_> = df
        .column("documents")
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(docs, [30, 60, 1]);
    let toks: Vec<_> = df
        .column("tokens")
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(
        toks,
        [
            m.sources["chat"].tokens,
            m.sources["stories"].tokens,
            m.sources["unicode"].tokens
        ]
    );
    let p50 = df
        .column("p50_tokens")
        .unwrap()
        .f64()
        .unwrap()
        .get(1)
        .unwrap();
    let max = df
        .column("max_tokens")
        .unwrap()
        .u64()
        .unwrap()
        .get(1)
        .unwrap();
    assert!(p50 > 10.0 && p50 <= max as f64);
}

#[test]
fn a_failing_input_leaves_the_previous_pack_untouched() {
    let tok = tokenizer(400);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let first = pack_documents(
        corpus().into_iter().map(Ok::<_, DataError>),
        &tok,
        &out,
        &PackOptions::default(),
        serde_json::Value::Null,
        None,
    )
    .unwrap();
    let bad = corpus()
        .into_iter()
        .take(5)
        .map(Ok)
        .chain(std::iter::once(Err(DataError::File {
            file: "x.jsonl".into(),
            msg: "boom".into(),
        })));
    let e = pack_documents(
        bad,
        &tok,
        &out,
        &PackOptions {
            batch_bytes: 100,
            ..Default::default()
        },
        serde_json::Value::Null,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("x.jsonl: boom"), "{e}");
    let still = TokenShards::open(&out).unwrap();
    assert_eq!(still.manifest, first);
    still.verify().unwrap();
}
