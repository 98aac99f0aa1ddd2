#!/usr/bin/env bash
# Issue 12 benchmark: bytes per original token vs perplexity of quantized memories: bf16 / int8
# / int4 (KIVI) x tova, conv, streaming_llm x M in {128, 256, 512} at C=512 FM on the first
# 8192 tokens of the shipped text (the eval_ppl_8k window). One setting per process
# (bench/kv_quant_bench.cc), niced.
#
# Usage: bench/run_kv_quant_bench.sh [build dir]
# Env: BIN (the binary, default $build/bench/kv_quant_bench), TOKENS (8192), CHUNK (512), MEMORIES ("128 256 512"), PRUNERS ("tova conv streaming_llm"),
#      DTYPES ("bf16 int8 int4"), GROUP (64), EXTRA ("int4:32 int8:32": dtype:group settings run
#      after the grid for tova at M=256), THREADS (1), NICE (10, as builds), OUT (bench/results).
# Resumable: settings already in $OUT/kv_quant.jsonl are skipped; delete it to start over.
# Writes $OUT/kv_quant.jsonl (one line per setting), then $OUT/kv_quant.{json,md,png}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$root/scripts/env.sh"
build="${1:-$root/build}"
tokens="${TOKENS:-8192}"
chunk="${CHUNK:-512}"
memories="${MEMORIES:-128 256 512}"
pruners="${PRUNERS:-tova conv streaming_llm}"
dtypes="${DTYPES:-bf16 int8 int4}"
group="${GROUP:-64}"
extra="${EXTRA:-int4:32 int8:32}"
threads="${THREADS:-1}"
nice_level="${NICE:-10}"
out="${OUT:-$root/bench/results}"
text="$root/tests/data/text/pride_and_prejudice.txt"
bin="${BIN:-$build/bench/kv_quant_bench}"
[ -x "$bin" ] || ninja -j1 -C "$build" kv_quant_bench
mkdir -p "$out"
jsonl="$out/kv_quant.jsonl"
touch "$jsonl"

run_one() {  # pruner memory dtype group
  local g="$4"
  [ "$3" = "bf16" ] && g=0
  # Parsed, not grepped: the binary writes its keys sorted, so a fixed key order never matches.
  if "$CTXMEM_PYTHON" - "$jsonl" "$1" "$2" "$3" "$g" "$chunk" <<'PY'; then
import json, sys
path, pruner, memory, dtype, group, chunk = sys.argv[1:]
for line in open(path):
    if not line.strip():
        continue
    j = json.loads(line)
    if (j.get("pruner"), j.get("memory_type"), j.get("chunk"), j.get("memory"), j.get("kv_dtype"),
            j.get("group_size")) == (pruner, "FM", int(chunk), int(memory), dtype, int(group)):
        sys.exit(0)
sys.exit(1)
PY
    echo "[kv_quant] skip $1 M=$2 $3 G=$4 (done)"
    return
  fi
  echo "[kv_quant] run $1 M=$2 $3 G=$4 (load $(cut -d' ' -f1-3 /proc/loadavg))"
  local line
  if line="$(nice -n "$nice_level" "$bin" --text "$text" --tokens "$tokens" --pruner "$1" \
      --memory "$2" --chunk "$chunk" --kv-dtype "$3" --group-size "$4" --threads "$threads")"; then
    echo "$line" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read()); j["load_average"] = open("/proc/loadavg").read().split()[:3]
print(json.dumps(j, separators=(",", ":")))' >> "$jsonl"
    tail -1 "$jsonl"
  else
    echo "[kv_quant] FAILED $1 M=$2 $3 G=$4" >&2
  fi
}

for m in $memories; do
  for p in $pruners; do
    for d in $dtypes; do run_one "$p" "$m" "$d" "$group"; done
  done
done
for e in $extra; do run_one tova 256 "${e%%:*}" "${e##*:}"; done
"$CTXMEM_PYTHON" "$here/kv_quant_report.py" "$jsonl" "$out/kv_quant" || echo "[kv_quant] report failed" >&2
