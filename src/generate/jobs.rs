//! The four generators, each a small state machine per record: plan attributes from the seeds,
//! ask the teacher one or more times, check what came back, and emit a record in the schema of
//! the dataset the generator stands in for (so the data pipeline's loaders read real and
//! generated data alike) — or drop it, with the reason.
//!
//! | generator | method (recipe 2) | schema written |
//! |---|---|---|
//! | `cosmo` | Cosmopedia: topic x audience x format prompt -> text; preamble and title stripped and counted | Cosmopedia (`prompt`, `text`, `seed_data`, `format`, `audience`, ...) |
//! | `magpie` | Magpie: the teacher gets only the pre-query template `<\|im_start\|>user\n` and writes an instruction, then answers it | Magpie-Pro (`uuid`, `conversations`) |
//! | `instruct` | context -> query (skill x task x difficulty) -> evolution -> rule check (still a task?) -> answer | OpenHermes-2.5 (`conversations`, `category`, `source`) |
//! | `stories` | TinyStories: required noun/verb/adjective + features; the teacher continues an opening (a name, a place, the three words) written from seed lists; checked to use the words | Cosmopedia `stories` (format `story`, audience `young children`) |
//!
//! Magpie's instructions are checked to be a user's turn ([`checks::not_a_user_turn`]: a first
//! run that held them to the instruct rule, imperative or question in the user's voice, dropped
//! 59% of 1,000, most of them first-person requests such as "I'm planning a trip ...").
//!
//! Every text that reaches the token cap is continued once (`continue_tokens` more); one that
//! still has not ended is dropped, as is one that ends mid-sentence (see
//! [`ends_mid_sentence`](crate::filter::checks::ends_mid_sentence)). What was measured before
//! and after each change is in `data/generated/v2/README.md`.
//!
//! Everything a record needs is decided by `(generator seed, record index)`, and every teacher
//! call is sampled with a seed derived from them: a record regenerated after a crash is
//! identical to the lost one.

use crate::data::document::{render_chat, render_turn_header, Message, Role};
use crate::filter::checks::{self, Pos};
use crate::generate::seeds::Seeds;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Which generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    Cosmo,
    Magpie,
    Instruct,
    Stories,
}

impl Generator {
    pub const ALL: [Generator; 4] = [
        Generator::Cosmo,
        Generator::Magpie,
        Generator::Instruct,
        Generator::Stories,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Generator::Cosmo => "cosmo",
            Generator::Magpie => "magpie",
            Generator::Instruct => "instruct",
            Generator::Stories => "stories",
        }
    }

    /// The generator called `name`.
    pub fn from_name(name: &str) -> Option<Generator> {
        Generator::ALL.into_iter().find(|g| g.name() == name)
    }

    /// The dataset schema its records use (a [`Dataset`](crate::data::sources::Dataset) name).
    pub fn schema(self) -> &'static str {
        match self {
            Generator::Cosmo | Generator::Stories => "cosmopedia",
            Generator::Magpie => "magpie-pro",
            Generator::Instruct => "openhermes",
        }
    }
}

/// The recipe this code writes. Recipe 1 (the v1 corpora, commit 9e9a5ae) asked once with a
/// 512-token cap and an instruct self-check; its folders are kept as they were generated.
pub const RECIPE: u32 = 2;

fn recipe_1() -> u32 {
    1
}

/// Settings shared by every record of a generation run (recorded in its manifest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenSettings {
    pub generator: Generator,
    pub seed: u64,
    /// Which recipe (prompts, stages, checks) wrote the records; see [`RECIPE`].
    #[serde(default = "recipe_1")]
    pub recipe: u32,
    pub temperature: f64,
    pub top_p: f64,
    pub repetition_penalty: f64,
    /// Block repeated n-grams of this many tokens in each output (0 = off); see
    /// [`Sampling::no_repeat_ngram`](crate::generate::sampling::Sampling::no_repeat_ngram).
    #[serde(default)]
    pub no_repeat_ngram: usize,
    /// The repetition penalty's window in generated tokens (0 = all of prompt and output).
    #[serde(default)]
    pub repeat_last_n: usize,
    /// Longest main output (text, answer, story) in tokens, before one continuation.
    pub max_new_tokens: usize,
    /// Tokens of the one continuation a text that reached `max_new_tokens` gets (0: none).
    #[serde(default)]
    pub continue_tokens: usize,
    /// Instruct only: add the "make it harder" evolution stage.
    pub evolve: bool,
    /// Instruct, recipe 1 only: the teacher's yes/no check of its own answer.
    #[serde(default)]
    pub self_check: bool,
    /// The system prompt used for chat turns (SmolLM2's default).
    pub system_prompt: String,
    /// SHA-256 of the teacher's weights file.
    pub teacher_sha256: String,
}

impl GenSettings {
    pub fn new(generator: Generator, seed: u64) -> Self {
        GenSettings {
            generator,
            seed,
            recipe: RECIPE,
            temperature: 0.7,
            top_p: 0.95,
            repetition_penalty: 1.1,
            repeat_last_n: 64,
            no_repeat_ngram: 5,
            max_new_tokens: 512,
            continue_tokens: 128,
            evolve: true,
            self_check: false,
            system_prompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
                .into(),
            teacher_sha256: String::new(),
        }
    }
}

/// One teacher call a job needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Ask {
    /// The full prompt text (ChatML), ending where the teacher should continue.
    pub prompt: String,
    pub max_new_tokens: usize,
    pub temperature: f64,
    /// Sampling seed of this call.
    pub seed: u64,
}

/// A finished teacher call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    /// Tokens the teacher generated for it.
    pub tokens: u64,
    /// It ended with the end-of-turn token (not at the token cap).
    pub finished: bool,
    /// Sum of the teacher's log-probabilities (natural log, temperature 1, before any penalty)
    /// of the generated tokens.
    pub logprob: f64,
}

/// What a job wants next.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Ask(Ask),
    /// The finished record, in the generator's dataset schema, with its counts.
    Done(Value, Tally),
    /// The record is dropped: a short reason class (`truncated`, `required-words`, ...) and
    /// the detail.
    Drop(String, String),
}

/// Counts of one record, summed into the manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Tokens the teacher generated for the record, all stages and continuations.
    pub teacher_tokens: u64,
    /// Of those, the tokens whose text is in the record (not contexts discarded, not rewrites
    /// replaced by later stages, not our own seeded openings).
    pub kept_tokens: u64,
    /// The kept text ends mid-sentence by [`checks::ends_mid_sentence`] (always false for
    /// recipe 2, which drops such records; counted for comparisons).
    pub mid_sentence: bool,
    /// Stories: the text uses all three required words.
    pub required_words: Option<bool>,
    /// Cosmo: a preamble / a title was stripped.
    pub preamble: bool,
    pub title: bool,
    /// A text needed its continuation.
    pub continued: bool,
    /// Instruct: the evolved task was rejected and the first one kept.
    pub evolution_rejected: bool,
}

/// The output of one stage: text so far (continuations appended), tokens, log-probability.
#[derive(Clone, Debug, Default)]
struct Output {
    text: String,
    tokens: u64,
    logprob: f64,
    finished: bool,
    continued: bool,
}

/// A record in progress.
#[derive(Clone, Debug)]
pub struct Job {
    pub index: u64,
    settings: GenSettings,
    attrs: Value,
    outputs: Vec<Output>,
    /// The stage being continued (its prompt and output so far).
    partial: Option<(String, Output)>,
    last_prompt: String,
    asks: u64,
}

/// Cap of a story. Of 1,000 pilot stories capped at 448 tokens, 14% reached the cap, and a
/// 128-token continuation ended only 9 of those 144 (2,000 tokens per story saved), so stories
/// get no continuation. (A cap of 384 left 6 of 16 pilot stories unfinished.)
const STORY_TOKENS: usize = 448;

/// Audiences and formats of the textbook generator (Cosmopedia's are the models).
const AUDIENCES: [&str; 6] = [
    "young children",
    "middle school students",
    "high school students",
    "college students",
    "general adult readers",
    "researchers",
];
const FORMATS: [&str; 5] = ["textbook", "blog post", "wikiHow", "story", "FAQ"];

fn pick<'a, T>(rng: &mut ChaCha8Rng, v: &'a [T]) -> &'a T {
    v.choose(rng).expect("non-empty seed list")
}

impl Job {
    /// Plan record `index`: its attributes come from the seeds and `(seed, index)` only.
    pub fn plan(settings: &GenSettings, seeds: &Seeds, index: u64) -> Job {
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        rng.set_stream(index);
        let attrs = match settings.generator {
            Generator::Cosmo => {
                let (subject, topic) = pick(&mut rng, &seeds.topics);
                json!({"subject": subject, "topic": topic, "audience": pick(&mut rng, &AUDIENCES), "format": pick(&mut rng, &FORMATS)})
            }
            Generator::Stories => {
                let s = &seeds.story;
                let how_many = rng.gen_range(1..=2);
                let mut features: Vec<&String> =
                    s.features.choose_multiple(&mut rng, how_many).collect();
                features.sort();
                let (noun, verb, adjective) = (
                    pick(&mut rng, &s.nouns),
                    pick(&mut rng, &s.verbs),
                    pick(&mut rng, &s.adjectives),
                );
                let article = if adjective.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                let o = &seeds.openings;
                let opening = pick(&mut rng, &o.openings)
                    .replace("{name}", pick(&mut rng, &o.names).as_str())
                    .replace("{place}", pick(&mut rng, &o.places).as_str())
                    .replace("{animal}", pick(&mut rng, &o.animals).as_str())
                    .replace("{thing}", &format!("{article} {adjective} {noun}"))
                    + " "
                    + &pick(&mut rng, &o.actions).replace("{verb}", verb);
                json!({"noun": noun, "verb": verb, "adjective": adjective, "features": features, "opening": opening})
            }
            Generator::Instruct => {
                let skill = pick(&mut rng, &seeds.skills.skills);
                let (subject, topic) = pick(&mut rng, &seeds.topics);
                json!({"skill": skill.name, "task": pick(&mut rng, &skill.tasks), "difficulty": pick(&mut rng, &seeds.skills.difficulties), "subject": subject, "topic": topic})
            }
            Generator::Magpie => json!({"method": "pre-query template"}),
        };
        Job {
            index,
            settings: settings.clone(),
            attrs,
            outputs: Vec::new(),
            partial: None,
            last_prompt: String::new(),
            asks: 0,
        }
    }

    pub fn attrs(&self) -> &Value {
        &self.attrs
    }

    /// Ask the teacher to continue `prompt` (a chat rendered up to the assistant's turn, plus
    /// any text already started there).
    fn ask(&mut self, prompt: String, max_new_tokens: usize, temperature: f64) -> Step {
        // Distinct per (run seed, record, call).
        let seed =
            self.settings.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self.index << 8) ^ self.asks;
        self.asks += 1;
        self.last_prompt = prompt.clone();
        Step::Ask(Ask {
            prompt,
            max_new_tokens,
            temperature,
            seed,
        })
    }

    /// The prompt of a chat whose assistant turn the teacher writes, optionally started.
    fn chat_prompt(&self, user: &str, started: &str) -> String {
        let mut p = render_chat(&[
            Message::new(Role::System, self.settings.system_prompt.clone()),
            Message::new(Role::User, user),
        ]);
        render_turn_header(&mut p, Role::Assistant);
        p.push_str(started);
        p
    }

    fn a(&self, key: &str) -> String {
        match &self.attrs[key] {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            v => v.to_string(),
        }
    }

    /// Take the teacher's answer to the previous ask: continue a text that hit the cap once,
    /// otherwise close the stage.
    fn receive(&mut self, a: Answer) -> Option<Step> {
        let (prompt, mut out) = self
            .partial
            .take()
            .unwrap_or_else(|| (self.last_prompt.clone(), Output::default()));
        let first = !out.continued;
        out.text.push_str(&a.text);
        out.tokens += a.tokens;
        out.logprob += a.logprob;
        out.finished = a.finished;
        let long_stage =
            self.is_long_stage(self.outputs.len()) && self.settings.generator != Generator::Stories;
        if !a.finished && first && long_stage && self.settings.continue_tokens > 0 {
            out.continued = true;
            let next = format!("{prompt}{}", out.text);
            self.partial = Some((prompt, out));
            return Some(self.ask(
                next,
                self.settings.continue_tokens,
                self.settings.temperature,
            ));
        }
        self.outputs.push(out);
        None
    }

    /// Stages whose output is a long text (the ones that get a continuation).
    fn is_long_stage(&self, stage: usize) -> bool {
        match self.settings.generator {
            Generator::Cosmo | Generator::Stories => stage == 0,
            Generator::Magpie => stage == 1,
            Generator::Instruct => stage == 3,
        }
    }

    /// Advance with the teacher's answer to the previous [`Step::Ask`] (`None` at the start).
    pub fn step(&mut self, answer: Option<Answer>) -> Step {
        if let Some(a) = answer {
            if let Some(s) = self.receive(a) {
                return s;
            }
        }
        let s = self.settings.clone();
        let stage = self.outputs.len();
        match (s.generator, stage) {
            (Generator::Stories, 0) => {
                let p = self.chat_prompt(&self.story_prompt(), &self.a("opening"));
                self.ask(p, s.max_new_tokens.min(STORY_TOKENS), s.temperature)
            }
            (Generator::Stories, _) => self.finish_story(),
            (Generator::Cosmo, 0) => {
                let p = self.chat_prompt(&self.cosmo_prompt(), "");
                self.ask(p, s.max_new_tokens, s.temperature)
            }
            (Generator::Cosmo, _) => self.finish_cosmo(),
            // Magpie: the pre-query template alone; the teacher writes the user's turn.
            (Generator::Magpie, 0) => {
                let mut p = render_chat(&[Message::new(Role::System, s.system_prompt.clone())]);
                render_turn_header(&mut p, Role::User);
                self.ask(p, 128, 1.0)
            }
            (Generator::Magpie, 1) => {
                let q = &self.outputs[0];
                let instruction = checks::strip_task_label(&q.text).to_string();
                let why = if q.finished {
                    checks::not_a_user_turn(&instruction)
                } else {
                    Some("unfinished at its token cap".into())
                };
                if let Some(why) = why {
                    return Step::Drop("bad-instruction".into(), format!("instruction {why}"));
                }
                let p = self.chat_prompt(&instruction, "");
                self.ask(p, s.max_new_tokens, s.temperature)
            }
            (Generator::Magpie, _) => self.finish_magpie(),
            (Generator::Instruct, 0) => {
                let p = self.chat_prompt(&self.context_prompt(), "");
                self.ask(p, 256, s.temperature)
            }
            (Generator::Instruct, 1) => {
                let c = &self.outputs[0];
                if !c.finished || !checks::looks_english(&c.text) {
                    return Step::Drop(
                        "bad-context".into(),
                        "context unfinished or not English".into(),
                    );
                }
                let p = self.chat_prompt(&self.query_prompt(), &self.task_verb());
                self.ask(p, 160, s.temperature)
            }
            (Generator::Instruct, 2) if s.evolve => {
                let p = self.chat_prompt(&format!("Rewrite the following task so that it is more challenging but still clear and answerable. Write only the new task.\n\nTask: {}", self.query(1)), &self.task_verb());
                self.ask(p, 160, s.temperature)
            }
            (Generator::Instruct, 2) => {
                // No evolution: the query stands in for the evolved task.
                self.outputs.push(Output::default());
                self.step(None)
            }
            (Generator::Instruct, 3) => match self.task() {
                Ok((task, _)) => {
                    let p = self.chat_prompt(&task, "");
                    self.ask(p, s.max_new_tokens, s.temperature)
                }
                Err(why) => Step::Drop("bad-task".into(), why),
            },
            (Generator::Instruct, _) => self.finish_instruct(),
        }
    }

    /// Drop a long text that never ended or ends mid-sentence; else its tally so far.
    fn check_ending(&self, out: &Output, text: &str) -> Result<Tally, Step> {
        if !out.finished {
            return Err(Step::Drop(
                "truncated".into(),
                format!("no end after {} tokens", out.tokens),
            ));
        }
        if checks::ends_mid_sentence(text) {
            return Err(Step::Drop(
                "mid-sentence".into(),
                "ended mid-sentence".into(),
            ));
        }
        if !checks::looks_english(text) {
            return Err(Step::Drop(
                "not-english".into(),
                "text does not read as English".into(),
            ));
        }
        Ok(Tally {
            teacher_tokens: self.outputs.iter().map(|o| o.tokens).sum(),
            kept_tokens: out.tokens,
            continued: out.continued,
            ..Default::default()
        })
    }

    fn finish_story(&self) -> Step {
        let out = &self.outputs[0];
        let text = format!("{}{}", self.a("opening"), out.text)
            .trim()
            .to_string();
        let mut tally = match self.check_ending(out, &text) {
            Ok(t) => t,
            Err(drop) => return drop,
        };
        let missing: Vec<String> = [
            ("noun", Pos::Noun),
            ("verb", Pos::Verb),
            ("adjective", Pos::Adjective),
        ]
        .iter()
        .filter(|(k, pos)| !checks::uses_word(&text, &self.a(k), *pos))
        .map(|(k, _)| format!("{k} `{}`", self.a(k)))
        .collect();
        if !missing.is_empty() {
            return Step::Drop(
                "required-words".into(),
                format!("does not use the {}", missing.join(", ")),
            );
        }
        if text.split_whitespace().count() < 40 {
            return Step::Drop("too-short".into(), "fewer than 40 words".into());
        }
        tally.required_words = Some(true);
        Step::Done(
            json!({
                "prompt": self.story_prompt(), "text": text, "seed_data": "tinystories",
                "format": "story", "audience": "young children",
                "synthlm": self.provenance(&tally),
            }),
            tally,
        )
    }

    fn finish_cosmo(&self) -> Step {
        let out = &self.outputs[0];
        let (text, preamble, title) = checks::strip_front_matter(out.text.trim());
        let mut tally = match self.check_ending(out, &text) {
            Ok(t) => t,
            Err(drop) => return drop,
        };
        if text.split_whitespace().count() < 50 {
            return Step::Drop(
                "too-short".into(),
                "fewer than 50 words after stripping".into(),
            );
        }
        tally.preamble = preamble;
        tally.title = title;
        Step::Done(
            json!({
                "prompt": self.cosmo_prompt(), "text": text,
                "seed_data": format!("{}: {}", self.a("subject"), self.a("topic")),
                "format": self.a("format"), "audience": self.a("audience"),
                "synthlm": self.provenance(&tally),
            }),
            tally,
        )
    }

    fn finish_magpie(&self) -> Step {
        let (q, out) = (&self.outputs[0], &self.outputs[1]);
        let answer = out.text.trim();
        let mut tally = match self.check_ending(out, answer) {
            Ok(t) => t,
            Err(drop) => return drop,
        };
        tally.kept_tokens += q.tokens;
        Step::Done(
            json!({
                "uuid": format!("synthlm-magpie-{}-{}", self.settings.seed, self.index),
                "conversations": [{"from": "human", "value": checks::strip_task_label(&q.text)}, {"from": "gpt", "value": answer}],
                "model": "SmolLM2-135M-Instruct-Q4_1",
                "synthlm": self.provenance(&tally),
            }),
            tally,
        )
    }

    fn finish_instruct(&self) -> Step {
        let out = &self.outputs[3];
        let answer = out.text.trim();
        let mut tally = match self.check_ending(out, answer) {
            Ok(t) => t,
            Err(drop) => return drop,
        };
        let (task, evolved) = self.task().expect("checked before the answer was asked");
        let task_tokens = if evolved {
            self.outputs[2].tokens
        } else {
            self.outputs[1].tokens
        };
        tally.kept_tokens += self.outputs[0].tokens + task_tokens;
        tally.evolution_rejected = self.settings.evolve && !evolved;
        Step::Done(
            json!({
                "id": format!("synthlm-instruct-{}-{}", self.settings.seed, self.index),
                "conversations": [{"from": "human", "value": task, "weight": null}, {"from": "gpt", "value": answer, "weight": null}],
                "category": self.a("skill"),
                "source": "synthlm-instruct",
                "synthlm": self.provenance(&tally),
            }),
            tally,
        )
    }

    /// The first word of an instruct record's task: the verb its task type starts with
    /// ("summarise a passage in two sentences" -> "Summarise"). The teacher, asked to write a
    /// task, mostly wrote statements or replies ("I'm ready to help"); started with the verb, it
    /// writes the rest of an imperative.
    fn task_verb(&self) -> String {
        let t = self.a("task");
        let verb = t.split_whitespace().next().unwrap_or("Explain");
        let mut c = verb.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    }

    /// The task written at stage 1 (the query) or 2 (its evolution): the prefilled verb and
    /// the teacher's continuation.
    fn query(&self, stage: usize) -> String {
        format!("{}{}", self.task_verb(), self.outputs[stage].text)
            .trim()
            .to_string()
    }

    /// The user turn an instruct record answers: the passage, then the evolved task if it is
    /// still a task, else the first one; and whether the evolved one was used.
    fn task(&self) -> Result<(String, bool), String> {
        let context = self.outputs[0].text.trim();
        let with = |t: &str| format!("{context}\n\n{t}");
        let first = bad_task(&self.outputs[1], &self.query(1));
        if self.settings.evolve {
            let e = self.query(2);
            if bad_task(&self.outputs[2], &e).is_none() {
                return Ok((with(&e), true));
            }
        }
        match first {
            None => Ok((with(&self.query(1)), false)),
            Some(why) => Err(why),
        }
    }

    fn cosmo_prompt(&self) -> String {
        let (format, audience, topic, subject) = (
            self.a("format"),
            self.a("audience"),
            self.a("topic"),
            self.a("subject"),
        );
        let style = match format.as_str() {
            "textbook" => "a textbook section with clear explanations and one worked example",
            "blog post" => "an engaging blog post",
            "wikiHow" => "a wikiHow-style article with numbered steps and tips",
            "FAQ" => "a short FAQ with four questions and their answers",
            _ => "a story that teaches the idea through its characters",
        };
        format!("Write {style} about \"{topic}\" (subject: {subject}) for {audience}, in about 300 words. Be accurate and use language that suits {audience}. Start directly with the text itself: no title, no introduction such as \"Sure\" or \"Here is\".")
    }

    fn story_prompt(&self) -> String {
        format!(
            "Write a short story (about 150 words) that a 3 to 4 year old child can understand. The story must use the verb \"{}\", the noun \"{}\" and the adjective \"{}\". The story should have the following features: {}. Use only simple words, and end the story after a few paragraphs.",
            self.a("verb"),
            self.a("noun"),
            self.a("adjective"),
            self.a("features")
        )
    }

    fn context_prompt(&self) -> String {
        format!(
            "Write one short, factual paragraph (about 100 words) about \"{}\" (subject: {}). Write only the paragraph.",
            self.a("topic"),
            self.a("subject")
        )
    }

    fn query_prompt(&self) -> String {
        format!(
            "Here is a passage:\n\n{}\n\nWrite one {} task about this passage that tests the skill \"{}\". Task type: {}. Write only the task, in one or two sentences, as an instruction to a student; do not repeat the passage and do not answer it.",
            self.outputs[0].text.trim(),
            self.a("difficulty"),
            self.a("skill"),
            self.a("task")
        )
    }

    /// Generation attributes kept with every record.
    fn provenance(&self, tally: &Tally) -> Value {
        let main = self
            .outputs
            .iter()
            .enumerate()
            .find(|(i, _)| self.is_long_stage(*i))
            .map(|(_, o)| o);
        json!({
            "generator": self.settings.generator.name(),
            "index": self.index,
            "seed": self.settings.seed,
            "recipe": self.settings.recipe,
            "temperature": self.settings.temperature,
            "top_p": self.settings.top_p,
            "repetition_penalty": self.settings.repetition_penalty,
            "no_repeat_ngram": self.settings.no_repeat_ngram,
            "repeat_last_n": self.settings.repeat_last_n,
            "teacher_sha256": self.settings.teacher_sha256,
            "attributes": self.attrs,
            "tally": tally,
            // The teacher's own log-likelihood of the main text as it wrote it (its reference
            // perplexity, given the prompt, at no extra cost).
            "teacher_logprob": main.map_or(0.0, |o| o.logprob),
            "teacher_text_tokens": main.map_or(0, |o| o.tokens),
        })
    }
}

/// Why a generated instruction is not a usable task, if it is not: unfinished at its token
/// cap, or not a task by [`checks::not_a_task`].
fn bad_task(out: &Output, text: &str) -> Option<String> {
    if !out.finished {
        Some("task unfinished at its token cap".into())
    } else {
        checks::not_a_task(text).map(|why| format!("task {why}"))
    }
}
