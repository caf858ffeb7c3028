//! A second experiment, registered here, goes through the same harness and commands as
//! Experiment 1 (`synthlm experiment` and `synthlm report` call exactly these), with no change
//! to the command line; its figures live beside Experiment 1's without touching them.

mod common;

use std::path::Path;
use synthlm::data::document::Document;
use synthlm::experiments::prepare::Design;
use synthlm::experiments::results::{compare, seed_scores, ComparisonRow, Pairing, Results};
use synthlm::experiments::scale::Scale;
use synthlm::experiments::{Analysis, Experiment, Paths};
use synthlm::report::plots::{Figure, Series};
use synthlm::report::{Block, Page, Report};

/// Two kinds of grammar text; does training on one predict the other?
struct Toy;

fn docs(kind: &str, seed: u64, n: u64) -> Vec<Document> {
    (0..n)
        .map(|i| Document::text(format!("{kind}{i}"), kind, common::english(6, seed + i)))
        .collect()
}

impl Experiment for Toy {
    fn number(&self) -> u32 {
        99
    }
    fn title(&self) -> &'static str {
        "A toy"
    }
    fn conditions(&self, _: &Scale) -> anyhow::Result<Vec<String>> {
        Ok(vec!["a".into(), "b".into()])
    }
    fn prompts(&self) -> Vec<&'static str> {
        vec!["The cat"]
    }
    fn design(&self, _: &Scale, _: &Paths) -> anyhow::Result<Design> {
        Ok(Design {
            conditions: vec![
                ("a".into(), docs("a", 0, 200)),
                ("b".into(), docs("b", 5000, 200)),
            ],
            eval_sets: vec![("held".into(), docs("h", 9000, 20))],
            inputs: vec![],
        })
    }
    fn analyse(&self, a: &Analysis) -> anyhow::Result<(Vec<ComparisonRow>, serde_json::Value)> {
        let st = &a.scale.students[0].name;
        let (x, y) = (
            seed_scores(a.runs, st, "a", "held"),
            seed_scores(a.runs, st, "b", "held"),
        );
        Ok((
            vec![compare("exp99", "a - b", "held", (&x, &y), Pairing::Every)],
            serde_json::json!({"note": "toy"}),
        ))
    }
    fn report(&self, r: &Results, _: &Path) -> anyhow::Result<Report> {
        let rows: Vec<f64> = r.headline.iter().map(|h| h.mean).collect();
        let frame = polars::prelude::df!("bits per byte" => rows)?;
        let series = vec![Series {
            label: "headline".into(),
            points: r
                .headline
                .iter()
                .enumerate()
                .map(|(i, h)| (i as f64, h.mean, h.lo, h.hi))
                .collect(),
            color: 0,
            dashed: false,
        }];
        Ok(Report {
            experiment: "exp99".into(),
            source: "a toy".into(),
            pages: vec![Page {
                name: "exp99".into(),
                blocks: vec![
                    Block::Text("A toy experiment.".into()),
                    Block::Table {
                        name: "headline".into(),
                        caption: "Means.".into(),
                        frame,
                    },
                    Block::Figure {
                        name: "means".into(),
                        caption: "Means.".into(),
                        figure: Figure::Lines {
                            title: "toy".into(),
                            x_label: "row".into(),
                            y_label: "bits per byte".into(),
                            series,
                        },
                    },
                    Block::Macro {
                        name: "ToyRuns".into(),
                        value: r.runs.len().to_string(),
                    },
                ],
            }],
        })
    }
}

static TOY: Toy = Toy;

/// A scratch project with the toy registered and its smoke scale made from Experiment 1's by
/// `edit`.
fn toy_project(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    synthlm::experiments::register(&TOY);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("configs/experiments/exp99");
    std::fs::create_dir_all(&cfg).unwrap();
    let smoke = synthlm::experiments::provenance::project_root()
        .join("configs/experiments/exp1/smoke.toml");
    std::fs::write(
        cfg.join("smoke.toml"),
        edit(&std::fs::read_to_string(smoke).unwrap()),
    )
    .unwrap();
    dir
}

#[test]
fn a_registered_experiment_runs_through_the_commands_and_keeps_to_its_own_files() {
    let dir = toy_project(|text| text.replace("experiment = 1", "experiment = 99"));
    let root = dir.path();
    // Experiment 1's figures are already there; the toy must not delete them.
    let exp1_figs = root.join("book/src/generated/figures/exp1");
    std::fs::create_dir_all(&exp1_figs).unwrap();
    std::fs::write(exp1_figs.join("curves.svg"), "<svg/>").unwrap();
    let paper_figs = root.join("paper/generated/figures/exp1");
    std::fs::create_dir_all(&paper_figs).unwrap();
    std::fs::write(paper_figs.join("curves.png"), "png").unwrap();

    let table = synthlm::commands::experiment(root, 99, "smoke", false, false).unwrap();
    assert!(
        table.contains("| tiny | a | held | bpb |") && table.contains("| kn-5 | b | held |"),
        "{table}"
    );
    let r = synthlm::experiments::load_results(&root.join("data/results/exp99/smoke")).unwrap();
    assert_eq!(r.experiment, "exp99");
    assert_eq!(r.runs.len(), 2 * 2 * 3);
    assert_eq!(r.baselines.len(), 6 * 2);
    assert_eq!(r.comparisons.len(), 1);
    assert!(matches!(r.headline[0].interval.as_str(), i if i.starts_with("min-max over 3 seeds")));
    let plan = synthlm::commands::experiment(root, 99, "smoke", true, false).unwrap();
    assert!(
        plan.contains("Experiment 99") && plan.contains("| tiny |"),
        "{plan}"
    );

    let out = synthlm::commands::report(root, Some(99), "smoke").unwrap();
    assert!(out.contains("exp99"), "{out}");
    let md = std::fs::read_to_string(root.join("book/src/generated/exp99.md")).unwrap();
    assert!(md.contains("A toy experiment.") && md.contains("generated/figures/exp99/means.svg"));
    assert!(root
        .join("book/src/generated/figures/exp99/means.svg")
        .exists());
    assert!(root
        .join("paper/generated/figures/exp99/means.png")
        .exists());
    assert!(
        std::fs::read_to_string(root.join("paper/generated/exp99-headline.tex"))
            .unwrap()
            .contains("\\toprule")
    );
    assert!(
        std::fs::read_to_string(root.join("paper/generated/exp99-macros.tex"))
            .unwrap()
            .contains("\\newcommand{\\ToyRuns}{12}")
    );
    assert!(
        std::fs::read_to_string(root.join("paper/generated/exp99-fig-means.tex"))
            .unwrap()
            .contains("figures/exp99/means.png")
    );
    // Experiment 1's figures are untouched.
    assert!(exp1_figs.join("curves.svg").exists() && paper_figs.join("curves.png").exists());
}

/// With `suite = true` every run is scored by the evaluation suite at 10% of training and at
/// the end, and its rows join the results (needs the teacher and dict-devil, as CI has); with
/// `curve_suite`, the learning curve's runs too, each curve point gaining its neutral score.
#[test]
fn the_evaluation_suite_runs_in_the_grid_when_the_scale_asks() {
    let dir = toy_project(|text| {
        let one_student = &text[..text.find("[[students]]\nname = \"tiny-wide\"").unwrap()];
        one_student
            .replace(
                "experiment = 1",
                "experiment = 99\nsuite = true\ncurve = [2.0]\ncurve_suite = true\nkeep_weights = true",
            )
            .replace("seeds = [0, 1, 2]", "seeds = [0]")
            + "[corpora]\nkind = \"local\"\ngenerated = \"data/generated/v1\"\n"
    });
    let root = dir.path();
    synthlm::commands::experiment(root, 99, "smoke", false, false).unwrap();
    let r = synthlm::experiments::load_results(&root.join("data/results/exp99/smoke")).unwrap();
    let run = root.join("data/results/exp99/smoke").join(&r.runs[0].dir);
    let suite: synthlm::eval::suite_run::SuiteReport =
        synthlm::io::read_json(&run.join("suite.json")).unwrap();
    // a snapshot at 10% of 12 steps, then the final weights
    assert_eq!(
        suite.evaluated.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 12]
    );
    assert!(!suite.separation.is_empty());
    for metric in [
        "neutral_bpb",
        "minimal_pairs_acc",
        "proxy_acc",
        "gen_teacher_nll",
    ] {
        let h = r
            .headline
            .iter()
            .find(|h| h.metric == metric)
            .unwrap_or_else(|| panic!("{metric} in the headline"));
        assert_eq!(h.n_seeds, 1);
        assert!(h.lo <= h.mean && h.mean <= h.hi, "{h:?}");
    }
    assert!(r
        .baselines
        .iter()
        .any(|b| b.name == "kn-3" && b.metric == "minimal_pairs_acc" && b.trained_on == "a"));
    // The neutral domain is among the sets as it is scored: its near-copies left out.
    let neutral = r
        .set("eval", "neutral")
        .expect("the neutral set among the sets");
    assert!(neutral.documents > 0 && neutral.tokens > neutral.documents);
    assert_eq!(neutral.source_tokens.values().sum::<u64>(), neutral.tokens);
    // Restoring the weights of a clone brings back the snapshot the suite scored, bit for bit,
    // in place of whatever was left in its folder.
    let snapshot = |d: &Path| std::fs::read(d.join("weights/step-00000001.safetensors")).unwrap();
    let before = snapshot(&run);
    as_committed(&run);
    std::fs::create_dir_all(run.join("weights")).unwrap();
    std::fs::write(run.join("weights/step-00000005.safetensors"), b"stale").unwrap();
    synthlm::commands::restore_weights(root, 99, "smoke", false).unwrap();
    assert!(snapshot(&run) == before, "the restored snapshot differs");
    assert!(!run.join("weights/step-00000005.safetensors").exists());
    // A suite record of a snapshot the retraining does not make: an error, no weights kept.
    as_committed(&run);
    let path = run.join("suite.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut suite: serde_json::Value = serde_json::from_str(&text).unwrap();
    suite["evaluated"][0][0] = serde_json::json!(2);
    std::fs::write(&path, suite.to_string()).unwrap();
    let err = synthlm::commands::restore_weights(root, 99, "smoke", false).unwrap_err();
    assert!(format!("{err:#}").contains("snapshot of step 2"), "{err:#}");
    assert!(!run.join("hf").exists());
    std::fs::write(&path, text).unwrap();
    // The report's suite tables: every accuracy part with its chance level, the student's cell
    // and the best n-gram of its training set.
    let mp = r
        .headline
        .iter()
        .find(|h| h.metric == "minimal_pairs_acc" && h.eval_set == "all")
        .unwrap();
    assert_eq!(mp.chance, Some(0.5));
    let blocks = synthlm::report::suite::blocks(&r, &[mp.condition.as_str()], &[]).unwrap();
    let frame = blocks
        .iter()
        .find_map(|b| match b {
            synthlm::report::Block::Table { name, frame, .. } if name == "suite-accuracy" => {
                Some(frame.clone())
            }
            _ => None,
        })
        .expect("the accuracy table");
    let column = |name: &str| -> Vec<String> {
        let c = frame.column(name).unwrap().str().unwrap().clone();
        c.into_iter().map(|v| v.unwrap_or("").to_string()).collect()
    };
    let parts = column("part");
    let at = parts.iter().position(|p| p == "all").unwrap();
    assert_eq!(column("chance")[at], "0.500");
    let student = format!("{} on {}", mp.student, mp.condition);
    assert_eq!(
        column(&student)[at],
        synthlm::report::tables::mean_ci(mp.mean, mp.lo, mp.hi)
    );
    let best = r
        .baselines
        .iter()
        .filter(|b| {
            b.metric == "minimal_pairs_acc" && b.eval_set == "all" && b.trained_on == mp.condition
        })
        .map(|b| b.value)
        .fold(f64::MIN, f64::max);
    let cell = &column(&format!("best n-gram on {}", mp.condition))[at];
    assert!(
        cell.starts_with(&synthlm::report::tables::num(best)),
        "{cell}"
    );
    curve_points_carry_the_neutral_domain(root, &r);
}

/// The curve's runs went through the suite, and every point (the grid's 1x run and the 2x
/// run) has a neutral score beside the n-gram models of its own tokens, read from its
/// `suite.json` without the excluded documents; the report draws it under its prefix.
fn curve_points_carry_the_neutral_domain(root: &Path, r: &Results) {
    let out = root.join("data/results/exp99/smoke");
    let steps = 2 * r.scale.steps;
    for c in ["a", "b"] {
        let dir = out.join(format!("curve/tiny-{c}-s0-{steps}steps"));
        assert!(dir.join("suite.json").exists(), "{}", dir.display());
        for (m, run) in [(1.0, out.join(format!("runs/tiny-{c}-s0"))), (2.0, dir)] {
            let p = r
                .curve
                .iter()
                .find(|p| p.multiple == m && p.condition == c && p.eval_set == "neutral")
                .unwrap_or_else(|| panic!("{c} at {m}x on neutral: {:?}", r.curve));
            let (own, base) =
                synthlm::experiments::results::suite_neutral(&run, &r.neutral_excluded)
                    .unwrap()
                    .unwrap();
            assert_eq!(p.bpb, own.bpb());
            assert_eq!(p.baselines["kn-3"], base["kn-3"].bpb());
            assert!(p.baselines.contains_key("bigram"), "{p:?}");
        }
    }
    // each point's n-gram models are counted on its own run's tokens: twice the tokens, other
    // models
    let kn = |m: f64| {
        r.curve
            .iter()
            .find(|p| p.multiple == m && p.condition == "a" && p.eval_set == "neutral")
            .unwrap()
            .baselines["kn-3"]
    };
    assert_ne!(kn(1.0), kn(2.0));
    // two held-out sets (held, neutral) x two training sets x two multiples
    assert_eq!(r.curve.len(), 8, "{:?}", r.curve);
    let blocks = synthlm::report::harness::curve(r, |c| usize::from(c == "b"), "p-").unwrap();
    let names: Vec<String> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Table { name, .. } | Block::Figure { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        ["p-curve", "p-budget-tiny-held", "p-budget-tiny-neutral"],
        "{names:?}"
    );
}

/// With `ranks = 2` each run is trained by two launched synthlm processes (data parallel over
/// localhost TCP, each with half the batch), and scores what one process scores.
#[test]
fn a_scale_with_two_ranks_launches_each_run_and_matches_one_process() {
    // The launched ranks are the synthlm binary Cargo built for these tests.
    std::env::set_var("SYNTHLM_BIN", env!("CARGO_BIN_EXE_synthlm"));
    let scale = |ranks: &str| {
        let ranks = ranks.to_string();
        move |text: &str| {
            let one_student = &text[..text.find("[[students]]\nname = \"tiny-wide\"").unwrap()];
            one_student
                .replace("experiment = 1", &format!("experiment = 99\n{ranks}"))
                .replace("seeds = [0, 1, 2]", "seeds = [0]")
                + "[corpora]\nkind = \"local\"\ngenerated = \"data/generated/v1\"\n"
        }
    };
    let results = |dir: &tempfile::TempDir| {
        synthlm::commands::experiment(dir.path(), 99, "smoke", false, false).unwrap();
        synthlm::experiments::load_results(&dir.path().join("data/results/exp99/smoke")).unwrap()
    };
    let one = results(&toy_project(scale("")));
    let two_dir = toy_project(scale("ranks = 2\nzero1 = true"));
    let two = results(&two_dir);
    assert_eq!((two.scale.ranks, two.scale.zero1), (2, true));
    let run = two_dir
        .path()
        .join("data/results/exp99/smoke")
        .join(&two.runs[0].dir);
    assert!(std::fs::read_to_string(run.join("launch.toml"))
        .unwrap()
        .contains("zero1 = true"));
    let summary = synthlm::train::metrics::read_summary(&run).unwrap();
    assert_eq!(summary.world_size, 2);
    assert_eq!(one.headline.len(), two.headline.len());
    for (a, b) in one.headline.iter().zip(&two.headline) {
        assert_eq!((&a.condition, &a.metric), (&b.condition, &b.metric));
        assert!((a.mean - b.mean).abs() < 1e-4, "{a:?} vs {b:?}");
    }
}

/// The toy with a held-out set copied from its training set: decontamination removes every
/// held-out document, and the harness says so before it trains anything.
struct Leaky;

impl Experiment for Leaky {
    fn number(&self) -> u32 {
        98
    }
    fn title(&self) -> &'static str {
        "A leaky toy"
    }
    fn conditions(&self, s: &Scale) -> anyhow::Result<Vec<String>> {
        TOY.conditions(s)
    }
    fn prompts(&self) -> Vec<&'static str> {
        TOY.prompts()
    }
    fn design(&self, s: &Scale, p: &Paths) -> anyhow::Result<Design> {
        let mut d = TOY.design(s, p)?;
        let copied = d.conditions[0].1[..20].to_vec();
        d.eval_sets = vec![("held".into(), copied)];
        Ok(d)
    }
    fn analyse(&self, a: &Analysis) -> anyhow::Result<(Vec<ComparisonRow>, serde_json::Value)> {
        TOY.analyse(a)
    }
    fn report(&self, r: &Results, out: &Path) -> anyhow::Result<Report> {
        TOY.report(r, out)
    }
}

static LEAKY: Leaky = Leaky;

#[test]
fn a_held_out_set_that_decontamination_empties_is_a_clear_error() {
    synthlm::experiments::register(&LEAKY);
    let dir = toy_project(|text| text.replace("experiment = 1", "experiment = 98"));
    let root = dir.path();
    let cfg = root.join("configs/experiments");
    std::fs::rename(cfg.join("exp99"), cfg.join("exp98")).unwrap();
    let err = synthlm::commands::experiment(root, 98, "smoke", false, false).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("left the eval set `held` empty") && err.contains("20 documents"),
        "{err}"
    );
    assert!(!root.join("data/results/exp98/smoke/runs").exists());
}

/// A scale with `curve = [0.5, 2.0]` trains the first seed again at half and twice the token
/// budget, each with the n-gram baselines of exactly its tokens, outside the grid's headline.
#[test]
fn a_learning_curve_trains_the_first_seed_at_each_multiple_of_the_budget() {
    let dir = toy_project(|text| {
        let one_student = &text[..text.find("[[students]]\nname = \"tiny-wide\"").unwrap()];
        one_student
            .replace(
                "experiment = 1",
                "experiment = 99\ncurve = [0.5, 2.0]\nkeep_weights = true",
            )
            .replace("seeds = [0, 1, 2]", "seeds = [0, 1]")
            + "[corpora]\nkind = \"local\"\ngenerated = \"data/generated/v1\"\n"
    });
    let root = dir.path();
    synthlm::commands::experiment(root, 99, "smoke", false, false).unwrap();
    let out = root.join("data/results/exp99/smoke");
    let r = synthlm::experiments::load_results(&out).unwrap();
    assert_eq!(r.runs.len(), 2 * 2, "curve runs stay out of the grid");
    assert_eq!(r.curve.len(), 3 * 2, "{:?}", r.curve);
    let at = |m: f64, c: &str| {
        r.curve
            .iter()
            .find(|p| p.multiple == m && p.condition == c)
            .unwrap()
    };
    for c in ["a", "b"] {
        let (half, one, two) = (at(0.5, c), at(1.0, c), at(2.0, c));
        assert_eq!((half.steps * 2, two.steps), (one.steps, one.steps * 2));
        assert_eq!((half.tokens * 2, two.tokens), (one.tokens, one.tokens * 2));
        assert!(one.seed == 0 && half.eval_set == "held");
        // the 1x point is the grid's own run of seed 0
        assert_eq!(one.steps, r.scale.steps);
        for p in [half, one, two] {
            assert!(
                p.bpb.is_finite() && p.baselines.contains_key("kn-3"),
                "{p:?}"
            );
        }
        // more of the same text: the n-gram counted on twice the tokens predicts better
        assert!(
            two.baselines["kn-3"] < half.baselines["kn-3"],
            "{half:?} {two:?}"
        );
        let steps = two.steps;
        assert!(out
            .join(format!("curve/tiny-{c}-s0-{steps}steps/summary.json"))
            .exists());
    }
    // keep_weights: every run's final weights in f16, loadable as a Hugging Face GPT-2 folder
    // that scores the held-out text as the run's own weights did (to f16 rounding).
    for run in &r.runs {
        let kept = synthlm::model::student::Student::load(&out.join(&run.dir).join("hf"), None);
        let own = synthlm::model::student::Student::load(&out.join(&run.dir), None).unwrap();
        let kept = kept.unwrap();
        assert_eq!(kept.tokenizer.vocab_size(), own.tokenizer.vocab_size());
        let ids = candle_core::Tensor::new(&[[5u32, 17, 3, 99, 42, 7]], &candle_core::Device::Cpu);
        let logits = |m: &synthlm::model::Gpt| {
            let l = m
                .forward(
                    ids.as_ref().unwrap(),
                    synthlm::model::gpt::Dropout::default(),
                )
                .unwrap();
            l.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let (a, b) = (logits(&kept.model), logits(&own.model));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 0.05, "kept f16 weights give logits off by {worst}");
    }
    restoring_the_weights_retrains_bit_for_bit(root, &out, &r);
    let enough = synthlm::experiments::curve::trained_enough(&r.curve);
    assert_eq!(enough.len(), 2);
    // The report's section: the table, a verdict per (condition, set), a figure that draws.
    let blocks = synthlm::report::harness::curve(&r, |c| usize::from(c == "b"), "").unwrap();
    let mut figures = 0;
    for b in &blocks {
        match b {
            Block::Table { frame, .. } => assert_eq!(frame.height(), 6),
            Block::List(v) => assert!(v.len() == 2 && v[0].contains("twice the tokens")),
            Block::Figure { figure, .. } => {
                let svg = synthlm::report::plots::to_svg((600, 400), |a, s| figure.draw(a, s));
                assert!(svg.unwrap().0.contains("bits per byte"));
                figures += 1;
            }
            _ => {}
        }
    }
    assert_eq!(figures, 1);
}

/// A run folder as a clone has it: the committed records only (no checkpoint, no weights).
fn as_committed(run: &Path) {
    const COMMITTED: [&str; 7] = [
        "config.json",
        "metrics.jsonl",
        "provenance.json",
        "samples.json",
        "scores.json",
        "suite.json",
        "summary.json",
    ];
    for e in std::fs::read_dir(run).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else if !COMMITTED.contains(&name.as_str()) {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// The weights are not committed; one command retrains a grid run and a curve run from their
/// committed records and keeps the weights only when the run reproduces its record bit for bit.
fn restoring_the_weights_retrains_bit_for_bit(root: &Path, out: &Path, r: &Results) {
    let steps = r.scale.steps * 2;
    let runs = [
        out.join(&r.runs[0].dir),
        out.join(format!("curve/tiny-a-s0-{steps}steps")),
    ];
    let weights = |d: &Path| std::fs::read(d.join("hf/model.safetensors")).unwrap();
    let before: Vec<Vec<u8>> = runs.iter().map(|d| weights(d)).collect();
    runs.iter().for_each(|d| as_committed(d));
    let said = synthlm::commands::restore_weights(root, 99, "smoke", false).unwrap();
    assert!(
        said.contains(&r.runs[0].dir) && said.contains("curve/"),
        "{said}"
    );
    let after: Vec<Vec<u8>> = runs.iter().map(|d| weights(d)).collect();
    assert!(
        after == before,
        "the retrained weights differ from the first training's"
    );
    let again = synthlm::commands::restore_weights(root, 99, "smoke", false).unwrap();
    assert!(again.contains("has its weights"), "{again}");
    // A record the retraining does not reproduce: an error naming the run; no weights kept.
    as_committed(&runs[0]);
    let path = runs[0].join("scores.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut scores: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = &mut scores["held"]["bits"][0];
    *first = serde_json::json!(first.as_f64().unwrap() + 1e-9);
    std::fs::write(&path, scores.to_string()).unwrap();
    let err = synthlm::commands::restore_weights(root, 99, "smoke", false).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains(&r.runs[0].dir) && err.contains("differently"),
        "{err}"
    );
    assert!(!runs[0].join("hf").exists());
}

/// `[sweep]` trains each student at each rate on a dev split of one condition, picks the
/// rate with the lowest dev bits per byte, and the grid then trains at it.
#[test]
fn a_learning_rate_sweep_on_a_dev_split_sets_the_grids_rate() {
    let scale = |sweep: &'static str| {
        move |text: &str| {
            let one_student = &text[..text.find("[[students]]\nname = \"tiny-wide\"").unwrap()];
            one_student
                .replace("experiment = 1", "experiment = 99")
                .replace("seeds = [0, 1, 2]", "seeds = [0]")
                + "[corpora]\nkind = \"local\"\ngenerated = \"data/generated/v1\"\n"
                + sweep
        }
    };
    let dir = toy_project(scale("[sweep]\nlrs = [1e-4, 3e-3]\ncondition = \"a\"\n"));
    let root = dir.path();
    synthlm::commands::experiment(root, 99, "smoke", false, false).unwrap();
    let out = root.join("data/results/exp99/smoke");
    let r = synthlm::experiments::load_results(&out).unwrap();
    assert_eq!(r.sweep.len(), 2, "{:?}", r.sweep);
    assert!(r
        .sweep
        .iter()
        .all(|p| p.dev_bpb.is_finite() && p.condition == "a"));
    let best = r
        .sweep
        .iter()
        .min_by(|a, b| a.dev_bpb.total_cmp(&b.dev_bpb))
        .unwrap();
    // 12 steps at 1e-4 barely move the weights: the higher rate wins on the dev split
    assert_eq!(best.lr, 3e-3, "{:?}", r.sweep);
    assert_eq!(r.scale.students[0].lr, Some(best.lr));
    let cfg: synthlm::config::RunConfig =
        synthlm::io::read_json(&out.join(&r.runs[0].dir).join("config.json")).unwrap();
    assert_eq!(cfg.train.lr, best.lr);
    assert!(out.join("sweep/lr-1e-4").is_dir() && out.join("sweep/lr-3e-3").is_dir());
    // The dev split is recorded as a set of its own, sized with the grid's tokenizer, from
    // condition `a`'s sources alone, and never scored as a held-out set.
    let dev = r.set("dev", "a").expect("the dev split among the sets");
    let train = r.set("train", "a").unwrap();
    assert!(dev.documents > 0 && dev.tokens > dev.documents);
    assert!(
        dev.sources.keys().all(|s| train.sources.contains_key(s)),
        "{dev:?}"
    );
    assert_eq!(dev.source_tokens.values().sum::<u64>(), dev.tokens);
    let held_out = synthlm::report::exp1::held_out_table(&r, &out).unwrap();
    if let Some(t) = held_out {
        let names = t.column("held-out set").unwrap().str().unwrap();
        assert!(names.into_iter().flatten().all(|n| n != "a"), "{t}");
    }
    let blocks = synthlm::report::harness::sweep(&r).unwrap();
    let Some(Block::Table { frame, .. }) = blocks.iter().find(|b| matches!(b, Block::Table { .. }))
    else {
        panic!("no sweep table")
    };
    assert_eq!(frame.height(), 2);
    let chosen = frame.column("chosen").unwrap().str().unwrap();
    assert_eq!(
        chosen.into_iter().flatten().filter(|x| *x == "yes").count(),
        1
    );

    let dir = toy_project(scale("[sweep]\nlrs = [1e-4, 3e-3]\ncondition = \"c\"\n"));
    let err = synthlm::commands::experiment(dir.path(), 99, "smoke", false, false).unwrap_err();
    assert!(
        format!("{err:#}").contains("key `sweep.condition`"),
        "{err:#}"
    );
}
