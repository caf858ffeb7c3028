//! The one record type for all text, and the one rendering of conversations to training text.
//!
//! Every corpus — real, downloaded or generated — becomes a stream of [`Document`]s. A
//! conversation keeps its turns in [`Document::chat`] and its training text in
//! [`Document::text`], rendered by [`render_chat`]. The template is ChatML, the same one the
//! SmolLM2 teacher was trained with, so generated conversations and student training text agree:
//!
//! ```text
//! <|im_start|>system
//! You are a helpful assistant.<|im_end|>
//! <|im_start|>user
//! What is 2+2?<|im_end|>
//! <|im_start|>assistant
//! 4<|im_end|>
//! ```
//!
//! Documents are separated in packed token streams by [`END_OF_TEXT`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Separates documents in a packed token stream.
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// Opens a chat turn; followed by the role name and a newline.
pub const IM_START: &str = "<|im_start|>";
/// Closes a chat turn; followed by a newline.
pub const IM_END: &str = "<|im_end|>";
/// Every special token a tokenizer must reserve, in id order (0, 1, 2).
pub const SPECIAL_TOKENS: [&str; 3] = [END_OF_TEXT, IM_START, IM_END];

/// Who speaks a chat turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The name written after `<|im_start|>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// Map a dataset's role name to a role. ShareGPT-style datasets (OpenHermes, Magpie) say
    /// `human`/`gpt`; OpenAI-style ones say `user`/`assistant`.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "system" => Some(Role::System),
            "human" | "user" => Some(Role::User),
            "gpt" | "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One chat turn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// One record of text, whatever its origin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable identifier, unique within its source (dataset id, uuid, or a derived hash).
    pub id: String,
    /// Which corpus it belongs to, e.g. `openhermes`, `cosmopedia/stories`, `gen/stories`.
    pub source: String,
    /// The training text. For conversations this is `render_chat(chat)`.
    pub text: String,
    /// The turns, when the record is a conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<Vec<Message>>,
    /// Everything else the source knows (scores, urls, generation settings, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, serde_json::Value>,
}

impl Document {
    /// A plain-text document.
    pub fn text(id: impl Into<String>, source: impl Into<String>, text: impl Into<String>) -> Self {
        Document {
            id: id.into(),
            source: source.into(),
            text: text.into(),
            chat: None,
            meta: BTreeMap::new(),
        }
    }

    /// A conversation; its training text is rendered with [`render_chat`].
    pub fn chat(id: impl Into<String>, source: impl Into<String>, turns: Vec<Message>) -> Self {
        Document {
            id: id.into(),
            source: source.into(),
            text: render_chat(&turns),
            chat: Some(turns),
            meta: BTreeMap::new(),
        }
    }

    /// Builder-style metadata.
    pub fn with_meta(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.meta.insert(key.to_string(), value.into());
        self
    }
}

/// Render turns as ChatML training text. This is the only place the template is written.
pub fn render_chat(turns: &[Message]) -> String {
    let mut out = String::with_capacity(turns.iter().map(|m| m.content.len() + 32).sum());
    for m in turns {
        render_turn_header(&mut out, m.role);
        out.push_str(&m.content);
        out.push_str(IM_END);
        out.push('\n');
    }
    out
}

/// Append the opening of a turn (`<|im_start|>role\n`): what a generator gives the teacher when
/// it wants the model to write that turn itself.
pub fn render_turn_header(out: &mut String, role: Role) {
    out.push_str(IM_START);
    out.push_str(role.as_str());
    out.push('\n');
}
