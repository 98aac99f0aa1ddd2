#!/usr/bin/env bash
# Issue 12 benchmark: appending 512 tokens to memories built from 2k / 8k / 32k tokens
# (bench/append_bench.cc; C=512, M=256, FM, bf16 blobs), one base length per process, niced.
# The append must cost the same whatever the base's length (the memory is bounded by M).
#
# Usage: bench/run_append_bench.sh [build dir]
# Env: BIN (default $build/bench/append_bench), LENGTHS ("2048 8192 32768"), PRUNERS ("tova streaming_llm"), APPEND (512), REPEATS (5),
#      THREADS (1), NICE (10, as builds), OUT (bench/results).
# Resumable: rows already in $OUT/append_bench.jsonl are skipped. Writes append_bench.{json,md}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$root/scripts/env.sh"
build="${1:-$root/build}"
lengths="${LENGTHS:-2048 8192 32768}"
pruners="${PRUNERS:-tova streaming_llm}"
append="${APPEND:-512}"
repeats="${REPEATS:-5}"
threads="${THREADS:-1}"
nice_level="${NICE:-10}"
out="${OUT:-$root/bench/results}"
text="$root/tests/data/text/pride_and_prejudice.txt"
bin="${BIN:-$build/bench/append_bench}"
[ -x "$bin" ] || ninja -j1 -C "$build" append_bench
mkdir -p "$out"
jsonl="$out/append_bench.jsonl"
touch "$jsonl"
for p in $pruners; do
  for n in $lengths; do
    if grep -qF "\"base_tokens\":$n," "$jsonl" && grep -F "\"base_tokens\":$n," "$jsonl" | grep -qF "\"pruner\":\"$p\""; then
      echo "[append] skip $p N=$n (done)"; continue
    fi
    echo "[append] run $p N=$n (load $(cut -d' ' -f1-3 /proc/loadavg))"
    line="$(nice -n "$nice_level" "$bin" --text "$text" --base-tokens "$n" --append-tokens "$append" \
      --pruner "$p" --repeats "$repeats" --threads "$threads")"
    echo "$line" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read()); j["load_average"] = open("/proc/loadavg").read().split()[:3]
print(json.dumps(j, separators=(",", ":")))' >> "$jsonl"
    tail -1 "$jsonl"
  done
done
python3 "$here/append_report.py" "$jsonl" "$out/append_bench"
