#!/usr/bin/env bash
# Generate (or continue) the four mini corpora under data/generated/ with the settings the book
# uses. Resumable: run it again after any interruption. Round-robin in steps of STEP records,
# so every family grows together.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -x "$SYNTHLM_BIN" ] || cargo build --release --locked
STEP="${STEP:-300}"
# Records per family: each reaches >= ~1M teacher tokens of text (see data/generated/README.md).
declare -A TARGET=([stories]=2600 [cosmo]=2400 [magpie]=2400 [instruct]=2800)
for round in $(seq 1 100); do
  left=0
  for g in stories cosmo magpie instruct; do
    n=$(( round * STEP < TARGET[$g] ? round * STEP : TARGET[$g] ))
    "$SYNTHLM_BIN" generate run --generator "$g" --records "$n" --out "data/generated/$g" --seed 1 --slots 64
    [ "$n" -lt "${TARGET[$g]}" ] && left=1
  done
  [ "$left" = 0 ] && break
done
