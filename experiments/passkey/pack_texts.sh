#!/usr/bin/env bash
# experiments/passkey/pack_texts.sh: copies the texts of a prompt set into one folder with a
# manifest of the same sha256 pins and relative paths, for a machine whose /usr/share lacks them
# (a GPU host that is not Debian 12). The pins are unchanged, so the run still refuses any text
# whose bytes differ.
#
# Usage: experiments/passkey/pack_texts.sh OUT_DIR [MANIFEST]
#   MANIFEST defaults to experiments/runtime/prompt_sets/debian_texts.sha256; writes
#   OUT_DIR/texts/<n>_<name> and OUT_DIR/manifest.sha256 (paths relative to OUT_DIR's parent, so
#   run from there: --prompt_set=OUT_DIR/manifest.sha256).
set -euo pipefail
out="${1:?usage: pack_texts.sh OUT_DIR [MANIFEST]}"
manifest="${2:-experiments/runtime/prompt_sets/debian_texts.sha256}"
[[ -f "$manifest" ]] || { echo "pack_texts: $manifest: no such manifest" >&2; exit 2; }
mkdir -p "$out/texts"
: > "$out/manifest.sha256"
n=0
while read -r hash path; do
  [[ -z "$hash" || "$hash" == \#* ]] && continue
  [[ -f "$path" ]] || { echo "pack_texts: $path (in $manifest) is missing here" >&2; exit 1; }
  actual=$(sha256sum "$path" | cut -d' ' -f1)
  [[ "$actual" == "$hash" ]] || { echo "pack_texts: $path has sha256 $actual, $manifest pins $hash" >&2; exit 1; }
  dest="$out/texts/$(printf '%02d' "$n")_$(echo "${path#/}" | tr '/' '_')"
  cp "$path" "$dest"
  echo "$hash  $dest" >> "$out/manifest.sha256"
  n=$((n + 1))
done < "$manifest"
echo "pack_texts: $n texts -> $out/manifest.sha256 ($(du -sh "$out" | cut -f1))"
