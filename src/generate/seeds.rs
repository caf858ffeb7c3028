//! The committed seed data that conditions generation (`data/seeds/`): a topic taxonomy, a
//! skill taxonomy, story attributes and story openings. Diversity comes from here, not from temperature alone.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Clone, Debug, Deserialize)]
pub struct StoryWords {
    pub nouns: Vec<String>,
    pub verbs: Vec<String>,
    pub adjectives: Vec<String>,
    pub features: Vec<String>,
}

/// Story openings (recipe 2): templates with `{name}`, `{place}` and `{animal}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoryOpenings {
    pub names: Vec<String>,
    pub animals: Vec<String>,
    pub places: Vec<String>,
    pub openings: Vec<String>,
    /// Second sentences with `{verb}`.
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Skill {
    pub name: String,
    pub tasks: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Skills {
    pub difficulties: Vec<String>,
    pub skills: Vec<Skill>,
}

#[derive(Clone, Debug)]
pub struct Seeds {
    /// (subject, topic)
    pub topics: Vec<(String, String)>,
    pub story: StoryWords,
    pub openings: StoryOpenings,
    pub skills: Skills,
}

impl Seeds {
    /// Load `topics.txt`, `story_words.toml` and `skills.toml` from a folder.
    pub fn load(dir: &Path) -> Result<Seeds> {
        let path = dir.join("topics.txt");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut topics = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((subject, topic)) = line.split_once('|') else {
                bail!(
                    "{}: line {}: expected `SUBJECT | TOPIC`",
                    path.display(),
                    i + 1
                )
            };
            topics.push((subject.trim().to_string(), topic.trim().to_string()));
        }
        let read_toml = |name: &str| -> Result<String> {
            let p = dir.join(name);
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        let story: StoryWords =
            toml::from_str(&read_toml("story_words.toml")?).context("story_words.toml")?;
        let skills: Skills = toml::from_str(&read_toml("skills.toml")?).context("skills.toml")?;
        let openings: StoryOpenings =
            toml::from_str(&read_toml("story_openings.toml")?).context("story_openings.toml")?;
        let o = &openings;
        if topics.is_empty()
            || story.nouns.is_empty()
            || skills.skills.is_empty()
            || [&o.names, &o.animals, &o.places, &o.openings, &o.actions]
                .iter()
                .any(|v| v.is_empty())
        {
            bail!("{}: seed lists must not be empty", dir.display());
        }
        Ok(Seeds {
            topics,
            story,
            openings,
            skills,
        })
    }

    /// The seeds committed with the project.
    pub fn committed() -> Result<Seeds> {
        Seeds::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/seeds"))
    }
}
