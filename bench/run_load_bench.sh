#!/usr/bin/env bash
# Load test of decoder_svc on loopback (bench/load_bench.py): builds the two servers in BUILD
# (default build), then, for batched decoding (--max-batch 8) and the one-stream-per-step
# baseline (--max-batch 1), each in its own decoder process, runs 1/2/4/8 concurrent Generate
# streams on one shared memory and on 8 different memories, bounded by time and count.
# Results: bench/results/load_decoder.{json,md,png}. Not run by ctest. Takes ~10-20 minutes;
# run it in the background, niced, e.g.
#   nohup nice -n 19 bench/run_load_bench.sh > /tmp/load_bench.log 2>&1 &
#   bench/run_load_bench.sh [BUILD_DIR] [load_bench.py options, e.g. --concurrency 1,8
#     --decode packed --duration 20]
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
