//! The driver: keeps the teacher's batch full with the next stage of every record in flight.
//!
//! A [`Backend`] serves prompts with continuous batching: it pulls a new prompt whenever a slot
//! frees, and reports each completion as soon as it finishes. Finishing one stage of a record
//! (say, a Magpie instruction) immediately queues its next stage (the answer), so multi-stage
//! generators keep the batch as full as single-stage ones.

pub use crate::generate::jobs::Answer;
use crate::generate::jobs::{Ask, GenSettings, Job, Step};
use crate::generate::seeds::Seeds;
use crate::generate::shards::ShardedWriter;
use anyhow::{anyhow, Result};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::Instant;

/// Something that answers prompts, possibly many at once (the teacher engine, or a stand-in in
/// tests).
pub trait Backend {
    /// Serve prompts until `next` returns `None` *and* nothing is in flight. `next` is polled
    /// again after every completion (a completion may queue a follow-up prompt).
    fn serve(
        &mut self,
        next: &mut dyn FnMut() -> Option<(u64, Ask)>,
        done: &mut dyn FnMut(u64, Answer) -> Result<()>,
    ) -> Result<()>;
}

/// Totals of a [`generate`] call.
#[derive(Clone, Debug, Default)]
pub struct GenReport {
    pub records: u64,
    pub dropped: u64,
    pub teacher_tokens: u64,
    pub seconds: f64,
}

/// Generate records `0..target` of a generator into `out_dir`, resuming what is there.
pub fn generate(
    settings: &GenSettings,
    seeds: &Seeds,
    out_dir: &Path,
    target: u64,
    shard_records: usize,
    teacher: &mut dyn Backend,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<GenReport> {
    let writer = RefCell::new(ShardedWriter::open(
        out_dir,
        settings,
        target,
        shard_records,
    )?);
    let todo = writer.borrow().todo();
    if let Some(pb) = progress {
        pb.set_length(target);
        pb.set_position(target - todo.len() as u64);
    }
    let mut todo = todo.into_iter();
    let jobs: RefCell<HashMap<u64, (Job, u64)>> = RefCell::new(HashMap::new());
    let queue: RefCell<VecDeque<(u64, Ask)>> = RefCell::new(VecDeque::new());
    let report = RefCell::new(GenReport::default());
    let started = Instant::now();

    // Apply a job's next step: queue its prompt, or settle the record.
    let advance = |index: u64, answer: Option<Answer>| -> Result<()> {
        let mut jobs = jobs.borrow_mut();
        let (job, tokens) = jobs
            .get_mut(&index)
            .ok_or_else(|| anyhow!("answer for unknown record {index}"))?;
        if let Some(a) = &answer {
            *tokens += a.tokens;
        }
        match job.step(answer) {
            Step::Ask(ask) => queue.borrow_mut().push_back((index, ask)),
            Step::Done(record, tally) => {
                let (_, tokens) = jobs.remove(&index).expect("present");
                let mut r = report.borrow_mut();
                r.records += 1;
                r.teacher_tokens += tokens;
                writer.borrow_mut().add(index, record, tally)?;
                if let Some(pb) = progress {
                    pb.inc(1);
                    pb.set_message(format!(
                        "{:.0} teacher tok/s",
                        r.teacher_tokens as f64 / started.elapsed().as_secs_f64()
                    ));
                }
            }
            Step::Drop(class, detail) => {
                let (_, tokens) = jobs.remove(&index).expect("present");
                let mut r = report.borrow_mut();
                r.dropped += 1;
                r.teacher_tokens += tokens;
                writer
                    .borrow_mut()
                    .drop_record(index, class, detail, tokens);
                if let Some(pb) = progress {
                    pb.inc(1);
                }
            }
        }
        Ok(())
    };
    let mut failure: Option<anyhow::Error> = None;
    let mut next = || -> Option<(u64, Ask)> {
        loop {
            if let Some(q) = queue.borrow_mut().pop_front() {
                return Some(q);
            }
            let index = todo.next()?;
            jobs.borrow_mut()
                .insert(index, (Job::plan(settings, seeds, index), 0));
            if let Err(e) = advance(index, None) {
                failure = Some(e);
                return None;
            }
        }
    };
    let mut done = |index: u64, answer: Answer| advance(index, Some(answer));
    let served = teacher.serve(&mut next, &mut done);
    let mut w = writer.into_inner();
    w.add_seconds(started.elapsed().as_secs_f64());
    // Whatever finished is kept, even if serving failed.
    w.flush()?;
    served?;
    if let Some(e) = failure {
        return Err(e);
    }
    let mut r = report.into_inner();
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

/// A backend that records every call of the backend it wraps: for reading, call by call, what
/// a recipe asks and what the teacher answers (`synthlm generate show`).
pub struct Transcript<'a> {
    pub inner: &'a mut dyn Backend,
    /// (record index, prompt, answer), in answering order.
    pub calls: Vec<(u64, String, Answer)>,
}

impl Backend for Transcript<'_> {
    fn serve(
        &mut self,
        next: &mut dyn FnMut() -> Option<(u64, Ask)>,
        done: &mut dyn FnMut(u64, Answer) -> Result<()>,
    ) -> Result<()> {
        let prompts: RefCell<HashMap<u64, String>> = RefCell::new(HashMap::new());
        let calls = RefCell::new(Vec::new());
        let mut next_logged = || {
            let n = next()?;
            prompts.borrow_mut().insert(n.0, n.1.prompt.clone());
            Some(n)
        };
        let mut done_logged = |i: u64, a: Answer| {
            let p = prompts.borrow_mut().remove(&i).unwrap_or_default();
            calls.borrow_mut().push((i, p, a.clone()));
            done(i, a)
        };
        let r = self.inner.serve(&mut next_logged, &mut done_logged);
        self.calls.extend(calls.into_inner());
        r
    }
}
