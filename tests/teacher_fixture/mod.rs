//! Fixtures shared by the teacher tests: tiny random llama GGUFs with a trained byte-level BPE
//! in their metadata, candle as the reference, and the checks both test binaries run.
#![allow(dead_code)]

use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use synthlm::generate::{Completion, Engine, Request, RunOptions, Sampling, StopReason};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    Tokenizer, TokenizerBuilder,
};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// The control tokens, at ids 0, 1, 2 as in SmolLM2.
pub const CONTROL: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

pub fn corpus() -> Vec<String> {
    let base = [
        "Once upon a time, a little fox lived in the forest. She loved to play with her friends.",
        "The water cycle moves water from the oceans to the sky and back to the land as rain.",
        "def add(a, b):\n    return a + b\n\nprint(add(12, 30))  # prints 42",
        "In 1969, 3 astronauts flew 384400 km to the Moon; 2 of them walked on it.",
        "Plants make food from sunlight, water and carbon dioxide. This is called photosynthesis.",
        "Café, naïve, Straße, 日本語, Ελληνικά, emoji 🦊🌲 and tabs\tand newlines\n\n.",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    ];
    (0..20)
        .flat_map(|_| base.iter().map(|s| s.to_string()))
        .collect()
}

/// A small byte-level BPE (~300 tokens) with the GGUF `smollm` pre-tokenizer: digits one by
/// one, then GPT-2's regex split.
pub fn train_tokenizer(vocab: usize) -> Tokenizer {
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .min_frequency(2)
        .special_tokens(CONTROL.iter().map(|t| AddedToken::from(*t, true)).collect())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build();
    let pre = Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ]);
    let mut tok = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default())
    .with_pre_tokenizer(Some(pre.into()))
    .with_decoder(Some(ByteLevel::default().into()))
    .build()
    .unwrap();
    tok.train(&mut trainer, corpus().into_iter()).unwrap();
    tok.into()
}

/// `tokenizer.ggml.*` metadata of a trained tokenizer, as llama.cpp's converter writes it.
pub fn tokenizer_metadata(tok: &Tokenizer) -> Vec<(String, Value)> {
    let vocab = tok.get_vocab(true);
    let mut tokens = vec![String::new(); vocab.len()];
    for (t, &id) in &vocab {
        tokens[id as usize] = t.clone();
    }
    let json: serde_json::Value = serde_json::from_str(&tok.to_string(false).unwrap()).unwrap();
    let merges: Vec<Value> = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(p) => Value::String(format!(
                "{} {}",
                p[0].as_str().unwrap(),
                p[1].as_str().unwrap()
            )),
            other => panic!("merge {other}"),
        })
        .collect();
    let types: Vec<Value> = tokens
        .iter()
        .map(|t| Value::I32(if CONTROL.contains(&t.as_str()) { 3 } else { 1 }))
        .collect();
    vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.ggml.padding_token_id".into(), Value::U32(2)),
    ]
}

/// Shapes of a tiny random llama.
#[derive(Clone, Copy)]
pub struct Spec {
    pub d: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub ffn: usize,
    pub layers: usize,
    /// No `output.weight`: the head reuses the token embedding.
    pub tied: bool,
    pub dtype: GgmlDType,
    pub rope_base: f32,
}

/// hd = 64 (the AVX-512 attention path), GQA 4/2, tied head, f32 weights.
pub const SPEC64: Spec = Spec {
    d: 256,
    n_head: 4,
    n_kv_head: 2,
    ffn: 384,
    layers: 2,
    tied: true,
    dtype: GgmlDType::F32,
    rope_base: 100_000.0,
};
/// hd = 16 (the generic attention path), d = 64, GQA 4/2, separate output head.
pub const SPEC16: Spec = Spec {
    d: 64,
    n_head: 4,
    n_kv_head: 2,
    ffn: 96,
    layers: 2,
    tied: false,
    dtype: GgmlDType::F32,
    rope_base: 10_000.0,
};

/// Random weights for `spec` (seeded), by GGUF tensor name, as (shape, values).
pub fn random_weights(
    spec: Spec,
    vocab: usize,
    seed: u64,
) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = BTreeMap::new();
    let hd = spec.d / spec.n_head;
    let mut put = |name: String, shape: Vec<usize>, scale: f32, center: f32| {
        let n: usize = shape.iter().product();
        let v = (0..n)
            .map(|_| center + scale * (rng.gen::<f32>() * 2.0 - 1.0))
            .collect();
        w.insert(name, (shape, v));
    };
    let s = |fan_in: usize| 1.7 / (fan_in as f32).sqrt();
    put("token_embd.weight".into(), vec![vocab, spec.d], 1.0, 0.0);
    if !spec.tied {
        put(
            "output.weight".into(),
            vec![vocab, spec.d],
            s(spec.d) * 3.0,
            0.0,
        );
    }
    put("output_norm.weight".into(), vec![spec.d], 0.2, 1.0);
    for l in 0..spec.layers {
        let t = |x: &str| format!("blk.{l}.{x}.weight");
        put(t("attn_norm"), vec![spec.d], 0.2, 1.0);
        put(t("ffn_norm"), vec![spec.d], 0.2, 1.0);
        put(
            t("attn_q"),
            vec![spec.n_head * hd, spec.d],
            s(spec.d) * 2.0,
            0.0,
        );
        put(
            t("attn_k"),
            vec![spec.n_kv_head * hd, spec.d],
            s(spec.d) * 2.0,
            0.0,
        );
        put(
            t("attn_v"),
            vec![spec.n_kv_head * hd, spec.d],
            s(spec.d),
            0.0,
        );
        put(
            t("attn_output"),
            vec![spec.d, spec.n_head * hd],
            s(spec.d),
            0.0,
        );
        put(t("ffn_gate"), vec![spec.ffn, spec.d], s(spec.d), 0.0);
        put(t("ffn_up"), vec![spec.ffn, spec.d], s(spec.d), 0.0);
        put(t("ffn_down"), vec![spec.d, spec.ffn], s(spec.ffn), 0.0);
    }
    w
}

pub fn llama_metadata(spec: Spec) -> Vec<(String, Value)> {
    vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("llama.block_count".into(), Value::U32(spec.layers as u32)),
        ("llama.embedding_length".into(), Value::U32(spec.d as u32)),
        (
            "llama.feed_forward_length".into(),
            Value::U32(spec.ffn as u32),
        ),
        (
            "llama.attention.head_count".into(),
            Value::U32(spec.n_head as u32),
        ),
        (
            "llama.attention.head_count_kv".into(),
            Value::U32(spec.n_kv_head as u32),
        ),
        ("llama.context_length".into(), Value::U32(512)),
        ("llama.rope.freq_base".into(), Value::F32(spec.rope_base)),
        (
            "llama.rope.dimension_count".into(),
            Value::U32((spec.d / spec.n_head) as u32),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
    ]
}

/// Write a GGUF with `weights` stored as `dtype` (1-D norms stay f32, as llama.cpp does).
pub fn write_gguf(
    path: &Path,
    metadata: &[(String, Value)],
    weights: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    dtype: GgmlDType,
) {
    let qt: Vec<(String, QTensor)> = weights
        .iter()
        .map(|(name, (shape, v))| {
            let t = Tensor::from_vec(v.clone(), shape.as_slice(), &Device::Cpu).unwrap();
            let dt = if shape.len() == 1 {
                GgmlDType::F32
            } else {
                dtype
            };
            (name.clone(), QTensor::quantize(&t, dt).unwrap())
        })
        .collect();
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = qt.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &ts).unwrap();
}

/// A tiny model on disk: (dir guard, path, tokenizer).
pub fn tiny_model(spec: Spec, seed: u64) -> (tempfile::TempDir, std::path::PathBuf, Tokenizer) {
    let tok = train_tokenizer(300);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let mut md = llama_metadata(spec);
    md.extend(tokenizer_metadata(&tok));
    write_gguf(
        &path,
        &md,
        &random_weights(spec, tok.get_vocab_size(true), seed),
        spec.dtype,
    );
    (dir, path, tok)
}

pub fn read_content(path: &Path) -> (Content, std::fs::File) {
    let mut f = std::fs::File::open(path).unwrap();
    (Content::read(&mut f).unwrap(), f)
}

/// candle's reference model on the same file.
pub fn candle_model(path: &Path) -> ModelWeights {
    let (c, mut f) = read_content(path);
    ModelWeights::from_gguf(c, &mut f, &Device::Cpu).unwrap()
}

pub fn candle_logits(m: &mut ModelWeights, tokens: &[u32], pos: usize) -> Vec<f32> {
    let x = Tensor::new(tokens, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    m.forward(&x, pos)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .fold(0, |b, (i, &x)| if x > v[b] { i } else { b }) as u32
}

/// Run requests through the engine and return completions by id.
pub fn run_all(engine: &Engine, reqs: &[Request], opts: &RunOptions) -> BTreeMap<u64, Completion> {
    let mut out = BTreeMap::new();
    engine
        .run(reqs.iter().cloned(), opts, |c| {
            assert!(out.insert(c.id, c).is_none(), "one completion per request");
            Ok(())
        })
        .unwrap();
    assert_eq!(out.len(), reqs.len());
    out
}

pub fn check_against_candle(spec: Spec) {
    let (_dir, path, tok) = tiny_model(spec, 7);
    let engine = Engine::load(&path).unwrap();
    assert_eq!(engine.config().rope_base, spec.rope_base);
    let prompt = tok
        .encode(
            "<|im_start|>user\nTell me about the fox in 1969.<|im_end|>\n",
            false,
        )
        .unwrap()
        .get_ids()
        .to_vec();
    let n = prompt.len();
    assert!(
        n > 16,
        "the prompt spans more than one 16-position key tile"
    );

    // Whole prompt at once: last position.
    let mut reference = candle_model(&path);
    let theirs = candle_logits(&mut reference, &prompt, 0);
    let ours = engine.logits(&prompt).unwrap();
    let scale = theirs.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(scale > 1.0, "logits are not degenerate");
    let diff = max_abs_diff(&ours, &theirs);
    assert!(
        diff < 1e-3,
        "last-position logits differ by {diff} (scale {scale})"
    );

    // Every position, candle fed one token at a time (its KV-cache path).
    reference.clear_kv_cache();
    let ours_each = engine.logits_each(&prompt, 0..n).unwrap();
    for (pos, ours) in ours_each.iter().enumerate() {
        let theirs = candle_logits(&mut reference, &prompt[pos..=pos], pos);
        let diff = max_abs_diff(ours, &theirs);
        assert!(diff < 1e-3, "position {pos}: logits differ by {diff}");
    }

    // Greedy continuation: same tokens as candle's argmax, step by step.
    let steps = 24;
    reference.clear_kv_cache();
    let mut expect = Vec::new();
    let mut expect_logprob = 0f64;
    let mut l = candle_logits(&mut reference, &prompt, 0);
    for i in 0..steps {
        let t = argmax(&l);
        expect.push(t);
        let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let z: f64 = l.iter().map(|&x| (x as f64 - max).exp()).sum();
        expect_logprob += l[t as usize] as f64 - max - z.ln();
        l = candle_logits(&mut reference, &[t], n + i);
    }
    let req = Request {
        id: 0,
        prompt,
        max_new_tokens: steps,
        sampling: Sampling::greedy(),
        stop: vec![],
        seed: 0,
        logprobs: true,
    };
    let got = run_all(
        &engine,
        &[req],
        &RunOptions {
            slots: 1,
            ..Default::default()
        },
    );
    assert_eq!(got[&0].tokens, expect, "greedy tokens match candle");
    assert_eq!(got[&0].stop_reason, StopReason::Length);
    // The log-probabilities recorded while generating are the model's own (temperature 1).
    let lp = got[&0].logprob;
    assert!(
        (lp - expect_logprob).abs() < 1e-2 * steps as f64,
        "logprob {lp} vs candle {expect_logprob}"
    );
}

/// Varied requests: prompt lengths 1..~60, max lengths 1..40, greedy and sampled, some with
/// stop tokens likely to be hit.
pub fn varied_requests(vocab: usize, count: usize) -> Vec<Request> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    (0..count)
        .map(|i| {
            let len = 1 + rng.gen_range(0..60);
            let prompt = (0..len).map(|_| rng.gen_range(3..vocab as u32)).collect();
            let sampling = match i % 4 {
                0 => Sampling::greedy(),
                1 => Sampling {
                    temperature: 1.0,
                    top_k: 0,
                    top_p: 1.0,
                    repetition_penalty: 1.0,
                    no_repeat_ngram: 0,
                    repeat_last_n: 0,
                },
                2 => Sampling {
                    temperature: 0.8,
                    top_k: 20,
                    top_p: 0.95,
                    repetition_penalty: 1.0,
                    no_repeat_ngram: 0,
                    repeat_last_n: 0,
                },
                _ => Sampling {
                    temperature: 0.9,
                    top_k: 0,
                    top_p: 0.8,
                    repetition_penalty: 1.3,
                    no_repeat_ngram: 0,
                    repeat_last_n: 0,
                },
            };
            let stop = if i % 3 == 0 {
                vec![]
            } else {
                (3..40).step_by(2).collect()
            };
            Request {
                id: 1000 + i as u64,
                prompt,
                max_new_tokens: 1 + rng.gen_range(0..40),
                sampling,
                stop,
                seed: i as u64,
                logprobs: i % 2 == 0,
            }
        })
        .collect()
}

/// Many requests (ragged prompts, mixed sampling, stop tokens) through a few slots with
/// refills and chunked prefill give exactly what each request gives alone.
pub fn check_batching_equals_alone(spec: Spec) {
    let (_dir, path, tok) = tiny_model(spec, 5);
    let engine = Engine::load(&path).unwrap();
    let reqs = varied_requests(tok.get_vocab_size(true), 30);

    let alone: BTreeMap<u64, Completion> = reqs
        .iter()
        .map(|r| {
            (
                r.id,
                run_all(
                    &engine,
                    std::slice::from_ref(r),
                    &RunOptions {
                        slots: 1,
                        ..Default::default()
                    },
                )[&r.id]
                    .clone(),
            )
        })
        .collect();
    let reasons: Vec<StopReason> = alone.values().map(|c| c.stop_reason).collect();
    assert!(
        reasons.iter().any(|r| matches!(r, StopReason::Stop(_))),
        "some requests stop early on a stop token"
    );
    assert!(
        reasons.contains(&StopReason::Length),
        "some run to max_new_tokens"
    );
    for c in alone.values() {
        let r = reqs.iter().find(|r| r.id == c.id).unwrap();
        assert_eq!(c.prompt_tokens, r.prompt.len());
        assert!(c.tokens.len() <= r.max_new_tokens);
        assert!(
            c.tokens.iter().all(|t| !r.stop.contains(t)),
            "stop tokens are not in the output"
        );
    }

    // 4 slots: sequences finish at different steps and new ones take their slots; a small
    // prefill budget splits prompts over several steps, alongside others' decoding.
    for opts in [
        RunOptions {
            slots: 4,
            prefill_chunk: 5,
            ..Default::default()
        },
        RunOptions {
            slots: 4,
            ..Default::default()
        },
        RunOptions {
            slots: 13,
            prefill_chunk: 17,
            ..Default::default()
        },
    ] {
        let mut order = Vec::new();
        let mut got = BTreeMap::new();
        let stats = engine
            .run(reqs.iter().cloned(), &opts, |c| {
                order.push(c.id);
                got.insert(c.id, c);
                Ok(())
            })
            .unwrap();
        assert_eq!(got, alone, "batched ({opts:?}) == alone");
        assert_ne!(
            order,
            reqs.iter().map(|r| r.id).collect::<Vec<_>>(),
            "completions arrive as they finish"
        );
        assert_eq!(
            stats.generated_tokens,
            alone.values().map(|c| c.tokens.len()).sum::<usize>()
        );
        assert_eq!(
            stats.prompt_tokens,
            reqs.iter().map(|r| r.prompt.len()).sum::<usize>()
        );
        assert!(stats.steps < stats.rows, "steps batch several rows");
    }
}
