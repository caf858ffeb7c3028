#!/usr/bin/env bash
# The README's test command: install what is missing, then run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh build
export HF_HUB_OFFLINE=1
cargo test --release --locked 2>&1
