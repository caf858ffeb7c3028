//! Record-level checks for the failures we found by reading the v1 corpora: texts cut off
//! mid-sentence, an assistant preamble ("Sure, I can help ..."), a title the prompt asked not
//! to write, meta-text in an evolved instruction ("Here's a rewritten task ..."), text that is
//! not English, and story words the prompt required but the story never used.
//!
//! Generation applies them while it writes (dropping, stripping or counting, as the recipe
//! says), and the quality signals report them per record. Each check is a pure function of the
//! text: cheap (microseconds per record) and testable.

/// Characters that end a finished sentence, possibly followed by closing quotes/brackets. A
/// colon does not: "The answer to this question is:" is cut off (35 v2 cosmo texts ended so,
/// found by the review of the data chapter).
const TERMINAL: [char; 4] = ['.', '!', '?', '…'];
const CLOSERS: [char; 9] = ['"', '\'', '”', '’', ')', ']', '*', '_', '»'];

/// The last character of a line or text once trailing whitespace and closing quotes,
/// brackets and emphasis marks are set aside (`None` if nothing else is left).
pub fn last_sign(text: &str) -> Option<char> {
    text.trim_end()
        .trim_end_matches(|c| CLOSERS.contains(&c))
        .chars()
        .last()
}

/// Whether a text ends mid-sentence. The rule: after trailing whitespace, closing quotes,
/// brackets and emphasis marks, the last character must be one of `. ! ? …`, and the last
/// line must not be a bare list number ("11."); a text ending in a closing code fence
/// (```` ``` ````) or an emoji counts as finished. Everything else (a word, a comma, a colon,
/// a dash) ends mid-sentence.
pub fn ends_mid_sentence(text: &str) -> bool {
    let t = text.trim_end();
    if t.is_empty() {
        return true;
    }
    if t.ends_with("```") {
        return false;
    }
    // a last line that is only a list number ("11.") starts an item that never came
    let last_line = t.lines().last().unwrap_or("").trim();
    let list_number = last_line.len() > 1
        && last_line.ends_with('.')
        && last_line[..last_line.len() - 1]
            .chars()
            .all(|c| c.is_ascii_digit());
    match last_sign(t) {
        None => false, // only closers: e.g. a final quoted line
        Some(c) => list_number || !(TERMINAL.contains(&c) || is_emoji(c)),
    }
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF)
}

/// Openings of an assistant reply that talk *about* the text instead of being it.
const PREAMBLES: [&str; 14] = [
    "sure",
    "certainly",
    "of course",
    "absolutely",
    "here is",
    "here's",
    "here are",
    "i'd be happy",
    "i would be happy",
    "i'm happy to",
    "i can help",
    "as an ai",
    "great question",
    "okay, here",
];

/// The first paragraph, if it is an assistant preamble: it starts with one of the openings
/// above and is short (at most 40 words), e.g. "Sure! Here's a blog post about tides:".
pub fn preamble(text: &str) -> Option<&str> {
    let t = text.trim_start();
    let first = t.split("\n\n").next().unwrap_or(t);
    let lower = first.trim_start_matches(['*', '#', ' ']).to_lowercase();
    let starts = PREAMBLES.iter().any(|p| {
        lower.starts_with(p) && !lower[p.len()..].starts_with(|c: char| c.is_alphabetic())
    });
    (starts && first.split_whitespace().count() <= 40).then_some(first)
}

/// A title line: the first line is short (at most 12 words), is followed by a blank line or
/// starts with `#`, and does not end like a sentence (`.`, `!`, `?`), e.g. "# The Water Cycle"
/// or "**Why Leaves Fall**".
pub fn title(text: &str) -> Option<&str> {
    let t = text.trim_start();
    let (first, rest) = t.split_once('\n').unwrap_or((t, ""));
    let line = first.trim();
    if line.is_empty() || line.split_whitespace().count() > 12 {
        return None;
    }
    let heading = line.starts_with('#');
    let bare = line.trim_matches(|c: char| c == '*' || c == '#' || c == '_' || c.is_whitespace());
    let followed_by_blank =
        rest.starts_with('\n') || rest.trim_start_matches([' ', '\t']).starts_with('\n');
    let sentence_end = bare.ends_with(['.', '!', '?']);
    let looks_titled = heading
        || (line.starts_with("**") && line.ends_with("**"))
        || line.to_lowercase().starts_with("title:");
    ((looks_titled || followed_by_blank) && !sentence_end && !rest.trim().is_empty())
        .then_some(first)
}

/// Remove a leading preamble and then a leading title; returns the text and what was removed.
pub fn strip_front_matter(text: &str) -> (String, bool, bool) {
    let mut t = text.trim_start();
    let had_preamble = preamble(t).is_some();
    if let Some(p) = preamble(t) {
        t = t[p.len()..].trim_start();
    }
    let had_title = title(t).is_some();
    if let Some(h) = title(t) {
        t = t[h.len()..].trim_start();
    }
    (t.to_string(), had_preamble, had_title)
}

/// Phrases that show an instruction is talk about a task rather than a task: what an
/// "evolve" step writes when it describes its own rewrite.
const META: [&str; 12] = [
    "here's a rewritten",
    "here is a rewritten",
    "rewritten task",
    "revised task",
    "new task:",
    "original task",
    "more challenging version",
    "here's a more",
    "here is a more",
    "here's the task",
    "here is the task",
    "i've rewritten",
];

/// Whether a task text contains meta-text (see [`META`]).
pub fn has_meta_text(task: &str) -> bool {
    let l = task.to_lowercase();
    META.iter().any(|m| l.contains(m))
}

/// Verbs an instruction may open with (imperative mood).
const IMPERATIVES: [&str; 64] = [
    "write",
    "explain",
    "describe",
    "summarise",
    "summarize",
    "solve",
    "calculate",
    "find",
    "compare",
    "list",
    "identify",
    "translate",
    "rewrite",
    "correct",
    "create",
    "design",
    "give",
    "convert",
    "decide",
    "analyze",
    "analyse",
    "discuss",
    "paraphrase",
    "classify",
    "determine",
    "evaluate",
    "name",
    "suggest",
    "outline",
    "answer",
    "read",
    "use",
    "imagine",
    "provide",
    "compose",
    "draft",
    "check",
    "show",
    "prove",
    "estimate",
    "plan",
    "choose",
    "argue",
    "recommend",
    "predict",
    "sort",
    "rank",
    "complete",
    "fix",
    "debug",
    "implement",
    "define",
    "state",
    "tell",
    "help",
    "based",
    "using",
    "according",
    "consider",
    "make",
    "turn",
    "label",
    "fill",
    "extract",
];

/// A leading label such as `Task:` or `New task:` removed.
pub fn strip_task_label(text: &str) -> &str {
    let t = text.trim();
    for label in [
        "new task:",
        "revised task:",
        "rewritten task:",
        "task:",
        "question:",
    ] {
        // `get`: the label's length may fall inside a multi-byte character of the text.
        if t.get(..label.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(label))
        {
            return t[label.len()..].trim_start();
        }
    }
    t
}

/// Why a generated instruction is not a task, if it is not: it must be English, 3-150 words,
/// free of meta-text, not in the assistant's voice ("I'm ready to help", "Sure, here is"),
/// and either open with an imperative verb (see `IMPERATIVES`) or ask a question.
pub fn not_a_task(text: &str) -> Option<String> {
    let t = strip_task_label(text);
    let n = t.split_whitespace().count();
    let first = words(t).into_iter().next().unwrap_or_default();
    let assistant_voice = preamble(t).is_some()
        || [
            "i", "i'm", "i'd", "i'll", "i've", "here", "here's", "sure", "okay",
        ]
        .contains(&first.as_str());
    if !(3..=150).contains(&n) {
        Some(format!("{n} words"))
    } else if !looks_english(t) {
        Some("does not read as English".into())
    } else if has_meta_text(t) {
        Some("meta-text about a rewrite".into())
    } else if assistant_voice {
        Some("written in the assistant's voice".into())
    } else if t
        .split_whitespace()
        .next()
        .is_some_and(|w| w.ends_with(':'))
    {
        Some("a label (\"Answer:\"), not an instruction".into())
    } else if !(IMPERATIVES.contains(&first.as_str()) || t.contains('?')) {
        Some("neither an imperative nor a question".into())
    } else {
        None
    }
}

/// Why a generated user turn (a Magpie instruction) is not usable, if it is not: it must be
/// English, 3-150 words, free of meta-text and not an assistant's reply ("Sure, here is ...",
/// "As an AI ..."). Users write in the first person and in statements ("I'm planning a trip
/// to ...", "My code fails when ..."), so, unlike [`not_a_task`], neither is rejected.
pub fn not_a_user_turn(text: &str) -> Option<String> {
    let t = strip_task_label(text);
    let n = t.split_whitespace().count();
    if !(3..=150).contains(&n) {
        Some(format!("{n} words"))
    } else if !looks_english(t) {
        Some("does not read as English".into())
    } else if has_meta_text(t) {
        Some("meta-text about a rewrite".into())
    } else if preamble(t).is_some() {
        Some("written as an assistant's reply".into())
    } else {
        None
    }
}

/// The 50 most frequent English function words (a Gopher/FineWeb-style stop-word list).
pub const STOP_WORDS: [&str; 50] = [
    "the", "be", "to", "of", "and", "a", "in", "that", "have", "i", "it", "for", "not", "on",
    "with", "he", "as", "you", "do", "at", "this", "but", "his", "by", "from", "they", "we", "say",
    "her", "she", "or", "an", "will", "my", "one", "all", "would", "there", "their", "what", "so",
    "up", "out", "if", "about", "who", "get", "which", "go", "me",
];

/// Lower-cased alphabetic words of a text (apostrophes kept inside words).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphabetic() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Share of words that are English stop words: ~0.4-0.5 for English prose, near 0 for other
/// languages and for word salad. (A language-ID model would be better; this is the cheap
/// Gopher-style signal, enough to catch the pseudo-Spanish we found.)
pub fn stop_word_share(text: &str) -> f64 {
    let w = words(text);
    if w.is_empty() {
        return 0.0;
    }
    w.iter()
        .filter(|x| STOP_WORDS.contains(&x.as_str()))
        .count() as f64
        / w.len() as f64
}

/// Whether a text reads as English by [`stop_word_share`] (threshold 0.2) and ASCII letters.
pub fn looks_english(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count().max(1);
    let ascii = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    stop_word_share(text) >= 0.2 && ascii as f64 / letters as f64 >= 0.95
}

/// Part of speech of a required story word (decides which inflections count as using it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    Noun,
    Verb,
    Adjective,
}

/// Irregular forms of the verbs in `data/seeds/story_words.toml` (and a few more).
const IRREGULAR: [(&str, &[&str]); 27] = [
    ("build", &["built"]),
    ("catch", &["caught"]),
    ("dig", &["dug"]),
    ("draw", &["drew", "drawn"]),
    ("dream", &["dreamt"]),
    ("drink", &["drank", "drunk"]),
    ("eat", &["ate", "eaten"]),
    ("fall", &["fell", "fallen"]),
    ("find", &["found"]),
    ("fly", &["flew", "flown", "flies"]),
    ("give", &["gave", "given"]),
    ("grow", &["grew", "grown"]),
    ("hide", &["hid", "hidden"]),
    ("kneel", &["knelt"]),
    ("lose", &["lost"]),
    ("make", &["made"]),
    ("ride", &["rode", "ridden"]),
    ("run", &["ran"]),
    ("shine", &["shone"]),
    ("sing", &["sang", "sung"]),
    ("sit", &["sat"]),
    ("sleep", &["slept"]),
    ("slide", &["slid"]),
    ("spin", &["spun"]),
    ("swim", &["swam", "swum"]),
    ("teach", &["taught"]),
    ("throw", &["threw", "thrown"]),
];
const IRREGULAR_MORE: [(&str, &[&str]); 2] = [("win", &["won"]), ("write", &["wrote", "written"])];

fn is_vowel(c: char) -> bool {
    "aeiou".contains(c)
}

/// The inflected forms that count as using `word`: plural for nouns; -s, -ed, -ing (with the
/// usual spelling changes) and irregular past forms for verbs; -er, -est for adjectives.
pub fn forms(word: &str, pos: Pos) -> Vec<String> {
    let w = word.to_lowercase();
    let mut out = vec![w.clone()];
    let last = w.chars().last().unwrap_or(' ');
    let stem_y = w.strip_suffix('y').filter(|s| !s.ends_with(is_vowel));
    let sibilant = ["s", "x", "z", "ch", "sh"].iter().any(|s| w.ends_with(s));
    let plural = match stem_y {
        Some(s) => format!("{s}ies"),
        None if sibilant => format!("{w}es"),
        None => format!("{w}s"),
    };
    // Consonant-vowel-consonant endings double the consonant: hop -> hopped, hopping.
    let chars: Vec<char> = w.chars().collect();
    let cvc = chars.len() >= 3
        && !is_vowel(last)
        && !"wxy".contains(last)
        && is_vowel(chars[chars.len() - 2])
        && !is_vowel(chars[chars.len() - 3]);
    let double = if cvc { format!("{w}{last}") } else { w.clone() };
    match pos {
        Pos::Noun => out.push(plural),
        Pos::Verb => {
            out.push(plural);
            let e_stem = w.strip_suffix('e').unwrap_or(&w).to_string();
            out.push(match stem_y {
                Some(s) => format!("{s}ied"),
                None if last == 'e' => format!("{w}d"),
                None => format!("{double}ed"),
            });
            out.push(if last == 'e' && !w.ends_with("ee") {
                format!("{e_stem}ing")
            } else {
                format!("{double}ing")
            });
            for (base, irr) in IRREGULAR.iter().chain(&IRREGULAR_MORE) {
                if *base == w {
                    out.extend(irr.iter().map(|s| s.to_string()));
                }
            }
        }
        Pos::Adjective => {
            let base = match stem_y {
                Some(s) => format!("{s}i"),
                None if last == 'e' => w[..w.len() - 1].to_string(),
                None => double.clone(),
            };
            out.push(format!("{base}er"));
            out.push(format!("{base}est"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `text` uses `word` in any of its [`forms`].
pub fn uses_word(text: &str, word: &str, pos: Pos) -> bool {
    let f = forms(word, pos);
    words(text).iter().any(|w| f.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mid_sentence_endings() {
        assert!(!ends_mid_sentence("It was fun."));
        assert!(!ends_mid_sentence("\"Let's go!\"\n"));
        assert!(!ends_mid_sentence("Done (see above.)"));
        assert!(!ends_mid_sentence("```rust\nfn main() {}\n```"));
        assert!(ends_mid_sentence("And then the cat went to the"));
        assert!(ends_mid_sentence("Step 3: mix the flour,"));
        assert!(ends_mid_sentence(""));
        assert!(ends_mid_sentence("The answer to this question is:"));
        assert!(ends_mid_sentence("Here are the steps.\n10. Mix.\n11."));
        assert!(!ends_mid_sentence("It cost 11."));
        assert!(!ends_mid_sentence("She said “yes.”  "));
    }

    #[test]
    fn preambles_and_titles() {
        let t = "Sure! Here's a blog post about tides:\n\nThe sea rises twice a day.";
        assert!(preamble(t).is_some());
        assert!(preamble("Surely the sea rises twice a day.\n\nMore text.").is_none());
        assert!(title("# The Water Cycle\n\nWater moves.").is_some());
        assert!(title("**Why Leaves Fall**\nLeaves fall in autumn.").is_some());
        assert!(title("Leaves fall in autumn.\n\nThey turn red first.").is_none());
        let (s, p, h) = strip_front_matter(
            "Certainly! Here is the article.\n\nTides and You\n\nThe sea rises twice a day.",
        );
        assert_eq!(
            (s.as_str(), p, h),
            ("The sea rises twice a day.", true, true)
        );
    }

    #[test]
    fn meta_text_and_language() {
        assert!(has_meta_text(
            "Here's a rewritten version of the task: add 2 and 3."
        ));
        assert!(!has_meta_text(
            "Add 2 and 3, then explain why the sum is odd."
        ));
        assert!(looks_english(
            "Write a short poem about the sea and the wind in it."
        ));
        assert!(!looks_english(
            "Escribe un poema corto sobre el mar y el viento."
        ));
    }

    #[test]
    fn tasks_are_imperatives_or_questions_in_the_users_voice() {
        assert_eq!(
            not_a_task("Task: Summarise the passage in two sentences."),
            None
        );
        assert_eq!(not_a_task("Why do leaves change colour in autumn?"), None);
        assert!(not_a_task("I'm ready to help. What do you have?").is_some());
        assert!(not_a_task("Here is a hard task: explain tides.").is_some());
        assert!(not_a_task("The passage is about tides and the moon.").is_some());
        assert_eq!(strip_task_label("New task: Add 2 and 3."), "Add 2 and 3.");
        assert!(not_a_task("Summarise: the passage is about tides.").is_some());
        // A user may speak in the first person and in statements.
        assert_eq!(
            not_a_user_turn("I'm planning a trip to Japan and need a packing list."),
            None
        );
        assert!(not_a_user_turn("Sure! Here is a packing list for your trip.").is_some());
        // Multi-byte text where a label would end is no label.
        assert_eq!(
            strip_task_label("日本語のテキストです"),
            "日本語のテキストです"
        );
    }

    #[test]
    fn inflections_count_as_using_a_word() {
        assert!(uses_word("She hopped over the log.", "hop", Pos::Verb));
        assert!(uses_word("They were racing home.", "race", Pos::Verb));
        assert!(uses_word("He caught it!", "catch", Pos::Verb));
        assert!(uses_word("The babies cried.", "cry", Pos::Verb));
        assert!(uses_word("Two foxes ran.", "fox", Pos::Noun));
        assert!(uses_word(
            "It was the happiest day.",
            "happy",
            Pos::Adjective
        ));
        assert!(uses_word("A bigger ball.", "big", Pos::Adjective));
        assert!(!uses_word("The dog barked.", "cat", Pos::Noun));
        // Whole words only.
        assert!(!uses_word("The category was long.", "cat", Pos::Noun));
    }
}
