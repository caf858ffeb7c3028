//! Grammar minimal pairs, BLiMP-style: two sentences that differ only where one phenomenon
//! says, one grammatical and one not, generated from a small lexicon with exact labels. A model
//! "knows" the phenomenon when it gives the grammatical sentence the higher log-likelihood.
//!
//! | phenomenon | good | bad |
//! |---|---|---|
//! | `agreement_attractor` | The key near the boxes **is** old. | The key near the boxes **are** old. |
//! | `determiner_noun` | Ben saw **these** dogs today. | Ben saw **this** dogs today. |
//! | `anaphor_agreement` | The girl saw **herself** there. / The boys saw **themselves** there. | The girl saw **themselves** there. / The boys saw **himself** there. |
//! | `irregular_past` | The boy **ate** the apple. / The boy has **eaten** it. | The boy **eaten** the apple. / The boy has **ate** it. |
//! | `argument_structure` | The boy **found** the ball. | The boy **slept** the ball. |
//! | `word_order` | The dog saw the ball. | The dog the ball saw. |
//! | `npi` | The boy **never** found any food. / **No** girls have ever used the boxes. | The boy **also** found any food. / **The** girls have ever used the boxes. |
//! | `filler_gap` | I know **what** the boy saw today. | I know **that** the boy saw today. |
//!
//! Each phenomenon has two frames, half the pairs each, whose grammatical member uses the one
//! word in one frame and the other word in the other (singular and plural heads; "what" and
//! "that"): a model that always prefers one word scores exactly 0.5. Verbs are strictly
//! transitive or strictly intransitive, with people as their subjects. Words come from
//! [`Lexicon`], filtered to words frequent in both kinds of training text.
//!
//! Except in `npi`: its members differ in *which* word they use (a licensor, "never" / "No",
//! or not, "also" / "The"), so a preference for the more frequent word is not cancelled by the
//! frames, and a unigram model scores near 0 on it. Read `npi` beside the unigram row.
//!
//! Pairs are matched in words, not in tokens: a scorer's tokenizer may split one member into
//! more tokens ("yourselves", "F-ew"), and a summed log-likelihood then prefers the shorter
//! member whatever the grammar. The suite scores only the pairs whose members have equal token
//! counts under the scorer's tokenizer, with the two frames kept equal in number
//! ([`crate::eval::suite::minimal_pairs`]).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One minimal pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub phenomenon: String,
    pub good: String,
    pub bad: String,
    /// Which of the phenomenon's two frames (half the pairs each): a model that always prefers
    /// one of the two words scores 1 on one frame and 0 on the other.
    #[serde(default)]
    pub frame: u8,
}

/// The phenomena, in report order.
pub const PHENOMENA: [&str; 8] = [
    "agreement_attractor",
    "determiner_noun",
    "anaphor_agreement",
    "irregular_past",
    "argument_structure",
    "word_order",
    "npi",
    "filler_gap",
];

/// The words pairs are built from. `nouns`: (singular, plural); `animate`: (singular, plural)
/// nouns for people, the subjects of verbs that need one; `people`: (noun, reflexive);
/// `irregular`: (base, past, participle); `transitive`/`intransitive`: past forms of verbs
/// that are only transitive / only intransitive (no labile verbs such as "opened", "changed",
/// "worked": "The box opened" is grammatical).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lexicon {
    pub nouns: Vec<(String, String)>,
    pub animate: Vec<(String, String)>,
    pub people: Vec<(String, String)>,
    pub names: Vec<String>,
    pub irregular: Vec<(String, String, String)>,
    pub transitive: Vec<String>,
    pub intransitive: Vec<String>,
    pub adjectives: Vec<String>,
    pub places: Vec<String>,
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Lexicon {
    /// The candidate words, before the frequency filter.
    pub fn candidates() -> Lexicon {
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        Lexicon {
            nouns: pairs(&[
                ("dog", "dogs"),
                ("cat", "cats"),
                ("friend", "friends"),
                ("teacher", "teachers"),
                ("student", "students"),
                ("book", "books"),
                ("house", "houses"),
                ("car", "cars"),
                ("tree", "trees"),
                ("bird", "birds"),
                ("box", "boxes"),
                ("letter", "letters"),
                ("picture", "pictures"),
                ("window", "windows"),
                ("door", "doors"),
                ("key", "keys"),
                ("table", "tables"),
                ("user", "users"),
                ("file", "files"),
                ("program", "programs"),
                ("computer", "computers"),
                ("child", "children"),
                ("man", "men"),
                ("woman", "women"),
                ("game", "games"),
                ("story", "stories"),
                ("city", "cities"),
                ("garden", "gardens"),
                ("flower", "flowers"),
                ("page", "pages"),
                ("word", "words"),
                ("name", "names"),
                ("machine", "machines"),
                ("question", "questions"),
                ("answer", "answers"),
                ("system", "systems"),
                ("package", "packages"),
                ("road", "roads"),
                ("ball", "balls"),
            ]),
            animate: pairs(&[
                ("boy", "boys"),
                ("girl", "girls"),
                ("man", "men"),
                ("woman", "women"),
                ("child", "children"),
                ("friend", "friends"),
                ("teacher", "teachers"),
                ("student", "students"),
                ("king", "kings"),
                ("doctor", "doctors"),
            ]),
            people: pairs(&[
                ("boy", "himself"),
                ("girl", "herself"),
                ("man", "himself"),
                ("woman", "herself"),
                ("king", "himself"),
                ("queen", "herself"),
                ("father", "himself"),
                ("mother", "herself"),
                ("brother", "himself"),
                ("sister", "herself"),
                ("children", "themselves"),
                ("students", "themselves"),
                ("friends", "themselves"),
                ("people", "themselves"),
                ("boys", "themselves"),
                ("girls", "themselves"),
                ("teachers", "themselves"),
                ("parents", "themselves"),
                ("doctors", "themselves"),
            ]),
            names: owned(&[
                "Tom", "Lily", "Ben", "Anna", "Sam", "Mary", "John", "Max", "Emma", "Jack",
            ]),
            irregular: [
                ("see", "saw", "seen"),
                ("take", "took", "taken"),
                ("write", "wrote", "written"),
                ("eat", "ate", "eaten"),
                ("give", "gave", "given"),
                ("break", "broke", "broken"),
                ("choose", "chose", "chosen"),
                ("drive", "drove", "driven"),
                ("know", "knew", "known"),
                ("speak", "spoke", "spoken"),
                ("steal", "stole", "stolen"),
                ("throw", "threw", "thrown"),
                ("hide", "hid", "hidden"),
                ("draw", "drew", "drawn"),
                ("begin", "began", "begun"),
                ("do", "did", "done"),
                ("grow", "grew", "grown"),
            ]
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect(),
            transitive: owned(&[
                "found", "made", "needed", "wanted", "liked", "used", "kept", "carried", "brought",
                "bought", "took",
            ]),
            intransitive: owned(&[
                "slept",
                "arrived",
                "laughed",
                "smiled",
                "waited",
                "fell",
                "appeared",
                "disappeared",
                "stayed",
                "died",
            ]),
            adjectives: owned(&[
                "old",
                "new",
                "big",
                "small",
                "good",
                "important",
                "simple",
                "happy",
                "red",
                "long",
                "short",
                "useful",
                "ready",
                "empty",
                "open",
                "free",
            ]),
            places: owned(&[
                "house", "garden", "park", "city", "room", "box", "school", "kitchen", "car",
                "office", "world",
            ]),
        }
    }

    /// Keep the entries whose every form passes `frequent` (a word seen often enough in both
    /// kinds of training text).
    pub fn filtered(&self, frequent: &dyn Fn(&str) -> bool) -> Lexicon {
        let keep1 = |v: &[String]| {
            v.iter()
                .filter(|w| frequent(w))
                .cloned()
                .collect::<Vec<_>>()
        };
        Lexicon {
            nouns: self
                .nouns
                .iter()
                .filter(|(a, b)| frequent(a) && frequent(b))
                .cloned()
                .collect(),
            animate: self
                .animate
                .iter()
                .filter(|(a, b)| frequent(a) && frequent(b))
                .cloned()
                .collect(),
            people: self
                .people
                .iter()
                .filter(|(a, b)| frequent(a) && frequent(b))
                .cloned()
                .collect(),
            names: keep1(&self.names),
            irregular: self
                .irregular
                .iter()
                .filter(|(a, b, c)| frequent(a) && frequent(b) && frequent(c))
                .cloned()
                .collect(),
            transitive: keep1(&self.transitive),
            intransitive: keep1(&self.intransitive),
            adjectives: keep1(&self.adjectives),
            places: keep1(&self.places),
        }
    }

    /// Every list must keep a few entries for the pairs to vary.
    pub fn check(&self) -> anyhow::Result<()> {
        let sizes = [
            ("nouns", self.nouns.len()),
            ("animate", self.animate.len()),
            ("people", self.people.len()),
            ("names", self.names.len()),
            ("irregular", self.irregular.len()),
            ("transitive", self.transitive.len()),
            ("intransitive", self.intransitive.len()),
            ("adjectives", self.adjectives.len()),
            ("places", self.places.len()),
        ];
        for (k, n) in sizes {
            anyhow::ensure!(
                n >= 4,
                "lexicon: only {n} {k} are frequent in both training corpora (need 4)"
            );
        }
        Ok(())
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, v: &'a [T]) -> &'a T {
    v.choose(rng).expect("non-empty lexicon list")
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One candidate pair of a phenomenon (`flip` chooses which frame or which member is good).
fn make(ph: &str, lx: &Lexicon, rng: &mut ChaCha8Rng, flip: bool) -> (String, String) {
    let adj = pick(rng, &lx.adjectives).clone();
    match ph {
        "agreement_attractor" => {
            let (h, a) = (pick(rng, &lx.nouns).clone(), pick(rng, &lx.nouns).clone());
            let (be_s, be_p) = *pick(rng, &[("is", "are"), ("was", "were")]);
            // Head and attractor of opposite number; the verb agrees with the head.
            let (head, attr, good, bad) = if flip {
                (h.0, a.1, be_s, be_p)
            } else {
                (h.1, a.0, be_p, be_s)
            };
            let s = |v: &str| format!("The {head} near the {attr} {v} {adj}.");
            (s(good), s(bad))
        }
        "determiner_noun" => {
            let n = pick(rng, &lx.nouns).clone();
            let name = pick(rng, &lx.names).clone();
            let (sg, pl) = *pick(rng, &[("this", "these"), ("that", "those")]);
            let (noun, good, bad) = if flip { (n.0, sg, pl) } else { (n.1, pl, sg) };
            let s = |d: &str| format!("{name} saw {d} {noun} today.");
            (s(good), s(bad))
        }
        "anaphor_agreement" => {
            // Number agreement, as BLiMP's anaphor_number_agreement: a singular antecedent
            // (good: its gendered reflexive, bad: "themselves") and a plural one (good:
            // "themselves", bad: the singular reflexive). Across the two frames the good
            // member is the longer one half the time, and preferring either word scores 0.5.
            let of_number: Vec<&(String, String)> = lx
                .people
                .iter()
                .filter(|(_, r)| (r == "themselves") == flip)
                .collect();
            let (p, refl) = (*pick(rng, &of_number)).clone();
            let wrong = if flip {
                pick(rng, &["himself", "herself"]).to_string()
            } else {
                "themselves".to_string()
            };
            let verb =
                pick(rng, &["saw", "hurt", "helped", "found", "taught", "liked"]).to_string();
            let when = pick(
                rng,
                &[
                    "there",
                    "today",
                    "again",
                    "yesterday",
                    "at home",
                    "in the mirror",
                ],
            )
            .to_string();
            let s = |r: &str| format!("The {p} {verb} {r} {when}.");
            (s(&refl), s(&wrong))
        }
        "irregular_past" => {
            let (_, past, part) = pick(rng, &lx.irregular).clone();
            let (n, o) = (
                pick(rng, &lx.animate).0.clone(),
                pick(rng, &lx.nouns).0.clone(),
            );
            if flip {
                let s = |v: &str| format!("Yesterday the {n} {v} the {o}.");
                (s(&past), s(&part))
            } else {
                let s = |v: &str| format!("The {n} has {v} the {o}.");
                (s(&part), s(&past))
            }
        }
        "argument_structure" => {
            let (t, i) = (
                pick(rng, &lx.transitive).clone(),
                pick(rng, &lx.intransitive).clone(),
            );
            let n = pick(rng, &lx.animate).0.clone();
            if flip {
                let o = pick(rng, &lx.nouns).0.clone();
                let s = |v: &str| format!("The {n} {v} the {o}.");
                (s(&t), s(&i))
            } else {
                let place = pick(rng, &lx.places).clone();
                let s = |v: &str| format!("The {n} {v} in the {place}.");
                (s(&i), s(&t))
            }
        }
        "word_order" => {
            let (n, o) = (
                pick(rng, &lx.animate).0.clone(),
                pick(rng, &lx.nouns).0.clone(),
            );
            let v = pick(rng, &lx.transitive).clone();
            (
                format!("The {n} {v} the {o}."),
                format!("The {n} the {o} {v}."),
            )
        }
        "npi" => {
            let n = pick(rng, &lx.animate).clone();
            let (o, v) = (
                pick(rng, &lx.nouns).1.clone(),
                pick(rng, &lx.transitive).clone(),
            );
            if flip {
                let s = |adv: &str| format!("The {} {adv} {v} any {o}.", n.0);
                (s("never"), s("also"))
            } else {
                // "No" licenses "ever"; "The" does not (one short word each). "have ever"
                // takes a participle: verbs whose past is their participle.
                let part: Vec<&String> = lx
                    .transitive
                    .iter()
                    .filter(|v| v.as_str() != "took")
                    .collect();
                let v = (*pick(rng, &part)).clone();
                let s = |d: &str| format!("{d} {} have ever {v} the {o}.", n.1);
                (s("No"), s("The"))
            }
        }
        "filler_gap" => {
            let (n, v) = (
                pick(rng, &lx.animate).0.clone(),
                pick(rng, &lx.transitive).clone(),
            );
            let when = pick(rng, &["today", "yesterday", "there", "again", "at home"]).to_string();
            if flip {
                let s = |c: &str| format!("I know {c} the {n} {v} {when}.");
                (s("what"), s("that"))
            } else {
                let o = pick(rng, &lx.nouns).0.clone();
                let s = |c: &str| format!("I know {c} the {n} {v} the {o} {when}.");
                (s("that"), s("what"))
            }
        }
        other => panic!("unknown phenomenon {other}"),
    }
}

/// `per_phenomenon` distinct pairs of every phenomenon, from `seed`.
pub fn pairs(lx: &Lexicon, per_phenomenon: usize, seed: u64) -> anyhow::Result<Vec<Pair>> {
    let mut out = Vec::new();
    for (i, ph) in PHENOMENA.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(i as u64);
        let mut seen = BTreeSet::new();
        let mut tries = 0;
        while seen.len() < per_phenomenon {
            tries += 1;
            anyhow::ensure!(
                tries < per_phenomenon * 200,
                "{ph}: the lexicon allows fewer than {per_phenomenon} distinct pairs"
            );
            // Frames alternate: exactly half the pairs in each.
            let frame = u8::from(seen.len() % 2 == 1);
            let (good, bad) = make(ph, lx, &mut rng, frame == 1);
            if good != bad && seen.insert((good.clone(), bad.clone())) {
                out.push(Pair {
                    phenomenon: ph.to_string(),
                    good: cap(&good),
                    bad: cap(&bad),
                    frame,
                });
            }
        }
    }
    Ok(out)
}

/// The words of a sentence (for the checks: which words differ).
pub fn words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect()
}
