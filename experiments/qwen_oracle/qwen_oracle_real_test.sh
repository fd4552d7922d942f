#!/bin/bash
# Runs qwen_oracle at 2048 tokens on the embedded model (or $KVGATE_QWEN_DIR) and checks that it
# said which model ran, wrote 4 judged rows per configuration and printed the verdict table.
set -euo pipefail
binary="$1"
out="${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR}}/qwen_oracle.jsonl"
rm -f "$out"
export OMP_WAIT_POLICY=PASSIVE
start=$(date +%s)
"$binary" --context=2048 --out="$out" | tee "${TEST_TMPDIR}/stdout.txt"
echo "qwen_oracle_real_test: run took $(( $(date +%s) - start )) s"
head -1 "${TEST_TMPDIR}/stdout.txt" | grep -q "^qwen_oracle: .*model"
configs=$(grep -c '^| [a-z0-9_]*:' "${TEST_TMPDIR}/stdout.txt")
rows=$(wc -l < "$out")
[[ "$configs" -ge 4 ]] || { echo "only $configs configurations"; exit 1; }
[[ "$rows" -eq $(( 4 * configs )) ]] || { echo "$rows rows for $configs configurations"; exit 1; }
grep -q '"gate":{"id":"work_reduction_oracle"' "$out"
if grep -q '"verdict":"invalid"' "$out"; then echo "invalid rows"; exit 1; fi
echo PASS
