//! The four seed datasets of the original plan, in their real Hugging Face schemas.
//!
//! | dataset | repo | files | schema (fields we use) |
//! |---|---|---|---|
//! | OpenHermes-2.5 | `teknium/OpenHermes-2.5` | `openhermes2_5.json` (one JSON array) | `conversations: [{from, value, weight}]`, `id`, `category`, `source`, ... |
//! | Cosmopedia | `HuggingFaceTB/cosmopedia` | `data/{config}/*.parquet` | `prompt`, `text`, `text_token_length`, `seed_data`, `format`, `audience` |
//! | Magpie-Pro | `Magpie-Align/Magpie-Pro-300K-Filtered` | `data/*.parquet` | `uuid`, `conversations: [{from, value}]`, ... |
//! | FineWeb-Edu | `HuggingFaceFW/fineweb-edu` | `sample/10BT/*.parquet` (config `sample-10BT`) | `text`, `id`, `url`, `score`, `int_score`, `token_count`, ... |
//!
//! Conversations use ShareGPT roles (`system`/`human`/`gpt`) and become ChatML training text
//! through [`render_chat`](crate::data::document::render_chat). The generators of this project
//! write the same schemas, so these parsers read real and generated data alike.

use crate::data::document::{Document, Message, Role};
use crate::data::read::{
    array_field, json_kind, opt_str_field, scalar_meta, str_field, Row, RowLoc,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// One of the seed datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    OpenHermes,
    Cosmopedia,
    MagpiePro,
    FinewebEdu,
}

impl Dataset {
    pub const ALL: [Dataset; 4] = [
        Dataset::OpenHermes,
        Dataset::Cosmopedia,
        Dataset::MagpiePro,
        Dataset::FinewebEdu,
    ];

    /// The short name used on the command line and as a document's `source`.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::OpenHermes => "openhermes",
            Dataset::Cosmopedia => "cosmopedia",
            Dataset::MagpiePro => "magpie-pro",
            Dataset::FinewebEdu => "fineweb-edu",
        }
    }

    /// The Hugging Face dataset repository.
    pub fn repo_id(self) -> &'static str {
        match self {
            Dataset::OpenHermes => "teknium/OpenHermes-2.5",
            Dataset::Cosmopedia => "HuggingFaceTB/cosmopedia",
            Dataset::MagpiePro => "Magpie-Align/Magpie-Pro-300K-Filtered",
            Dataset::FinewebEdu => "HuggingFaceFW/fineweb-edu",
        }
    }

    /// The configuration used when none is named.
    pub fn default_config(self) -> Option<&'static str> {
        match self {
            Dataset::Cosmopedia => Some("stories"),
            Dataset::FinewebEdu => Some("sample-10BT"),
            _ => None,
        }
    }

    /// The folder of the repository that holds a configuration's files ("" = the root).
    pub fn data_dir(self, config: Option<&str>) -> String {
        match (self, config) {
            (Dataset::OpenHermes, _) => String::new(),
            (Dataset::Cosmopedia, Some(c)) => format!("data/{c}"),
            (Dataset::MagpiePro, _) => "data".into(),
            (Dataset::FinewebEdu, Some("default")) => "data".into(),
            (Dataset::FinewebEdu, Some(c)) if c.starts_with("sample-") => {
                format!("sample/{}", c.trim_start_matches("sample-"))
            }
            (Dataset::FinewebEdu, Some(c)) => format!("data/{c}"),
            (_, None) => "data".into(),
        }
    }

    /// Turn one row of this dataset into a document. `Ok(None)`: no text (skipped, counted).
    pub fn parse_row(
        self,
        config: Option<&str>,
        row: &Row,
        loc: &RowLoc,
    ) -> Result<Option<Document>, String> {
        let source = match config {
            Some(c) => format!("{}/{c}", self.name()),
            None => self.name().to_string(),
        };
        let fallback_id = || {
            format!(
                "{}:{}",
                loc.file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("file"),
                loc.row
            )
        };
        match self {
            Dataset::OpenHermes | Dataset::MagpiePro => {
                let id_key = if self == Dataset::OpenHermes {
                    "id"
                } else {
                    "uuid"
                };
                let turns = parse_sharegpt(row)?;
                if turns.iter().all(|m| m.content.trim().is_empty()) {
                    return Ok(None);
                }
                let id = opt_str_field(row, id_key)?
                    .map(str::to_string)
                    .unwrap_or_else(fallback_id);
                let mut doc = Document::chat(id, source, turns);
                doc.meta = scalar_meta(row, &[id_key]);
                Ok(Some(doc))
            }
            Dataset::Cosmopedia | Dataset::FinewebEdu => {
                let text = str_field(row, "text")?;
                if text.trim().is_empty() {
                    return Ok(None);
                }
                let id = opt_str_field(row, "id")?
                    .map(str::to_string)
                    .unwrap_or_else(fallback_id);
                let mut doc = Document::text(id, source, text);
                doc.meta = scalar_meta(row, &["text", "id"]);
                Ok(Some(doc))
            }
        }
    }
}

/// Parse `conversations: [{from, value}]` (ShareGPT).
fn parse_sharegpt(row: &Row) -> Result<Vec<Message>, String> {
    let convs = array_field(row, "conversations")?;
    convs
        .iter()
        .enumerate()
        .map(|(i, turn)| {
            let obj = turn.as_object().ok_or_else(|| {
                format!(
                    "conversations[{i}] should be an object, found {}",
                    json_kind(turn)
                )
            })?;
            let from = str_field(obj, "from").map_err(|e| format!("conversations[{i}]: {e}"))?;
            let value = match obj.get("value") {
                Some(Value::String(s)) => s.as_str(),
                Some(Value::Null) => "",
                Some(v) => {
                    return Err(format!(
                        "conversations[{i}]: field `value` should be a string, found {}",
                        json_kind(v)
                    ))
                }
                None => return Err(format!("conversations[{i}]: missing field `value`")),
            };
            let role = Role::parse(from).ok_or_else(|| {
                format!("conversations[{i}]: unknown role `{from}` (expected system, human or gpt)")
            })?;
            Ok(Message::new(role, value))
        })
        .collect()
}

/// A dataset, a configuration and a revision: `cosmopedia/stories`, `fineweb-edu/sample-10BT@main`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpec {
    pub dataset: Dataset,
    pub config: Option<String>,
    pub revision: String,
}

impl SourceSpec {
    pub fn new(dataset: Dataset) -> Self {
        SourceSpec {
            dataset,
            config: dataset.default_config().map(str::to_string),
            revision: "main".into(),
        }
    }

    pub fn with_config(mut self, config: &str) -> Self {
        self.config = Some(config.to_string());
        self
    }

    /// The row parser for this source, boxed for a [`DocStream`](crate::data::read::DocStream).
    pub fn parser(&self) -> Box<crate::data::read::ParseRow> {
        let (dataset, config) = (self.dataset, self.config.clone());
        Box::new(move |row, loc| dataset.parse_row(config.as_deref(), row, loc))
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dataset.name())?;
        if let Some(c) = &self.config {
            write!(f, "/{c}")?;
        }
        if self.revision != "main" {
            write!(f, "@{}", self.revision)?;
        }
        Ok(())
    }
}

impl FromStr for SourceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (rest, revision) = match s.split_once('@') {
            Some((a, r)) => (a, r.to_string()),
            None => (s, "main".to_string()),
        };
        let (name, config) = match rest.split_once('/') {
            Some((n, c)) => (n, Some(c.to_string())),
            None => (rest, None),
        };
        let dataset = Dataset::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Dataset::ALL.iter().map(|d| d.name()).collect();
                format!(
                    "unknown dataset `{name}` (expected one of: {})",
                    names.join(", ")
                )
            })?;
        let config = config.or_else(|| dataset.default_config().map(str::to_string));
        Ok(SourceSpec {
            dataset,
            config,
            revision,
        })
    }
}
