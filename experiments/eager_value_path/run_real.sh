#!/bin/bash
# Runs an experiment binary ($1) on the embedded model with the remaining arguments; under bazel
# test its records go to $TEST_UNDECLARED_OUTPUTS_DIR (experiment_io RecordsPath).
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
bin="$1"
shift
exec "$bin" "$@"
