# Sourced by the scripts: where builds and installed tools live (outside the clone, so a second
# run on the same machine reuses them), and the flags every build uses.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/synthlm/target}"
# candle: no spinning elementwise pool beside rayon (see src/cpu.rs).
export CANDLE_NUM_THREADS="${CANDLE_NUM_THREADS:-1}"
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
export SYNTHLM_TOOLS="${SYNTHLM_TOOLS:-$HOME/.cache/synthlm/tools}"
mkdir -p "$CARGO_TARGET_DIR" "$SYNTHLM_TOOLS"
# The synthlm binary built by `cargo build --release`.
export SYNTHLM_BIN="$CARGO_TARGET_DIR/release/synthlm"
