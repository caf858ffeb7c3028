#!/usr/bin/env bash
# Build a flat directory bundle for `tectonic -b DIR` from Debian's TeX Live, offline:
# one symlink per file name (first found wins), SHA256SUM with one digest, and the format file.
set -euo pipefail
out="$1"
[ -f "$out/SHA256SUM" ] && [ -f "$out/tectonic-format-latex.tex" ] && exit 0
tmp="$out.partial"
rm -rf "$tmp"; mkdir -p "$tmp"
for root in /usr/share/texlive/texmf-dist /usr/share/texmf /etc/texmf /var/lib/texmf; do
  [ -d "$root" ] || continue
  find -L "$root" -type f -print0 2>/dev/null | while IFS= read -r -d '' f; do
    name="$(basename "$f")"
    [ -e "$tmp/$name" ] || ln -s "$f" "$tmp/$name"
  done
done
printf '\\input xelatex.ini\n' > "$tmp/tectonic-format-latex.tex"
# The digest identifies the bundle's contents (file names), so a changed TeX Live rebuilds formats.
ls "$tmp" | sha256sum | cut -d' ' -f1 > "$tmp/SHA256SUM"
rm -rf "$out"; mv "$tmp" "$out"
echo "tex bundle: $(ls "$out" | wc -l) files in $out"
