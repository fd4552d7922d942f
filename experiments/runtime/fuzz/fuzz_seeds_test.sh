#!/usr/bin/env bash
# Runs every seed through its fuzz target once (see BUILD: fuzz_seeds_test).
# Usage: fuzz_seeds_test.sh <make_seeds> [-- <fuzzer> <make_seeds folder> <seed file>...]...
set -euo pipefail
make_seeds=$1
shift
generated="${TEST_TMPDIR:-$(mktemp -d)}/seeds"
"$make_seeds" "$generated"

run_group() {
  local fuzzer=$1 folder=$2
  shift 2
  local -a files
  mapfile -t files < <(find "$generated/$folder" -type f | sort)
  files+=("$@")
  echo "== $fuzzer: ${#files[@]} seeds"
  # Files (never folders) as arguments: libFuzzer runs each once instead of fuzzing.
  "$fuzzer" "${files[@]}"
}

[[ ${1:-} == "--" ]] || { echo "fuzz_seeds_test.sh: expected -- after make_seeds" >&2; exit 2; }
shift
group=()
for arg in "$@" --; do
  if [[ $arg == "--" ]]; then
    run_group "${group[@]}"
    group=()
  else
    group+=("$arg")
  fi
done
echo "fuzz_seeds_test: every seed ran"
