#!/usr/bin/env bash
# Generate (or continue) the four v2 corpora under data/generated/v2/ with the recipe the book
# uses (recipe 2; the v1 corpora in data/generated/v1/ are kept as they were generated).
# Resumable: run it again after any interruption. Round-robin, STEP record indices at a time,
# until every family holds at least MIN_KEPT teacher tokens of kept text (manifest
# `kept_tokens`): dropped records (truncated, mid-sentence, missing story verb, not a task ...)
# count as indices but not as kept text, so the number of indices each family needs is found
# by running, not fixed in advance.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
SYNTHLM_BIN="${SYNTHLM_GEN_BIN:-$SYNTHLM_BIN}"
[ -x "$SYNTHLM_BIN" ] || cargo build --release --locked
STEP="${STEP:-1000}"
MIN_KEPT="${MIN_KEPT:-2100000}"
OUT="${OUT:-data/generated/v2}"
kept() {  # kept_tokens and target of a family's manifest (0 0 if none yet)
  python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m.get('kept_tokens',0), m['target'])" \
    "$OUT/$1/manifest.json" 2>/dev/null || echo "0 0"
}
while :; do
  left=0
  for g in stories cosmo magpie instruct; do
    read -r have target < <(kept "$g")
    [ "$have" -ge "$MIN_KEPT" ] && continue
    left=1
    "$SYNTHLM_BIN" generate run --generator "$g" --records $(( target + STEP )) --out "$OUT/$g" \
      --seed 1 --slots 64
  done
  [ "$left" = 0 ] && break
done
echo "all four families hold >= $MIN_KEPT kept teacher tokens"
