#!/usr/bin/env bash
# Issue 3 benchmark: time and peak RSS of chunked compression, FM vs IMDC with streaming_llm
# and conv, at 2k / 8k / 32k tokens of the shipped text, fixed C and M, plus a plain full
# prefill where it is affordable and conv's window scoring mode (spec §12.1) at 2k / 8k.
# Every setting runs in a fresh process (bench/compress_bench.cc), so its VmHWM is its own.
#
# Usage: bench/run_compress_bench.sh [build dir] [lengths]    e.g. build-e "2048 8192 32768"
# Env: CHUNK (512), MEMORY (256), THREADS (1), NICE (19), OUT (bench/results),
#      EXTRAS (1; 0 skips the full prefill and window-mode settings),
#      PRUNERS ("streaming_llm conv"), TYPES ("FM IMDC"): the order settings run in.
# Resumable: settings already in $OUT/compress_bench.jsonl are skipped; delete it to start over.
# Writes $OUT/compress_bench.jsonl (one line per setting, with the load average before and
# after it), then $OUT/compress_bench.{json,md} (tables, ratios, machine).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$root/scripts/env.sh"
build="${1:-$root/build}"
lengths="${2:-2048 8192 32768}"
chunk="${CHUNK:-512}"
memory="${MEMORY:-256}"
threads="${THREADS:-1}"
nice_level="${NICE:-19}"
extras="${EXTRAS:-1}"
pruners="${PRUNERS:-streaming_llm conv}"
types="${TYPES:-FM IMDC}"
out="${OUT:-$root/bench/results}"
text="$root/tests/data/text/pride_and_prejudice.txt"
bin="$build/bench/compress_bench"
[ -x "$bin" ] || ninja -j2 -C "$build" compress_bench
mkdir -p "$out"
jsonl="$out/compress_bench.jsonl"
touch "$jsonl"
# A private copy, so a rebuild while the benchmark runs does not swap the binary under it.
private="$(mktemp -d)/compress_bench"
cp "$bin" "$private"

# key: tokens mode pruner type score_mode
settings=()
for n in $lengths; do
  # The plain full prefill is quadratic in n and its KV cache holds every token: run it up to 8k
  # (SmolLM2's trained context is 8192 positions; beyond that its output is meaningless anyway).
  if [ "$n" -le 8192 ] && [ "$extras" = 1 ]; then settings+=("$n full full_prefill - exact"); fi
  for t in $types; do
    for p in $pruners; do settings+=("$n compress $p $t exact"); done
  done
  if [ "$n" -le 8192 ] && [ "$extras" = 1 ]; then
    settings+=("$n compress conv FM window" "$n compress conv IMDC window")
  fi
done

for s in "${settings[@]}"; do
  read -r n mode pruner type score <<<"$s"
  key="\"tokens\":$n,\"mode\":\"$mode\",\"pruner\":\"$pruner\",\"memory_type\":\"$type\",\"score_mode\":\"$score\""
  if grep -qF "$key" "$jsonl"; then echo "skip (done): $s"; continue; fi
  echo "$(date +%T) run: $s" >&2
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  line="$(OMP_WAIT_POLICY=passive nice -n "$nice_level" "$private" --text "$text" --tokens "$n" \
    --mode "$mode" --pruner "${pruner/full_prefill/streaming_llm}" --memory-type "${type/-/FM}" \
    --chunk "$chunk" --memory "$memory" --threads "$threads" --score-mode "$score")" || {
    echo "failed: $s" >&2; continue; }
  load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
  # Normalise the key fields so that the grep above finds this line on a rerun.
  python3 - "$line" "$load_before" "$load_after" "$(date -Is)" >>"$jsonl" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
key = {k: r[k] for k in ("tokens", "mode", "pruner", "memory_type", "score_mode")}
rest = {k: v for k, v in r.items() if k not in key}
rest.update(load_before=sys.argv[2], load_after=sys.argv[3], finished=sys.argv[4])
print(json.dumps(key, separators=(",", ":"))[:-1] + "," + json.dumps(rest, separators=(",", ":"))[1:])
PY
  tail -1 "$jsonl" >&2
done
rm -f "$private"

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
python3 "$here/compress_bench_report.py" "$jsonl" "$out/compress_bench" "$cpu" "$(nproc)" \
  "$(basename "$CTXMEM_MODEL")" "$chunk" "$memory" "$threads"
