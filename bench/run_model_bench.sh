#!/usr/bin/env bash
# Builds and runs bench/model_bench.cc (bundled model, CPU, fp32, 2 threads) and records
#   bench/results/model_bench.json  Google Benchmark's JSON output
#   bench/results/model_bench.md    a table of the results and the machine they came from.
# Not part of CI. Usage: bench/run_model_bench.sh [build dir] [extra --benchmark_* flags...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$root/scripts/env.sh"
build="${1:-$root/build}"
shift || true

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCTXMEM_PYTHON="$CTXMEM_PYTHON"
fi
ninja -C "$build" model_bench

out="$root/bench/results"
mkdir -p "$out"
load="$(cut -d' ' -f1-3 /proc/loadavg)"  # other work on the machine skews the numbers
# libgomp's threads spin while waiting by default; on a busy machine OMP_WAIT_POLICY=passive
# avoids burning the other thread's time slice. Recorded in the table either way.
omp_wait="${OMP_WAIT_POLICY:-default (active spin)}"
"$build/bench/model_bench" --benchmark_out="$out/model_bench.json" \
  --benchmark_out_format=json "$@"

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
cores="$(nproc)"
torch="$("$CTXMEM_PYTHON" -c 'import importlib.metadata as m; print(m.version("torch"))')"
model="$(basename "$CTXMEM_MODEL")"
python3 - "$out/model_bench.json" "$out/model_bench.md" "$cpu" "$cores" "$torch" "$model" "$load" "$omp_wait" <<'PY'
import json, sys
src, dst, cpu, cores, torch, model, load, omp_wait = sys.argv[1:]
runs = json.load(open(src))["benchmarks"]
what = {"BM_Prefill": "prefill", "BM_Decode": "decode"}
lines = [
    "# model_bench results",
    "",
    f"Model `{model}`, CPU, fp32, 2 threads. Machine: {cpu}, {cores} cores available; "
    f"torch {torch}. Load average before the run: {load}; OMP_WAIT_POLICY {omp_wait}. "
    "Produced by `bench/run_model_bench.sh`.",
    "",
    "| benchmark | phase | tokens | time per iteration (ms) | tokens/s |",
    "|---|---|---|---|---|",
]
for r in runs:
    if r.get("run_type") == "aggregate" or "error_message" in r:
        continue
    parts = [p for p in r["name"].split("/") if ":" not in p and p not in ("real_time", "manual_time")]
    phase = what.get(parts[0], parts[0])
    if phase == "decode":
        tokens = f"{parts[2]} after a {parts[1]}-token prompt"
    else:
        tokens = parts[1]
    lines.append(f"| `{'/'.join(parts)}` | {phase} | {tokens} | {r['real_time']:.1f} | "
                 f"{r['tokens_per_second']:.1f} |")
open(dst, "w").write("\n".join(lines) + "\n")
print(open(dst).read())
PY
