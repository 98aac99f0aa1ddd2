#!/usr/bin/env bash
# The main job end to end on one machine, with the bundled model (CPU):
#   1. setup (idempotent) and build compressor_svc, decoder_svc and the ctxmem CLI
#   2. start both services on loopback (ephemeral ports, temp store/cache dirs), plus Debian's
#      prometheus scraping them when it is installed (CTXMEM_WITH_PROMETHEUS=1 scripts/setup.sh)
#   3. compress chapters 1-5 of Pride and Prejudice (tests/data/text, public domain; lines
#      1-517, 24 KB, about 5.5k tokens) into one memory
#   4. ask three questions about it through the decoder, all on that one memory
#   5. print the answers, per-question TTFT, blob size and compression ratio, and stop
#      everything it started (also on Ctrl-C or failure)
# Knobs (environment): DEMO_PRUNER (tova), DEMO_MEMORY (512), DEMO_CHUNK (512), DEMO_LINES
# (517), DEMO_MAX_TOKENS (48), DEMO_KEEP=1 keeps the temp dir, CTXMEM_BUILD_DIR (build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
"$here/setup.sh"
source "$here/env.sh"

build="${CTXMEM_BUILD_DIR:-$root/build}"
pruner="${DEMO_PRUNER:-tova}"
memory="${DEMO_MEMORY:-512}"
chunk="${DEMO_CHUNK:-512}"
lines="${DEMO_LINES:-517}"
max_tokens="${DEMO_MAX_TOKENS:-48}"
threads="$(nproc)"
book="$root/tests/data/text/pride_and_prejudice.txt"

say() { printf '\n== %s\n' "$*"; }

say "building compressor_svc, decoder_svc, ctxmem ($build)"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${CTXMEM_BUILD_TYPE:-Release}" \
    -DCTXMEM_PYTHON="$CTXMEM_PYTHON" >/dev/null
fi
build_log="$(mktemp)"
if ! cmake --build "$build" -j "${CTXMEM_JOBS:-$threads}" --target compressor_svc decoder_svc \
    ctxmem >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2; rm -f "$build_log"; echo "demo: build failed" >&2; exit 1
fi
rm -f "$build_log"
cli="$build/clients/cpp/ctxmem"
for b in "$build/compressor_svc" "$build/decoder_svc" "$cli"; do
  [ -x "$b" ] || { echo "demo: $b was not built" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/ctxmem-demo.XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo "demo: kept $work (server logs: *.log)"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a server in the background; waits for its one "listening grpc=... metrics=..." line
# (the service contract) and sets $grpc_addr / $metrics_addr from it.
start_server() {
  local name="$1"; shift
  "$@" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=("$!")
  local pid=$! t=0
  until grep -q "^$name listening " "$work/$name.out" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: $name exited during startup; its log:" >&2
      tail -n 30 "$work/$name.log" >&2
      exit 1
    fi
    sleep 0.2; t=$((t + 1))
    [ "$t" -lt 900 ] || { echo "demo: $name did not start within 180 s" >&2; exit 1; }
  done
  local line; line="$(grep -m1 "^$name listening " "$work/$name.out")"
  grpc_addr="$(sed -n 's/.* grpc=\([^ ]*\).*/\1/p' <<<"$line")"
  metrics_addr="$(sed -n 's/.* metrics=\([^ ]*\).*/\1/p' <<<"$line")"
  echo "$line (pid $pid)"
}

say "starting the services on loopback (temp dir $work)"
start_server compressor_svc "$build/compressor_svc" --listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --model "$CTXMEM_MODEL" --threads "$threads" \
  --store-dir "$work/store"
compressor="$grpc_addr"; compressor_metrics="$metrics_addr"
start_server decoder_svc "$build/decoder_svc" --listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --model "$CTXMEM_MODEL" --threads "$threads" \
  --compressor "$compressor" --cache-dir "$work/cache"
decoder="$grpc_addr"; decoder_metrics="$metrics_addr"

prom_port=""
if command -v prometheus >/dev/null; then
  prom_port="${DEMO_PROMETHEUS_PORT:-9090}"
  cp "$root/deploy/prometheus/alerts.yml" "$work/alerts.yml"
  sed -e "s/127.0.0.1:9464/$compressor_metrics/" -e "s/127.0.0.1:9465/$decoder_metrics/" \
    -e 's/scrape_interval: 15s/scrape_interval: 2s/' \
    "$root/deploy/prometheus/prometheus.yml" >"$work/prometheus.yml"
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
  pids+=("$!")
  echo "prometheus scraping both every 2 s: http://127.0.0.1:$prom_port (pid $!)"
else
  echo "(Debian's prometheus is not installed; CTXMEM_WITH_PROMETHEUS=1 scripts/setup.sh adds it)"
fi

say "compressing Pride and Prejudice, lines 1-$lines (chapters 1-5) with $pruner, M=$memory, C=$chunk"
head -n "$lines" "$book" >"$work/context.txt"
echo "context: $(wc -c <"$work/context.txt") bytes"
"$cli" compress "$work/context.txt" --compressor "$compressor" --pruner "$pruner" \
  --memory "$memory" --chunk "$chunk" --label "pride_and_prejudice ch1-5" --json \
  >"$work/compress.json"
read -r memory_id n_tokens n_kept blob_bytes ratio bpt compress_s <<<"$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
m, t = d["memory"], d["timings"]
print(m["memory_id"], m["n_original_tokens"], m["n_kept"][0], m["blob_bytes"],
      "%.2f" % m["compression_ratio"], "%.1f" % m["bytes_per_original_token"],
      "%.1f" % t["total_seconds"])' "$work/compress.json")"
echo "memory $memory_id"
echo "$n_tokens tokens -> $n_kept entries per kv head and layer; blob $blob_bytes bytes" \
  "($bpt bytes/token), compression ratio ${ratio}x, ${compress_s} s"

questions=(
  "Who has taken Netherfield Park?"
  "How many daughters do Mr. and Mrs. Bennet have?"
  "What did Mr. Darcy say about Elizabeth at the ball?"
)
ttfts=()
caches=()
i=0
for q in "${questions[@]}"; do
  i=$((i + 1))
  say "question $i: $q"
  "$cli" ask "$memory_id" "$q" --decoder "$decoder" --chat --max-tokens "$max_tokens" \
    2>"$work/ask$i.err" || { cat "$work/ask$i.err" >&2; exit 1; }
  cat "$work/ask$i.err"
  ttfts+=("$(sed -n 's/.*ttft \([0-9.]*\) s.*/\1/p' "$work/ask$i.err")")
  caches+=("$(sed -n 's/.*cache \([a-z]*\).*/\1/p' "$work/ask$i.err")")
done

say "summary"
printf '%-52s %s\n' "context" "Pride and Prejudice ch. 1-5, $n_tokens tokens"
printf '%-52s %s\n' "memory ($pruner, M=$memory, C=$chunk)" "$n_kept entries/head/layer"
printf '%-52s %s\n' "blob size" "$blob_bytes bytes ($bpt bytes per context token)"
printf '%-52s %s\n' "compression ratio (tokens / kept entries)" "${ratio}x"
printf '%-52s %s\n' "compress time" "${compress_s} s"
for j in 0 1 2; do
  printf '%-52s %s\n' "TTFT question $((j + 1)) (blob cache ${caches[$j]})" "${ttfts[$j]} s"
done
python3 - "$decoder_metrics" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
keep = ("ctxmem_cache_hits_total", "ctxmem_cache_misses_total", "ctxmem_generated_tokens_total",
        "ctxmem_fetch_bytes_total")
print("decoder metrics:")
for line in text.splitlines():
    if line.startswith(keep):
        print("  " + line)
EOF
if [ -n "$prom_port" ]; then
  sleep 3
  python3 - "$prom_port" <<'EOF' || echo "(prometheus query failed; see its log)"
import json, sys, urllib.parse, urllib.request
q = urllib.parse.quote("sum by (job) (ctxmem_requests_total)")
r = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v1/query?query={q}",
                                     timeout=5))
for s in r["data"]["result"]:
    print(f"prometheus: {s['metric'].get('job')} requests_total = {s['value'][1]}")
EOF
fi
