//! The students' tokenizer: a byte-level BPE trained with Hugging Face `tokenizers`, saved as a
//! standard `tokenizer.json` (so Python's `transformers` can load it too).
//!
//! Byte-level means every string round-trips exactly: text -> ids -> text is the identity, which
//! is what lets us report bits per byte. The special tokens of
//! [`SPECIAL_TOKENS`](crate::data::document::SPECIAL_TOKENS) get ids 0, 1, 2 and are matched
//! whole in text, so ChatML turns tokenize as single control tokens.

use crate::data::document::{END_OF_TEXT, SPECIAL_TOKENS};
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

/// BPE training settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BpeOptions {
    /// Total vocabulary including the 256 byte symbols and the special tokens.
    pub vocab_size: usize,
    /// A pair must occur this often to be merged.
    pub min_frequency: u64,
}

impl Default for BpeOptions {
    fn default() -> Self {
        BpeOptions {
            vocab_size: 8192,
            min_frequency: 2,
        }
    }
}

/// A loaded tokenizer with its identity (SHA-256 of its canonical JSON).
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    sha256: String,
    eot: u32,
}

impl TextTokenizer {
    /// Wrap a `tokenizers` tokenizer; it must know [`END_OF_TEXT`].
    pub fn new(inner: Tokenizer) -> Result<Self> {
        let json = inner
            .to_string(false)
            .map_err(|e| anyhow!("serialising tokenizer: {e}"))?;
        let eot = inner
            .token_to_id(END_OF_TEXT)
            .ok_or_else(|| anyhow!("tokenizer has no `{END_OF_TEXT}` token"))?;
        Ok(TextTokenizer {
            sha256: crate::io::sha256_hex(json.as_bytes()),
            inner,
            eot,
        })
    }

    /// Load a `tokenizer.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let inner = Tokenizer::from_file(path)
            .map_err(|e| anyhow!("loading tokenizer {}: {e}", path.display()))?;
        Self::new(inner).with_context(|| format!("tokenizer {}", path.display()))
    }

    /// Save as `tokenizer.json`, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| anyhow!("serialising tokenizer: {e}"))?;
        crate::io::write_bytes(path, json.as_bytes())
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| anyhow!("encoding: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decode ids to text, keeping special tokens (so decode(encode(x)) == x).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| anyhow!("decoding: {e}"))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn eot_id(&self) -> u32 {
        self.eot
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// UTF-8 bytes each token stands for (0 for special tokens). In a byte-level BPE every
    /// character of a token's string is one byte, so this is exact.
    pub fn token_byte_lengths(&self) -> Vec<u32> {
        let specials: std::collections::HashSet<u32> = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        (0..self.vocab_size() as u32)
            .map(|id| match self.inner.id_to_token(id) {
                Some(_) if specials.contains(&id) => 0,
                Some(s) => s.chars().count() as u32,
                None => 0,
            })
            .collect()
    }

    /// SHA-256 of the canonical (compact) JSON: two tokenizers with equal hashes encode alike.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

/// Train a byte-level BPE on a stream of texts. Special tokens take ids 0, 1, 2.
pub fn train_bpe<I>(texts: I, opts: &BpeOptions) -> Result<TextTokenizer>
where
    I: Iterator<Item = String> + Send,
{
    let min_vocab = 256 + SPECIAL_TOKENS.len();
    if opts.vocab_size < min_vocab {
        return Err(anyhow!(
            "vocab_size {} is too small: a byte-level BPE needs at least {min_vocab}",
            opts.vocab_size
        ));
    }
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(opts.vocab_size)
        .min_frequency(opts.min_frequency)
        .special_tokens(
            SPECIAL_TOKENS
                .iter()
                .map(|t| AddedToken::from(*t, true))
                .collect(),
        )
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build();
    // GPT-2's byte-level setup: its regex splits words, digits and punctuation; no prefix space,
    // so decoding gives back the exact input.
    let byte_level = ByteLevel::new(false, false, true);
    let mut tok = TokenizerBuilder::<
        BPE,
        tokenizers::NormalizerWrapper,
        ByteLevel,
        ByteLevel,
        ByteLevel,
    >::new()
    .with_model(BPE::default())
    .with_normalizer(None)
    .with_pre_tokenizer(Some(byte_level))
    .with_post_processor(Some(byte_level))
    .with_decoder(Some(byte_level))
    .build()
    .map_err(|e| anyhow!("building tokenizer: {e}"))?;
    tok.train(&mut trainer, texts)
        .map_err(|e| anyhow!("training BPE: {e}"))?;
    let json = tok
        .to_string(false)
        .map_err(|e| anyhow!("serialising tokenizer: {e}"))?;
    let inner: Tokenizer = json
        .parse()
        .map_err(|e| anyhow!("reloading trained tokenizer: {e}"))?;
    TextTokenizer::new(inner)
}
