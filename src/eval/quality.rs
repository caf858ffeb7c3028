//! Generation quality of samples from the fixed prompts: repetition (distinct-2 over a fixed
//! number of words, in `suite`; and the longest n-gram a sample repeats), fluency as judged by a stronger
//! model (the teacher's mean negative log-likelihood per token of the sample, given its prompt),
//! and, for story prompts, whether the sample keeps using the story's characters and objects.

use crate::eval::items::Prompt;
use crate::filter::checks::words;
use crate::generate::Teacher;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// One sample and its per-sample measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampled {
    pub kind: String,
    pub prompt: String,
    pub text: String,
    /// Longest n such that some word n-gram occurs twice in the sample.
    pub longest_repeat: usize,
    /// The teacher's mean NLL (nats per teacher token) of the sample given the prompt.
    pub teacher_nll: f64,
    /// Story prompts: the sample uses every required word.
    pub uses_required: Option<bool>,
}

/// Longest n such that a word n-gram of `text` occurs at least twice (0 if none).
pub fn longest_repeat(text: &str) -> usize {
    let w = words(text);
    let repeats = |n: usize| {
        let mut seen = std::collections::HashSet::new();
        w.windows(n).any(|g| !seen.insert(g))
    };
    // Binary search: if an n-gram repeats, so does an (n-1)-gram.
    let (mut lo, mut hi) = (0usize, w.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if repeats(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The teacher's mean negative log-likelihood per token of `sample` after `prompt`.
pub fn teacher_nll(teacher: &Teacher, prompt: &str, sample: &str) -> Result<f64> {
    let p = teacher.encode(prompt)?;
    let all = teacher.encode(&format!("{prompt}{sample}"))?;
    if all.len() <= p.len() {
        return Ok(f64::NAN);
    }
    let lp = teacher.engine.score(&all)?; // lp[i] = log p(all[i+1] | all[..=i])
    let from = p.len().max(1) - 1;
    let tail = &lp[from..];
    Ok(-tail.iter().map(|&x| x as f64).sum::<f64>() / tail.len() as f64)
}

/// Measure one sample.
pub fn measure(p: &Prompt, text: &str, teacher: &Teacher) -> Result<Sampled> {
    let ws = words(text);
    let uses =
        (p.kind == "story").then(|| p.required.iter().all(|r| ws.contains(&r.to_lowercase())));
    Ok(Sampled {
        kind: p.kind.clone(),
        prompt: p.prompt.clone(),
        text: text.to_string(),
        longest_repeat: longest_repeat(text),
        teacher_nll: teacher_nll(teacher, &p.prompt, text)?,
        uses_required: uses,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn longest_repeat_finds_the_longest_repeated_ngram() {
        assert_eq!(super::longest_repeat("a b c d"), 0);
        assert_eq!(super::longest_repeat("the cat sat. the cat ran."), 2);
        assert_eq!(super::longest_repeat("x y z w x y z w"), 4);
    }
}
