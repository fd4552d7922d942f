#!/usr/bin/env bash
# Runs an experiment binary (first argument) with the remaining arguments, for manual real-model
# test targets: OMP_WAIT_POLICY=PASSIVE (shared machine), records to the test's outputs.
set -euo pipefail
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
binary="$1"
shift
exec "${binary}" "$@"
