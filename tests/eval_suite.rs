//! The evaluation suite's fixed items and metrics: minimal pairs differ only where their
//! phenomenon says and are balanced in length; proxy answers are right (recomputed); acc and
//! acc_norm match a hand computation; scoring is deterministic; bad items and bad checkpoints
//! are clear errors naming the file.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use synthlm::data::pack::TokenShards;
use synthlm::data::tokenizer::TextTokenizer;
use synthlm::eval::grammar::{words, Pair, PHENOMENA};
use synthlm::eval::items;
use synthlm::eval::proxy::Choice;
use synthlm::eval::scorer::{Scorer, StudentScorer};
use synthlm::eval::suite;
use synthlm::stats::DocScores;

fn committed() -> PathBuf {
    synthlm::experiments::provenance::project_root().join("data/eval")
}

#[test]
fn minimal_pairs_differ_only_where_their_phenomenon_says_and_are_balanced() {
    let pairs = items::load_pairs(&committed()).unwrap();
    let mut by: BTreeMap<&str, Vec<&Pair>> = BTreeMap::new();
    for p in &pairs {
        by.entry(p.phenomenon.as_str()).or_default().push(p);
    }
    for ph in PHENOMENA {
        let ps = &by[ph];
        assert!(ps.len() >= 300, "{ph}: {}", ps.len());
        for p in ps {
            let (g, b) = (words(&p.good), words(&p.bad));
            assert_eq!(g.len(), b.len(), "{p:?}");
            let diff: Vec<usize> = (0..g.len()).filter(|&i| g[i] != b[i]).collect();
            if ph == "word_order" {
                let (mut gs, mut bs) = (g.clone(), b.clone());
                gs.sort();
                bs.sort();
                assert_eq!(gs, bs, "same words, another order: {p:?}");
                assert!(diff.len() >= 2, "{p:?}");
            } else {
                assert_eq!(diff.len(), 1, "one word differs: {p:?}");
                let (gw, bw) = (&g[diff[0]], &b[diff[0]]);
                let allowed: &[&str] = match ph {
                    "agreement_attractor" => &["is", "are", "was", "were"],
                    "determiner_noun" => &["this", "these", "that", "those"],
                    "anaphor_agreement" => &["himself", "herself", "themselves"],
                    "npi" => &["never", "also", "no", "the"],
                    "filler_gap" => &["what", "that"],
                    _ => &[],
                };
                if !allowed.is_empty() {
                    assert!(
                        allowed.contains(&gw.as_str()) && allowed.contains(&bw.as_str()),
                        "{ph}: {gw} / {bw}"
                    );
                }
            }
        }
        // Two frames, exactly half the pairs each.
        let frame1 = ps.iter().filter(|p| p.frame == 1).count();
        assert_eq!(
            2 * frame1,
            ps.len(),
            "{ph}: {frame1} of {} pairs in frame 1",
            ps.len()
        );
        // Not systematically longer: the mean length difference is small, and neither member is
        // the longer one in more than 60% of the pairs that differ in length.
        let d: Vec<f64> = ps
            .iter()
            .map(|p| p.good.len() as f64 - p.bad.len() as f64)
            .collect();
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let (longer, shorter) = (
            d.iter().filter(|&&x| x > 0.0).count(),
            d.iter().filter(|&&x| x < 0.0).count(),
        );
        assert!(
            mean.abs() <= 1.0,
            "{ph}: good sentences are {mean:+.2} bytes longer on average"
        );
        if longer + shorter > 0 {
            let share = longer.max(shorter) as f64 / (longer + shorter) as f64;
            assert!(
                share <= 0.6,
                "{ph}: one member is longer in {:.0}% of unequal pairs",
                100.0 * share
            );
        }
    }
}

fn nums(s: &str) -> Vec<i64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap())
        .collect()
}

/// The right answer of an item, recomputed from its context.
fn solve(c: &Choice, neutral: &[String]) -> String {
    let ctx = &c.context;
    match c.task.as_str() {
        "arithmetic" => {
            let n = nums(ctx);
            format!(
                " {}",
                if ctx.contains('+') {
                    n[0] + n[1]
                } else {
                    n[0] - n[1]
                }
            )
        }
        "sequence" if ctx.starts_with(|ch: char| ch.is_ascii_digit()) => {
            let n = nums(ctx);
            format!(" {}", n[3] + (n[3] - n[2]))
        }
        "sequence" => {
            let l: Vec<u8> = ctx.bytes().filter(|b| b.is_ascii_lowercase()).collect();
            format!(" {}", (l[3] + (l[3] - l[2])) as char)
        }
        "copying" => {
            // 8 words, then the first k again: the answer is word k+1.
            let w: Vec<&str> = ctx.trim_end_matches(',').split(", ").collect();
            format!(" {}", w[w.len() - 8])
        }
        "brackets" => {
            let mut stack = Vec::new();
            for ch in ctx.split(' ') {
                match ch {
                    "(" | "[" | "{" => stack.push(ch),
                    _ => {
                        stack.pop();
                    }
                }
            }
            let close = match *stack.last().unwrap() {
                "(" => ")",
                "[" => "]",
                _ => "}",
            };
            format!(" {close}")
        }
        "cloze" => {
            // The answer is the word that follows the context in a held-out document.
            let hit = neutral.iter().find_map(|d| {
                let flat = d.split_whitespace().collect::<Vec<_>>().join(" ");
                let i = flat.find(ctx.as_str())?;
                flat[i + ctx.len()..]
                    .split_whitespace()
                    .next()
                    .map(|w| format!(" {}", w.trim_matches(|c: char| !c.is_alphabetic())))
            });
            let hit = hit.expect("the cloze context is in a neutral document");
            // recall from context: the answer and every distractor occur in the passage
            for ch in &c.choices {
                assert!(
                    ctx.split_whitespace().any(|w| w == ch.trim()),
                    "{ch} not in the passage: {c:?}"
                );
            }
            hit
        }
        t => panic!("unknown task {t}"),
    }
}

#[test]
fn every_proxy_item_has_its_right_answer_and_enough_items() {
    let dir = committed();
    let items = items::load_proxy(&dir).unwrap();
    let neutral: Vec<String> = synthlm::eval::neutral::load(&dir.join(items::NEUTRAL))
        .unwrap()
        .into_iter()
        .map(|d| d.text)
        .collect();
    let mut per_task: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &items {
        *per_task.entry(c.task.as_str()).or_default() += 1;
        assert_eq!(c.choices[c.answer], solve(c, &neutral), "{c:?}");
        let mut uniq = c.choices.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), c.choices.len(), "distinct choices: {c:?}");
    }
    for (task, chance) in synthlm::eval::proxy::TASKS {
        assert!(per_task[task] >= 200, "{task}");
        let n = items.iter().find(|c| c.task == task).unwrap().choices.len();
        assert!(
            (chance - 1.0 / n as f64).abs() < 1e-12,
            "{task}: chance is 1/{n}"
        );
        // Neither a position nor (brackets) a closer is the answer more often than chance
        // allows: always picking one scores chance.
        let of: Vec<&Choice> = items.iter().filter(|c| c.task == task).collect();
        for k in 0..n {
            let share = of.iter().filter(|c| c.answer == k).count() as f64 / of.len() as f64;
            assert!(
                share < chance + 0.1,
                "{task}: position {k} is the answer in {share:.2}"
            );
        }
        if task == "brackets" {
            for close in [" )", " ]", " }"] {
                let k = of.iter().filter(|c| c.choices[c.answer] == close).count();
                assert!(
                    k.abs_diff(of.len() / 3) <= 1,
                    "{close} closes {k} of {}",
                    of.len()
                );
            }
        }
    }
    assert!(synthlm::data::pack::TokenShards::open(Path::new("/nonexistent")).is_err());
}

#[test]
fn ties_earn_their_share_and_generation_values_lie_in_their_intervals() {
    // A pair scored equal earns 1/2; a right choice tied with one other for best earns 1/2;
    // tied below the best, 0.
    assert_eq!(suite::credit(&[-3.0, -3.0], 0), 0.5);
    assert_eq!(suite::credit(&[-1.0, -2.0, -1.0, -5.0], 2), 0.5);
    assert_eq!(suite::credit(&[-1.0, -2.0, -2.0], 1), 0.0);
    assert_eq!(suite::credit(&[-1.0, -2.0, -2.0], 0), 1.0);
    let sample = |i: usize, words: usize| synthlm::eval::quality::Sampled {
        kind: if i.is_multiple_of(3) {
            "story".into()
        } else {
            "chat".into()
        },
        prompt: "p".into(),
        text: (0..words)
            .map(|w| format!("w{}", (w * (i + 1)) % 17))
            .collect::<Vec<_>>()
            .join(" "),
        longest_repeat: i % 4,
        teacher_nll: 2.0 + i as f64 / 10.0,
        uses_required: i.is_multiple_of(3).then_some(i.is_multiple_of(2)),
    };
    let samples: Vec<_> = (0..30)
        .map(|i| sample(i, if i % 5 == 0 { 10 } else { 60 }))
        .collect();
    for r in suite::generation(&samples, 1.0) {
        assert!(
            r.lo <= r.value && r.value <= r.hi,
            "{}: {} outside [{}, {}]",
            r.metric,
            r.value,
            r.lo,
            r.hi
        );
        if r.metric == "gen_distinct2" {
            // the six 10-word samples are left out, and the pairing indices say which
            assert_eq!((r.items, r.item_index.len()), (24, 24));
            assert!(!r.item_index.contains(&0) && r.item_index.contains(&1));
        }
    }
}

/// A scorer with fixed log-likelihoods for the hand-computed example.
struct Fixed(TextTokenizer, Vec<f64>);

impl Scorer for Fixed {
    fn tokenizer(&self) -> &TextTokenizer {
        &self.0
    }
    fn loglik(&self, items: &[(Vec<u32>, Vec<u32>)]) -> anyhow::Result<Vec<f64>> {
        assert_eq!(items.len(), self.1.len());
        Ok(self.1.clone())
    }
    fn document_bits(&self, _: &TokenShards) -> anyhow::Result<DocScores> {
        unreachable!()
    }
}

#[test]
fn acc_and_acc_norm_match_a_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::training_fixture(dir.path(), 300);
    let tok = TextTokenizer::load(cfg.data.tokenizer.as_ref().unwrap()).unwrap();
    let item = |choices: &[&str], answer| Choice {
        task: "arithmetic".into(),
        context: "1 + 1 =".into(),
        choices: choices.iter().map(|s| s.to_string()).collect(),
        answer,
    };
    // Item 1: summed log-likelihoods -4, -6 (choice bytes 2, 4): acc picks 0 (-4 > -6),
    // acc_norm picks 1 (-6/4 = -1.5 > -4/2 = -2); the answer is 1: acc 0, acc_norm 1.
    // Item 2: -1, -3 over bytes 2, 2: both pick 0, the answer: 1, 1.
    let items = vec![item(&[" 2", " 222"], 1), item(&[" 2", " 3"], 0)];
    let rows = suite::proxy_tasks(&Fixed(tok, vec![-4.0, -6.0, -1.0, -3.0]), &items).unwrap();
    let get = |m: &str| {
        rows.iter()
            .find(|r| r.metric == m && r.eval_set == "arithmetic")
            .unwrap()
    };
    assert_eq!(get("proxy_acc").per_item, vec![0.0, 1.0]);
    assert_eq!(get("proxy_acc_norm").per_item, vec![1.0, 1.0]);
    assert_eq!(
        (get("proxy_acc").value, get("proxy_acc_norm").value),
        (0.5, 1.0)
    );
    assert_eq!(get("proxy_acc").chance, Some(0.25));
    // Wilson's interval for 1 of 2 (hand: centre 0.5, half-width 0.4067).
    let (lo, hi) = suite::wilson(1.0, 2);
    assert!(
        (lo - 0.0945).abs() < 1e-3 && (hi - 0.9055).abs() < 1e-3,
        "{lo} {hi}"
    );
}

#[test]
fn scoring_a_model_twice_gives_the_same_values_and_pairs_favour_what_it_learned() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::training_fixture(dir.path(), 300);
    let tok = TextTokenizer::load(cfg.data.tokenizer.as_ref().unwrap()).unwrap();
    let model = synthlm::model::Gpt::new(
        cfg.model.resolve(Some(tok.vocab_size())).unwrap(),
        3,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let s = StudentScorer {
        model: &model,
        tokenizer: &tok,
        batch: 8,
    };
    let it = suite::SuiteItems::load(&committed()).unwrap();
    let few = suite::SuiteItems {
        pairs: it.pairs.iter().step_by(40).cloned().collect(),
        proxy: it.proxy.iter().step_by(30).cloned().collect(),
        prompts: vec![],
        neutral: it.neutral[..40].to_vec(),
    };
    let shards = few.neutral_shards(&tok, dir.path()).unwrap();
    let strip = |mut v: Vec<suite::MetricRow>| {
        v.iter_mut().for_each(|r| r.cost_cpu_s = 0.0);
        v
    };
    let a = strip(suite::score_all(&s, &few, &shards).unwrap());
    let b = strip(suite::score_all(&s, &few, &shards).unwrap());
    assert_eq!(a, b);
    let bpb = a.iter().find(|r| r.metric == "neutral_bpb").unwrap();
    assert!(
        bpb.value > 0.0 && bpb.lo <= bpb.value && bpb.value <= bpb.hi,
        "{bpb:?}"
    );
    // The student's loglik of a continuation equals its per-position NLL summed by hand.
    let ids = tok.encode("The cat finds a red ball").unwrap();
    let ll = s.loglik(&[(ids[..3].to_vec(), ids[3..].to_vec())]).unwrap()[0];
    let mut seq = vec![tok.eot_id()];
    seq.extend(&ids);
    let mut by_hand = 0.0;
    for i in 4..seq.len() {
        let l = synthlm::model::sample::last_logits(&model, &seq[..i]).unwrap();
        let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let z: f64 = l.iter().map(|&x| (x as f64 - max).exp()).sum();
        by_hand += l[seq[i] as usize] as f64 - max - z.ln();
    }
    assert!((ll - by_hand).abs() < 1e-3, "{ll} vs {by_hand}");
}

#[test]
fn bad_items_and_bad_checkpoints_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        items::MANIFEST,
        items::PAIRS,
        items::PROXY,
        items::PROMPTS,
        items::NEUTRAL,
    ] {
        std::fs::copy(committed().join(f), dir.path().join(f)).unwrap();
    }
    // A changed file no longer matches its recorded hash.
    let pairs = dir.path().join(items::PAIRS);
    let text = std::fs::read_to_string(&pairs).unwrap();
    std::fs::write(&pairs, text.replacen("is", "are", 1)).unwrap();
    let e = format!("{:#}", items::load_pairs(dir.path()).unwrap_err());
    assert!(
        e.contains("minimal_pairs.jsonl") && e.contains("SHA-256"),
        "{e}"
    );
    // A malformed line whose hash is recorded: the error names the file and the line.
    std::fs::write(
        &pairs,
        format!(
            "{}not json\n",
            text.lines().next().unwrap().to_owned() + "\n"
        ),
    )
    .unwrap();
    let mut m: serde_json::Value =
        synthlm::io::read_json(&dir.path().join(items::MANIFEST)).unwrap();
    m["files"][items::PAIRS] = synthlm::io::sha256_file(&pairs).unwrap().into();
    synthlm::io::write_json(&dir.path().join(items::MANIFEST), &m).unwrap();
    let e = format!("{:#}", items::load_pairs(dir.path()).unwrap_err());
    assert!(e.contains("minimal_pairs.jsonl: line 2"), "{e}");
    // Checkpoints: not a run folder; a corrupt weights file.
    let e = format!(
        "{:#}",
        synthlm::model::student::Student::load(dir.path(), None)
            .err()
            .unwrap()
    );
    assert!(e.contains("not a run folder"), "{e}");
    let run = tempfile::tempdir().unwrap();
    let mut cfg = common::training_fixture(run.path(), 300);
    cfg.train.max_steps = 4;
    cfg.train.snapshot_steps = vec![2];
    cfg.out_dir = run.path().join("run");
    synthlm::train::train(&cfg, &Default::default()).unwrap();
    assert_eq!(
        synthlm::train::checkpoint::snapshot_steps(&cfg.out_dir).unwrap(),
        vec![2]
    );
    assert_eq!(
        synthlm::model::student::Student::load(&cfg.out_dir, Some(2))
            .unwrap()
            .step,
        2
    );
    let w = cfg.out_dir.join("weights/step-00000002.safetensors");
    std::fs::write(&w, b"not safetensors").unwrap();
    let e = format!(
        "{:#}",
        synthlm::model::student::Student::load(&cfg.out_dir, Some(2))
            .err()
            .unwrap()
    );
    assert!(e.contains("step-00000002.safetensors"), "{e}");
    let e = format!(
        "{:#}",
        synthlm::model::student::Student::load(&cfg.out_dir, Some(3))
            .err()
            .unwrap()
    );
    assert!(e.contains("no weight snapshot of step 3"), "{e}");
}

#[test]
fn only_token_matched_pairs_are_scored_with_the_frames_kept_equal() {
    let pair = |frame: u8| Pair {
        phenomenon: "npi".into(),
        good: "g".into(),
        bad: "b".into(),
        frame,
    };
    let pairs = vec![pair(0), pair(0), pair(0), pair(1), pair(1)];
    // pair 1 tokenizes into members of different lengths: out; frame 0 keeps two of its
    // remaining two, frame 1 its two: balanced.
    let enc = |a: usize, b: usize| (vec![1u32; a], vec![2u32; b]);
    let encoded = vec![enc(3, 3), enc(3, 4), enc(2, 2), enc(5, 5), enc(1, 1)];
    assert_eq!(suite::scorable_pairs(&pairs, &encoded), vec![0, 2, 3, 4]);
    // one frame-1 pair unmatched: frame 0 is cut to its first one.
    let encoded = vec![enc(3, 3), enc(3, 3), enc(2, 2), enc(5, 6), enc(1, 1)];
    assert_eq!(suite::scorable_pairs(&pairs, &encoded), vec![0, 4]);
    // the sign test: 9 of 10 differences one way is p = 22/1024 two-sided (hand computation)
    let d = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 0.0, 0.0];
    assert!((synthlm::stats::sign_test(&d) - 22.0 / 1024.0).abs() < 1e-12);
    assert_eq!(synthlm::stats::sign_test(&[0.0, 0.0]), 1.0);
}
