#!/usr/bin/env bash
# tools/bench/runtime_vs_transformers.sh: our CPU runtime (//experiments/runtime:decode_benchmark)
# against transformers on SmolLM2-135M's shape, side by side on one machine, both pinned to the
# same 2 cores: prefill of 2048 tokens/s and decode tokens/s, float32 and bfloat16, best of 5.
#
# Here (the build machine, CUDA toolkit; builds through tools/gpu_bundle, as the GPU suite does):
#   tools/bench/runtime_vs_transformers.sh build [--out dist/runtime_bench]
#     bundles decode_benchmark and copies this script and tools/fixtures/smollm2_reference.py
#     beside it (DIR/bin, DIR/lib, DIR/run as tools/gpu_bundle writes them).
# There (an idle host with PyTorch 2.11 and transformers 5.x; no network, no GGUF needed):
#   DIR/runtime_vs_transformers.sh remote [--python /opt/torch/.venv/bin/python] [--cpus 2,3]
#       [--repeats 5] [--prefill 2048] [--decode 64] [--profile] [--out OUTDIR]
#     for float32 then bfloat16: ours, then transformers (random weights of SmolLM2-135M's shape,
#     --random_config), each under `taskset -c CPUS` with OMP_NUM_THREADS=2, torch threads 2 and
#     OMP_WAIT_POLICY=PASSIVE. Writes OUTDIR (default $OUT, else ./runtime_bench_out):
#       bench.log            everything printed (machine, each repeat, each best, the profiles)
#       ours_<dtype>.json, transformers_<dtype>.json   each side's best figures
#       results.json, results.md   the table: tokens/s of both and ours / transformers, with the
#                                  machine (CPU model, cores, host, load average, versions)
#     --profile: each side then prints its top ops by self time for one prefill and the decode
#     steps (LibTorch's profiler in ours, torch.profiler in transformers), in bench.log.
# Runtime: about 2 x (2 dtypes x 6 prefills of 2048 + 6 x 64 decode steps) on 2 cores; a few
# minutes on a modern x86 core pair, more with --profile.
set -uo pipefail

mode="${1:-}"
shift || true
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ "$mode" == "build" ]]; then
  set -e
  out="dist/runtime_bench"
  while (( $# )); do
    case "$1" in
      --out) out="$2"; shift 2 ;;
      --out=*) out="${1#--out=}"; shift ;;
      *) echo "runtime_vs_transformers build: unexpected '$1'" >&2; exit 2 ;;
    esac
  done
  root=$(cd "$here/../.." && pwd)
  cd "$root"
  tools/gpu_bundle --out "$out" //experiments/runtime:decode_benchmark
  cp tools/bench/runtime_vs_transformers.sh tools/fixtures/smollm2_reference.py "$out/"
  echo "runtime_vs_transformers: $out ready ($(du -sh "$out" | cut -f1)); there:"
  echo "  $out/runtime_vs_transformers.sh remote --python /opt/torch/.venv/bin/python"
  exit 0
fi

if [[ "$mode" != "remote" ]]; then
  sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  [[ "$mode" == "-h" || "$mode" == "--help" ]] && exit 0
  exit 2
fi

python="${PYTHON:-python3}"
cpus=""
repeats=5
prefill=2048
decode=64
profile=""
out="${OUT:-./runtime_bench_out}"
while (( $# )); do
  case "$1" in
    --python) python="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --prefill) prefill="$2"; shift 2 ;;
    --decode) decode="$2"; shift 2 ;;
    --profile) profile="--profile"; shift ;;
    --out) out="$2"; shift 2 ;;
    *) echo "runtime_vs_transformers remote: unexpected '$1'" >&2; exit 2 ;;
  esac
done
[[ -x "$here/run" && -x "$here/bin/decode_benchmark" ]] || {
  echo "runtime_vs_transformers: $here has no bundled decode_benchmark (run 'build' first)" >&2; exit 2; }
"$python" -c 'import torch, transformers' 2>/dev/null || {
  echo "runtime_vs_transformers: $python cannot import torch and transformers (--python)" >&2; exit 2; }
if [[ -z "$cpus" ]]; then  # two cores of the last pair: away from core 0's interrupts
  n=$(nproc)
  cpus="$(( n >= 2 ? n - 2 : 0 )),$(( n - 1 ))"
fi
mkdir -p "$out"
log="$out/bench.log"
: > "$log"
say() { echo "$@" | tee -a "$log"; }

export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE PYTHONUNBUFFERED=1
export PYTHON="$python"  # the bundle's runner finds LibTorch through it
say "runtime_vs_transformers: $(date -u +%FT%TZ), host $(hostname), $(nproc) cores, pinned to $cpus"
say "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
say "$("$python" -c 'import sys, torch, transformers; print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__)')"

status=0
for dtype in float32 bfloat16; do
  say ""
  say "== ours, $dtype"
  taskset -c "$cpus" "$here/run" decode_benchmark --threads=2 --dtype="$dtype" \
    --repeats="$repeats" --prefill_tokens="$prefill" --decode_tokens="$decode" \
    --json_out="$out/ours_$dtype.json" $profile 2>&1 | tee -a "$log"
  (( PIPESTATUS[0] == 0 )) || { say "runtime_vs_transformers: ours failed ($dtype)"; status=1; }
  say ""
  say "== transformers, $dtype"
  taskset -c "$cpus" "$python" "$here/smollm2_reference.py" --random_config --bench --threads=2 \
    --dtype="$dtype" --repeats="$repeats" --prefill_tokens="$prefill" --decode_tokens="$decode" \
    --json_out="$out/transformers_$dtype.json" $profile 2>&1 | tee -a "$log"
  (( PIPESTATUS[0] == 0 )) || { say "runtime_vs_transformers: transformers failed ($dtype)"; status=1; }
done

"$python" - "$out" "$cpus" <<'PY' | tee -a "$log"
import json, os, platform, sys
out, cpus = sys.argv[1], sys.argv[2]
def read(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None
cpu = "unknown CPU"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
machine = {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "pinned_cpus": cpus,
           "load_average_after": open("/proc/loadavg").read().split()[:3]}
rows, lines = [], []
for dtype in ("float32", "bfloat16"):
    ours, theirs = read(f"ours_{dtype}.json"), read(f"transformers_{dtype}.json")
    for what, key in (("prefill", "prefill_tokens_per_s"), ("decode", "decode_tokens_per_s")):
        o = ours[key] if ours else None
        t = theirs[key] if theirs else None
        ratio = o / t if o and t else None
        rows.append({"dtype": dtype, "phase": what, "ours": o, "transformers": t,
                     "ours_over_transformers": ratio})
        fmt = lambda v, d: "not measured" if v is None else f"{v:.{d}f}"
        lines.append(f"| {dtype} | {what} | {fmt(o, 2)} | {fmt(t, 2)} | {fmt(ratio, 3)} |")
sides = {n: read(n) for n in sorted(os.listdir(out)) if n.endswith(".json") and n != "results.json"}
json.dump({"machine": machine, "rows": rows, "runs": sides}, open(os.path.join(out, "results.json"), "w"),
          indent=1)
any_side = next((s for s in sides.values() if s), {})
md = [f"CPU runtime against transformers, SmolLM2-135M shape (random weights), "
      f"{any_side.get('prefill_tokens', '?')}-token prefill and {any_side.get('decode_tokens', '?')} "
      f"decode steps, best of {any_side.get('repeats', '?')}, 2 threads pinned to cpus {cpus} of "
      f"{machine['host']} ({cpu}, {machine['cores']} cores); tokens/s.", "",
      "| dtype | phase | ours | transformers | ours / transformers |", "|---|---|---|---|---|"] + lines
open(os.path.join(out, "results.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
say "runtime_vs_transformers: results in $out (results.md, results.json, bench.log)"
exit $status
