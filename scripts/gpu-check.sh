#!/usr/bin/env bash
# Issue 13's checks on a GPU machine that has CUDA, PyTorch and transformers but no Rust and no
# network: everything is built here and carried in .gpu/ (git-ignored through .git/info/exclude).
#   bash scripts/gpu-check.sh prepare    here: the cuda binary and test binary (stripped, xz),
#                                        the comparison corpus and its config, into .gpu/
#   bash scripts/gpu-check.sh run OUT    there: every check, logs and JSON into OUT
#   bash scripts/gpu-check.sh tests OUT  there: the cuda feature's tests only
#   bash scripts/gpu-check.sh cpu        here: the CPU half of the loss comparison
# The comparison: gpt2-small (vocab 8192) on the real corpus, 40 steps of 8 x 256 tokens, the
# same config and seed on the CPU (f32) and on the GPU (f32 and bf16).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:?usage: $0 prepare|run OUT|cpu}"
G=.gpu

config() { # the comparison run's config: $1 = device, $2 = precision, $3 = out dir
  cat <<EOF
profile = "mini"
out_dir = "$3"
device = "$1"

[model]
preset = "gpt2-small"

[data]
train = "$G/data/train"
tokenizer = "$G/data/tokenizer.json"

[data.val]
cosmo = "$G/data/val-cosmo"

[train]
max_steps = 40
batch_size = 8
seq_len = 256
lr = 6e-4
min_lr = 6e-5
warmup_steps = 10
log_interval = 1
eval_interval = 40
eval_windows = 64
ckpt_interval = 1000
precision = "$2"
EOF
}

case "$mode" in
prepare)
  source scripts/env.sh
  bash scripts/setup.sh cuda
  source scripts/cuda-env.sh
  mkdir -p "$G/bin" "$G/data" "$G/lib"
  for l in libfontconfig.so.1 libfreetype.so.6 libpng16.so.16 libbrotlidec.so.1 libbrotlicommon.so.1 libexpat.so.1; do
    cp -L "/lib/x86_64-linux-gnu/$l" "$G/lib/"
  done
  if [ ! -f "$G/data/train/manifest.json" ]; then
    "$SYNTHLM_BIN" data tokenizer-train -i .work/real/documents.jsonl --vocab-size 8192 -o "$G/data/tokenizer.json"
    # 2,000 documents (~0.5M tokens): the comparison reads 82k; the carried tree stays small
    "$SYNTHLM_BIN" data pack -i .work/real/documents.jsonl --limit 2000 -t "$G/data/tokenizer.json" -o "$G/data/train"
    "$SYNTHLM_BIN" data pack -i data/generated/v2/cosmo --schema cosmopedia --limit 300 \
      -t "$G/data/tokenizer.json" -o "$G/data/val-cosmo"
  fi
  cargo build --release --locked --features nccl --bin synthlm
  cp "$CARGO_TARGET_DIR/release/synthlm" "$G/bin/synthlm"
  # the cuda feature's tests (the Hugging Face export against transformers among them)
  for t in cuda; do
    exe=$(cargo test --release --locked --features nccl --test "$t" --no-run --message-format=json 2>/dev/null \
      | python3 -c "import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get('reason') == 'compiler-artifact' and m['target']['name'] == '$t' and m.get('executable'):
        print(m['executable'])")
    cp "$exe" "$G/bin/test-$t"
  done
  strip "$G"/bin/synthlm "$G"/bin/test-*
  # what travels is capped at 64 MiB with the checkout: only the compressed binaries
  xz -T2 -9e -f "$G"/bin/synthlm "$G"/bin/test-*
  ls -la "$G/bin"
  ;;
run|tests)
  OUT="${2:?OUT}"
  for f in "$G"/bin/*.xz; do xz -dkf "$f"; done
  chmod +x "$G"/bin/*
  # the CUDA libraries PyTorch ships (cuBLAS 13, cuRAND, NVRTC, cudart) for the binary to load
  site=$(python3 -c "import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))")
  # and, last, fontconfig and freetype (the plotting crate links them), carried from here
  export LD_LIBRARY_PATH="$(ls -d "$site"/nvidia/*/lib | tr '\n' ':')${LD_LIBRARY_PATH:-}:$PWD/$G/lib"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
  echo "== cuda tests"
  SYNTHLM_PYTHON=python3 timeout 240 "$G/bin/test-cuda" --test-threads 1 --nocapture 2>&1 | tee "$OUT/test-cuda.log" || true
  [ "$mode" = run ] || exit 0
  ldd "$G/bin/synthlm" | grep -E "cuda|cublas|curand|nvrtc" | tee -a "$OUT/gpu.txt"
  echo "== loss comparison on the GPU"
  for p in f32 bf16; do
    config cuda "$p" "$G/runs/gpu-$p" > "$G/gpu-$p.toml"
    timeout 120 "$G/bin/synthlm" train --config "$G/gpu-$p.toml" 2>&1 | tail -3 || true
  done
  # at most 8 files come back: the runs' metrics and summaries travel as one tar
  (cd "$G/runs" && tar cf "$OUT/runs.tar" gpu-*/metrics.jsonl gpu-*/summary.json) || true
  echo "== bench: synthlm, gpt2-small at context 1024 (MFU; nanoGPT's shape below)"
  timeout 150 "$G/bin/synthlm" bench train --steps 10 --device cuda --precision bf16 \
    --case gpt2-small:50257:1024:16 --case gpt2-small:50257:1024:16:ckpt \
    --json "$OUT/bench-mfu.json" 2>&1 | tee "$OUT/bench-synthlm.md" || true
  echo "== bench: peak memory at the planner's micro-batch (4 x 1024, vocabulary 32768)"
  timeout 240 "$G/bin/synthlm" bench train --steps 3 --device cuda --precision bf16 \
    --case gpt2-small:32768:1024:4 --case gpt2-small:32768:1024:4:ckpt \
    --case gpt-500m:32768:1024:4 --case gpt-500m:32768:1024:4:ckpt \
    --case gpt-1b:32768:1024:4 --case gpt-1b:32768:1024:4:ckpt \
    --json "$OUT/bench-memory.json" 2>&1 | tee -a "$OUT/bench-synthlm.md" || true
  echo "== bench: nanoGPT (PyTorch) on the same shape"
  [ -n "${SKIP_TORCH:-}" ] || for c in "" --compile; do
    timeout 180 python3 scripts/bench_nanogpt.py --batch 16 $c 2>&1 | tail -1 | tee -a "$OUT/bench-nanogpt.jsonl" || true
  done
  ;;
cpu)
  source scripts/env.sh
  config cpu f32 "$G/runs/cpu-f32" > "$G/cpu-f32.toml"
  "$SYNTHLM_BIN" train --config "$G/cpu-f32.toml"
  ;;
*) echo "usage: $0 prepare|run OUT|cpu" >&2; exit 2 ;;
esac
