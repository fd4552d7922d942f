#!/usr/bin/env bash
# One fuzzer for 60 s on its seeds (see BUILD: *_fuzz_60s; needs tools/sanitize fuzz).
# Usage: fuzz_60s_test.sh <make_seeds> <fuzzer> <make_seeds folder> [seed file]...
set -euo pipefail
make_seeds=$1 fuzzer=$2 folder=$3
shift 3
generated="${TEST_TMPDIR:-$(mktemp -d)}/seeds"
"$make_seeds" "$generated"
exec "$(dirname "$0")/run_fuzzer.sh" "$fuzzer" 60 "$generated/$folder" "$@"
