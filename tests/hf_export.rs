//! Hugging Face format, both ways (issue 13): an exported student is checked by Hugging Face's
//! own Python packages (names, shapes, dtypes, tokenizer, and logits from an independent numpy
//! GPT-2, and from transformers where it is installed), loads back as a student with the same
//! logits, and GPT-2 checkpoints as found in the wild load; malformed ones are refused by name.

mod common;

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use synthlm::data::tokenizer::TextTokenizer;
use synthlm::model::gpt::{Dropout, Gpt};
use synthlm::model::hf;
use synthlm::model::student::Student;

const TEXT: &str = "The cat sat on the mat, and the dog ran to the park.";

fn tiny(dir: &Path) -> (Gpt, TextTokenizer) {
    let cfg = common::training_fixture(dir, 300);
    let tok = TextTokenizer::load(cfg.data.tokenizer.as_ref().unwrap()).unwrap();
    let mut c = synthlm::model::ModelConfig::preset("tiny").unwrap();
    c.vocab_size = tok.vocab_size() + 5; // padded past the tokenizer, as configs may do
    (Gpt::new(c, 11, &Device::Cpu).unwrap(), tok)
}

fn logits(m: &Gpt, ids: &[u32]) -> Vec<Vec<f32>> {
    let x = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    m.forward(&x, Dropout::default())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
}

#[test]
fn an_exported_student_passes_hugging_faces_checks_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (m, tok) = tiny(dir.path());
    let ids = tok.encode(TEXT).unwrap();
    let want = logits(&m, &ids);
    let f32_dir = dir.path().join("hf32");
    hf::export(&m, &tok, &f32_dir, DType::F32).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(f32_dir.join(f).exists(), "{f} missing");
    }
    let report = common::hf_check(&f32_dir, TEXT, &ids, &want);
    println!("{report}");
    assert!(report.contains("numpy reference forward"));
    // The comparison is live: one logit off by 1e-3 fails it.
    let mut off = want.clone();
    off[3][5] += 1e-3;
    let (ok, text) = common::hf_run(&f32_dir, TEXT, &ids, &off);
    assert!(!ok && text.contains("numpy reference differs"), "{text}");
    // Loads back bit for bit, as a student without a run config.
    let s = Student::load(&f32_dir, None).unwrap();
    assert!(s.config.is_none());
    assert_eq!(logits(&s.model, &ids), want);
    assert_eq!(s.tokenizer.encode(TEXT).unwrap(), ids);

    // f16 weights: the file is f16, the reloaded model is the rounded one, close to f32.
    let f16_dir = dir.path().join("hf16");
    hf::export(&m, &tok, &f16_dir, DType::F16).unwrap();
    let s16 = Student::load(&f16_dir, None).unwrap();
    let got = logits(&s16.model, &ids);
    common::hf_check(&f16_dir, TEXT, &ids, &got);
    let worst = got
        .iter()
        .flatten()
        .zip(want.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst > 0.0 && worst < 1e-2,
        "f16 round trip moved logits by {worst}"
    );
}

/// openai-community/gpt2's own layout: no `transformer.` prefix, mask buffers stored, a tied
/// `lm_head.weight` present. It loads; an untied head, a wrong model_type and a missing tensor
/// are refused with the file's name.
#[test]
fn gpt2_checkpoints_as_found_in_the_wild_load_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (m, tok) = tiny(dir.path());
    let ids = tok.encode(TEXT).unwrap();
    let base = dir.path().join("hf");
    hf::export(&m, &tok, &base, DType::F32).unwrap();
    let write = |name: &str, edit: &dyn Fn(&mut HashMap<String, Tensor>)| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["config.json", "tokenizer.json"] {
            std::fs::copy(base.join(f), d.join(f)).unwrap();
        }
        let mut t =
            candle_core::safetensors::load(base.join("model.safetensors"), &Device::Cpu).unwrap();
        edit(&mut t);
        candle_core::safetensors::save(&t, d.join("model.safetensors")).unwrap();
        d
    };
    let wild = write("wild", &|t| {
        let old: Vec<String> = t.keys().cloned().collect();
        for k in old {
            let v = t.remove(&k).unwrap();
            t.insert(k.trim_start_matches("transformer.").to_string(), v);
        }
        t.insert("lm_head.weight".into(), t["wte.weight"].clone());
        t.insert(
            "h.0.attn.bias".into(),
            Tensor::ones((1, 1, 64, 64), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    assert_eq!(
        logits(&Student::load(&wild, None).unwrap().model, &ids),
        logits(&m, &ids)
    );

    let untied = write("untied", &|t| {
        let w = t["transformer.wte.weight"].affine(2.0, 0.0).unwrap();
        t.insert("lm_head.weight".into(), w);
    });
    let e = format!("{:#}", Student::load(&untied, None).err().unwrap());
    assert!(
        e.contains("lm_head.weight") && e.contains("untied/model.safetensors"),
        "{e}"
    );

    let missing = write("missing", &|t| {
        t.remove("transformer.h.1.mlp.c_fc.bias");
    });
    let e = format!("{:#}", Student::load(&missing, None).err().unwrap());
    assert!(
        e.contains("h.1.mlp.c_fc.bias") && e.contains("missing/model.safetensors"),
        "{e}"
    );

    let other = write("other", &|_| {});
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(other.join("config.json")).unwrap()).unwrap();
    c["model_type"] = "llama".into();
    std::fs::write(other.join("config.json"), c.to_string()).unwrap();
    let e = format!("{:#}", Student::load(&other, None).err().unwrap());
    assert!(
        e.contains("llama") && e.contains("other/config.json"),
        "{e}"
    );
}

/// A model repository in the Hugging Face cache layout (`models--ORG--NAME/refs/main`,
/// `snapshots/COMMIT/...`) resolves offline and loads; a missing one says how to get it.
#[test]
fn a_model_in_the_hugging_face_cache_resolves_offline() {
    use synthlm::data::hub::{model_snapshot, HubOptions, MODEL_FILES};
    let dir = tempfile::tempdir().unwrap();
    let (m, tok) = tiny(dir.path());
    let export = dir.path().join("export");
    hf::export(&m, &tok, &export, DType::F32).unwrap();
    let cache = dir.path().join("hub");
    let repo = cache.join("models--synthlm-test--tiny-gpt2");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), common::COMMIT).unwrap();
    let snap = repo.join("snapshots").join(common::COMMIT);
    std::fs::create_dir_all(&snap).unwrap();
    for f in MODEL_FILES {
        std::fs::copy(export.join(f), snap.join(f)).unwrap();
    }
    let opts = HubOptions::offline(&cache);
    let found = model_snapshot("synthlm-test/tiny-gpt2", &opts).unwrap();
    assert_eq!(found, snap);
    let (loaded, _) = hf::load(&found).unwrap();
    let ids = tok.encode(TEXT).unwrap();
    assert_eq!(logits(&loaded, &ids), logits(&m, &ids));
    let e = model_snapshot("openai-community/gpt2", &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("openai-community/gpt2") && e.contains("SYNTHLM_DOWNLOAD=1"),
        "{e}"
    );
}

/// Every GPT-2 variant a student cannot be is refused, naming the file that says so; so is a
/// step for a folder that has none, and an export into a folder that holds something else.
#[test]
fn configs_students_cannot_represent_are_refused_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let (m, tok) = tiny(dir.path());
    let base = dir.path().join("hf");
    hf::export(&m, &tok, &base, DType::F32).unwrap();
    let spoilt = |name: &str, key: &str, value: serde_json::Value| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            std::fs::copy(base.join(f), d.join(f)).unwrap();
        }
        let path = d.join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        c[key] = value;
        std::fs::write(&path, c.to_string()).unwrap();
        format!("{:#}", Student::load(&d, None).err().expect(name))
    };
    let cases: [(&str, &str, serde_json::Value, &str, &str); 6] = [
        (
            "act",
            "activation_function",
            "relu".into(),
            "config.json",
            "relu",
        ),
        ("inner", "n_inner", 64.into(), "config.json", "n_inner = 64"),
        (
            "eps",
            "layer_norm_epsilon",
            1e-6.into(),
            "config.json",
            "layer_norm_epsilon",
        ),
        (
            "untie",
            "tie_word_embeddings",
            false.into(),
            "config.json",
            "untied",
        ),
        (
            "scale",
            "scale_attn_weights",
            false.into(),
            "config.json",
            "scale_attn_weights",
        ),
        ("ctx", "n_positions", 32.into(), "model.safetensors", "wpe"),
    ];
    for (name, key, value, file, want) in cases {
        let e = spoilt(name, key, value);
        assert!(
            e.contains(&format!("{name}/{file}")) && e.contains(want),
            "{name}: {e}"
        );
    }
    // A tokenizer with more tokens than the model's vocabulary.
    let big = common::training_fixture(&dir.path().join("big"), 500);
    let d = dir.path().join("vocab");
    std::fs::create_dir_all(&d).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(base.join(f), d.join(f)).unwrap();
    }
    std::fs::copy(
        big.data.tokenizer.as_ref().unwrap(),
        d.join("tokenizer.json"),
    )
    .unwrap();
    let e = format!("{:#}", Student::load(&d, None).err().unwrap());
    assert!(
        e.contains("vocab/tokenizer.json") && e.contains("vocab_size = 305"),
        "{e}"
    );
    let e = format!("{:#}", Student::load(&base, Some(3)).err().unwrap());
    assert!(e.contains("has no steps"), "{e}");
    // A run folder (anything that is not an earlier export) is not exported into.
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("config.toml"), "x").unwrap();
    let e = hf::export(&m, &tok, &run, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds other files"), "{e}");
    assert!(!run.join("config.json").exists());
    // Over an earlier export is fine.
    hf::export(&m, &tok, &base, DType::F16).unwrap();
}
