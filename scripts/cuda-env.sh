# Environment for `cargo build --features cuda` with the toolkit `scripts/setup.sh cuda` installs.
# Source it after scripts/env.sh. CUDA_COMPUTE_CAP=90: kernels for Hopper (H100/H200) only.
export CUDA_HOME="$SYNTHLM_TOOLS/cuda/nvidia/cu13"
export PATH="$CUDA_HOME/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export LIBRARY_PATH="$CUDA_HOME/lib:$CUDA_HOME/lib/stubs:$SYNTHLM_TOOLS/cuda/nvidia/nccl/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
