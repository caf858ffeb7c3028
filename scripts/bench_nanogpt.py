#!/usr/bin/env python3
"""PyTorch's speed on the shape `synthlm bench train` measures: nanoGPT's model.py (vendored in
scripts/nanogpt/, unchanged) on the same GPU, for the >= 0.5x-PyTorch comparison of issue 13.

    python3 scripts/bench_nanogpt.py --vocab 50257 --seq 1024 --batch 16 --layers 12 --d 768 \
        --heads 12 [--compile] [--steps 10]

The model is GPT-2's shape with biases (as synthlm's), dropout 0, bf16 autocast (bf16 matmuls,
f32 master weights, as synthlm's bf16 mode), nanoGPT's fused AdamW, on random tokens (speed does
not depend on the data), timed over --steps optimizer steps after 3 warm-up steps. FLOPs per
token use synthlm's formula, 6N + 12·L·d·T with N every parameter (the tied embedding once),
so the two MFUs compare. Prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "nanogpt"))
from model import GPT, GPTConfig  # noqa: E402

H100_BF16_PEAK = 989.4e12  # dense BF16, FP32 accumulate (H100 SXM and H200 alike)


def main():
    p = argparse.ArgumentParser()
    for k, v in [("vocab", 50257), ("seq", 1024), ("batch", 16), ("layers", 12), ("d", 768),
                 ("heads", 12), ("steps", 10)]:
        p.add_argument(f"--{k}", type=int, default=v)
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    torch.manual_seed(0)
    cfg = GPTConfig(block_size=a.seq, vocab_size=a.vocab, n_layer=a.layers, n_head=a.heads,
                    n_embd=a.d, dropout=0.0, bias=True)
    model = GPT(cfg).to("cuda")
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-4, betas=(0.9, 0.95),
                                     device_type="cuda")
    step_model = torch.compile(model) if a.compile else model
    x = torch.randint(a.vocab, (a.batch, a.seq), device="cuda")
    y = torch.randint(a.vocab, (a.batch, a.seq), device="cuda")

    def step():
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            _, loss = step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    loss.item()
    torch.cuda.synchronize()
    step_s = (time.perf_counter() - t0) / a.steps
    n = sum(p.numel() for p in model.parameters())
    flops_per_token = 6 * n + 12 * a.layers * a.d * a.seq
    tps = a.batch * a.seq / step_s
    print(json.dumps({
        "impl": "nanoGPT model.py, PyTorch " + torch.__version__ + (" + torch.compile" if a.compile else " eager"),
        "gpu": torch.cuda.get_device_name(), "params": n, "vocab": a.vocab, "seq": a.seq,
        "batch": a.batch, "step_ms": step_s * 1e3, "tokens_per_s": tps,
        "mfu": tps * flops_per_token / H100_BF16_PEAK,
        "peak_memory_mb": torch.cuda.max_memory_allocated() / 1e6,
    }))


if __name__ == "__main__":
    main()
