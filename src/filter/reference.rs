//! Reference perplexity on human-written text: a Kneser-Ney 3-gram counted on the real corpus
//! (`synthlm data real`) in the teacher's tokenizer. A record's bits per byte under it say how
//! much the record reads like the human text (low: familiar word sequences; high: unusual ones
//! or word salad). It is the "small model trained on the real text" of the quality signals, the
//! cheapest one there is: counting a 10 MB corpus takes seconds, scoring a record microseconds.
//! Its blind spot: a fluent text on a topic the real corpus lacks scores high too.

use crate::data::document::Document;
use crate::eval::ngram::{Ngram, NgramCounts};
use anyhow::{anyhow, Result};
use tokenizers::Tokenizer;

pub struct Reference {
    counts: NgramCounts,
    model: Ngram,
    tokenizer: Tokenizer,
    eot: u32,
    /// Documents and tokens it was counted on.
    pub documents: usize,
    pub tokens: u64,
}

fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    Ok(tok
        .encode(text, false)
        .map_err(|e| anyhow!("tokenizing: {e}"))?
        .get_ids()
        .to_vec())
}

impl Reference {
    /// Count `docs` (each followed by the end-of-text token) with `tokenizer`.
    pub fn fit(docs: &[Document], tokenizer: Tokenizer) -> Result<Reference> {
        let eot = tokenizer
            .token_to_id("<|endoftext|>")
            .ok_or_else(|| anyhow!("the tokenizer has no <|endoftext|> token"))?;
        let mut tokens = Vec::new();
        for d in docs {
            tokens.extend(encode(&tokenizer, &d.text)?);
            tokens.push(eot);
        }
        let vocab = tokenizer.get_vocab_size(true);
        let whole = std::iter::once(0..tokens.len()).collect();
        let counts = NgramCounts::count(&tokens, whole, vocab);
        let tokens = counts.tokens();
        Ok(Reference {
            counts,
            model: Ngram::KneserNey {
                order: 3,
                scale: 1.0,
            },
            tokenizer,
            eot,
            documents: docs.len(),
            tokens,
        })
    }

    /// Bits per byte of `text` (as one document).
    pub fn bpb(&self, text: &str) -> Result<f64> {
        let mut ids = encode(&self.tokenizer, text)?;
        ids.push(self.eot);
        let d = self.model.score(
            &self.counts,
            &ids,
            std::slice::from_ref(&(0..ids.len())),
            &[text.len().max(1) as u64],
            self.eot,
        );
        Ok(d.bpb())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_like_the_reference_scores_lower_than_word_salad() {
        let docs: Vec<crate::data::document::Document> = (0..40)
            .map(|i| crate::data::document::Document {
                id: i.to_string(),
                source: "real/test".into(),
                text: format!("The cat sat on the mat number {i}. The dog slept by the door."),
                chat: None,
                meta: Default::default(),
            })
            .collect();
        let opts = crate::data::tokenizer::BpeOptions {
            vocab_size: 300,
            ..Default::default()
        };
        let tok = crate::data::tokenizer::train_bpe(docs.iter().map(|d| d.text.clone()), &opts)
            .unwrap()
            .inner()
            .clone();
        let r = super::Reference::fit(&docs, tok).unwrap();
        let familiar = r
            .bpb("The cat sat on the mat. The dog slept by the door.")
            .unwrap();
        let salad = r
            .bpb("door mat the slept by on cat dog sat the the.")
            .unwrap();
        assert!(familiar < salad, "{familiar} vs {salad}");
    }
}
