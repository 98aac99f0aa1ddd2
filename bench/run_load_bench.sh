#!/usr/bin/env bash
# Load test of decoder_svc on loopback (bench/load_bench.py): builds the two servers in BUILD
# (default build), then runs N concurrent Generate streams on one memory per concurrency level,
# bounded by time and count. Results: bench/results/load_decoder.{json,md}. Not run by ctest.
#   bench/run_load_bench.sh [BUILD_DIR] [load_bench.py options, e.g. --concurrency 1,2,4]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
source "$root/scripts/env.sh"
build="${1:-$root/build}"
[ $# -gt 0 ] && shift
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTXMEM_PYTHON="$CTXMEM_PYTHON" >/dev/null
fi
ninja -C "$build" -j "${CTXMEM_JOBS:-2}" compressor_svc decoder_svc
"$CTXMEM_PYTHON" "$root/clients/python/ctxmem_client/generate.py"
export OMP_WAIT_POLICY=passive
exec "$CTXMEM_PYTHON" "$here/load_bench.py" \
  --compressor-bin "$build/compressor_svc" --decoder-bin "$build/decoder_svc" \
  --model "$CTXMEM_MODEL" "$@"
