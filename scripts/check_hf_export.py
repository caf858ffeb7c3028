#!/usr/bin/env python3
"""Check a `synthlm export --hf DIR` folder with Hugging Face's own Python packages.

    python3 scripts/check_hf_export.py DIR EXPECTED.json

EXPECTED.json (written by tests/hf_export.rs) holds a text, the ids synthlm's tokenizer gives
it, and synthlm's logits for those ids. Checked:
  1. with `safetensors` (numpy): every GPT-2 tensor name, shape and dtype config.json implies,
     and nothing else;
  2. with `tokenizers`: tokenizer.json encodes the text to synthlm's ids;
  3. an independent numpy GPT-2 forward pass, written from transformers' GPT-2 definition
     (Conv1D x.W+b, gelu_new, pre-LayerNorm, causal softmax attention, tied head), gives
     synthlm's logits within 1e-4;
  4. if `transformers` and `torch` import: GPT2LMHeadModel.from_pretrained(DIR) gives the same
     logits within 1e-4, and AutoTokenizer the same ids. Otherwise it says so.
Exits non-zero on any mismatch.
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def expected_shapes(c):
    d, v, t, n = c["n_embd"], c["vocab_size"], c["n_positions"], c["n_layer"]
    out = {"transformer.wte.weight": (v, d), "transformer.wpe.weight": (t, d)}
    for i in range(n):
        p = f"transformer.h.{i}."
        out.update({
            p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
            p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
            p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
            p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
            p + "mlp.c_fc.weight": (d, 4 * d), p + "mlp.c_fc.bias": (4 * d,),
            p + "mlp.c_proj.weight": (4 * d, d), p + "mlp.c_proj.bias": (d,),
        })
    out["transformer.ln_f.weight"] = (d,)
    out["transformer.ln_f.bias"] = (d,)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def forward(w, c, ids):
    """GPT-2 as transformers' modeling_gpt2 computes it, in float64."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    t, d, nh, eps = len(ids), c["n_embd"], c["n_head"], c["layer_norm_epsilon"]
    hd = d // nh
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:t]
    mask = np.triu(np.ones((t, t), dtype=bool), 1)
    for i in range(c["n_layer"]):
        p = lambda s: w[f"transformer.h.{i}.{s}"]
        h = layer_norm(x, p("ln_1.weight"), p("ln_1.bias"), eps)
        q, k, v = np.split(h @ p("attn.c_attn.weight") + p("attn.c_attn.bias"), 3, axis=-1)
        heads = []
        for j in range(nh):
            s = slice(j * hd, (j + 1) * hd)
            a = q[:, s] @ k[:, s].T / np.sqrt(hd)
            a[mask] = -np.inf
            a = np.exp(a - a.max(-1, keepdims=True))
            heads.append((a / a.sum(-1, keepdims=True)) @ v[:, s])
        x = x + np.concatenate(heads, -1) @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        h = layer_norm(x, p("ln_2.weight"), p("ln_2.bias"), eps)
        h = gelu_new(h @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias"))
        x = x + h @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
    x = layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return x @ w["transformer.wte.weight"].T


def main(folder, expected_path):
    c = json.load(open(f"{folder}/config.json"))
    exp = json.load(open(expected_path))
    ids, want = exp["ids"], np.array(exp["logits"], dtype=np.float64)
    tol = exp.get("tolerance", 1e-4)
    w = load_file(f"{folder}/model.safetensors")
    shapes = expected_shapes(c)
    dtype = {"float32": np.float32, "float16": np.float16}[c["torch_dtype"]]
    assert set(w) == set(shapes), f"tensor names differ: {sorted(set(w) ^ set(shapes))[:5]}"
    for k, s in shapes.items():
        assert w[k].shape == s, f"{k}: shape {w[k].shape}, config implies {s}"
        assert w[k].dtype == dtype, f"{k}: dtype {w[k].dtype}, config says {c['torch_dtype']}"
    print(f"safetensors: {len(w)} tensors, names, shapes and dtype ({c['torch_dtype']}) match config.json")
    got_ids = Tokenizer.from_file(f"{folder}/tokenizer.json").encode(exp["text"], add_special_tokens=False).ids
    assert got_ids == ids, f"tokenizers gives {got_ids[:10]}..., synthlm {ids[:10]}..."
    print(f"tokenizers: {len(ids)} ids equal synthlm's")
    diff = np.abs(forward(w, c, ids) - want).max()
    print(f"numpy reference forward: max |logit difference| {diff:.3e}")
    assert diff < tol, f"numpy reference differs by {diff}"
    try:
        import torch
        from transformers import AutoTokenizer, GPT2LMHeadModel
    except ImportError:
        print("transformers: not installed here; its logits were not compared")
        return
    model = GPT2LMHeadModel.from_pretrained(folder, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    diff = np.abs(logits - want).max()
    print(f"transformers GPT2LMHeadModel: max |logit difference| {diff:.3e}")
    assert diff < tol, f"transformers differs by {diff}"
    hf_ids = AutoTokenizer.from_pretrained(folder)(exp["text"], add_special_tokens=False).input_ids
    assert hf_ids == ids, "AutoTokenizer gives other ids"
    print("transformers AutoTokenizer: ids equal synthlm's")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
