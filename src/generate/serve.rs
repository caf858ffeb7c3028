//! The real teacher as a generation [`Backend`]: prompts are tokenized with the teacher's own
//! tokenizer and served by the continuous-batching [`Engine`](crate::generate::engine::Engine);
//! every prompt stops at `<|im_end|>`.

use crate::generate::driver::Backend;
use crate::generate::engine::{Request, RunOptions, StopReason};
use crate::generate::jobs::{Answer, Ask, GenSettings};
use crate::generate::sampling::Sampling;
use crate::generate::teacher::Teacher;
use anyhow::Result;

/// A loaded teacher with the batching and sampling settings of a generation run.
pub struct TeacherBackend<'a> {
    pub teacher: &'a Teacher,
    pub run: RunOptions,
    pub settings: GenSettings,
}

impl Backend for TeacherBackend<'_> {
    fn serve(
        &mut self,
        next: &mut dyn FnMut() -> Option<(u64, Ask)>,
        done: &mut dyn FnMut(u64, Answer) -> Result<()>,
    ) -> Result<()> {
        let t = self.teacher;
        let s = &self.settings;
        let mut encode_error: Option<anyhow::Error> = None;
        let requests = std::iter::from_fn(|| {
            let (id, ask) = next()?;
            match t.encode(&ask.prompt) {
                Ok(prompt) => Some(Request {
                    id,
                    prompt,
                    max_new_tokens: ask.max_new_tokens,
                    sampling: Sampling {
                        temperature: ask.temperature as f32,
                        top_k: 0,
                        top_p: s.top_p as f32,
                        repetition_penalty: s.repetition_penalty as f32,
                        no_repeat_ngram: s.no_repeat_ngram,
                        repeat_last_n: s.repeat_last_n,
                    },
                    stop: vec![t.eos],
                    seed: ask.seed,
                    logprobs: true,
                }),
                Err(e) => {
                    encode_error = Some(e);
                    None
                }
            }
        });
        t.engine.run(requests, &self.run, |c| {
            let text = t
                .tokenizer
                .decode(&c.tokens, true)
                .map_err(|e| anyhow::anyhow!("decoding: {e}"))?;
            done(
                c.id,
                Answer {
                    text,
                    tokens: c.tokens.len() as u64,
                    finished: matches!(c.stop_reason, StopReason::Stop(_)),
                    logprob: c.logprob,
                },
            )
        })?;
        match encode_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
