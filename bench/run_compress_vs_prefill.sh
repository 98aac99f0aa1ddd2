#!/usr/bin/env bash
# Issue 9's compression target: throughput of one compression (tova, C=512, M=512, exact
# scores) of the first N tokens (8192) of the shipped text against our own plain prefill of the
# same tokens (one Transformer::Forward, no compression), for each weight dtype (fp32, bf16).
# Every setting is a fresh bench/compress_bench process, run ROUNDS times in alternation
# (full, compress, full, compress, ...); tokens per CPU second (user + system) is the figure
# compared, since on this shared machine wall time also counts other jobs' turns.
#
# Usage: [ROUNDS=2] [THREADS=1] [TOKENS=8192] [DTYPES="fp32 bf16"] bench/run_compress_vs_prefill.sh [build]
# Writes bench/results/compress_vs_prefill.{jsonl,json,md}. Not in CI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$root/scripts/env.sh"
build="${1:-$root/build}"
rounds="${ROUNDS:-2}"
threads="${THREADS:-1}"
tokens="${TOKENS:-8192}"
dtypes="${DTYPES:-fp32 bf16}"
bin="$build/bench/compress_bench"
[ -x "$bin" ] || nice ninja -j "${CTXMEM_JOBS:-1}" -C "$build" compress_bench
out="$root/bench/results"
jsonl="$out/compress_vs_prefill.jsonl"
: >"$jsonl"
text="$root/tests/data/text/pride_and_prejudice.txt"
for r in $(seq 1 "$rounds"); do
  for dtype in $dtypes; do
    for mode in full compress; do
      load="$(cut -d' ' -f1-3 /proc/loadavg)"
      line="$(OMP_WAIT_POLICY=passive nice -n 19 "$bin" --text "$text" --tokens "$tokens" \
        --mode "$mode" --pruner tova --memory-type FM --chunk 512 --memory 512 \
        --score-mode exact --threads "$threads" --dtype "$dtype")"
      "$CTXMEM_PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(round=int(sys.argv[2]), dtype=sys.argv[3], load_before=sys.argv[4]); print(json.dumps(r))' \
        "$line" "$r" "$dtype" "$load" >>"$jsonl"
      echo "[compress_vs_prefill] round $r $dtype $mode: $(tail -1 "$jsonl")" >&2
    done
  done
done
cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
"$CTXMEM_PYTHON" - "$jsonl" "$out/compress_vs_prefill" "$cpu" "$threads" "$tokens" <<'PY'
import json, statistics, sys
src, dst, cpu, threads, tokens = sys.argv[1:]
runs = [json.loads(l) for l in open(src) if l.strip()]
def tps(r):  # tokens per CPU second
    cpu_s = r.get("cpu_seconds") or (r.get("user_seconds", 0) + r.get("sys_seconds", 0))
    return r["tokens"] / cpu_s if cpu_s else None
rows = {}
for r in runs:
    rows.setdefault((r["dtype"], r["mode"]), []).append(r)
summary = []
for dtype in dict.fromkeys(r["dtype"] for r in runs):
    full = [tps(r) for r in rows.get((dtype, "full"), []) if tps(r)]
    comp = [tps(r) for r in rows.get((dtype, "compress"), []) if tps(r)]
    f, c = (statistics.median(full) if full else None), (statistics.median(comp) if comp else None)
    summary.append({"dtype": dtype, "full_prefill_tok_per_cpu_s": f, "compress_tok_per_cpu_s": c,
                    "ratio": c / f if c and f else None, "n_full": len(full), "n_compress": len(comp)})
json.dump({"cpu": cpu, "threads": int(threads), "tokens": int(tokens), "runs": runs,
           "summary": summary}, open(dst + ".json", "w"), indent=1)
fmt = lambda x, d=0: "-" if x is None else f"{x:.{d}f}"
loads = [r["load_before"].split()[0] for r in runs]
lines = ["# Compression vs plain prefill (issue 9)", "",
         f"Machine: {cpu}, {threads} thread(s); {tokens} tokens of "
         "`tests/data/text/pride_and_prejudice.txt`; compression = tova, C=512, M=512, exact "
         "scores, FM; plain prefill = one forward over the same tokens (no compression). "
         "Tokens per CPU second (user + system, so other jobs' turns on this shared machine do "
         f"not count), medians of the rounds; 1-minute load before the runs: {', '.join(loads)}. "
         "Produced by `bench/run_compress_vs_prefill.sh`.", "",
         "| weights | plain prefill tok/CPU s | compression tok/CPU s | compression / prefill |",
         "|---|---|---|---|"]
for s in summary:
    lines.append(f"| {s['dtype']} | {fmt(s['full_prefill_tok_per_cpu_s'])} | "
                 f"{fmt(s['compress_tok_per_cpu_s'])} | {fmt(s['ratio'], 2)} |")
open(dst + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
