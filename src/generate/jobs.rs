//! The four generators, each a small state machine per record: plan attributes from the seeds,
//! ask the teacher one or more times, and emit a record in the schema of the dataset the
//! generator stands in for (so the data pipeline's loaders read real and generated data alike).
//!
//! | generator | method | schema written |
//! |---|---|---|
//! | `cosmo` | Cosmopedia: topic x audience x format prompt -> text | Cosmopedia (`prompt`, `text`, `seed_data`, `format`, `audience`, ...) |
//! | `magpie` | Magpie: the teacher gets only the pre-query template `<\|im_start\|>user\n` and writes an instruction, then answers it | Magpie-Pro (`uuid`, `conversations`) |
//! | `instruct` | LAB-style skill x task x difficulty -> task -> (evolved harder) -> answer -> self-check | OpenHermes-2.5 (`conversations`, `category`, `source`) |
//! | `stories` | TinyStories: required noun/verb/adjective + features | Cosmopedia `stories` (format `story`, audience `young children`) |
//!
//! Everything a record needs is decided by `(generator seed, record index)`, and every teacher
//! call is sampled with a seed derived from them: a record regenerated after a crash is
//! identical to the lost one.

use crate::data::document::{render_chat, render_turn_header, Message, Role};
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

    /// The dataset schema its records use (a [`Dataset`](crate::data::sources::Dataset) name).
    pub fn schema(self) -> &'static str {
        match self {
            Generator::Cosmo | Generator::Stories => "cosmopedia",
            Generator::Magpie => "magpie-pro",
            Generator::Instruct => "openhermes",
        }
    }
}

/// Settings shared by every record of a generation run (recorded in its manifest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenSettings {
    pub generator: Generator,
    pub seed: u64,
    pub temperature: f64,
    pub top_p: f64,
    pub repetition_penalty: f64,
    /// Longest main output (text, answer, story) in tokens.
    pub max_new_tokens: usize,
    /// Instruct only: add the "make it harder" evolution stage.
    pub evolve: bool,
    /// Instruct only: ask the teacher to check its answer and drop records it rejects.
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
            temperature: 0.8,
            top_p: 0.95,
            repetition_penalty: 1.1,
            max_new_tokens: 512,
            evolve: true,
            self_check: true,
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

/// What a job wants next.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Ask(Ask),
    /// The finished record, in the generator's dataset schema.
    Done(Value),
    /// The record is dropped (and why), e.g. rejected by the self-check or empty.
    Drop(String),
}

/// A record in progress.
#[derive(Clone, Debug)]
pub struct Job {
    pub index: u64,
    settings: GenSettings,
    attrs: Value,
    stage: usize,
    outputs: Vec<String>,
}

const AUDIENCES: [&str; 4] = [
    "young children",
    "high school students",
    "college students",
    "researchers",
];
const FORMATS: [&str; 4] = ["textbook", "blog post", "wikiHow", "story"];

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
                json!({"noun": pick(&mut rng, &s.nouns), "verb": pick(&mut rng, &s.verbs), "adjective": pick(&mut rng, &s.adjectives), "features": features})
            }
            Generator::Instruct => {
                let skill = pick(&mut rng, &seeds.skills.skills);
                json!({"skill": skill.name, "task": pick(&mut rng, &skill.tasks), "difficulty": pick(&mut rng, &seeds.skills.difficulties)})
            }
            Generator::Magpie => json!({"method": "pre-query template"}),
        };
        Job {
            index,
            settings: settings.clone(),
            attrs,
            stage: 0,
            outputs: Vec::new(),
        }
    }

    pub fn attrs(&self) -> &Value {
        &self.attrs
    }

    fn ask(&self, turns: &[Message], max_new_tokens: usize, temperature: f64) -> Step {
        let mut prompt = render_chat(turns);
        render_turn_header(&mut prompt, Role::Assistant);
        Step::Ask(Ask {
            prompt,
            max_new_tokens,
            temperature,
            seed: self.call_seed(),
        })
    }

    fn call_seed(&self) -> u64 {
        // Distinct per (run seed, record, stage).
        self.settings.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (self.index << 8)
            ^ self.stage as u64
    }

    fn chat(&self, user: String) -> Vec<Message> {
        vec![
            Message::new(Role::System, self.settings.system_prompt.clone()),
            Message::new(Role::User, user),
        ]
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

    /// Advance with the teacher's answer to the previous [`Step::Ask`] (`None` at the start).
    pub fn step(&mut self, answer: Option<String>) -> Step {
        if let Some(a) = answer {
            self.outputs.push(a.trim().to_string());
            self.stage += 1;
        }
        if self.outputs.last().is_some_and(|o| o.is_empty()) {
            return Step::Drop(format!("empty teacher output at stage {}", self.stage - 1));
        }
        let s = &self.settings;
        match (s.generator, self.stage) {
            (Generator::Cosmo, 0) => self.ask(&self.chat(self.cosmo_prompt()), s.max_new_tokens, s.temperature),
            (Generator::Cosmo | Generator::Stories, 1) => {
                let prompt = if s.generator == Generator::Cosmo { self.cosmo_prompt() } else { self.story_prompt() };
                let (format, audience, seed_data) = if s.generator == Generator::Cosmo {
                    (self.a("format"), self.a("audience"), format!("{}: {}", self.a("subject"), self.a("topic")))
                } else {
                    ("story".into(), "young children".into(), "tinystories".into())
                };
                Step::Done(json!({
                    "prompt": prompt, "text": self.outputs[0], "seed_data": seed_data, "format": format, "audience": audience,
                    "synthlm": self.provenance(),
                }))
            }
            (Generator::Stories, 0) => self.ask(&self.chat(self.story_prompt()), s.max_new_tokens, s.temperature),
            // Magpie: the pre-query template alone; the teacher writes the user's turn.
            (Generator::Magpie, 0) => {
                let mut prompt = render_chat(&[Message::new(Role::System, s.system_prompt.clone())]);
                render_turn_header(&mut prompt, Role::User);
                Step::Ask(Ask { prompt, max_new_tokens: 128, temperature: 1.0, seed: self.call_seed() })
            }
            (Generator::Magpie, 1) => self.ask(&self.chat(self.outputs[0].clone()), s.max_new_tokens, s.temperature),
            (Generator::Magpie, 2) => Step::Done(json!({
                "uuid": format!("synthlm-magpie-{}-{}", s.seed, self.index),
                "conversations": [{"from": "human", "value": self.outputs[0]}, {"from": "gpt", "value": self.outputs[1]}],
                "model": "SmolLM2-135M-Instruct-Q4_1",
                "synthlm": self.provenance(),
            })),
            (Generator::Instruct, 0) => self.ask(&self.chat(self.instruct_prompt()), 160, s.temperature),
            (Generator::Instruct, 1) if s.evolve => self.ask(
                &self.chat(format!("Rewrite the following task so that it is more challenging but still clear and answerable. Write only the new task.\n\nTask: {}", self.outputs[0])),
                160,
                s.temperature,
            ),
            (Generator::Instruct, n) if n == 1 + s.evolve as usize => self.ask(&self.chat(self.task().to_string()), s.max_new_tokens, s.temperature),
            (Generator::Instruct, n) if s.self_check && n == 2 + s.evolve as usize => self.ask(
                &self.chat(format!("Task: {}\n\nAnswer: {}\n\nIs this answer correct, complete and helpful? Reply with only yes or no.", self.task(), self.outputs[n - 1])),
                4,
                0.0,
            ),
            (Generator::Instruct, _) => {
                let answer_at = 1 + s.evolve as usize;
                if s.self_check {
                    let verdict = self.outputs.last().map(|v| v.to_lowercase()).unwrap_or_default();
                    if !verdict.starts_with("yes") {
                        return Step::Drop(format!("self-check said `{verdict}`"));
                    }
                }
                Step::Done(json!({
                    "id": format!("synthlm-instruct-{}-{}", s.seed, self.index),
                    "conversations": [{"from": "human", "value": self.task(), "weight": null}, {"from": "gpt", "value": self.outputs[answer_at], "weight": null}],
                    "category": self.a("skill"),
                    "source": "synthlm-instruct",
                    "synthlm": self.provenance(),
                }))
            }
            (g, n) => Step::Drop(format!("{} has no stage {n}", g.name())),
        }
    }

    /// The task an instruct record answers: the evolved one when evolution is on.
    fn task(&self) -> &str {
        if self.settings.evolve && self.outputs.len() > 1 {
            &self.outputs[1]
        } else {
            &self.outputs[0]
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
            _ => "a story that teaches the idea through its characters",
        };
        format!("Write {style} about \"{topic}\" (subject: {subject}) for {audience}. Be accurate and use language that suits {audience}. Do not add a title.")
    }

    fn story_prompt(&self) -> String {
        format!(
            "Write a short story (3-5 paragraphs) that a 3 to 4 year old child can understand. The story should use the verb \"{}\", the noun \"{}\" and the adjective \"{}\". The story should have the following features: {}. Remember to only use simple words!",
            self.a("verb"),
            self.a("noun"),
            self.a("adjective"),
            self.a("features")
        )
    }

    fn instruct_prompt(&self) -> String {
        format!(
            "Write one {} task for an assistant that tests the skill \"{}\". Task type: {}. Write only the task itself, with any text or data it needs, and no answer.",
            self.a("difficulty"),
            self.a("skill"),
            self.a("task")
        )
    }

    /// Generation attributes kept with every record.
    fn provenance(&self) -> Value {
        json!({
            "generator": self.settings.generator.name(),
            "index": self.index,
            "seed": self.settings.seed,
            "temperature": self.settings.temperature,
            "top_p": self.settings.top_p,
            "repetition_penalty": self.settings.repetition_penalty,
            "teacher_sha256": self.settings.teacher_sha256,
            "attributes": self.attrs,
        })
    }
}
