#!/usr/bin/env bash
# Runs the codebook and selected-attention CUDA tests and benchmarks on a GPU host in one call
# (device/METHOD.md: one script a device call), from a bundle made on the build machine:
#
#   tools/gpu_bundle --out /work/main/dist/codebook //kernels/turboquant:codebook_attention_cuda_test \
#       //kernels/attention:selected_attention_cuda_test \
#       //kernels/turboquant:codebook_attention_cuda_benchmark \
#       //kernels/attention:selected_attention_cuda_benchmark
#   cp -r gates/specs kernels/turboquant/cuda_suite.sh /work/main/dist/codebook/
#   git rev-parse HEAD > /work/main/dist/codebook/COMMIT
#   # on the GPU host, from the repository root: dist/codebook/cuda_suite.sh   (writes to $OUT)
#
# Benchmarks first (their records carry their own correctness check), then the tests; each step
# has its own time limit so a slow step cannot cost the others' output.
set -uo pipefail
bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-$PWD/cuda_suite_out}"
mkdir -p "$out"
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
host="$(hostname) (driver ${driver:-unknown})"
commit=$(cat "$bundle/COMMIT" 2>/dev/null || echo unknown)
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  echo "$name: rc=$? in $((SECONDS - start)) s"
}
step codebook_benchmark 70 "$bundle/run" codebook_attention_cuda_benchmark \
  --specs_dir="$bundle/specs" --records_out="$out/codebook_attention_cuda.jsonl" \
  --git_commit="$commit" --host="$host"
step selected_benchmark 25 "$bundle/run" selected_attention_cuda_benchmark \
  --specs_dir="$bundle/specs" --records_out="$out/selected_attention_cuda.jsonl" \
  --git_commit="$commit" --host="$host"
step codebook_test 30 "$bundle/run" codebook_attention_cuda_test
step selected_test 20 "$bundle/run" selected_attention_cuda_test
for f in codebook_benchmark selected_benchmark; do cat "$out/$f.txt"; done
for f in codebook_test selected_test; do grep -E "^\[  (PASSED|FAILED) |FAILED|Failure|error|Expected|Which is|seed" "$out/$f.txt" | head -40; done
