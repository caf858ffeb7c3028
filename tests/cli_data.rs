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

#[test]
fn ctrl_c_saves_a_checkpoint_and_the_same_command_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = common::training_fixture(tmp.path(), 300);
    cfg.train.max_steps = 100_000; // long enough to be interrupted
    cfg.train.log_interval = 1;
    cfg.train.ckpt_interval = 100_000;
    let path = tmp.path().join("run.toml");
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_synthlm"))
        .args(["train", "--config", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = cfg.out_dir.join("metrics.jsonl");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&metrics)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 3
    {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("training exited early ({status}): {err}");
        }
        assert!(t0.elapsed().as_secs() < 60, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("stopped at step") && stdout.contains("run the same command to resume"),
        "{stdout}"
    );
    let ck = synthlm::train::checkpoint::latest(&cfg.out_dir)
        .unwrap()
        .expect("Ctrl-C wrote a checkpoint");
    let state: synthlm::train::checkpoint::CheckpointState =
        synthlm::io::read_json(&ck.join("state.json")).unwrap();
    assert!(state.step >= 3);

    // Resume with a reachable end.
    let mut done = cfg.clone();
    done.train.max_steps = state.step + 5;
    let ck_cfg = state.config.clone();
    assert_eq!(ck_cfg, cfg);
    let (ok, _, err) = synthlm(&[
        "train",
        "--config",
        path.to_str().unwrap(),
        "--set",
        &format!("train.max_steps={}", state.step + 5),
    ]);
    assert!(
        !ok && err.contains("train.max_steps"),
        "changing the config is refused, naming the key: {err}"
    );
}
