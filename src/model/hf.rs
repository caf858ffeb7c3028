//! Students in Hugging Face's format, both ways: `synthlm export RUN --hf DIR` writes what
//! `transformers.GPT2LMHeadModel.from_pretrained(DIR)` and `AutoTokenizer` load, and a GPT-2
//! checkpoint in that format loads as a student (so the public GPT-2's known numbers can be
//! checked through our evaluation code).
//!
//! Our parameters already carry GPT-2's names and layouts (Conv1D weights [in, out] applied as
//! x·W, tied head, learned positions, GELU tanh approximation = `gelu_new`, LayerNorm eps 1e-5),
//! so export is a config file and a renaming-free copy. Import accepts both key layouts found
//! in the wild: with the `transformer.` prefix (what `save_pretrained` writes) and without it
//! (openai-community/gpt2's own `model.safetensors`), and skips the attention-mask buffers
//! (`attn.bias`, `attn.masked_bias`) that older checkpoints store.

use crate::data::tokenizer::TextTokenizer;
use crate::model::{Gpt, ModelConfig};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";

/// GPT2Config for model `c` with end-of-text token `eot`.
pub fn config_json(c: &ModelConfig, eot: u32, dtype: DType) -> Value {
    json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.context,
        "n_ctx": c.context,
        "n_embd": c.d_model,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_inner": null,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": c.dropout,
        "embd_pdrop": c.dropout,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": true,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "torch_dtype": if dtype == DType::F16 { "float16" } else { "float32" },
    })
}

/// Write `model` and `tok` to `dir` in Hugging Face's layout (weights in `dtype`: F32 or F16).
pub fn export(model: &Gpt, tok: &TextTokenizer, dir: &Path, dtype: DType) -> Result<()> {
    if !matches!(dtype, DType::F32 | DType::F16) {
        bail!("export writes f32 or f16 weights, not {dtype:?}");
    }
    // Into an empty folder or over an earlier export only: a config.json written into a run
    // folder would make every later load read the export instead of the run's checkpoints.
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if occupied && !is_hf_dir(dir) {
        bail!(
            "{} holds other files (a run folder?); export into an empty folder or over an earlier export",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let eot = tok.eot_id();
    let eot_text = tok.inner().id_to_token(eot).unwrap_or_default();
    crate::io::write_json(&dir.join(CONFIG), &config_json(&model.config, eot, dtype))?;
    if dtype == DType::F16 {
        // f16 tops out at 65504: a larger weight would silently become inf.
        for (name, t) in model.tensors() {
            let max = t.abs()?.max_all()?.to_scalar::<f32>()?;
            if max > 65504.0 {
                bail!("`{name}` holds {max}, beyond f16's range; export as f32");
            }
        }
    }
    let tensors: HashMap<String, Tensor> = model
        .tensors()
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(dtype)?)))
        .collect::<Result<_>>()?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    // candle's own `save` writes no metadata; transformers wants {"format": "pt"}.
    let bytes = safetensors::serialize(tensors.iter(), Some(meta))?;
    crate::io::write_bytes(&dir.join(WEIGHTS), &bytes)?;
    tok.save(&dir.join(TOKENIZER))?;
    crate::io::write_json(
        &dir.join("tokenizer_config.json"),
        &json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": eot_text, "eos_token": eot_text, "unk_token": eot_text,
            "model_max_length": model.config.context,
        }),
    )?;
    crate::io::write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": eot, "eos_token_id": eot}),
    )?;
    Ok(())
}

/// Whether `dir` holds a Hugging Face GPT-2 model (a config.json with `model_type: gpt2`).
pub fn is_hf_dir(dir: &Path) -> bool {
    crate::io::read_json::<Value>(&dir.join(CONFIG)).is_ok_and(|v| v.get("model_type").is_some())
}

/// The model shape a GPT2Config describes; anything our students cannot be is an error.
pub fn model_config(v: &Value, path: &Path) -> Result<ModelConfig> {
    let ctx = || format!("{}", path.display());
    let get = |k: &str| -> Result<usize> {
        v.get(k)
            .and_then(Value::as_u64)
            .map(|x| x as usize)
            .with_context(|| format!("{}: `{k}` is missing or not a number", ctx()))
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    if text("model_type") != "gpt2" {
        bail!("{}: model_type `{}` is not gpt2", ctx(), text("model_type"));
    }
    let act = text("activation_function");
    if !matches!(act, "gelu_new" | "gelu_pytorch_tanh") {
        bail!(
            "{}: activation `{act}`; students use gelu_new (tanh approximation)",
            ctx()
        );
    }
    // Variants of GPT-2 the students cannot represent; silently ignoring them would misread
    // the model.
    let eps = v
        .get("layer_norm_epsilon")
        .and_then(Value::as_f64)
        .unwrap_or(1e-5);
    if (eps - 1e-5).abs() > 1e-12 {
        bail!("{}: layer_norm_epsilon = {eps}; students use 1e-5", ctx());
    }
    for (k, default) in [
        ("scale_attn_weights", true),
        ("scale_attn_by_inverse_layer_idx", false),
        ("reorder_and_upcast_attn", false),
        ("add_cross_attention", false),
    ] {
        if v.get(k)
            .and_then(Value::as_bool)
            .is_some_and(|x| x != default)
        {
            bail!(
                "{}: `{k}` = {}; students support only {default}",
                ctx(),
                !default
            );
        }
    }
    let c = ModelConfig {
        vocab_size: get("vocab_size")?,
        context: get("n_positions")?,
        d_model: get("n_embd")?,
        n_layer: get("n_layer")?,
        n_head: get("n_head")?,
        dropout: 0.0,
    };
    if let Some(inner) = v.get("n_inner").and_then(Value::as_u64) {
        if inner as usize != 4 * c.d_model {
            bail!("{}: n_inner = {inner}; students have 4 x n_embd", ctx());
        }
    }
    if v.get("tie_word_embeddings").and_then(Value::as_bool) == Some(false) {
        bail!(
            "{}: untied output head; students tie it to the embedding",
            ctx()
        );
    }
    c.validate()?;
    Ok(c)
}

/// Load a Hugging Face GPT-2 directory (config.json, model.safetensors, tokenizer.json).
pub fn load(dir: &Path) -> Result<(Gpt, TextTokenizer)> {
    let cpath = dir.join(CONFIG);
    let v: Value = crate::io::read_json(&cpath)?;
    let c = model_config(&v, &cpath)?;
    let wpath = dir.join(WEIGHTS);
    let raw = candle_core::safetensors::load(&wpath, &Device::Cpu)
        .with_context(|| format!("reading {}", wpath.display()))?;
    let tensors = normalise_keys(raw, &wpath)?;
    let expected: std::collections::HashSet<String> =
        c.parameter_shapes().into_iter().map(|(n, _)| n).collect();
    if let Some(extra) = tensors.keys().find(|k| !expected.contains(*k)) {
        bail!(
            "{}: tensor `{extra}` is not part of a GPT-2 student",
            wpath.display()
        );
    }
    let model = Gpt::from_tensors(c, tensors, &Device::Cpu)
        .with_context(|| format!("{}", wpath.display()))?;
    let tpath = dir.join(TOKENIZER);
    let tok = TextTokenizer::load(&tpath).with_context(|| format!("{}", tpath.display()))?;
    if tok.vocab_size() > model.config.vocab_size {
        bail!(
            "{}: {} tokens, but {} says vocab_size = {}",
            tpath.display(),
            tok.vocab_size(),
            CONFIG,
            model.config.vocab_size
        );
    }
    Ok((model, tok))
}

/// Our names (`transformer.` prefix), without the mask buffers; a stored `lm_head.weight` must
/// equal the embedding.
fn normalise_keys(raw: HashMap<String, Tensor>, path: &Path) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    let mut head = None;
    for (k, t) in raw {
        if k.ends_with(".attn.bias") || k.ends_with(".attn.masked_bias") {
            continue;
        }
        if k == "lm_head.weight" {
            head = Some(t);
            continue;
        }
        let k = if k.starts_with("transformer.") {
            k
        } else {
            format!("transformer.{k}")
        };
        if out.insert(k.clone(), t).is_some() {
            bail!(
                "{}: `{k}` is stored twice (with and without the `transformer.` prefix)",
                path.display()
            );
        }
    }
    if let (Some(h), Some(wte)) = (head, out.get("transformer.wte.weight")) {
        let diff = (h.to_dtype(DType::F32)? - wte.to_dtype(DType::F32)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        if diff > 0.0 {
            bail!(
                "{}: lm_head.weight differs from the embedding (max {diff}); students tie them",
                path.display()
            );
        }
    }
    Ok(out)
}
