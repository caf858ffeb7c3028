//! The `synthlm data` commands end to end, through the real binary.

mod common;

use std::process::Command;

fn synthlm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_synthlm"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn load_train_pack_stats_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    common::build_hf_cache(&cache);
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let cache_s = cache.display().to_string();

    let (ok, out, err) = synthlm(&[
        "data",
        "inspect",
        "-i",
        "magpie-pro",
        "--hf-cache",
        &cache_s,
        "--show",
        "1",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("uuid-0") && out.contains("<|im_start|>user\nQuestion 0?"),
        "{out}"
    );

    let docs = p("docs.jsonl");
    let (ok, out, err) = synthlm(&[
        "data",
        "load",
        "-i",
        "magpie-pro",
        "-i",
        "fineweb-edu/sample-10BT",
        "--hf-cache",
        &cache_s,
        "-o",
        &docs,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("wrote 15 documents"), "{out}");

    let tok = p("tokenizer.json");
    let (ok, _, err) = synthlm(&[
        "data",
        "tokenizer-train",
        "-i",
        &docs,
        "--vocab-size",
        "300",
        "-o",
        &tok,
    ]);
    assert!(ok, "{err}");

    let packed = p("packed");
    let (ok, out, err) = synthlm(&["data", "pack", "-i", &docs, "-t", &tok, "-o", &packed]);
    assert!(ok, "{err}");
    assert!(out.contains("packed 15 documents"), "{out}");

    let (ok, out, err) = synthlm(&["data", "stats", &packed, "--json", &p("stats.json")]);
    assert!(ok, "{err}");
    assert!(
        out.contains("magpie-pro") && out.contains("fineweb-edu/sample-10BT"),
        "{out}"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("stats.json")).unwrap()).unwrap();
    assert_eq!(stats.as_array().unwrap().len(), 2);
}

#[test]
fn cli_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = synthlm(&["data", "inspect", "-i", "nonesuch"]);
    assert!(!ok);
    assert!(
        err.contains("neither an existing path nor a dataset")
            && err.contains("unknown dataset `nonesuch`"),
        "{err}"
    );

    let (ok, _, err) = synthlm(&[
        "data",
        "inspect",
        "-i",
        "openhermes",
        "--hf-cache",
        &tmp.path().display().to_string(),
    ]);
    assert!(!ok);
    assert!(err.contains("synthlm data fetch openhermes"), "{err}");

    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\":\"a\",\"source\":\"s\",\"text\":\"ok\"}\n{\"id\": 3}\n",
    )
    .unwrap();
    let (ok, _, err) = synthlm(&[
        "data",
        "load",
        "-i",
        &bad.display().to_string(),
        "-o",
        &tmp.path().join("o.jsonl").display().to_string(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("bad.jsonl: line 2: not a document record"),
        "{err}"
    );
    assert!(
        !tmp.path().join("o.jsonl").exists(),
        "a failed load writes nothing"
    );
}
