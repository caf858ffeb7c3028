#!/usr/bin/env bash
# Install what the project needs, only what is missing. Safe to run repeatedly.
#   scripts/setup.sh build     system libraries the crate links (fontconfig/freetype for plots)
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
    *) echo "setup: unknown part $part" >&2; exit 2 ;;
  esac
done
