//! Access to datasets through the Hugging Face Hub cache (`hf-hub`), offline by default.
//!
//! Files are looked up in the standard cache layout
//! (`$HF_HOME/hub/datasets--ORG--NAME/{refs/REV, snapshots/COMMIT/...}`), so data fetched by
//! Python's `huggingface_hub` is found too. Nothing is downloaded unless asked: pass
//! `download: true` (CLI `--download`) or set `SYNTHLM_DOWNLOAD=1`; `HF_HUB_OFFLINE=1` always
//! wins. When data is missing, the error says exactly what to run.

use crate::data::read::{DataError, DocStream, Format, LoadOptions};
use crate::data::sources::SourceSpec;
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

/// Where the cache is and whether we may download.
#[derive(Clone, Debug)]
pub struct HubOptions {
    pub cache_dir: PathBuf,
    pub download: bool,
    /// Fetch at most this many files of a configuration (the big datasets have hundreds).
    pub max_files: Option<usize>,
}

impl HubOptions {
    /// The standard cache (`HF_HOME` / `HF_HUB_CACHE` respected), downloads only if
    /// `SYNTHLM_DOWNLOAD=1` and not `HF_HUB_OFFLINE=1`.
    pub fn from_env() -> Self {
        let cache_dir = std::env::var_os("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Cache::from_env().path().clone());
        HubOptions {
            cache_dir,
            download: std::env::var("SYNTHLM_DOWNLOAD").as_deref() == Ok("1"),
            max_files: None,
        }
    }

    pub fn offline(cache_dir: impl Into<PathBuf>) -> Self {
        HubOptions {
            cache_dir: cache_dir.into(),
            download: false,
            max_files: None,
        }
    }

    fn may_download(&self) -> bool {
        self.download && std::env::var("HF_HUB_OFFLINE").as_deref() != Ok("1")
    }
}

fn repo(spec: &SourceSpec) -> Repo {
    Repo::with_revision(
        spec.dataset.repo_id().to_string(),
        RepoType::Dataset,
        spec.revision.clone(),
    )
}

/// The data files of a source, from the cache; fetched first if allowed and missing.
pub fn dataset_files(spec: &SourceSpec, opts: &HubOptions) -> Result<Vec<PathBuf>, DataError> {
    match cached_files(spec, &opts.cache_dir) {
        Ok(files) if !files.is_empty() => Ok(files),
        _ if opts.may_download() => {
            fetch(spec, opts)?;
            cached_files(spec, &opts.cache_dir)
        }
        Ok(_) | Err(_) => Err(DataError::NotAvailable(format!(
            "{spec} ({}, folder `{}`) is not in the Hugging Face cache at {}.\n\
             Nothing is downloaded by default. To fetch it, run:\n  \
             synthlm data fetch {spec} --max-files 1\n\
             or re-run this command with SYNTHLM_DOWNLOAD=1 (or point HF_HOME / --hf-cache at a cache that has it).",
            spec.dataset.repo_id(),
            spec.dataset.data_dir(spec.config.as_deref()),
            opts.cache_dir.display()
        ))),
    }
}

/// Files already in the cache for a source, sorted by path, resolved through `hf-hub`.
pub fn cached_files(spec: &SourceSpec, cache_dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let repo = repo(spec);
    let repo_dir = cache_dir.join(repo.folder_name());
    let commit =
        if spec.revision.len() == 40 && spec.revision.chars().all(|c| c.is_ascii_hexdigit()) {
            spec.revision.clone()
        } else {
            let refs = repo_dir.join("refs").join(&spec.revision);
            std::fs::read_to_string(&refs)
                .map_err(|e| DataError::NotAvailable(format!("{}: {e}", refs.display())))?
                .trim()
                .to_string()
        };
    let snapshot = repo_dir.join("snapshots").join(&commit);
    let dir = snapshot.join(spec.dataset.data_dir(spec.config.as_deref()));
    let mut rel = Vec::new();
    collect_data_files(
        &dir,
        &snapshot,
        &mut rel,
        spec.dataset.data_dir(spec.config.as_deref()).is_empty(),
    )
    .map_err(|e| DataError::NotAvailable(format!("{}: {e}", dir.display())))?;
    rel.sort();
    let cache = Cache::new(cache_dir.to_path_buf()).repo(repo);
    Ok(rel.iter().filter_map(|r| cache.get(r)).collect())
}

fn collect_data_files(
    dir: &Path,
    root: &Path,
    out: &mut Vec<String>,
    top_only: bool,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if !top_only {
                collect_data_files(&path, root, out, false)?;
            }
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(Format::is_data_file)
        {
            out.push(
                path.strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
    Ok(())
}

/// The files a model repository needs to load as a student.
pub const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// The snapshot folder of model repository `repo_id` (e.g. `openai-community/gpt2`) in the
/// cache, holding [`MODEL_FILES`]; fetched first only if downloads are allowed.
pub fn model_snapshot(repo_id: &str, opts: &HubOptions) -> Result<PathBuf, DataError> {
    let cached = || -> Option<PathBuf> {
        let repo = Cache::new(opts.cache_dir.clone()).model(repo_id.to_string());
        let files: Option<Vec<PathBuf>> = MODEL_FILES.iter().map(|f| repo.get(f)).collect();
        files?.first()?.parent().map(Path::to_path_buf)
    };
    if let Some(dir) = cached() {
        return Ok(dir);
    }
    if opts.may_download() {
        let err = |e: hf_hub::api::sync::ApiError| {
            DataError::NotAvailable(format!("fetching {repo_id}: {e}"))
        };
        let api = hf_hub::api::sync::ApiBuilder::from_cache(Cache::new(opts.cache_dir.clone()))
            .with_progress(true)
            .build()
            .map_err(err)?;
        for f in MODEL_FILES {
            api.model(repo_id.to_string()).get(f).map_err(err)?;
        }
        if let Some(dir) = cached() {
            return Ok(dir);
        }
    }
    Err(DataError::NotAvailable(format!(
        "model {repo_id} ({}) is not in the Hugging Face cache at {}. Nothing is downloaded by \
         default: re-run with SYNTHLM_DOWNLOAD=1, or point HF_HOME at a cache that has it.",
        MODEL_FILES.join(", "),
        opts.cache_dir.display()
    )))
}

/// Download a source's files into the cache (explicit, networked).
pub fn fetch(spec: &SourceSpec, opts: &HubOptions) -> Result<Vec<PathBuf>, DataError> {
    let err =
        |e: hf_hub::api::sync::ApiError| DataError::NotAvailable(format!("fetching {spec}: {e}"));
    let api = hf_hub::api::sync::ApiBuilder::from_cache(Cache::new(opts.cache_dir.clone()))
        .with_progress(true)
        .build()
        .map_err(err)?;
    let remote = api.repo(repo(spec));
    let prefix = spec.dataset.data_dir(spec.config.as_deref());
    let info = remote.info().map_err(err)?;
    let mut names: Vec<String> = info
        .siblings
        .into_iter()
        .map(|s| s.rfilename)
        .filter(|n| {
            Format::is_data_file(n)
                && (prefix.is_empty() && !n.contains('/') || n.starts_with(&format!("{prefix}/")))
        })
        .collect();
    names.sort();
    if let Some(m) = opts.max_files {
        names.truncate(m);
    }
    names.iter().map(|n| remote.get(n).map_err(err)).collect()
}

/// Documents of a source, streamed from the cache.
pub fn load(
    spec: &SourceSpec,
    hub: &HubOptions,
    opts: LoadOptions,
) -> Result<DocStream, DataError> {
    let files = dataset_files(spec, hub)?;
    Ok(DocStream::new(files, spec.parser(), opts))
}
