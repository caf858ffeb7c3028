//! Reading GGUF metadata: the one set of helpers the teacher's tokenizer and the model loaders
//! share. Every missing or mistyped key is an error naming it.

use anyhow::{anyhow, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use std::path::Path;

/// Read a GGUF file's metadata and tensor directory (not the tensors).
pub fn read(path: &Path) -> Result<Content> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Content::read(&mut f).with_context(|| format!("reading GGUF header of {}", path.display()))
}

/// The value of `key`.
pub fn get<'a>(c: &'a Content, key: &str) -> Result<&'a Value> {
    c.metadata
        .get(key)
        .ok_or_else(|| anyhow!("GGUF metadata has no `{key}`"))
}

/// An unsigned integer (stored as u32 or u64).
pub fn usize_of(c: &Content, key: &str) -> Result<usize> {
    let v = get(c, key)?;
    v.to_u32()
        .map(|x| x as usize)
        .or_else(|_| v.to_u64().map(|x| x as usize))
        .with_context(|| format!("`{key}` is not an unsigned integer"))
}

/// A float, or `default` when the key is absent.
pub fn f32_or(c: &Content, key: &str, default: f32) -> Result<f32> {
    match c.metadata.get(key) {
        None => Ok(default),
        Some(v) => v
            .to_f32()
            .with_context(|| format!("`{key}` is not a float")),
    }
}

/// A string.
pub fn string(c: &Content, key: &str) -> Result<String> {
    Ok(get(c, key)?
        .to_string()
        .with_context(|| format!("`{key}` is not a string"))?
        .clone())
}

/// An array of strings.
pub fn strings(c: &Content, key: &str) -> Result<Vec<String>> {
    get(c, key)?
        .to_vec()?
        .iter()
        .map(|v| Ok(v.to_string()?.clone()))
        .collect::<Result<_>>()
        .with_context(|| format!("`{key}`"))
}

/// An array of numbers as f32 (token scores) or i32 (token types), if present.
pub fn f32s(c: &Content, key: &str) -> Option<Vec<f32>> {
    let v = c.metadata.get(key)?.to_vec().ok()?;
    v.iter().map(|x| x.to_f32().ok()).collect()
}

pub fn i32s(c: &Content, key: &str) -> Option<Vec<i32>> {
    let v = c.metadata.get(key)?.to_vec().ok()?;
    Some(v.iter().map(|x| x.to_i32().unwrap_or(1)).collect())
}

/// An unsigned integer, if present.
pub fn u32_opt(c: &Content, key: &str) -> Option<u32> {
    c.metadata.get(key).and_then(|v| v.to_u32().ok())
}
