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
python3 - "$jsonl" "$out/append_bench" <<'PY'
import json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True,
            text=True).stdout.splitlines() if l.startswith("Model name")), "?")
out = {"machine": cpu, "rows": rows}
lines = ["# Incremental append: cost vs base length", "",
         f"Machine: {cpu}. SmolLM2-135M Q4_1 (cpu fp32, 1 thread), C=512, M=256, FM, bf16 blobs; "
         "append = verify + decode the base blob, CompressAppend of the next tokens, encode + seal "
         "the new blob; median of the repeats. Ratio = append cost / the 2k base's append cost "
         "(same pruner, same run). CPU s is the figure to compare on this shared machine.", "",
         "| pruner | base tokens | append tokens | base blob bytes | decode s | append compress s | seal s | total s | total CPU s | CPU ratio vs 2k | base compress CPU s |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for p in sorted({r["pruner"] for r in rows}):
    rs = sorted([r for r in rows if r["pruner"] == p], key=lambda r: r["base_tokens"])
    ref = rs[0]["append_total_cpu_seconds"]
    for r in rs:
        r["cpu_ratio_vs_smallest"] = r["append_total_cpu_seconds"] / ref
        lines.append(f"| {p} | {r['base_tokens']} | {r['append_tokens']} | {r['base_blob_bytes']} | "
                     f"{r['decode_seconds']:.3f} | {r['append_compress_seconds']:.2f} | "
                     f"{r['seal_seconds']:.3f} | {r['append_total_seconds']:.2f} | "
                     f"{r['append_total_cpu_seconds']:.2f} | {r['cpu_ratio_vs_smallest']:.3f} | "
                     f"{r['base_compress_cpu_seconds']:.1f} |")
    spread = max(r["cpu_ratio_vs_smallest"] for r in rs) / min(r["cpu_ratio_vs_smallest"] for r in rs)
    lines.append("")
    lines.append(f"{p}: largest / smallest append CPU time across base lengths = {spread:.3f} "
                 f"({'within' if spread <= 1.10 else 'NOT within'} 10%).")
    lines.append("")
json.dump(out, open(sys.argv[2] + ".json", "w"), indent=1)
open(sys.argv[2] + ".md", "w").write("\n".join(lines) + "\n")
PY
