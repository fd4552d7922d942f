#!/usr/bin/env bash
# Runs one libFuzzer target for a while on a writable copy of its seeds, printing libFuzzer's own
# summary (#N DONE, cov, ft, corpus). Used by the manual `fuzz`-tagged tests (60 s) and by hand:
#   tools/sanitize fuzz build //experiments/runtime/fuzz:all
#   experiments/runtime/fuzz/run_fuzzer.sh <fuzzer binary> <seconds> <seed file or folder>...
# Crash reproducers are written to $FUZZ_ARTIFACTS (default: the test's outputs folder or ./).
# Fails unless the binary is a libFuzzer build and the run ends without a finding.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: run_fuzzer.sh <fuzzer binary> <seconds> <seed file or folder>..." >&2
  exit 2
fi
fuzzer=$1
seconds=$2
shift 2

work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/seeds"
for seed in "$@"; do
  if [[ -d "$seed" ]]; then
    cp -rL "$seed"/. "$work/seeds/"
  else
    cp -L "$seed" "$work/seeds/"
  fi
done
artifacts=${FUZZ_ARTIFACTS:-${TEST_UNDECLARED_OUTPUTS_DIR:-.}}
mkdir -p "$artifacts"

# -rss_limit_mb: a parser that allocates for a length it never checked against the file shows up
# as an out-of-memory finding (2 GiB is far above what any input of at most -max_len needs).
# -timeout: one input taking 25 s is a hang (a quadratic loop on a small input).
# -max_len: 1 MiB, above every seed (the fixture checkpoints are 0.4 MB).
set +e
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 -max_len=1048576 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/corpus" "$work/seeds" 2>&1 |
  tee "$work/log"
status=${PIPESTATUS[0]}
set -e
if ! grep -q "^#[0-9]*.*INITED" "$work/log"; then
  echo "run_fuzzer.sh: $fuzzer did not fuzz (not a libFuzzer build? use tools/sanitize fuzz)" >&2
  exit 1
fi
exit "$status"
