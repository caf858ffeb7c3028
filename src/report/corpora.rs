//! The data chapter's report, from `data/results/corpora/summary.json` alone
//! ([`crate::generate::summary`]): generation, record checks, first look, quality rules and
//! scores, signal costs, the annotator and the classifier, and examples, every corpus version
//! side by side. Book page `corpora`; paper pieces `corpora-*.tex`.

use crate::filter::vs_labels::{validated, VsLabels};
use crate::generate::summary::{
    first_and_latest, version, CorporaSummary, GraderFacts, HandLabelFacts, RuleFacts,
    MODEL_GRADERS,
};
use crate::report::tables::{col, int, md_escape, num, pct};
use crate::report::{Block, Page, Report};
use anyhow::Result;
use polars::prelude::*;

/// Kept teacher tokens of text a v2 family must reach (issue: >= 2M after filtering).
pub const TARGET_TOKENS: u64 = 2_000_000;

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or("-".into(), f)
}

pub fn report(s: &CorporaSummary, source: &str) -> Result<Report> {
    let mut b = vec![Block::Heading(3, "Generation".into())];
    b.extend(generation(s)?);
    b.push(Block::Heading(3, "What the record checks find".into()));
    b.extend(checks(s)?);
    b.push(Block::Heading(3, "Quality rules and scores".into()));
    b.extend(rules(s)?);
    b.push(Block::Heading(3, "What each signal costs".into()));
    b.extend(costs(s)?);
    b.push(Block::Heading(
        3,
        "The LLM annotator and the learned classifier".into(),
    ));
    b.extend(graders(s));
    b.push(Block::Heading(
        3,
        "Examples of kept and removed records".into(),
    ));
    b.extend(examples(s));
    Ok(Report {
        experiment: "corpora".into(),
        source: source.into(),
        pages: vec![Page {
            name: "corpora".into(),
            blocks: b,
        }],
    })
}

/// The manifests side by side, and which families reach the token target.
fn generation(s: &CorporaSummary) -> Result<Vec<Block>> {
    let g = &s.generation;
    let dropped = |x: &crate::generate::summary::GenerationFacts| {
        let attempts = (x.records + x.dropped).max(1) as f64;
        format!(
            "{} of {}",
            pct(x.dropped as f64 / attempts),
            int(x.records + x.dropped)
        )
    };
    let stripped = |x: &crate::generate::summary::GenerationFacts| {
        let f = |k: &str| x.flagged.get(k).copied().unwrap_or(0) as f64 / x.records.max(1) as f64;
        if x.flagged.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{} / {} / {} / {}",
                pct(f("continued")),
                pct(f("preamble")),
                pct(f("title")),
                pct(f("evolution_rejected"))
            )
        }
    };
    let frame = DataFrame::new(vec![
        col("corpus", g.iter().map(|x| x.corpus.clone())),
        col("kept", g.iter().map(|x| int(x.records))),
        col("dropped (of attempts)", g.iter().map(dropped)),
        col(
            "continued / preamble, title stripped / unevolved",
            g.iter().map(stripped),
        ),
        col(
            "tokens, kept (all stages)",
            g.iter().map(|x| int(x.teacher_tokens)),
        ),
        col(
            "kept text",
            g.iter().map(|x| x.kept_tokens.map_or("-".into(), int)),
        ),
        col(
            "dropped",
            g.iter().map(|x| x.dropped_tokens.map_or("-".into(), int)),
        ),
        col(
            "generation s per kept record",
            g.iter()
                .map(|x| format!("{:.2}", x.seconds / x.records.max(1) as f64)),
        ),
    ])?;
    Ok(vec![
        Block::Text(target_text(s)),
        Block::Text("v2's generation drops or strips what its checks find (listed above), so its 0% truncation and 100% story words hold by construction and do not test the recipe; the drops per attempt below do. v1's manifests predate the checks: its truncation and required-word shares are measured in the next table.".into()),
        Block::Table { name: "generation".into(), caption: "What each corpus's generation manifest records: records kept and dropped (share of attempts), what generation did to the kept ones (share cut off and continued; share with a preamble, with a title stripped; instructions whose evolution was rejected, kept with the unevolved query), the teacher tokens spent on kept records (all stages), on their text, and on dropped records, and generation's wall seconds per kept record (2 cores, dropped attempts included; other work shared the cores at times).".into(), frame },
        Block::Table { name: "drops".into(), caption: "Why generation dropped records: share of attempts by reason (corpora that dropped any).".into(), frame: drops(g)? },
    ])
}

/// Drop reasons as rows, the corpora that dropped anything as columns (share of attempts).
fn drops(g: &[crate::generate::summary::GenerationFacts]) -> Result<DataFrame> {
    let with: Vec<_> = g.iter().filter(|x| !x.dropped_by.is_empty()).collect();
    let reasons: std::collections::BTreeSet<&String> =
        with.iter().flat_map(|x| x.dropped_by.keys()).collect();
    let rows = reasons
        .into_iter()
        .map(|r| {
            let cells = with
                .iter()
                .map(|x| {
                    pct(x.dropped_by.get(r).copied().unwrap_or(0) as f64
                        / (x.records + x.dropped).max(1) as f64)
                })
                .collect();
            (r.clone(), cells)
        })
        .collect();
    let names: Vec<&str> = with.iter().map(|x| x.corpus.as_str()).collect();
    by_corpus(&names, rows)
}

/// Which families of the latest version reach [`TARGET_TOKENS`].
fn target_text(s: &CorporaSummary) -> String {
    let latest = s.generation.last().map(|g| version(&g.corpus).to_string());
    let fams: Vec<_> = s
        .generation
        .iter()
        .filter(|g| Some(version(&g.corpus)) == latest.as_deref())
        .collect();
    let short: Vec<String> = fams
        .iter()
        .filter(|g| g.kept_tokens.unwrap_or(0) < TARGET_TOKENS)
        .map(|g| format!("{} ({})", g.corpus, int(g.kept_tokens.unwrap_or(0))))
        .collect();
    if short.is_empty() {
        format!(
            "Every family of {} holds at least {} teacher tokens of kept text.",
            latest.unwrap_or_default(),
            int(TARGET_TOKENS)
        )
    } else {
        format!("Target: at least {} teacher tokens of kept text per family. Short of it so far: {}. Generation resumes where it stopped; the tables below describe the records generated so far.", int(TARGET_TOKENS), short.join(", "))
    }
}

/// The record checks and the first look, side by side.
fn checks(s: &CorporaSummary) -> Result<Vec<Block>> {
    let c = &s.checks;
    let f = &s.first_look;
    let frame = DataFrame::new(vec![
        col("corpus", c.iter().map(|x| x.corpus.clone())),
        col("mid-sentence", c.iter().map(|x| pct(x.mid_sentence))),
        col("preamble", c.iter().map(|x| pct(x.preamble))),
        col("title", c.iter().map(|x| pct(x.title))),
        col(
            "story words used",
            c.iter().map(|x| opt(x.required_words, pct)),
        ),
        col(
            "... after our opening",
            c.iter().map(|x| opt(x.required_words_in_continuation, pct)),
        ),
        col(
            "answer copies task",
            c.iter().map(|x| opt(x.answer_copies_task, pct)),
        ),
        col("meta-text in task", c.iter().map(|x| opt(x.meta_text, pct))),
        col("not English", c.iter().map(|x| pct(x.not_english))),
    ])?;
    let look = DataFrame::new(vec![
        col("corpus", f.iter().map(|x| x.corpus.clone())),
        col("records", f.iter().map(|x| int(x.documents))),
        col(
            "words (mean)",
            f.iter().map(|x| format!("{:.0}", x.mean_words)),
        ),
        col(
            "words (p50 / p90)",
            f.iter()
                .map(|x| format!("{:.0} / {:.0}", x.p50_words, x.p90_words)),
        ),
        // ChatML's tags would break a Markdown table (`|`); the role word stays
        col(
            "most common opening (record as rendered)",
            c.iter().map(|x| {
                format!(
                    "\"{}\" {}",
                    x.top_opening.replace("<|im_start|>", "").trim(),
                    pct(x.top_opening_share)
                )
            }),
        ),
        col(
            "distinct-2 of answers/texts of 80+ words, cut to 80",
            c.iter().map(|x| opt(x.distinct_2_length_matched, num)),
        ),
        col(
            "exact / near duplicates",
            f.iter()
                .map(|x| format!("{} / {}", pct(x.exact_dup_rate), pct(x.near_dup_rate))),
        ),
        col(
            "distinct-1/2/3 (first 50k words)",
            f.iter().map(|x| {
                format!(
                    "{} / {} / {}",
                    opt(x.distinct_1, num),
                    opt(x.distinct_2, num),
                    opt(x.distinct_3, num)
                )
            }),
        ),
    ])?;
    let latest = c.last().map_or("", |x| version(&x.corpus));
    let preamble = |fam: &str| {
        c.iter()
            .find(|x| x.corpus == format!("{latest}/{fam}"))
            .map_or("-".to_string(), |x| pct(x.preamble))
    };
    let preambles = format!("In {latest}, an assistant preamble (\"Sure, here is ...\") opens {} of the textbook texts (cosmo, where generation strips it: these slipped past the stripping), {} of the conversations' answers (magpie) and {} of the instructions' answers (instruct); the labelling guide counts a preamble against a record, and the rule counts it for the quality experiment to filter by.", preamble("cosmo"), preamble("magpie"), preamble("instruct"));
    Ok(vec![
        Block::Text("The failures found by reading v1 (records cut off at the token cap, chat preambles in prose, titles asked not to be there, stories that skip their required words, rewritten tasks that talk about the rewrite), as shares of each corpus's records; for conversations the answer is checked for endings and preambles and the task for meta-text.".into()),
        Block::Table { name: "checks".into(), caption: "Record checks per corpus.".into(), frame },
        Block::Text(preambles),
        Block::Text(format!("Size, length, duplication and diversity. Distinct-n (the share of word n-grams that are unique) is measured on each corpus's first 50,000 words, so that corpora of different sizes compare; it also falls when texts get shorter, so the last column compares at one length: only texts (a conversation's answer) of at least 80 words, each cut to its first 80 (the other columns read the record as rendered, a conversation's user turn included; a v2 story's first sentences are ours). {}", diversity_text(s))),
        Block::Table { name: "first-look".into(), caption: "First look per corpus.".into(), frame: look },
    ])
}

/// How the latest version's length-matched distinct-2 compares with the first version's, per
/// family.
fn diversity_text(s: &CorporaSummary) -> String {
    let (v0, v1, pairs) = first_and_latest(&s.checks, |c| c.corpus.as_str());
    let pairs: Vec<(String, f64, f64)> = pairs
        .into_iter()
        .filter_map(|(f, old, new)| {
            Some((
                f,
                old.distinct_2_length_matched?,
                new.distinct_2_length_matched?,
            ))
        })
        .collect();
    if pairs.is_empty() {
        return String::new();
    }
    let lower = pairs.iter().filter(|p| p.2 < p.1).count();
    let list: Vec<String> = pairs
        .iter()
        .map(|(f, a, b)| format!("{f} {} to {}", num(*a), num(*b)))
        .collect();
    let verdict = if lower == pairs.len() {
        format!(": by this measure {v1} is not more varied than {v0}, seed lists (stories, textbook texts) included")
    } else {
        String::new()
    };
    format!("At one length, {v1}'s distinct-2 is lower than {v0}'s in {lower} of {} families ({}){verdict}.", pairs.len(), list.join(", "))
}

/// Per family, whether the latest version fails more or fewer records than the first on the
/// rules its generation did not apply.
fn beyond_text(r: &[RuleFacts]) -> String {
    let (v0, v1, pairs) = first_and_latest(r, |x| x.corpus.as_str());
    let cells: Vec<String> = pairs
        .iter()
        .map(|(fam, old, new)| {
            let word = if new.any_beyond_generation > old.any_beyond_generation {
                "more"
            } else {
                "fewer"
            };
            format!(
                "{fam} {word} ({} against {})",
                pct(new.any_beyond_generation),
                pct(old.any_beyond_generation)
            )
        })
        .collect();
    if cells.is_empty() {
        return String::new();
    }
    format!(
        "On those other rules {v1} fails, against {v0}: {}.",
        cells.join(", ")
    )
}

/// Rows of (label, one cell per corpus) as a table with the corpora as columns.
fn by_corpus(corpora: &[&str], rows: Vec<(String, Vec<String>)>) -> Result<DataFrame> {
    let mut cols = vec![col("", rows.iter().map(|x| x.0.clone()))];
    for (j, c) in corpora.iter().enumerate() {
        cols.push(col(c, rows.iter().map(|row| row.1[j].clone())));
    }
    Ok(DataFrame::new(cols)?)
}

/// The reference scores per corpus, and the share of records each quality rule rejects (and
/// rejects alone), rules as rows and corpora as columns.
fn rules(s: &CorporaSummary) -> Result<Vec<Block>> {
    let r = &s.rules;
    let names: Vec<&str> = r.iter().map(|x| x.corpus.as_str()).collect();
    let row = |label: &str, f: &dyn Fn(&RuleFacts) -> String| {
        (label.to_string(), r.iter().map(f).collect::<Vec<_>>())
    };
    let tokens = |x: Option<u64>| x.map_or("-".into(), int);
    let scores = vec![
        row("records", &|x| int(x.records as u64)),
        row(
            "teacher tokens of the judged text (a conversation's answer)",
            &|x| tokens(x.tokens),
        ),
        row("... of records passing every rule", &|x| {
            tokens(x.tokens_passing)
        }),
        row("teacher NLL per token (mean)", &|x| opt(x.teacher_nll, num)),
        row("real-text KN-3 bits per byte (mean)", &|x| {
            opt(x.real_kn_bpb, num)
        }),
        row("classifier score (mean)", &|x| opt(x.classifier_mean, num)),
    ];
    let rules: std::collections::BTreeSet<&String> = r
        .iter()
        .flat_map(|x| x.shares.keys())
        .filter(|k| *k != "any")
        .collect();
    let share = |x: &RuleFacts, n: &str| x.shares.get(n).copied().unwrap_or(0.0);
    let (firing, silent): (Vec<&String>, Vec<&String>) = rules
        .into_iter()
        .partition(|n| r.iter().any(|x| share(x, n) >= 0.0005));
    let mut rows: Vec<(String, Vec<String>)> = firing
        .iter()
        .map(|n| {
            row(n, &|x| {
                format!(
                    "{} ({})",
                    pct(share(x, n)),
                    pct(x.sole.get(*n).copied().unwrap_or(0.0))
                )
            })
        })
        .collect();
    rows.push(row("any rule", &|x| pct(share(x, "any"))));
    rows.push(row(
        "any rule v2's generation did not apply to the family",
        &|x| pct(x.any_beyond_generation),
    ));
    Ok(vec![
        Block::Text(format!("Heuristic rules in the Gopher, C4 and FineWeb style (datatrove's default thresholds, in `src/filter/heuristics.rs`, with two departures stated there: a top n-gram counts only if it repeats, and a line may end in a closing quote) and our own, applied to the judged text (a conversation's answer). Each cell is the share of records the rule fails, and in brackets the share it fails alone (what it removes by itself); a record may fail several. The rules v2's generation already applied to a family (every family: ends_mid_sentence, not_english; textbook texts also assistant_preamble and gopher_short_doc) are near 0 in v2 by construction, so the last row compares the versions on the other rules of each family. {} The length rules (gopher_short_doc, c4_few_sentences) fail short answers by design, and short answers are common in v2's instructions. No rule removes anything from a training set yet: the quality-vs-quantity experiment will filter by them, never a held-out set. Failing under 0.05% of every corpus: {}; the other rules of `src/filter/heuristics.rs` fail no record at all.", beyond_text(r), if silent.is_empty() { "none".to_string() } else { silent.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ") })),
        Block::Table { name: "scores".into(), caption: "Tokens and mean reference scores per corpus (the teacher's NLL is recorded at generation: v1 predates it).".into(), frame: by_corpus(&names, scores)? },
        Block::Table { name: "rules".into(), caption: "Share of records each quality rule fails (in brackets: fails alone).".into(), frame: by_corpus(&names, rows)? },
    ])
}

/// The signal costs.
fn costs(s: &CorporaSummary) -> Result<Vec<Block>> {
    let c = &s.costs;
    let time = |us: Option<f64>| match us {
        None => "not measured".to_string(),
        Some(us) if us >= 1e5 => format!("{:.2} s", us / 1e6),
        Some(us) => format!("{us:.1} us"),
    };
    let frame = DataFrame::new(vec![
        col("signal", c.iter().map(|x| x.signal.clone())),
        col(
            "wall time per record",
            c.iter().map(|x| time(x.us_per_record)),
        ),
        col("threads", c.iter().map(|x| x.threads.to_string())),
        col(
            "load when timed",
            c.iter().map(|x| opt(x.load_average, |l| format!("{l:.1}"))),
        ),
        col("records timed", c.iter().map(|x| int(x.records as u64))),
        col("what it does", c.iter().map(|x| x.note.clone())),
    ])?;
    let mut caption = "What each quality signal costs on this machine (2 cores): the rules and the n-gram as timed when the pools were scored (`synthlm quality`), the rest when the summary was made, each with the 1-minute load average then (above 2, other work shared the cores and the time is an upper bound).".to_string();
    // Signals timed on the same records are named together, the records once.
    let mut groups: Vec<(Vec<&str>, &Vec<String>)> = Vec::new();
    for x in c.iter().filter(|x| !x.sample.is_empty()) {
        match groups.iter_mut().find(|g| *g.1 == x.sample) {
            Some(g) => g.0.push(&x.signal),
            None => groups.push((vec![&x.signal], &x.sample)),
        }
    }
    for (signals, sample) in groups {
        caption += &format!(
            " The {} {} timed on {}{} sheet records spread evenly over the sheet (model loading excluded): {}.",
            signals.join(" and the "),
            if signals.len() == 1 { "is" } else { "are" },
            if signals.len() == 1 { "" } else { "the same " },
            sample.len(),
            md_escape(&sample.join(", "))
        );
    }
    Ok(vec![Block::Table {
        name: "costs".into(),
        caption,
        frame,
    }])
}

/// One paragraph per grader.
fn grader_text(who: &str, g: &GraderFacts) -> String {
    let by: Vec<String> = g
        .mean_by_family
        .iter()
        .map(|(f, m)| format!("{f} {m:.2}"))
        .collect();
    let grades: Vec<String> = g
        .grades
        .iter()
        .enumerate()
        .map(|(grade, n)| format!("{grade}: {n}"))
        .collect();
    let mut t = format!(
        "{who}: of the {} records of the labelling sheet, how many get each grade ({}); mean score by family {}; Spearman correlation of its score with the record's length {:.2}.",
        g.records, grades.join(", "), by.join(", "), g.length_spearman
    );
    if let Some((fail, pass)) = g.failing_vs_passing {
        t += &format!(" Mean score of the sheet's records that fail a quality rule {fail:.2}, that pass every rule {pass:.2}.");
    }
    if let Some(a) = &g.held_out_vs_annotator {
        t += &format!(
            " Held out (5-fold) against the annotator it learns from, over {}.",
            a.line()
        );
    }
    if let Some(a) = &g.vs_hand_labels {
        t += &format!(" Against the labels, pooled, over {}.", a.line());
    }
    t
}

/// `0.12 [0.02, 0.21]`, or `-`.
fn rho_ci(x: Option<f64>, ci: Option<(f64, f64)>) -> String {
    // no "-0.00": a value that rounds to zero prints as 0.00
    let z = |v: f64| if v.abs() < 0.005 { 0.0 } else { v };
    let (x, ci) = (x.map(z), ci.map(|(lo, hi)| (z(lo), z(hi))));
    match (x, ci) {
        (Some(x), Some((lo, hi))) => format!("{x:.2} [{lo:.2}, {hi:.2}]"),
        (Some(x), None) => format!("{x:.2}"),
        _ => "-".into(),
    }
}

/// The families of the rows, pooled first.
fn families(rows: &[VsLabels]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    rows.iter()
        .filter(|r| seen.insert(r.family.as_str()))
        .map(|r| r.family.clone())
        .collect()
}

/// Signals (rows) by family (columns): Spearman with the labels and its interval.
fn signals_table(rows: &[VsLabels]) -> Result<DataFrame> {
    let fams = families(rows);
    let mut signals: Vec<&String> = rows.iter().map(|r| &r.signal).collect();
    signals.sort_by_key(|s| (!MODEL_GRADERS.contains(&s.as_str()), s.to_string()));
    signals.dedup();
    let mut cols = vec![col("signal", signals.iter().map(|s| s.to_string()))];
    for f in &fams {
        cols.push(col(
            &format!("{f} (n)"),
            signals.iter().map(|sig| {
                rows.iter()
                    .find(|r| &r.signal == *sig && &r.family == f)
                    .map_or("-".into(), |r| {
                        format!("{} ({})", rho_ci(r.spearman, r.spearman_ci), r.n)
                    })
            }),
        ));
    }
    Ok(DataFrame::new(cols)?)
}

/// Each model grader minus each free signal, by family: the paired difference of Spearmans.
fn differences_table(rows: &[VsLabels]) -> Result<DataFrame> {
    let fams = families(rows);
    let mut pairs: Vec<(String, String)> = rows
        .iter()
        .flat_map(|r| {
            r.minus_free
                .iter()
                .map(|(f, _, _)| (r.signal.clone(), f.clone()))
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut cols = vec![col(
        "model grader minus free signal",
        pairs.iter().map(|(m, f)| format!("{m} - {f}")),
    )];
    for fam in &fams {
        cols.push(col(
            fam,
            pairs.iter().map(|(m, f)| {
                rows.iter()
                    .find(|r| &r.signal == m && &r.family == fam)
                    .and_then(|r| r.minus_free.iter().find(|x| &x.0 == f))
                    .map_or("-".into(), |(_, d, ci)| rho_ci(Some(*d), *ci))
            }),
        ));
    }
    Ok(DataFrame::new(cols)?)
}

/// Who labelled, how many, their grades, and how repeatable the labels are.
fn hand_label_text(h: &HandLabelFacts) -> String {
    let by: Vec<String> = h
        .grades_by_family
        .iter()
        .map(|(f, g)| {
            let g: Vec<String> = g.iter().map(|n| n.to_string()).collect();
            format!("{f} {}", g.join("/"))
        })
        .collect();
    let mut t = format!(
        "Labels: {} records of the sheet, labelled by {} against `data/labels/GUIDE.md`; how many got grade 0/1/2/3/4/5: {}.",
        h.labelled,
        h.labellers.join(", "),
        by.join("; ")
    );
    if h.labellers.iter().any(|l| l.starts_with("synthlm-agent")) {
        t += " `synthlm-agent` is the AI agent that develops this project (Claude, a large language model by Anthropic), not a person, and it works in the repository where the model scores live: these are agent labels, not human judgement, and a human pass over the same sheet is still wanted (the guide says how to add one).";
    }
    t += &format!(
        " {} of them were labelled before the annotator had scored them (the rules, the teacher's NLL and the classifier had scored every record of the pool already, in files the labeller did not open); the other {} had been scored by the annotator, and its grade counts on them published in this chapter, before they were labelled, so only an instruction kept the labeller from those scores. The first 200 rows were drawn by a hash that picked runs of neighbouring ids (one 60-record window of a cosmo and a stories shard, magpie ids 0-79, instruct ids 0-9 and 700-763, all generated before the last change to the ending rule); rows 201-400 were drawn with the fixed hash when stories had 79% and instruct 95% of their final records. The sheet holds 100 records per family whatever the family's size, and its intervals treat records as independent, which the first 200 are not.",
        h.blind, h.not_blind
    );
    if let Some(a) = &h.second_pass {
        t += &format!(
            " A second pass of the same model in a fresh session that saw only the guide and the texts (the prompt is in `data/labels/second-pass-prompt.md`), over a random {} of the rows, against the first: {}. It measures how repeatable one model's labels are, not agreement between independent raters.",
            a.n,
            a.line()
        );
    }
    t
}

/// Where a model grader passes the bar, in a sentence.
fn verdict(who: &str, signal: &str, h: Option<&HandLabelFacts>) -> String {
    let Some(h) = h else {
        return format!("{who} has no labels to be validated against, and no experiment uses it as a quality signal.");
    };
    let passes: Vec<String> = families(&h.signals)
        .into_iter()
        .filter(|f| validated(&h.signals, signal, f))
        .collect();
    match passes.is_empty() {
        true => format!("{who} passes the bar on no family and not pooled: it is not validated, and no experiment uses it as a quality signal."),
        false => format!("{who} passes the bar on {} only; no experiment uses it as a quality signal yet, and one that does may use it only there.", passes.join(", ")),
    }
}

fn graders(s: &CorporaSummary) -> Vec<Block> {
    let current = crate::filter::annotator::Annotator::prompt_sha256().ok();
    let first = "prompted with a one-paragraph summary of the rubric of `data/labels/GUIDE.md` (not the guide itself: neither its stop-at-the-first-failure rule nor the readings added while labelling) and six graded examples of 10-40 words (the sheet's records run to 100-300), one of which (an unfinished story graded 2) the rubric grades 1";
    let prompt = if s.annotator_prompt.is_empty() {
        first.to_string()
    } else if Some(&s.annotator_prompt) == current.as_ref() {
        format!("{first} (prompt SHA-256 `{}`)", &s.annotator_prompt[..12])
    } else {
        format!("prompted with a prompt (SHA-256 `{}`) that is not the one in the code now: score the sheet again", &s.annotator_prompt[..s.annotator_prompt.len().min(12)])
    };
    let mut b = vec![Block::Text(format!("The annotator is Gemma 3 270M (the pretrained model: the PyPI GGUF is not the instruction-tuned one), {prompt}; its score is the expected digit under its next-token distribution. The classifier is a ridge regression from the signals above to the annotator's expected score (`src/filter/classifier.rs`). Neither is trusted before it agrees with labels of the same records."))];
    if let Some(h) = &s.hand_labels {
        b.push(Block::Text(hand_label_text(h)));
        if let Ok(frame) = signals_table(&h.signals) {
            b.push(Block::Table { name: "vs-labels".into(), caption: "Every signal against the labels: Spearman with its 95% percentile bootstrap interval (2,000 resamples over records) and the records it has, pooled and per family. Free signals enter so that higher is better (fewer words, passing every rule, lower teacher NLL, lower bits per byte under the real-text n-gram).".into(), frame });
        }
        if let Ok(frame) = differences_table(&h.signals) {
            b.push(Block::Table { name: "vs-free".into(), caption: "Does a model grader beat a free signal? The difference of their Spearmans with the labels, with its paired 95% bootstrap interval (both correlations on the same resample of records). A model grader passes the bar on a family when its own Spearman and every difference here are above 0 beyond their intervals.".into(), frame });
        }
        if let Ok(frame) = signals_table(&h.by_blindness) {
            b.push(Block::Table { name: "vs-labels-blind".into(), caption: "The model graders against the labels, on the rows labelled before the annotator scored them (blind) and on the rows it had scored first.".into(), frame });
        }
    }
    if let Some(a) = &s.annotator {
        b.push(Block::Text(
            grader_text("The annotator", a)
                + " "
                + &verdict("The annotator", "annotator", s.hand_labels.as_ref()),
        ));
    }
    if let Some(c) = &s.classifier {
        b.push(Block::Text(
            grader_text("The classifier (its fitted scores of the sheet)", c)
                + " "
                + &verdict("The classifier", "classifier", s.hand_labels.as_ref()),
        ));
    }
    if let (Some(a), Some(c)) = (&s.annotator, &s.classifier) {
        if let Some(rho) = c.held_out_vs_annotator.as_ref().and_then(|h| h.spearman) {
            let length = -a.length_spearman;
            let verdict = if length >= 0.5 * rho {
                "; much of what the classifier learns of the annotator is length"
            } else {
                ""
            };
            b.push(Block::Text(format!("A baseline for the classifier: a grader that only counts words (fewer is better) reaches Spearman {length:.2} with the annotator on the same records, against the classifier's held-out {rho:.2}{verdict}.")));
        }
    }
    b.extend(macros(s));
    b
}

/// Examples per corpus of the latest version: kept ones, then one per rule that fails any.
fn examples(s: &CorporaSummary) -> Vec<Block> {
    let mut b = vec![Block::Text("The first records (by a hash of their id) that every rule keeps, and for each rule the first record it rejects; the judged text's first 280 characters.".into())];
    let corpora: std::collections::BTreeSet<&String> =
        s.examples.iter().map(|e| &e.corpus).collect();
    for c in corpora {
        b.push(Block::Text(format!("**{c}**")));
        b.push(Block::List(
            s.examples
                .iter()
                .filter(|e| &e.corpus == c)
                .map(|e| format!("*{}* (`{}`): {}", e.verdict, e.id, md_escape(&e.excerpt)))
                .collect(),
        ));
    }
    b
}

/// A grader in one or two sentences, for the paper.
/// `signal`: the grader's name among the signals compared with the labels.
fn grader_short(who: &str, signal: &str, g: &GraderFacts, h: Option<&HandLabelFacts>) -> String {
    let grades: Vec<String> = g.grades.iter().map(|n| n.to_string()).collect();
    let mut t = format!(
        "{who} gives grades 0--5 to {} of the {} sheet records; its score's Spearman correlation with length is {:.2}",
        grades.join("/"),
        g.records,
        g.length_spearman
    );
    if let Some((fail, pass)) = g.failing_vs_passing {
        t += &format!(", and records failing a quality rule score {fail:.2} against {pass:.2} for those passing every rule");
    }
    if let Some(a) = &g.vs_hand_labels {
        t += &format!(". Against the labels, pooled: {}", a.line());
    }
    t + ". " + &verdict(who, signal, h)
}

/// The hand labels in two sentences, for the paper.
fn hand_labels_short(h: &HandLabelFacts) -> String {
    let two = |x: Option<f64>| x.map_or("undefined".into(), |x| format!("{x:.2}"));
    let mut t = format!(
        "{} sheet records carry labels by {}, the AI agent that develops this project (not a person; {} of them labelled before the annotator scored them, and the sheet's first 200 rows drawn as runs of neighbouring ids)",
        h.labelled,
        h.labellers.join(", "),
        h.blind
    );
    if let Some(a) = &h.second_pass {
        t += &format!(
            "; a second pass of the same model in a fresh session over {} of them agrees with quadratic kappa {} and Spearman {}",
            a.n,
            two(a.kappa),
            two(a.spearman)
        );
    }
    let free: Vec<String> = h
        .signals
        .iter()
        .filter(|r| r.family == "all" && !MODEL_GRADERS.contains(&r.signal.as_str()))
        .map(|r| format!("{} ({})", two(r.spearman), r.signal))
        .collect();
    t + &format!(
        ". Pooled over families, free signals reach Spearman {} with them; per family the signs differ.",
        free.join(", ")
    )
}

fn macros(s: &CorporaSummary) -> Vec<Block> {
    let m = |name: &str, value: String| Block::Macro {
        name: name.into(),
        value,
    };
    let mut out = vec![m("CorporaTargetText", target_text(s))];
    if let Some(h) = &s.hand_labels {
        out.push(m("CorporaHandLabelText", hand_labels_short(h)));
    }
    if let Some(a) = &s.annotator {
        out.push(m(
            "CorporaAnnotatorText",
            grader_short("The annotator", "annotator", a, s.hand_labels.as_ref()),
        ));
    }
    if let Some(c) = &s.classifier {
        let mut t = grader_short("The classifier", "classifier", c, s.hand_labels.as_ref());
        if let Some(a) = &c.held_out_vs_annotator {
            t += &format!(
                " Held out against the annotator's expected score: Spearman {}, quadratic kappa {} (both helped by length, which the classifier's inputs include).",
                opt(a.spearman, num),
                opt(a.kappa, num)
            );
        }
        out.push(m("CorporaClassifierText", t));
    }
    out
}
