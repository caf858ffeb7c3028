#!/usr/bin/env bash
# The README's test command: install what is missing, then run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh build
export HF_HUB_OFFLINE=1
log="$(mktemp)"
status=0
cargo test --release --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one per test binary, the last of which is
# the doc-tests', often empty).
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "total: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
rm -f "$log"
exit "$status"
