//! The teacher's batched generation engine: continuous batching over a fixed set of slots.
//!
//! Each slot owns a preallocated KV cache. A step gathers one row per decoding slot (its last
//! sampled token) plus chunks of prompts of slots still prefilling, runs them through the model
//! as ONE batch (so every weight matrix is streamed once per step for all of them: with f32
//! weights, that is what makes batching pay), and samples for every row that ends a prompt or
//! decodes. A finished sequence frees its slot at once and the next request takes it in the
//! next step, its prompt prefilled alongside the others' decoding.
//!
//! Determinism: every row is computed independently of the others (see
//! [`kernels`](super::kernels)), and every request samples with its own ChaCha8 generator
//! seeded from [`Request::seed`], so a request's output is the same alone or among any others,
//! and whatever the slot count or prefill chunking.

use super::llama::{KvCache, Llama, LlamaConfig, RopeTable, Row, Workspace};
use super::sampling::{ban_repeated_ngrams, sample, Sampling, Seen};
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek};
use std::path::Path;
use std::time::Instant;

/// One generation job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    /// Caller's identifier, echoed in the [`Completion`].
    pub id: u64,
    /// Token ids; must not be empty (start a chat prompt with `<|im_start|>`).
    pub prompt: Vec<u32>,
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Generation ends when one of these is sampled (it is not included in the output).
    pub stop: Vec<u32>,
    /// Seed of this request's own random generator.
    pub seed: u64,
    /// Also sum the log-probabilities of the generated tokens under the model's own
    /// distribution (temperature 1, before penalties): [`Completion::logprob`]. Costs a copy
    /// and one exp pass over the vocabulary per token.
    #[serde(default)]
    pub logprobs: bool,
}

/// Why a sequence ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A stop token was sampled (the token is not in [`Completion::tokens`]).
    Stop(u32),
    /// `max_new_tokens` reached.
    Length,
    /// The slot's context (`RunOptions::max_seq_len` or the model's) is full.
    Context,
    /// The prompt alone does not fit the context; nothing was generated.
    PromptTooLong,
}

/// One finished request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub id: u64,
    pub tokens: Vec<u32>,
    pub stop_reason: StopReason,
    pub prompt_tokens: usize,
    /// Sum of `log p(token)` over [`Completion::tokens`] when the request asked for it, else 0.
    #[serde(default)]
    pub logprob: f64,
}

/// How [`Engine::run`] batches.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Sequences decoded together (each has its own KV cache).
    pub slots: usize,
    /// Positions (prompt + output) each slot's cache holds; capped by the model's context.
    /// Memory: `slots * max_seq_len * 2 * layers * kv_heads * head_dim * 4` bytes reserved
    /// (SmolLM2-135M: 46 KB per position), touched only as far as sequences actually grow.
    pub max_seq_len: usize,
    /// Prompt tokens prefilled per step, across all slots (bounds a step's size).
    pub prefill_chunk: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            slots: 32,
            max_seq_len: 2048,
            prefill_chunk: 256,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub requests: usize,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Forward passes (batched steps).
    pub steps: usize,
    /// Rows processed, summed over steps (prompt + decode tokens).
    pub rows: usize,
    pub seconds: f64,
}

impl Stats {
    /// Generated tokens per second of wall time (prefill time included).
    pub fn tokens_per_second(&self) -> f64 {
        self.generated_tokens as f64 / self.seconds.max(1e-9)
    }
}

/// A llama-architecture GGUF model ready to generate.
pub struct Engine {
    model: Llama,
}

/// A request occupying a slot.
struct Active {
    req: Request,
    /// Positions already in the KV cache.
    fed: usize,
    out: Vec<u32>,
    rng: ChaCha8Rng,
    seen: Seen,
    scratch: Vec<u32>,
    /// This step's logits row, if it samples.
    logit_row: Option<usize>,
    /// The raw logits of the row being sampled (when `req.logprobs`), and the running sum.
    raw: Vec<f32>,
    logprob: f64,
}

impl Active {
    /// The token at position `pos` of prompt ++ output.
    fn token(&self, pos: usize) -> u32 {
        let p = &self.req.prompt;
        if pos < p.len() {
            p[pos]
        } else {
            self.out[pos - p.len()]
        }
    }
}

impl Engine {
    /// Read a GGUF file and dequantize its weights to f32 (SmolLM2-135M: ~0.5 GB, ~1 s).
    pub fn load(path: &Path) -> Result<Engine> {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let content =
            Content::read(&mut f).with_context(|| format!("reading GGUF {}", path.display()))?;
        Engine::from_gguf_content(&content, &mut f)
            .with_context(|| format!("loading {}", path.display()))
    }

    pub fn from_gguf_content<R: Read + Seek>(content: &Content, reader: &mut R) -> Result<Engine> {
        Ok(Engine {
            model: Llama::from_gguf(content, reader)?,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.model.cfg
    }

    /// Bytes of f32 weights in memory.
    pub fn weight_bytes(&self) -> usize {
        self.model.weight_bytes()
    }

    /// Generate for every request, `opts.slots` at a time, calling `on_done` as each finishes
    /// (in finishing order, not request order). The iterator is asked again after every
    /// completion even if it returned `None` before: `on_done` may have queued follow-ups. The
    /// run ends when the iterator has nothing and no slot is busy.
    pub fn run(
        &self,
        requests: impl IntoIterator<Item = Request>,
        opts: &RunOptions,
        mut on_done: impl FnMut(Completion) -> Result<()>,
    ) -> Result<Stats> {
        let cfg = &self.model.cfg;
        if opts.slots == 0 || opts.prefill_chunk == 0 {
            bail!("RunOptions: slots and prefill_chunk must be at least 1");
        }
        let start = Instant::now();
        let cap = opts.max_seq_len.min(cfg.ctx);
        let rope = RopeTable::new(cfg, cap);
        let mut caches: Vec<KvCache> = (0..opts.slots).map(|_| KvCache::new(cfg, cap)).collect();
        let mut slots: Vec<Option<Active>> = (0..opts.slots).map(|_| None).collect();
        let mut spare_seen: Vec<Seen> = Vec::new();
        let mut ws = Workspace::default();
        let mut rows: Vec<Row> = Vec::new();
        let mut stats = Stats::default();
        let mut requests = requests.into_iter();
        let mut exhausted = false;

        loop {
            // 1. Fill free slots. Requests that need no compute finish right here.
            for slot in slots.iter_mut().filter(|s| s.is_none()) {
                while !exhausted && slot.is_none() {
                    let Some(req) = requests.next() else {
                        exhausted = true;
                        break;
                    };
                    if req.prompt.is_empty() {
                        bail!("request {}: empty prompt", req.id);
                    }
                    if let Some(&t) = req.prompt.iter().find(|&&t| t as usize >= cfg.vocab) {
                        bail!(
                            "request {}: token {t} outside the vocabulary ({})",
                            req.id,
                            cfg.vocab
                        );
                    }
                    stats.requests += 1;
                    stats.prompt_tokens += req.prompt.len();
                    let early = if req.prompt.len() > cap {
                        Some(StopReason::PromptTooLong)
                    } else if req.max_new_tokens == 0 {
                        Some(StopReason::Length)
                    } else {
                        None
                    };
                    if let Some(stop_reason) = early {
                        on_done(Completion {
                            id: req.id,
                            tokens: vec![],
                            stop_reason,
                            prompt_tokens: req.prompt.len(),
                            logprob: 0.0,
                        })?;
                        exhausted = false;
                        continue;
                    }
                    let mut seen = spare_seen.pop().unwrap_or_else(|| Seen::new(cfg.vocab));
                    seen.clear();
                    if req.sampling.repetition_penalty != 1.0 && req.sampling.repeat_last_n == 0 {
                        req.prompt.iter().for_each(|&t| seen.insert(t));
                    }
                    *slot = Some(Active {
                        rng: ChaCha8Rng::seed_from_u64(req.seed),
                        out: Vec::with_capacity(req.max_new_tokens.min(cap)),
                        req,
                        fed: 0,
                        seen,
                        scratch: Vec::new(),
                        logit_row: None,
                        raw: Vec::new(),
                        logprob: 0.0,
                    });
                }
            }
            if slots.iter().all(Option::is_none) {
                break;
            }

            // 2. Gather this step's rows: one per decoding slot, prompt chunks within budget.
            rows.clear();
            let mut budget = opts.prefill_chunk;
            let mut n_logits = 0;
            for (si, slot) in slots.iter_mut().enumerate() {
                let Some(a) = slot else { continue };
                a.logit_row = None;
                let plen = a.req.prompt.len();
                let upto = if a.fed < plen {
                    let take = (plen - a.fed).min(budget);
                    budget -= take;
                    a.fed + take
                } else {
                    a.fed + 1 // the last sampled token
                };
                for pos in a.fed..upto {
                    rows.push(Row {
                        token: a.token(pos),
                        slot: si,
                        pos,
                        logits: false,
                    });
                }
                if upto > a.fed && upto >= plen {
                    rows.last_mut().unwrap().logits = true;
                    a.logit_row = Some(n_logits);
                    n_logits += 1;
                }
                a.fed = upto;
            }

            // 3-4. One batched forward pass, then sampling for every row that asked for logits
            // (in parallel: each request has its own generator and scratch). The step runs on a
            // rayon worker: the ~150 parallel matmuls inside then fork and join between the
            // pool's own threads, instead of each waking the pool from this thread and sleeping
            // until it is done (two context switches per ~100 us matmul).
            let vocab = cfg.vocab;
            let mut sampling: Vec<&mut Active> = slots
                .iter_mut()
                .flatten()
                .filter(|a| a.logit_row.is_some())
                .collect();
            let (model, rows, caches, ws) = (&self.model, &rows, &mut caches, &mut ws);
            let picked: Vec<u32> = rayon::scope(|_| {
                model.forward(rows, caches, &rope, ws);
                sampling
                    .par_iter_mut()
                    .zip(ws.logits[..n_logits * vocab].par_chunks_mut(vocab))
                    .map(|(a, logits)| {
                        let a = &mut **a;
                        if a.req.logprobs {
                            a.raw.clear();
                            a.raw.extend_from_slice(logits);
                        }
                        ban_repeated_ngrams(logits, &a.out, a.req.sampling.no_repeat_ngram);
                        let t =
                            sample(logits, &a.req.sampling, &a.seen, &mut a.rng, &mut a.scratch);
                        if a.req.logprobs && !a.req.stop.contains(&t) {
                            a.logprob += log_softmax_at(&mut a.raw, t as usize) as f64;
                        }
                        t
                    })
                    .collect()
            });
            drop(sampling);
            stats.steps += 1;
            stats.rows += rows.len();

            // 5. Record the tokens; finish sequences and free their slots.
            let mut it = picked.into_iter();
            for slot in slots.iter_mut() {
                let Some(a) = slot else { continue };
                if a.logit_row.is_none() {
                    continue;
                }
                let t = it.next().expect("one token per sampling row");
                let reason = if a.req.stop.contains(&t) {
                    Some(StopReason::Stop(t))
                } else {
                    a.out.push(t);
                    a.seen.update(&a.req.sampling, &a.out);
                    if a.out.len() >= a.req.max_new_tokens {
                        Some(StopReason::Length)
                    } else if a.req.prompt.len() + a.out.len() > cap {
                        // The next step would feed position cap: no room.
                        Some(StopReason::Context)
                    } else {
                        None
                    }
                };
                if let Some(stop_reason) = reason {
                    let a = slot.take().unwrap();
                    stats.generated_tokens += a.out.len();
                    spare_seen.push(a.seen);
                    on_done(Completion {
                        id: a.req.id,
                        tokens: a.out,
                        stop_reason,
                        prompt_tokens: a.req.prompt.len(),
                        logprob: a.logprob,
                    })?;
                    // A completion may give the caller a follow-up request (the next stage of
                    // a multi-stage generator), so ask the iterator again even if it was empty.
                    exhausted = false;
                }
            }
        }
        stats.seconds = start.elapsed().as_secs_f64();
        Ok(stats)
    }

    /// Logits after the last token of `tokens` (one sequence, no sampling).
    pub fn logits(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            bail!("logits of an empty sequence");
        }
        let mut all = self.logits_each(tokens, tokens.len() - 1..tokens.len())?;
        Ok(all.pop().expect("one row"))
    }

    /// Log-probability of each token given the ones before it: entry `i` is
    /// `log p(tokens[i + 1] | tokens[..=i])`, so `tokens.len() - 1` entries. The teacher's
    /// own perplexity of a text is `exp(-mean)`.
    pub fn score(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(tokens.len().saturating_sub(1));
        // Chunks keep the logits buffer small; numerics do not depend on chunking.
        let chunk = 64;
        let cfg = &self.model.cfg;
        let cap = tokens.len().min(cfg.ctx);
        if tokens.len() > cap {
            bail!(
                "{} tokens exceed the model's context {}",
                tokens.len(),
                cfg.ctx
            );
        }
        let rope = RopeTable::new(cfg, cap);
        let mut caches = vec![KvCache::new(cfg, cap)];
        let mut ws = Workspace::default();
        let mut start = 0;
        while start + 1 < tokens.len() {
            let end = (start + chunk).min(tokens.len() - 1);
            let rows: Vec<Row> = (start..end)
                .map(|pos| Row {
                    token: tokens[pos],
                    slot: 0,
                    pos,
                    logits: true,
                })
                .collect();
            self.model.forward(&rows, &mut caches, &rope, &mut ws);
            for (i, l) in ws.logits[..rows.len() * cfg.vocab]
                .chunks_exact_mut(cfg.vocab)
                .enumerate()
            {
                out.push(log_softmax_at(l, tokens[start + i + 1] as usize));
            }
            start = end;
        }
        Ok(out)
    }

    /// Logits at each position in `positions` of one sequence (the prefix is fed first).
    pub fn logits_each(
        &self,
        tokens: &[u32],
        positions: std::ops::Range<usize>,
    ) -> Result<Vec<Vec<f32>>> {
        let cfg = &self.model.cfg;
        if tokens.is_empty() || positions.end > tokens.len() || tokens.len() > cfg.ctx {
            bail!(
                "logits_each: bad token count {} or range {positions:?}",
                tokens.len()
            );
        }
        let rope = RopeTable::new(cfg, tokens.len());
        let mut caches = vec![KvCache::new(cfg, tokens.len())];
        let mut ws = Workspace::default();
        let rows: Vec<Row> = (0..positions.end)
            .map(|pos| Row {
                token: tokens[pos],
                slot: 0,
                pos,
                logits: positions.contains(&pos),
            })
            .collect();
        self.model.forward(&rows, &mut caches, &rope, &mut ws);
        Ok(ws.logits[..positions.len() * cfg.vocab]
            .chunks_exact(cfg.vocab)
            .map(|l| l.to_vec())
            .collect())
    }
}

/// `log softmax(l)[i]` (the sum in f64). `l` is used as scratch: it holds exp(l - max) after.
fn log_softmax_at(l: &mut [f32], i: usize) -> f32 {
    let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let li = l[i];
    l.iter_mut().for_each(|x| *x -= max);
    let z = super::kernels::exp_inplace(l);
    ((li - max) as f64 - z.ln()) as f32
}
