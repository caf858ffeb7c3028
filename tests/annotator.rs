//! The LLM annotator (Gemma 3 270M) on its real GGUF: its tokenizer rebuilt from the GGUF's
//! SentencePiece metadata, and scores that separate a good record from a broken one. Needs
//! `bash scripts/setup.sh annotator` (the tests say so when it is missing).

use synthlm::filter::annotator::{find_gguf, Annotator};

fn gguf() -> std::path::PathBuf {
    find_gguf().unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
#[ignore = "needs the annotator's GGUF (scripts/setup.sh annotator)"]
fn gemmas_tokenizer_from_gguf_splits_into_its_pieces_and_round_trips() {
    let content = synthlm::generate::teacher::read_gguf(&gguf()).unwrap();
    let tok = synthlm::generate::teacher::tokenizer_from_gguf(&content).unwrap();
    let enc = tok.encode("Hello world, the cat sat.", false).unwrap();
    assert_eq!(
        enc.get_tokens(),
        &["Hello", "▁world", ",", "▁the", "▁cat", "▁sat", "."],
        "{:?}",
        enc.get_tokens()
    );
    // control tokens whole; "\n" is one user-defined piece; digits one piece each
    let enc = tok.encode("<start_of_turn>user\n42", false).unwrap();
    assert_eq!(enc.get_ids()[0], 105);
    assert!(enc.get_ids().contains(&107), "{:?}", enc.get_tokens());
    assert_eq!(&enc.get_tokens()[enc.len() - 2..], &["4", "2"]);
    // a character with no piece falls back to its UTF-8 bytes, and everything round-trips
    for text in [
        "Naïve café — 3½ “quotes”\ttab  two spaces",
        "日本語 ☃ 🦀 end",
        " leading",
    ] {
        let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
}

#[test]
#[ignore = "needs the annotator's GGUF (scripts/setup.sh annotator)"]
fn the_annotator_scores_a_finished_story_above_word_salad_and_a_cut_one() {
    let mut a = Annotator::load(&gguf()).unwrap();
    let good = "Mia found a small red kite under her bed. She took it to the park with her \
        brother Sam. The wind was strong, so the kite flew high above the trees. When the \
        string slipped from her hand, Sam ran after it and caught it just in time. Mia \
        laughed and hugged him. \"Let's fly it together,\" she said, and they did until the \
        sun went down.";
    let salad = "kite the under bed red Mia park park park the the wind strong trees hand \
        string slipped Sam ran caught time laughed hugged fly together sun went down bed kite \
        the the the under";
    let cut = "Mia found a small red kite under her bed. She took it to the park with her \
        brother Sam. The wind was strong, so the kite flew high above the trees. When the \
        string slipped from her";
    let t0 = std::time::Instant::now();
    let [g, s, c] = [good, salad, cut].map(|t| a.score(t).unwrap());
    println!("{:.1} s per record", t0.elapsed().as_secs_f64() / 3.0);
    println!("finished story: {g:?}\nword salad: {s:?}\ncut short: {c:?}");
    for x in [&g, &s, &c] {
        assert!((x.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!((0.0..=5.0).contains(&x.expected) && x.digit_mass > 0.0 && x.digit_mass <= 1.0);
    }
    assert!(
        g.expected > s.expected,
        "good {} vs salad {}",
        g.expected,
        s.expected
    );
    assert!(
        g.expected > c.expected,
        "good {} vs cut {}",
        g.expected,
        c.expected
    );
}
